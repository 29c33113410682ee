/** The Bun transport: `Bun.connect`, which costs nothing at start-up. @module */
import type { Address } from "./address.ts";
import type { Connect, Transport, TransportEvents } from "./transport.ts";

export const connect: Connect = async (address: Address, events: TransportEvents): Promise<Transport> => {
  // Bun's write() sends what the kernel takes now and returns the count; the
  // rest waits here until `drain`.
  let unsent: Uint8Array | undefined;
  let closed = false;
  const encoder = new TextEncoder();
  const report = (error?: Error) => {
    if (closed) return;
    closed = true;
    events.close(error);
  };
  const handler: Bun.SocketHandler<undefined> = {
    data: (_socket, chunk) => events.data(chunk),
    drain: (socket) => {
      if (!unsent) return;
      const written = socket.write(unsent);
      unsent = written < unsent.length ? unsent.subarray(Math.max(written, 0)) : undefined;
    },
    close: (_socket, error) => report(error),
    error: (_socket, error) => report(error),
  };
  const socket = address.kind === "unix"
    ? await Bun.connect({ unix: address.path, socket: handler })
    : await Bun.connect({ hostname: address.host, port: address.port, socket: handler });
  return {
    write(text) {
      const bytes = encoder.encode(text);
      if (unsent) {
        const joined = new Uint8Array(unsent.length + bytes.length);
        joined.set(unsent);
        joined.set(bytes, unsent.length);
        unsent = joined;
        return;
      }
      const written = socket.write(bytes);
      if (written < bytes.length) unsent = bytes.subarray(Math.max(written, 0));
    },
    pause: () => socket.pause(),
    resume: () => socket.resume(),
    close: () => socket.end(),
  };
};
