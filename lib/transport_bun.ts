/** The Bun transport: `Bun.connect`, which costs nothing at start-up. @module */
import type { Address } from "./address.ts";
import type { Connect, Transport, TransportEvents } from "./transport.ts";

export const connect: Connect = async (address: Address, events: TransportEvents): Promise<Transport> => {
  // Bun's write() sends what the kernel takes now and returns the count; the
  // rest waits here, in order, until `drain`. A queue, not one growing
  // buffer: appending would copy the whole backlog on every write. At each
  // drain the queue is sent as one write: many small writes (pipelined
  // commands) each cost a kernel buffer of their own on a UNIX socket, which
  // fills after a few hundred of them, however short they are.
  const unsent: Uint8Array[] = [];
  const flush = (socket: Bun.Socket<undefined>) => {
    if (unsent.length > 1) unsent.splice(0, unsent.length, concat(unsent));
    while (unsent.length > 0) {
      const written = socket.write(unsent[0]);
      if (written < unsent[0].length) {
        unsent[0] = unsent[0].subarray(Math.max(written, 0));
        return;
      }
      unsent.shift();
    }
  };
  // The first write of an event-loop turn goes out at once (a one-shot
  // command waits for nothing); later ones in the same turn (pipelined
  // commands) are sent together when the turn ends, one system call for all.
  let wroteThisTurn = false;
  const endTurn = () => {
    wroteThisTurn = false;
    if (unsent.length > 0) flush(socket);
  };
  let closed = false;
  const encoder = new TextEncoder();
  const report = (error?: Error) => {
    if (closed) return;
    closed = true;
    events.close(error);
  };
  const handler: Bun.SocketHandler<undefined> = {
    data: (_socket, chunk) => events.data(chunk),
    drain: flush,
    close: (_socket, error) => report(error),
    error: (_socket, error) => report(error),
  };
  const socket = address.kind === "unix"
    ? await Bun.connect({ unix: address.path, socket: handler })
    : await Bun.connect({ hostname: address.host, port: address.port, socket: handler });
  return {
    write(text) {
      unsent.push(encoder.encode(text));
      if (unsent.length > 1) return; // waiting for `drain` or the end of the turn
      if (wroteThisTurn) return;
      wroteThisTurn = true;
      setImmediate(endTurn);
      flush(socket);
    },
    pause: () => socket.pause(),
    resume: () => socket.resume(),
    close: () => socket.end(),
  };
};

function concat(chunks: Uint8Array[]): Uint8Array {
  const whole = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const chunk of chunks) {
    whole.set(chunk, at);
    at += chunk.length;
  }
  return whole;
}
