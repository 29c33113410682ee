/**
 * Soak: `qmpctl events` against a real QEMU that floods events (stop/cont
 * pipelined on its other monitor), read by a slow reader, for DURATION
 * (default 10m). Every 10 s: events read so far, the rate, qmpctl's open fds
 * (/proc/PID/fd) and RSS (/proc/PID/status). At the end the flood stops and
 * every event QEMU emitted must have been read; exit 1 otherwise.
 *
 *   bun scripts/soak.ts [DURATION]     (DURATION: 90s, 3m, 10m; default 10m)
 */
import { readdirSync, readFileSync } from "node:fs";
import { parseDuration } from "../cli/duration.ts";
import { startQemu } from "../tests/helpers/qemu.ts";

const QMPCTL = process.env.QMPCTL_BIN ?? "dist/qmpctl";
const durationMs = parseDuration(process.argv[2] ?? "10m", "DURATION");
const SAMPLE_MS = 10_000;
const BATCH = 2000; // events per flood burst
const READER_PAUSE_MS = 25; // the reader's pause after each chunk it reads

const qemu = await startQemu();
const child = Bun.spawn([QMPCTL, "-s", qemu.socket, "events"], { stdout: "pipe", stderr: "inherit" });
const pid = child.pid;

// The slow reader: one chunk, then a pause.
let read = 0;
const reading = (async () => {
  for await (const chunk of child.stdout) {
    for (const byte of chunk) if (byte === 10) read++;
    await Bun.sleep(READER_PAUSE_MS);
  }
})();

// Wait until qmpctl listens: one event at a time until one is read back;
// from that event on, every event QEMU emits must reach the reader.
let emitted = 0;
for (let i = 0, deadline = Date.now() + 30_000; read === 0; i++) {
  if (Date.now() > deadline) throw new Error("qmpctl events printed nothing within 30 s");
  await qemu.control.execute(i % 2 === 0 ? "stop" : "cont");
  for (const wait = Date.now() + 300; read === 0 && Date.now() < wait;) await Bun.sleep(10);
  if (read > 0 && i % 2 === 0) await qemu.control.execute("cont"); // the flood starts from a running QEMU
  if (read > 0) emitted = i % 2 === 0 ? 2 : 1;
}
let flooding = true;
const flood = (async () => {
  while (flooding) {
    const calls = [];
    for (let i = 0; i < BATCH; i++) calls.push(qemu.control.execute(i % 2 === 0 ? "stop" : "cont"));
    await Promise.all(calls);
    emitted += BATCH;
  }
})();

const kib = (field: string) =>
  Number(
    /(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8").split("\n").find((l) => l.startsWith(field)) ?? "")
      ?.[1] ?? NaN,
  );
const fds = () => readdirSync(`/proc/${pid}/fd`).length;
const row = (...cells: (string | number)[]) =>
  console.log(cells.map((c, i) => String(c).padStart(i === 0 ? 6 : 12)).join(""));

row("t (s)", "emitted", "read", "read/s", "fds", "RSS MiB", "HWM MiB");
const started = Date.now();
let lastRead = read, lastAt = started;
const samples: { fds: number; rss: number }[] = [];
while (Date.now() - started < durationMs) {
  await Bun.sleep(Math.min(SAMPLE_MS, durationMs - (Date.now() - started)));
  const now = Date.now();
  const sample = { fds: fds(), rss: kib("VmRSS:") / 1024 };
  samples.push(sample);
  row(
    Math.round((now - started) / 1000),
    emitted,
    read,
    Math.round(((read - lastRead) * 1000) / (now - lastAt)),
    sample.fds,
    sample.rss.toFixed(1),
    (kib("VmHWM:") / 1024).toFixed(1),
  );
  [lastRead, lastAt] = [read, now];
}

flooding = false;
await flood;
for (const deadline = Date.now() + 120_000; read < emitted && Date.now() < deadline;) await Bun.sleep(50);
const lost = Math.max(0, emitted - read);
console.log(`\nemitted ${emitted} (from the first event read), read ${read}, lost ${lost}`);
const rss = samples.map((s) => s.rss);
console.log(
  `fds ${Math.min(...samples.map((s) => s.fds))}..${Math.max(...samples.map((s) => s.fds))}; ` +
    `RSS ${Math.min(...rss).toFixed(1)}..${Math.max(...rss).toFixed(1)} MiB`,
);
child.kill("SIGINT");
await child.exited;
await reading.catch(() => {});
await qemu.stop();
process.exit(lost === 0 ? 0 : 1);
