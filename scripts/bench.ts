/**
 * The benchmarks behind scripts/bench.sh. Each section starts its own
 * throwaway QEMU, alternates qmpctl and its socat equivalent run by run, and
 * prints medians, the ratio and qmpctl's peak RSS.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startQemu, type TestQemu } from "../tests/helpers/qemu.ts";

const QMPCTL = "dist/qmpctl";
const RUNS = Number(process.env.BENCH_RUNS ?? 40);

interface Sample {
  ms: number;
  maxRssKiB: number;
}

/** Run a whole process once; its wall time and peak RSS. */
function runOnce(cmd: string[], stdin?: string): Sample {
  const started = performance.now();
  const result = Bun.spawnSync(cmd, {
    stdin: stdin === undefined ? "ignore" : new Blob([stdin]),
    stdout: "pipe",
    stderr: "pipe",
  });
  const ms = performance.now() - started;
  if (result.exitCode !== 0) throw new Error(`${cmd.join(" ")} exited ${result.exitCode}: ${result.stderr.toString()}`);
  return { ms, maxRssKiB: Number(result.resourceUsage?.maxRSS ?? 0) / 1024 };
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** Alternate `a` and `b` for RUNS rounds (after 3 warm-up rounds each). */
export function alternate(a: () => Sample, b: () => Sample): { a: Sample[]; b: Sample[] } {
  for (let i = 0; i < 3; i++) a(), b();
  const out = { a: [] as Sample[], b: [] as Sample[] };
  for (let i = 0; i < RUNS; i++) {
    out.a.push(a());
    out.b.push(b());
  }
  return out;
}

function report(name: string, qmpctl: Sample[], socat: Sample[], program = "qmpctl"): void {
  const q = median(qmpctl.map((s) => s.ms));
  const s = median(socat.map((s) => s.ms));
  const rss = Math.max(...qmpctl.map((s) => s.maxRssKiB));
  console.log(
    `${name}: ${program} ${q.toFixed(1)} ms, socat ${s.toFixed(1)} ms, ratio ${(q / s).toFixed(2)}, ` +
      `${program} peak RSS ${(rss / 1024).toFixed(1)} MiB (median of ${RUNS})`,
  );
}

async function benchExec(qemu: TestQemu): Promise<void> {
  const requests = '{"execute":"qmp_capabilities"}\n{"execute":"query-status"}\n';
  // socat sends both requests at once and exits when QEMU, seeing its EOF, closes.
  const socat = () => runOnce(["socat", "-", `UNIX-CONNECT:${qemu.socket}`], requests);
  const { a, b } = alternate(() => runOnce([QMPCTL, "-s", qemu.socket, "exec", "query-status"]), socat);
  report("exec query-status", a, b);
  // The floor: a compiled Bun binary that only prints "hello", built the same way.
  const hello = await compiledHello();
  const floor = alternate(() => runOnce([hello]), socat);
  report("floor (prints hello, no QMP)", floor.a, floor.b, "compiled Bun hello");
}

async function compiledHello(): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), "qmpctl-bench-"));
  await Bun.write(join(dir, "hello.ts"), 'console.log("hello");\n');
  const build = Bun.spawnSync([
    "node_modules/.bin/bun",
    "build",
    "--compile",
    "--minify",
    "--bytecode",
    "--format=esm",
    join(dir, "hello.ts"),
    "--outfile",
    join(dir, "hello"),
  ], { stdout: "ignore", stderr: "pipe" });
  if (build.exitCode !== 0) throw new Error(`building hello failed: ${build.stderr.toString()}`);
  return join(dir, "hello");
}

const SECTIONS: Record<string, (qemu: TestQemu) => Promise<void>> = {
  exec: benchExec,
};

const wanted = process.argv.slice(2);
for (const name of wanted.length > 0 ? wanted : Object.keys(SECTIONS)) {
  const section = SECTIONS[name];
  if (!section) throw new Error(`unknown section ${name}; sections: ${Object.keys(SECTIONS).join(", ")}`);
  const qemu = await startQemu();
  try {
    await section(qemu);
  } finally {
    await qemu.stop();
  }
}
