/**
 * Many commands and many VMs, each side by side with its baseline in the
 * same run, alternated run by run (ratios, not absolute times):
 * - `batch` of 1000 × query-status vs socat writing all 1000 requests at once;
 * - fan-out `exec query-status` over 16 and 64 VMs (one glob) vs a shell
 *   loop of one-shot runs over the same sockets.
 */
import { mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startQemu, type TestQemu } from "../tests/helpers/qemu.ts";

const QMPCTL = process.env.QMPCTL_BIN ?? "dist/qmpctl";
/** The QEMUs running now, stopped also when the bench is interrupted. */
const running = new Set<TestQemu>();
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, async () => {
    await Promise.all([...running].map((vm) => vm.stop()));
    process.exit(130);
  });
}

async function start(): Promise<TestQemu> {
  const vm = await startQemu();
  running.add(vm);
  return vm;
}

async function stop(vm: TestQemu): Promise<void> {
  running.delete(vm);
  await vm.stop();
}
const RUNS = Number(process.env.BENCH_RUNS ?? 15);

/** Wall time of one whole process, in ms; it must exit 0. */
function wallMs(cmd: string[], stdin?: string): number {
  const started = performance.now();
  const result = Bun.spawnSync(cmd, { stdin: stdin === undefined ? "ignore" : new Blob([stdin]), stdout: "pipe" });
  const ms = performance.now() - started;
  if (result.exitCode !== 0) throw new Error(`${cmd.join(" ")} exited ${result.exitCode}: ${result.stderr}`);
  return ms;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** Alternate the two, RUNS rounds after 2 warm-up rounds; print both medians and their ratio. */
function compare(name: string, a: [string, () => number], b: [string, () => number]): void {
  const times: [number[], number[]] = [[], []];
  for (let i = -2; i < RUNS; i++) {
    const ta = a[1](), tb = b[1]();
    if (i >= 0) times[0].push(ta), times[1].push(tb);
  }
  const [ma, mb] = times.map(median);
  console.log(
    `${name}: ${a[0]} ${ma.toFixed(1)} ms, ${b[0]} ${mb.toFixed(1)} ms, ratio ${
      (ma / mb).toFixed(2)
    } (median of ${RUNS})`,
  );
}

async function benchBatch(): Promise<void> {
  const qemu = await start();
  try {
    const n = 1000;
    const socatInput = '{"execute":"qmp_capabilities"}\n' + '{"execute":"query-status"}\n'.repeat(n);
    compare(
      `batch ${n} × query-status`,
      ["qmpctl batch", () => wallMs([QMPCTL, "-s", qemu.socket, "batch"], "query-status\n".repeat(n))],
      ["socat (all written at once)", () => wallMs(["socat", "-", `UNIX-CONNECT:${qemu.socket}`], socatInput)],
    );
  } finally {
    await stop(qemu);
  }
}

async function benchFanout(count: number): Promise<void> {
  const fleet = mkdtempSync(join(tmpdir(), "qmpctl-bench-fleet-"));
  const started = await Promise.allSettled(Array.from({ length: count }, () => start()));
  const vms = started.flatMap((s) => (s.status === "fulfilled" ? [s.value] : [])) as TestQemu[];
  try {
    if (vms.length < count) throw new Error(`only ${vms.length} of ${count} QEMUs started`);
    vms.forEach((vm, i) => symlinkSync(vm.socket, join(fleet, `vm${String(i).padStart(3, "0")}.qmp`)));
    const loop = `for s in ${fleet}/*.qmp; do ${QMPCTL} -s "$s" exec query-status >/dev/null || exit 1; done`;
    compare(
      `exec query-status on ${count} VMs`,
      ["qmpctl -s GLOB (fan-out)", () => wallMs([QMPCTL, "-s", join(fleet, "*.qmp"), "exec", "query-status"])],
      [`shell loop of ${count} one-shot runs`, () => wallMs(["bash", "-c", loop])],
    );
  } finally {
    await Promise.all(vms.map(stop));
    rmSync(fleet, { recursive: true, force: true });
  }
}

// Sections: batch, fanout16, fanout64 (default: all).
const SECTIONS: Record<string, () => Promise<void>> = {
  batch: benchBatch,
  fanout16: () => benchFanout(16),
  fanout64: () => benchFanout(64),
};
const wanted = process.argv.slice(2);
for (const name of wanted.length > 0 ? wanted : Object.keys(SECTIONS)) {
  if (!SECTIONS[name]) throw new Error(`unknown section ${name}; sections: ${Object.keys(SECTIONS).join(", ")}`);
  await SECTIONS[name]();
}
