/**
 * The least a Bun client does for `qmpctl events --count N`, as a reference
 * for the drain in scripts/bench_events.ts (built with scripts/build.sh, so
 * with qmpctl's flags): connect, negotiate once greeted, then for each chunk
 * decode, cut into lines, JSON.parse each and print each event with
 * JSON.stringify; exit after N events. No exact numbers, bounds, filters,
 * flow control or checks of what the peer sent: what qmpctl spends above
 * this is its own work; the rest is the runtime's, and any client that
 * parses and prints each event pays it.
 *   bench_drain_floor SOCKET N [--bytes]
 * With --bytes it parses nothing: it writes each chunk as it came, as socat
 * does, and exits after N + 2 lines (the greeting, the reply, N events):
 * what the runtime's reads and writes alone cost.
 */
const [socketPath, countText, mode] = process.argv.slice(2);
const count = Number(countText);
const decoder = new TextDecoder();
let partial = "", greeted = false, printed = 0, lines = 0;
let writes: Promise<unknown> = Promise.resolve(); // in order, as qmpctl writes its batches

function parseAndPrint(socket: { write(text: string): unknown }, chunk: Uint8Array): void {
  const lines = (partial + decoder.decode(chunk, { stream: true })).split("\n");
  partial = lines.pop()!;
  let out = "";
  for (const line of lines) {
    if (!greeted) { // the greeting's line
      greeted = true;
      socket.write('{"execute":"qmp_capabilities"}\n');
      continue;
    }
    const message = JSON.parse(line);
    if (message.event !== undefined && printed < count) {
      out += JSON.stringify(message) + "\n";
      printed++;
    }
  }
  if (out.length > 0) writes = writes.then(() => Bun.write(Bun.stdout, out));
  if (printed === count) void writes.then(() => process.exit(0));
}

function passBytes(socket: { write(text: string): unknown }, chunk: Uint8Array): void {
  if (!greeted) {
    greeted = true;
    socket.write('{"execute":"qmp_capabilities"}\n');
  }
  for (let at = chunk.indexOf(0x0a); at >= 0; at = chunk.indexOf(0x0a, at + 1)) lines++;
  const bytes = chunk.slice(); // the runtime reuses its read buffer
  writes = writes.then(() => Bun.write(Bun.stdout, bytes));
  if (lines >= count + 2) void writes.then(() => process.exit(0));
}

Bun.connect({
  unix: socketPath,
  socket: { data: mode === "--bytes" ? passBytes : parseAndPrint },
});
