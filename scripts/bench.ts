/**
 * The benchmarks behind scripts/bench.sh. Each section starts its own
 * throwaway QEMU, alternates qmpctl and its socat equivalent run by run, and
 * prints medians, the ratio and qmpctl's peak RSS.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startQemu, type TestQemu } from "../tests/helpers/qemu.ts";
import { benchEvents } from "./bench_events.ts";

const QMPCTL = process.env.QMPCTL_BIN ?? "dist/qmpctl";
const RUNS = Number(process.env.BENCH_RUNS ?? 40);

interface Sample {
  ms: number;
  maxRssKiB: number;
}

/** Run a whole process once; its wall time and peak RSS. */
function runOnce(cmd: string[], stdin?: string, env?: Record<string, string | undefined>): Sample {
  const started = performance.now();
  const result = Bun.spawnSync(cmd, {
    stdin: stdin === undefined ? "ignore" : new Blob([stdin]),
    stdout: "pipe",
    stderr: "pipe",
    env,
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

/**
 * Typed arguments: `exec set_link name=x up=false` with a warm schema cache
 * (query-target, a cache read) against the untyped `exec query-status`, and
 * cold (one query-qmp-schema fetch and a cache write per run), with socat.
 */
async function benchSchema(qemu: TestQemu): Promise<void> {
  await qemu.control.execute("netdev_add", { type: "hubport", id: "x", hubid: 0 }); // something set_link finds
  const cache = mkdtempSync(join(tmpdir(), "qmpctl-bench-cache-"));
  const env = { ...process.env, XDG_CACHE_HOME: cache };
  const setLink = [QMPCTL, "-s", qemu.socket, "exec", "set_link", "name=x", "up=false"];
  const runs: Record<string, () => Sample> = {
    warm: () => runOnce(setLink, undefined, env),
    status: () => runOnce([QMPCTL, "-s", qemu.socket, "exec", "query-status"]),
    socat: () => runOnce(["socat", "-", `UNIX-CONNECT:${qemu.socket}`], '{"execute":"qmp_capabilities"}\n'),
    cold: () => {
      rmSync(join(cache, "qmpctl"), { recursive: true, force: true });
      return runOnce(setLink, undefined, env);
    },
  };
  const samples: Record<string, Sample[]> = Object.fromEntries(Object.keys(runs).map((k) => [k, []]));
  for (let i = -3; i < RUNS; i++) { // round-robin, after 3 warm-up rounds
    for (const [name, run] of Object.entries(runs)) {
      const sample = run();
      if (i >= 0) samples[name].push(sample);
    }
  }
  rmSync(cache, { recursive: true, force: true });
  report("exec set_link name=x up=false, warm schema cache", samples.warm, samples.socat);
  report("exec query-status (untyped)", samples.status, samples.socat);
  report("exec set_link name=x up=false, cold (fetches the schema)", samples.cold, samples.socat);
  const ratio = (a: Sample[], b: Sample[]) => (median(a.map((s) => s.ms)) / median(b.map((s) => s.ms))).toFixed(2);
  console.log(
    `schema: warm set_link / query-status ${ratio(samples.warm, samples.status)}, ` +
      `cold / warm ${ratio(samples.cold, samples.warm)}`,
  );
}

const SECTIONS: Record<string, (qemu: TestQemu) => Promise<void>> = {
  exec: benchExec,
  schema: benchSchema,
  events: benchEvents,
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
