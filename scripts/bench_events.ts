/**
 * The `events` section of scripts/bench.sh: qmpctl against socat, round by
 * round in the same run, on the same QEMU monitor.
 *
 * - Drain: a listener is stopped (SIGSTOP) while QEMU emits 20 000 events
 *   (stop/cont pipelined on the other monitor), then continued (SIGCONT); the
 *   time until `grep -c -m 20000` has counted them all, for
 *   `qmpctl events --count 20000 | grep`, the least Bun client that parses
 *   and prints each event (bench_drain_floor.ts, built with qmpctl's flags),
 *   the same client passing the bytes through unparsed (--bytes), and `socat - UNIX-CONNECT:... | grep`. Beside them, Bun's JSON.parse alone
 *   and with JSON.stringify, warm and with no I/O.
 * - Latency: from `stop` sent on the other monitor to the STOP line read from
 *   the stdout of `qmpctl wait-event STOP`, and of socat.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { QmpClient } from "../lib/mod.ts";
import type { TestQemu } from "../tests/helpers/qemu.ts";
import { compile } from "./bench_build.ts";

const QMPCTL = process.env.QMPCTL_BIN ?? "dist/qmpctl";
const DRAIN_EVENTS = Number(process.env.BENCH_EVENTS ?? 20_000);
const DRAIN_ROUNDS = Number(process.env.BENCH_DRAIN_ROUNDS ?? 5);
const LATENCY_ROUNDS = Number(process.env.BENCH_LATENCY_ROUNDS ?? 20);
const NEGOTIATE = '{"execute":"qmp_capabilities"}\n';
/** Time a listener gets to connect and subscribe; on a loaded machine 300 ms was not enough. */
const SETTLE_MS = Number(process.env.BENCH_SETTLE_MS ?? 1500);

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}

/** Lines of a child's stdout, each with the time it arrived. */
function timedLines(stream: ReadableStream<Uint8Array>) {
  const lines: { at: number; text: string }[] = [];
  let wake = () => {};
  void (async () => {
    const decoder = new TextDecoder();
    let partial = "";
    for await (const chunk of stream) {
      const at = performance.now();
      const parts = (partial + decoder.decode(chunk, { stream: true })).split("\n");
      partial = parts.pop()!;
      for (const text of parts) lines.push({ at, text });
      wake();
    }
  })();
  return {
    /** The first line (after `from`) that contains `needle`; fails after `timeoutMs`, so no round can hang. */
    async find(needle: string, from = 0, timeoutMs = 60_000): Promise<{ at: number; text: string; index: number }> {
      const deadline = AbortSignal.timeout(timeoutMs);
      const expired = new Promise<never>((_, reject) =>
        deadline.addEventListener("abort", () => reject(new Error(`no line with ${needle} within ${timeoutMs} ms`)))
      );
      expired.catch(() => {});
      for (let i = from;; i++) {
        while (i >= lines.length) await Promise.race([new Promise<void>((resolve) => (wake = resolve)), expired]);
        if (lines[i].text.includes(needle)) return { ...lines[i], index: i };
      }
    },
  };
}

/**
 * A command on the control monitor, bounded: a round that stalls (one hung
 * for ten minutes, undiagnosed) fails saying what it waited for.
 */
function control(qemu: TestQemu, command: string, signal = AbortSignal.timeout(30_000)): Promise<unknown> {
  return qemu.control.execute(command, undefined, { signal });
}

/** Emit `count` events (stop, cont, stop, ...) from the control monitor, pipelined. */
async function emit(qemu: TestQemu, count: number): Promise<void> {
  const calls = [], signal = AbortSignal.timeout(120_000);
  for (let i = 0; i < count; i++) calls.push(control(qemu, i % 2 === 0 ? "stop" : "cont", signal));
  await Promise.all(calls);
  if (count % 2 === 1) await control(qemu, "cont");
}

/** One drain round: seconds from SIGCONT until grep has counted every event. */
async function drainOnce(qemu: TestQemu, listener: string[], stdin?: string): Promise<number> {
  // bash becomes the listener (exec), its stdout going to grep; grep prints its count on stderr.
  const script = 'exec > >(exec grep -c -m "$0" \'"event"\' >&2); exec "$@"';
  const child = Bun.spawn(["bash", "-c", script, String(DRAIN_EVENTS), ...listener], {
    stdin: "pipe",
    stdout: "ignore",
    stderr: "pipe",
  });
  if (stdin) child.stdin.write(stdin);
  child.stdin.flush();
  const stderr = timedLines(child.stderr); // socat keeps it open: read grep's line, not to the end
  await Bun.sleep(SETTLE_MS); // connected and listening (no signal to wait for: its stdout goes to grep)
  process.kill(child.pid, "SIGSTOP");
  await emit(qemu, DRAIN_EVENTS);
  const started = performance.now();
  process.kill(child.pid, "SIGCONT");
  const { at, text } = await stderr.find("");
  const seconds = (at - started) / 1000;
  const count = Number(text);
  child.kill("SIGKILL");
  await child.exited;
  await monitorFree(qemu);
  if (count !== DRAIN_EVENTS) throw new Error(`${listener[0]} delivered ${count} of ${DRAIN_EVENTS} events`);
  return seconds;
}

async function benchDrain(qemu: TestQemu): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "qmpctl-bench-"));
  const floorProgram = compile("scripts/bench_drain_floor.ts", join(dir, "drain_floor"));
  const qmpctl: number[] = [], floor: number[] = [], bytes: number[] = [], socat: number[] = [];
  try {
    for (let round = 0; round < DRAIN_ROUNDS; round++) {
      qmpctl.push(await drainOnce(qemu, [QMPCTL, "-s", qemu.socket, "events", "--count", String(DRAIN_EVENTS)]));
      floor.push(await drainOnce(qemu, [floorProgram, qemu.socket, String(DRAIN_EVENTS)]));
      bytes.push(await drainOnce(qemu, [floorProgram, qemu.socket, String(DRAIN_EVENTS), "--bytes"]));
      socat.push(await drainOnce(qemu, ["socat", "-", `UNIX-CONNECT:${qemu.socket}`], NEGOTIATE));
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const rate = (seconds: number[]) => DRAIN_EVENTS / percentile(seconds, 0.5);
  const json = jsonFloorSeconds();
  const parseAlone = DRAIN_EVENTS / json.parse, warm = DRAIN_EVENTS / json.parseAndPrint;
  const k = (eventsPerSecond: number) => `${Math.round(eventsPerSecond / 1000)}k events/s`;
  const ratio = (a: number, b: number) => (a / b).toFixed(2);
  console.log(
    `events drain (${DRAIN_EVENTS} events queued while the listener was stopped; medians of ${DRAIN_ROUNDS}): ` +
      `qmpctl ${k(rate(qmpctl))}, least Bun client that parses and prints (bench_drain_floor.ts) ` +
      `${k(rate(floor))}, the same writing the bytes as they came (--bytes: no parse) ${k(rate(bytes))}, ` +
      `socat | grep ${k(rate(socat))}; qmpctl/socat ${ratio(rate(qmpctl), rate(socat))} ` +
      `(goal >= 1.0), floor/socat ${ratio(rate(floor), rate(socat))}, bytes/socat ${
        ratio(rate(bytes), rate(socat))
      }, qmpctl/floor ${ratio(rate(qmpctl), rate(floor))}; warm, no I/O: JSON.parse alone ${
        k(parseAlone)
      } (ratio to socat ${ratio(parseAlone, rate(socat))}), ` +
      `JSON.parse + JSON.stringify ${k(warm)} (${ratio(warm, rate(socat))})`,
  );
}

/**
 * The least a client that parses each event and prints it as JSON spends on
 * a drain: JSON.parse alone (what any client that checks what it prints
 * pays), then JSON.parse and JSON.stringify, of the same lines (as QEMU
 * writes STOP and RESUME), in this process with its JIT warm and no I/O;
 * medians of 7 passes. qmpctl also decodes, keeps numbers exact, filters and
 * writes.
 */
function jsonFloorSeconds(): { parse: number; parseAndPrint: number } {
  const lines = Array.from(
    { length: DRAIN_EVENTS },
    (_, i) =>
      `{"timestamp": {"seconds": ${1_764_590_000 + (i >> 10)}, "microseconds": ${(i * 7919) % 1_000_000}}, ` +
      `"event": "${i % 2 === 0 ? "STOP" : "RESUME"}"}`,
  );
  const parse: number[] = [], parseAndPrint: number[] = [];
  let printed = 0, parsed = 0;
  for (let pass = 0; pass < 7; pass++) {
    let started = performance.now();
    for (const line of lines) parsed += JSON.parse(line).event.length;
    parse.push((performance.now() - started) / 1000);
    started = performance.now();
    let out = "";
    for (const line of lines) out += JSON.stringify(JSON.parse(line)) + "\n";
    parseAndPrint.push((performance.now() - started) / 1000);
    printed += out.length;
  }
  if (printed === 0 || parsed === 0) throw new Error("the floor parsed or printed nothing");
  return { parse: percentile(parse, 0.5), parseAndPrint: percentile(parseAndPrint, 0.5) };
}

/** One latency round: ms from `stop` sent to the STOP line on the listener's stdout. */
async function latencyOnce(qemu: TestQemu, listener: string[], stdin?: string): Promise<number> {
  const child = Bun.spawn(listener, { stdin: "pipe", stdout: "pipe" });
  try {
    if (stdin) child.stdin.write(stdin);
    child.stdin.flush();
    const lines = timedLines(child.stdout);
    // socat listens once QEMU has answered its qmp_capabilities (events go to negotiated clients only);
    // qmpctl prints nothing before the event: it gets the settling time alone.
    if (stdin) await lines.find('"return"', 0, 10_000);
    await Bun.sleep(SETTLE_MS);
    const sent = performance.now();
    const stopped = control(qemu, "stop");
    const { at } = await lines.find('"STOP"', 0, 10_000);
    await stopped;
    return at - sent;
  } finally { // also after a round that failed: the listener gone, the VM running, the monitor free
    child.kill();
    await child.exited;
    await control(qemu, "cont");
    await monitorFree(qemu);
  }
}

/**
 * Wait until QEMU has let the last listener go: a monitor serves one client
 * at a time, and a listener it has not served yet would miss the event.
 */
async function monitorFree(qemu: TestQemu): Promise<void> {
  const probe = await QmpClient.connect(qemu.socket, { connectTimeout: 5000 });
  await probe.close();
}

async function benchLatency(qemu: TestQemu): Promise<void> {
  const qmpctl: number[] = [], socat: number[] = [];
  for (let round = 0; round < LATENCY_ROUNDS; round++) {
    qmpctl.push(await latencyOnce(qemu, [QMPCTL, "-s", qemu.socket, "wait-event", "STOP", "--timeout", "10s"]));
    socat.push(await latencyOnce(qemu, ["socat", "-", `UNIX-CONNECT:${qemu.socket}`], NEGOTIATE));
  }
  const ms = (values: number[], p: number) => `${percentile(values, p).toFixed(2)} ms`;
  console.log(
    `events latency (stop sent on the other monitor → STOP line on stdout): ` +
      `qmpctl wait-event ${ms(qmpctl, 0.5)} (p90 ${ms(qmpctl, 0.9)}), socat ${ms(socat, 0.5)} (p90 ${
        ms(socat, 0.9)
      }), ` +
      `qmpctl later by ${
        (percentile(qmpctl, 0.5) - percentile(socat, 0.5)).toFixed(2)
      } ms (medians of ${LATENCY_ROUNDS})`,
  );
}

/** The `events` section of scripts/bench.sh. */
export async function benchEvents(qemu: TestQemu): Promise<void> {
  await benchDrain(qemu);
  await benchLatency(qemu);
}
