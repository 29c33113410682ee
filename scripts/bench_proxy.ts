/**
 * The benchmark behind scripts/bench_proxy.sh: the cost of going through
 * `qmpctl proxy` instead of QEMU's monitor directly, alternated run by run
 * against one throwaway QEMU (two monitors: one direct, one behind the proxy).
 * Prints medians and the ratio proxy/direct.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { negotiatedClient, startProxy } from "../tests/helpers/proxy.ts";
import { startQemu } from "../tests/helpers/qemu.ts";

const QMPCTL = process.env.QMPCTL_BIN ?? "dist/qmpctl";
const RUNS = Number(process.env.BENCH_RUNS ?? 40);
const PIPELINED = 1000;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** One whole `qmpctl exec query-status` process. */
function execOnce(socket: string): number {
  const started = performance.now();
  const result = Bun.spawnSync([QMPCTL, "-s", socket, "exec", "query-status"], { stdout: "pipe", stderr: "pipe" });
  if (result.exitCode !== 0) throw new Error(`exec exited ${result.exitCode}: ${result.stderr.toString()}`);
  return performance.now() - started;
}

/** Alternate `a` and `b`, 3 warm-up rounds then `runs`; each one's times. */
async function alternate(runs: number, a: () => number | Promise<number>, b: () => number | Promise<number>) {
  for (let i = 0; i < 3; i++) await a(), await b();
  const out = { a: [] as number[], b: [] as number[] };
  for (let i = 0; i < runs; i++) {
    out.a.push(await a());
    out.b.push(await b());
  }
  return out;
}

/** Wall time of PIPELINED commands sent at once on one negotiated connection, until the last reply. */
async function pipelinedOnce(socket: string): Promise<number> {
  const { client } = await negotiatedClient(socket);
  const started = performance.now();
  for (let i = 0; i < PIPELINED; i++) client.send({ execute: "query-status", id: i });
  const replies = await client.replies(PIPELINED, 60_000).catch((error) => {
    const where = socket === shared ? "through the proxy" : "directly";
    throw new Error(`${where}: ${error.message} (proxy exit status: ${proxy.child.exitCode})\n${proxy.stderr()}`);
  });
  const ms = performance.now() - started;
  if (replies.at(-1)?.id !== PIPELINED - 1) throw new Error("replies out of order");
  client.close();
  // QEMU takes the next client only once this one has gone (and refuses connections beyond a backlog of one).
  await Promise.race([client.closed, Bun.sleep(5000)]);
  return ms;
}

function line(name: string, proxied: number[], direct: number[]): void {
  const p = median(proxied), d = median(direct);
  console.log(
    `${name}: proxy ${p.toFixed(1)} ms, direct ${d.toFixed(1)} ms, ` +
      `ratio ${(p / d).toFixed(3)} (${p >= d ? "+" : ""}${
        ((p / d - 1) * 100).toFixed(1)
      }%) (median of ${direct.length})`,
  );
}

const dir = mkdtempSync(join(tmpdir(), "qmpctl-bench-proxy-"));
const behind = join(dir, "behind-proxy.sock"), shared = join(dir, "shared.sock");
const qemu = await startQemu({ extraArgs: ["-qmp", `unix:${behind},server=on,wait=off`] });
const proxy = startProxy(["-s", behind, "--listen", shared], 60 * 60_000); // the whole benchmark's run
try {
  await proxy.ready;
  const exec = await alternate(RUNS, () => execOnce(shared), () => execOnce(qemu.socket));
  line("exec query-status", exec.a, exec.b);
  const pipelined = await alternate(RUNS, () => pipelinedOnce(shared), () => pipelinedOnce(qemu.socket));
  line(`${PIPELINED} pipelined query-status`, pipelined.a, pipelined.b);
} finally {
  proxy.child.kill("SIGTERM");
  await proxy.result;
  await qemu.stop();
  rmSync(dir, { recursive: true, force: true });
}
