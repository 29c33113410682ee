/**
 * The `node:net` transport, for Deno and Node. `node:net` is imported inside
 * `connect` and `listen`: a compiled Bun binary bundles this file too, and a static import
 * would load `node:net` at every start-up.
 * @module
 */

import { denoGrants, notGranted } from "./deno_api.ts";
import type {
  AcceptedTransport,
  Connect,
  Listen,
  SocketAddress,
  Transport,
  TransportEvents,
} from "./transport_types.ts";

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
        write: (data) => void socket.write(data),
        pause: () => void socket.pause(),
        resume: () => void socket.resume(),
        // Closed once what was written has gone: end() alone waits for the peer's close too,
        // which a peer that does not read (a guest agent channel without an agent) never sends.
        close: () => void socket.end(() => socket.destroy()),
      });
    });
    socket.on("data", (chunk: Uint8Array) => events.data(chunk));
    socket.on("error", (error) => {
      failure = error;
      if (!connected) reject(address.kind === "tcp" ? lookupNotGranted(address, error) ?? error : error);
    });
    socket.on("close", () => {
      if (!connected || closed) return;
      closed = true;
      events.close(failure);
    });
  });
};

/**
 * Deno without `--allow-net` fails a host name's lookup as EPERM from
 * getaddrinfo (an IP address's connect, as its own NotCapable error): that
 * error instead, which the CLI names (exit 2), not a permission the system
 * denied. Undefined for any other error.
 */
function lookupNotGranted(address: { host: string; port: number }, error: Error): Error | undefined {
  const { code, syscall } = error as { code?: string; syscall?: string };
  const host = `${address.host.includes(":") ? `[${address.host}]` : address.host}:${address.port}`;
  if (code !== "EPERM" || syscall !== "getaddrinfo" || denoGrants({ name: "net", host })) return undefined;
  return notGranted("net", host, "--allow-net");
}

export const listen: Listen = async (path, events) => {
  const { createServer } = await import("node:net");
  const server = createServer({ allowHalfOpen: true }, (socket) => {
    const transport: AcceptedTransport = {
      write: (text) => void socket.write(text),
      pause: () => void socket.pause(),
      resume: () => void socket.resume(),
      close: () => void socket.end(),
      abort: () => void socket.destroy(),
      queuedBytes: () => socket.writableLength,
    };
    const handlers = events.accept(transport);
    let failure: Error | undefined;
    socket.on("data", (chunk: Uint8Array) => handlers.data(chunk));
    socket.on("end", () => handlers.end?.());
    socket.on("error", (error) => (failure = error));
    socket.on("close", () => handlers.close(failure));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(path, () => resolve());
  });
  // close() stops accepting at once; its callback would wait for every accepted connection to end.
  return { close: () => Promise.resolve(void server.close()) };
};
