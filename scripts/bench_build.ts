/** Building the benchmarks' reference programs. @module */

/** `entry` built by scripts/build.sh into `out` (so with qmpctl's flags); returns `out`. */
export function compile(entry: string, out: string): string {
  const build = Bun.spawnSync(["scripts/build.sh", out, entry], { stdout: "ignore", stderr: "pipe" });
  if (build.exitCode !== 0) throw new Error(`building ${entry} failed: ${build.stderr.toString()}`);
  return out;
}
