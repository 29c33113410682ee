/** The Bun transport: `Bun.connect`, which costs nothing at start-up. @module */
import type { Connect, SocketAddress, Transport, TransportEvents } from "./transport.ts";

export const connect: Connect = async (address: SocketAddress, events: TransportEvents): Promise<Transport> => {
  // Bun's write() sends what the kernel takes now and returns the count; the
  // rest waits here, in order, until `drain`. A queue, not one growing
  // buffer: appending would copy the whole backlog on every write.
  const unsent: Uint8Array[] = [];
  const flush = (socket: Bun.Socket<undefined>) => {
    while (unsent.length > 0) {
      const written = socket.write(unsent[0]);
      if (written < unsent[0].length) {
        unsent[0] = unsent[0].subarray(Math.max(written, 0));
        return;
      }
      unsent.shift();
    }
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
      if (unsent.length === 1) flush(socket);
    },
    pause: () => socket.pause(),
    resume: () => socket.resume(),
    close: () => socket.end(),
  };
};
