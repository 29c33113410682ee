/**
 * The `node:net` transport, for Deno and Node. `node:net` is imported inside
 * `connect`: a compiled Bun binary bundles this file too, and a static import
 * would load `node:net` at every start-up.
 * @module
 */
import type { Connect, SocketAddress, Transport, TransportEvents } from "./transport.ts";

export const connect: Connect = async (address: SocketAddress, events: TransportEvents): Promise<Transport> => {
  const { createConnection } = await import("node:net");
  return new Promise((resolve, reject) => {
    const socket = address.kind === "unix"
      ? createConnection({ path: address.path })
      : createConnection({ host: address.host, port: address.port });
    let connected = false;
    let closed = false;
    let failure: Error | undefined;
    socket.once("connect", () => {
      connected = true;
      resolve({
        write: (text) => void socket.write(text),
        pause: () => void socket.pause(),
        resume: () => void socket.resume(),
        close: () => void socket.end(),
      });
    });
    socket.on("data", (chunk: Uint8Array) => events.data(chunk));
    socket.on("error", (error) => {
      failure = error;
      if (!connected) reject(error);
    });
    socket.on("close", () => {
      if (!connected || closed) return;
      closed = true;
      events.close(failure);
    });
  });
};
