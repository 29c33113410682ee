/** Counting what a program's main thread executes, under callgrind, for the benchmarks. @module */
import { readFileSync } from "node:fs";

/**
 * Run `program` under callgrind with `options` besides its own, its counts
 * written to `out` (`out-01`: the main thread's; with `--dump-before`,
 * `out.N-01` at each dump too), with `env` added to the environment. Bun's
 * GC timer is off (BUN_GC_TIMER_DISABLE): under valgrind's slowness it fires
 * collections a real run never reaches. Returns the program's stderr.
 * @throws when the run fails
 */
export function underCallgrind(
  program: string[],
  out: string,
  options: string[] = [],
  env: Record<string, string> = {},
): string {
  const run = Bun.spawnSync(
    ["valgrind", "--tool=callgrind", "--separate-threads=yes", ...options, `--callgrind-out-file=${out}`, ...program],
    { stdout: "ignore", stderr: "pipe", env: { ...process.env, BUN_GC_TIMER_DISABLE: "1", ...env } },
  );
  if (run.exitCode !== 0) throw new Error(`${program.join(" ")} under valgrind: ${run.stderr.toString()}`);
  return run.stderr.toString();
}

/** The instructions a callgrind output file counts. */
export function instructionsIn(file: string): number {
  return Number(readFileSync(file, "utf8").match(/^summary: (\d+)/m)?.[1]);
}
