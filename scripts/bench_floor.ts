/**
 * The least a Bun QMP client does for `exec query-status`, as a reference
 * for scripts/bench.ts (built with scripts/build.sh, so with qmpctl's flags):
 * connect, send qmp_capabilities and the command, print the reply's return
 * value. No argument parsing, typed errors or exactness: what qmpctl costs
 * above this is its own work; the rest is the runtime's and QEMU's.
 *   bench_floor SOCKET [--after-greeting | --bounded]
 * By default both requests go out as soon as the socket opens, which a real
 * client must not do (QEMU may not have accepted it yet: the monitor serves
 * one client at a time). With --after-greeting they go out once the greeting
 * has come, as qmpctl sends them: the floor of a correct client.
 * --bounded also uses each runtime feature the contract needs, once, as
 * qmpctl does: a bound from SIGINT and a timeout (AbortSignal.any), a connect
 * timer, strict UTF-8 decoding, the scan that finds numbers JSON.parse would
 * round, an error class with an exit status. Each costs the runtime code
 * pages and heap of its own (page faults), whoever calls it.
 */
import { mayChangeAt } from "../lib/exact_json.ts"; // qmpctl's own scan (no regex for a short text)

const mode = process.argv[3];
const bounded = mode === "--bounded";
const afterGreeting = bounded || mode === "--after-greeting";
const requests = '{"execute":"qmp_capabilities"}\n{"execute":"query-status","id":"floor"}\n';
const printValue = (value: unknown) => console.log(JSON.stringify(value));
let decode = (chunk: Buffer) => chunk.toString();
let onReply = (line: string) => printValue(JSON.parse(line).return);
if (bounded) {
  class FloorError extends Error {
    constructor(message: string, readonly status: number) {
      super(message);
    }
  }
  const fail = (error: Partial<FloorError>) => {
    console.error(`bench_floor: ${error.message}`);
    process.exit(error.status ?? 124); // the bound's own TimeoutError has none
  };
  const interrupt = new AbortController();
  process.on("SIGINT", () => interrupt.abort(new FloorError("interrupted", 130)));
  const bound = AbortSignal.any([interrupt.signal, AbortSignal.timeout(60_000)]);
  bound.addEventListener("abort", () => fail(bound.reason), { once: true });
  const greetingTimer = setTimeout(() => fail(new FloorError("no greeting", 3)), 10_000);
  const decoder = new TextDecoder("utf-8", { fatal: true });
  decode = (chunk) => decoder.decode(chunk, { stream: true });
  onReply = (line) => {
    clearTimeout(greetingTimer);
    if (mayChangeAt(line) >= 0) fail(new FloorError("a number JSON.parse would round", 3));
    printValue(JSON.parse(line).return);
    process.exit(0);
  };
}

let received = "";
let sent = false;
Bun.connect({
  unix: process.argv[2],
  socket: {
    open(socket) {
      if (afterGreeting) return;
      socket.write(requests);
      sent = true;
    },
    data(socket, chunk) {
      received += decode(chunk);
      if (!sent && received.includes("\n")) { // the greeting's line
        socket.write(requests);
        sent = true;
      }
      const line = received.split("\n").find((l) => l.includes('"id": "floor"'));
      if (!line) return;
      socket.end();
      onReply(line);
    },
  },
});
