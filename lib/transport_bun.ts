/** The Bun transport: `Bun.connect`, which costs nothing at start-up. @module */
import type { Address } from "./address.ts";
import type { Connect, Transport, TransportEvents } from "./transport.ts";

export const connect: Connect = async (address: Address, events: TransportEvents): Promise<Transport> => {
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
    ? await Bun.connect({ unix: address.path, socket: handler }).catch((error) => unixFailure(address.path, error))
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

/**
 * Bun reports connect(2)'s EAGAIN on a UNIX socket (the listen queue is full)
 * as ECONNREFUSED. Linux lists listening UNIX sockets in /proc/net/unix (flag
 * 00010000, __SO_ACCEPTCON): when one is bound to `path`, someone listens,
 * and the refusal was EAGAIN. The bound name is compared as given and as an
 * absolute path; a socket bound under another name stays "refused".
 */
async function unixFailure(path: string, error: unknown): Promise<never> {
  if ((error as { code?: string })?.code !== "ECONNREFUSED") throw error;
  const absolute = path.startsWith("/") ? path : `${process.cwd()}/${path.replace(/^\.\//, "")}`;
  const table = await Bun.file("/proc/net/unix").text().catch(() => "");
  const listening = table.split("\n").some((line) => {
    const fields = line.trim().split(/\s+/);
    const bound = fields.slice(7).join(" ");
    return fields[3] === "00010000" && (bound === path || bound === absolute);
  });
  if (listening) throw Object.assign(new Error(`connect EAGAIN ${path}`), { code: "EAGAIN", cause: error });
  throw error;
}
