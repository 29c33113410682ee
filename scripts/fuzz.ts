/**
 * Fuzzing the receiving side (not part of the test suite; minutes, not
 * seconds). Usage: bun scripts/fuzz.ts [CASES] [SEED]   (default 1 000 000)
 *
 * Byte streams built from valid QMP traffic (greetings, replies, errors,
 * events; compact and pretty=on; odd numbers, escapes, non-ASCII), then cut,
 * spliced, flipped, stuffed with deep nestings, lone surrogates, NULs,
 * invalid UTF-8 and odd numbers, and fed in random chunks:
 *
 * - to JsonFramer, CASES times: every throw must be a QmpError, every message
 *   must print with JSON.stringify, and an untouched stream must print back
 *   byte for byte (compacted), numbers included;
 * - to a QmpClient over a UNIX socket, CASES / 50 times: connect, subscribe,
 *   run one command; every outcome must be a value or a QmpError, within its
 *   bound (a timeout is counted: the server always closes, so none should
 *   happen).
 *
 * Prints the cases, time, peak RSS (sampled) and each kind of failure with
 * one example. Exits 1 when anything failed.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { QmpClient } from "../lib/client.ts";
import { QmpError, TimeoutError } from "../lib/errors.ts";
import { JsonFramer } from "../lib/framing.ts";

const CASES = Number(process.argv[2] ?? 1_000_000);
let seed = Number(process.argv[3] ?? Date.now() % 2 ** 31) >>> 0;
const startSeed = seed;

/** xorshift32: reproducible from the seed printed at the start. */
function random(): number {
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return (seed >>> 0) / 2 ** 32;
}
const int = (n: number) => Math.floor(random() * n);
const pick = <T>(items: readonly T[]): T => items[int(items.length)];

const ODD_NUMBERS = [
  "18446744073709551615",
  "-9223372036854775808",
  "1e400",
  "-1e400",
  "1e-400",
  "5e-324",
  "0.10000000000000001",
  "-0",
  "1.50",
  "1E+2",
  "123456789012345678901234567890.5e-5",
  "0",
  "42",
];
const ODD_STRINGS = ['"é ✓ 😀"', '"\\ud800"', '"\\udc00\\ud800"', '"\\u0000"', '"a\\"b\\\\c"', '"\\n{}[]\\""', '""'];

function oddValue(depth = 0): string {
  switch (depth > 3 ? int(2) : int(5)) {
    case 0:
      return pick(ODD_NUMBERS);
    case 1:
      return pick(ODD_STRINGS);
    case 2:
      return pick(["true", "false", "null"]);
    case 3:
      return `[${Array.from({ length: int(4) }, () => oddValue(depth + 1)).join(", ")}]`;
    default:
      return `{${Array.from({ length: int(4) }, (_, i) => `"k${i}": ${oddValue(depth + 1)}`).join(", ")}}`;
  }
}

const GREETING =
  '{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}, "package": "Debian 1:7.2"}, "capabilities": ["oob"]}}';

/** One valid message as QEMU writes it (blanks after : and ,), and as it prints compacted. */
function validMessage(id: string): string {
  const timestamp = `"timestamp": {"seconds": ${int(2 ** 31)}, "microseconds": ${int(1e6)}}`;
  switch (int(4)) {
    case 0:
      return `{"return": ${oddValue()}, "id": "${id}"}`;
    case 1:
      return `{"error": {"class": "GenericError", "desc": ${pick(ODD_STRINGS)}}, "id": "${id}"}`;
    case 2:
      return `{${timestamp}, "event": "${
        pick(["STOP", "RESUME", "BLOCK_JOB_COMPLETED", "X"])
      }", "data": ${oddValue()}}`;
    default:
      return `{"event": "SHUTDOWN", "data": {"guest": false, "reason": "host-qmp-quit"}, ${timestamp}}`;
  }
}

/** pretty=on spreads a message over lines; only blanks outside strings change. */
function prettyOn(message: string): string {
  return message.replace(
    STRING_OR_BRACE,
    (_, string, open, close) => string ?? (open ? `${open}\n    ` : `\n${close}`),
  );
}
const STRING_OR_BRACE = /("(?:[^"\\]|\\.)*")|([{,])|(})/g;
const encoder = new TextEncoder();

/** Valid traffic, and how it must print (one compact line per message). */
function validStream(): { bytes: Uint8Array; lines: string[] } {
  const messages = Array.from({ length: 1 + int(6) }, () => validMessage(`qmpctl-${int(9)}`));
  const pretty = random() < 0.3;
  const text = messages.map((m) => (pretty ? prettyOn(m) : m) + pick(["\r\n", "\n", "", " \t"])).join("");
  const lines = messages.map((m) => m.replace(/("(?:[^"\\]|\\.)*")|[ \n]/g, (_, s) => s ?? ""));
  return { bytes: encoder.encode(text), lines };
}

const INTERESTING_BYTES = [
  0x7b,
  0x7d,
  0x5b,
  0x5d,
  0x22,
  0x5c,
  0x0a,
  0x0d,
  0x00,
  0xff,
  0xc0,
  0xed,
  0x80,
  0x20,
  0x2d,
  0x65,
];

/** A mutated stream: cut, spliced, flipped, stuffed. */
function mutatedStream(): Uint8Array {
  let bytes = validStream().bytes;
  for (let n = 1 + int(3); n > 0; n--) {
    const at = int(bytes.length + 1);
    switch (int(7)) {
      case 0: // cut
        bytes = bytes.subarray(0, at);
        break;
      case 1: { // splice another stream in at a random point
        const other = validStream().bytes;
        bytes = concat(bytes.subarray(0, at), other.subarray(int(other.length)));
        break;
      }
      case 2: // flip bytes
        bytes = bytes.slice();
        for (let k = 1 + int(4); k > 0 && bytes.length > 0; k--) {
          bytes[int(bytes.length)] = random() < 0.5 ? pick(INTERESTING_BYTES) : int(256);
        }
        break;
      case 3: { // deep nesting, balanced or not
        const depth = pick([10, 1023, 1024, 1025, 5000, 100_000]);
        const open = pick(["[", '{"a":']);
        const close = open === "[" ? "]" : "}";
        const inner = `${open.repeat(depth)}${random() < 0.8 ? close.repeat(depth) : ""}`;
        bytes = concat(bytes.subarray(0, at), encoder.encode(`{"return": ${inner}}\n`), bytes.subarray(at));
        break;
      }
      case 4: // lone surrogates: escaped, and as raw (invalid) UTF-8
        bytes = concat(
          bytes.subarray(0, at),
          random() < 0.5 ? encoder.encode('"\\ud800"') : Uint8Array.of(0xed, 0xa0, 0x80),
          bytes.subarray(at),
        );
        break;
      case 5: // NULs and odd numbers in odd places
        bytes = concat(
          bytes.subarray(0, at),
          encoder.encode(random() < 0.5 ? "\0" : pick(ODD_NUMBERS)),
          bytes.subarray(at),
        );
        break;
      default: // random bytes
        bytes = concat(bytes.subarray(0, at), Uint8Array.from({ length: 1 + int(16) }, () => int(256)));
    }
  }
  return bytes;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/** Feed `bytes` in random chunks; calls `deliver` per message. */
function feedRandomly(framer: JsonFramer, bytes: Uint8Array, deliver: (m: unknown) => void): void {
  for (let at = 0; at < bytes.length;) {
    const size = random() < 0.5 ? bytes.length : 1 + int(random() < 0.5 ? 8 : 512);
    framer.push(bytes.subarray(at, at + size), deliver);
    at += size;
  }
}

const failures = new Map<string, { count: number; example: string }>();
function fail(kind: string, example: () => string): void {
  const entry = failures.get(kind);
  if (entry) entry.count++;
  else failures.set(kind, { count: 1, example: example().slice(0, 300) });
}
const show = (bytes: Uint8Array) => JSON.stringify(new TextDecoder().decode(bytes.subarray(0, 200)));

let peakRss = 0;
const sampleRss = () => (peakRss = Math.max(peakRss, process.memoryUsage().rss));

function fuzzFramer(cases: number): { typedErrors: number; messages: number; slowestMs: number } {
  let typedErrors = 0, messages = 0, slowestMs = 0;
  for (let i = 0; i < cases; i++) {
    if (i % 10_000 === 0) sampleRss();
    const valid = random() < 0.2 ? validStream() : undefined;
    const bytes = valid?.bytes ?? mutatedStream();
    const framer = new JsonFramer(!valid && random() < 0.1 ? 256 : undefined);
    const printed: string[] = [];
    const started = performance.now();
    try {
      feedRandomly(framer, bytes, (message) => {
        if (typeof message !== "object" || message === null) fail("a message that is not an object", () => show(bytes));
        printed.push(JSON.stringify(message)); // what every output path does
        messages++;
      });
      if (valid && printed.join("\n") !== valid.lines.join("\n")) {
        fail("valid traffic printed differently", () => `${show(bytes)} printed ${printed.join("\n")}`);
      }
    } catch (error) {
      if (error instanceof QmpError) typedErrors++;
      else fail(`untyped ${(error as Error)?.name}: ${(error as Error)?.message}`, () => show(bytes));
      if (valid) fail("valid traffic refused", () => `${show(bytes)}: ${(error as Error).message}`);
    }
    slowestMs = Math.max(slowestMs, performance.now() - started);
  }
  return { typedErrors, messages, slowestMs };
}

/** The id of the one request in `text`, as JSON. */
function idIn(text: string): string {
  return JSON.stringify(JSON.parse(text).id);
}

/** The client against a server that sends the greeting, answers negotiation, then sends a mutated stream and closes. */
async function fuzzClient(cases: number): Promise<{ outcomes: Record<string, number>; slowestMs: number }> {
  const dir = mkdtempSync(join(tmpdir(), "qmpctl-fuzz-"));
  const path = join(dir, "fuzz.sock");
  let nextStream: Uint8Array = new Uint8Array();
  const listener = Bun.listen<{ stage: number; stream: Uint8Array }>({
    unix: path,
    socket: {
      open(socket) {
        socket.data = { stage: 0, stream: nextStream };
        socket.write(GREETING + "\r\n");
      },
      data(socket, chunk) {
        const text = new TextDecoder().decode(chunk);
        // Answered with the ids the client sent: they are its own (lib/client.ts), not qmpctl-1 and -2.
        if (socket.data.stage === 0 && text.includes("qmp_capabilities")) {
          socket.data.stage = 1;
          socket.write(`{"return": {}, "id": ${idIn(text)}}\r\n`);
        }
        if (socket.data.stage === 1 && text.includes("query-fuzz")) {
          socket.data.stage = 2;
          // "qmpctl-2" in the traffic stands for the command's id: the inserted reply's, and any a valid message has.
          const bytes = Buffer.from(socket.data.stream).toString("latin1"); // byte for byte
          socket.write(Buffer.from(bytes.replaceAll('"qmpctl-2"', idIn(text)), "latin1"));
          socket.end();
        }
      },
    },
  });
  const outcomes: Record<string, number> = {};
  let slowestMs = 0;
  try {
    for (let i = 0; i < cases; i++) {
      if (i % 1000 === 0) sampleRss();
      // The reply the client waits for (id qmpctl-2: the server puts the command's in), somewhere in the mutated traffic.
      const stream = mutatedStream();
      const at = int(stream.length + 1);
      nextStream = concat(
        stream.subarray(0, at),
        random() < 0.7 ? encoder.encode(`{"return": ${oddValue()}, "id": "qmpctl-2"}\r\n`) : new Uint8Array(),
        stream.subarray(at),
      );
      const started = performance.now();
      let outcome: string;
      try {
        const client = await QmpClient.connect(path, { connectTimeout: 5000 });
        const events = client.events({}, { highWaterMark: Infinity });
        try {
          const value = await client.execute("query-fuzz", undefined, { signal: AbortSignal.timeout(5000) });
          JSON.stringify(value);
          outcome = "reply";
        } finally {
          await client.close();
          for (let batch; (batch = await events.nextBatch().catch(() => [])).length > 0;) JSON.stringify(batch);
        }
      } catch (error) {
        if (error instanceof TimeoutError) fail("a wait that ran into its bound", () => show(nextStream));
        if (!(error instanceof QmpError)) {
          fail(`client: untyped ${(error as Error)?.name}: ${(error as Error)?.message}`, () => show(nextStream));
        }
        outcome = (error as QmpError).code ?? "untyped";
      }
      outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
      slowestMs = Math.max(slowestMs, performance.now() - started);
    }
  } finally {
    listener.stop(true);
    rmSync(dir, { recursive: true, force: true });
  }
  return { outcomes, slowestMs };
}

const started = performance.now();
console.log(`fuzz: ${CASES} framer cases, ${Math.ceil(CASES / 50)} client cases, seed ${startSeed}`);
const framer = fuzzFramer(CASES);
const framerSeconds = (performance.now() - started) / 1000;
console.log(
  `framer: ${CASES} cases in ${framerSeconds.toFixed(1)} s; ${framer.messages} messages printed, ` +
    `${framer.typedErrors} typed errors; slowest case ${framer.slowestMs.toFixed(1)} ms`,
);
const client = await fuzzClient(Math.ceil(CASES / 50));
console.log(
  `client: ${Math.ceil(CASES / 50)} cases in ${((performance.now() - started) / 1000 - framerSeconds).toFixed(1)} s; ` +
    `outcomes ${JSON.stringify(client.outcomes)}; slowest case ${client.slowestMs.toFixed(1)} ms`,
);
sampleRss();
console.log(`peak RSS (sampled): ${(peakRss / 1024 / 1024).toFixed(1)} MiB`);
if (failures.size === 0) console.log("failures: none");
for (const [kind, { count, example }] of failures) console.log(`FAILURE ${kind} (${count}x), e.g. ${example}`);
process.exit(failures.size === 0 ? 0 : 1);
