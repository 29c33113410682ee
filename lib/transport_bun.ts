/** The Bun transport: `Bun.connect` and `Bun.listen`, which cost nothing at start-up (loaded only under Bun). @module */

import { bun, type BunSocket, type BunSocketHandler } from "./bun_api.ts";
import { concatBytes } from "./bytes.ts";
import type { AcceptedTransport, Connect, Listen, SocketAddress, TransportEvents } from "./transport_types.ts";

/**
 * One socket's writes and its close report. Bun's write() sends what the
 * kernel takes now and returns the count; the rest waits here, in order,
 * until `drain`. A queue, not one growing buffer: appending would copy the
 * whole backlog on every write. At each flush the queue is sent as one
 * write: many small writes (pipelined commands) each cost a kernel buffer of
 * their own on a UNIX socket, which fills after a few hundred of them,
 * however short they are. The writes of an event-loop turn are sent
 * together when the turn ends, one system call for all: qmp_capabilities
 * and the command pipelined behind it reach QEMU in one read, and QEMU
 * answers both in one wake-up.
 */
class Link {
  // TypeScript's `private`, not `#private`: cheaper for a one-shot run (README, Development).
  private readonly unsent: Uint8Array[] = [];
  private unsentBytes = 0;
  private closed = false;
  private readonly encoder = new TextEncoder();
  events?: TransportEvents;

  private flushQueued = false;
  /** close() was called: end the socket once the queue is written. */
  private ending = false;

  flush(socket: BunSocket): void {
    if (this.unsent.length > 1) {
      this.unsent.splice(0, this.unsent.length, concatBytes(this.unsent, this.unsentBytes));
    }
    while (this.unsent.length > 0) {
      const head = this.unsent[0];
      const written = socket.write(head);
      if (written < 0) { // the socket is closed (the peer went away): what waits can never go
        this.unsent.length = 0;
        this.unsentBytes = 0;
        return this.report();
      }
      this.unsentBytes -= written;
      if (written < head.length) {
        this.unsent[0] = head.subarray(written);
        return;
      }
      this.unsent.shift();
    }
    if (this.ending) socket.end();
  }

  report(error?: Error): void {
    if (this.closed) return;
    this.closed = true;
    this.events?.close(error);
  }

  transport(socket: BunSocket): AcceptedTransport {
    return {
      write: (data) => {
        const bytes = typeof data === "string" ? this.encoder.encode(data) : data;
        this.unsent.push(bytes);
        this.unsentBytes += bytes.length;
        if (this.unsent.length > 1 || this.flushQueued) return; // waiting for `drain` or the end of the turn
        this.flushQueued = true;
        setImmediate(() => {
          this.flushQueued = false;
          if (this.unsent.length > 0) this.flush(socket); // close() may have sent it all already
        });
      },
      pause: () => socket.pause(),
      resume: () => socket.resume(),
      close: () => { // what was written goes out first (a reply the peer still awaits)
        this.ending = true;
        this.flush(socket);
      },
      abort: () => {
        this.unsent.length = 0;
        this.unsentBytes = 0;
        socket.terminate();
      },
      queuedBytes: () => this.unsentBytes,
    };
  }
}

export const connect: Connect = async (address: SocketAddress, events: TransportEvents) => {
  const link = new Link();
  link.events = events;
  const handler: BunSocketHandler<undefined> = {
    data: (_socket, chunk) => events.data(chunk),
    drain: (socket) => link.flush(socket),
    close: (_socket, error) => link.report(error),
    error: (_socket, error) => link.report(error),
  };
  const socket = address.kind === "unix"
    ? await bun!.connect({ unix: address.path, socket: handler }).catch((error) => unixFailure(address.path, error))
    : await bun!.connect({ hostname: address.host, port: address.port, socket: handler }).catch(tcpFailure);
  return link.transport(socket);
};

export const listen: Listen = (path, events) => {
  const server = bun!.listen<Link>({
    unix: path,
    allowHalfOpen: true,
    socket: {
      open(socket) {
        socket.data = new Link();
        socket.data.events = events.accept(socket.data.transport(socket));
      },
      data: (socket, chunk) => socket.data.events?.data(chunk),
      drain: (socket) => socket.data.flush(socket),
      end: (socket) => socket.data.events?.end?.(),
      close: (socket, error) => socket.data.report(error),
      error: (socket, error) => socket.data.report(error),
    },
  });
  return Promise.resolve({
    close: () => Promise.resolve(server.stop(false)),
  });
};

/**
 * Bun reports connect(2)'s EAGAIN on a UNIX socket (the listen queue is full)
 * as ECONNREFUSED, and its EPROTOTYPE too (a datagram or seqpacket socket,
 * which a stream socket cannot reach). Linux lists UNIX sockets in
 * /proc/net/unix, with their type (0001 a stream) and flags (00010000,
 * __SO_ACCEPTCON, for one that listens): when a listening stream socket is
 * bound to the socket at `path`, someone listens, and the refusal was EAGAIN;
 * when only one of another type is, it was EPROTOTYPE. Paths are compared by their
 * real paths, so that `dir//x.sock`, `../dir/x.sock` or a symlink name the
 * socket bound as `/dir/x.sock`; a name bound relative to the listener's own
 * directory (`qemu -qmp unix:x.sock`) matches the real path's last components.
 */
async function unixFailure(path: string, error: unknown): Promise<never> {
  if ((error as { code?: string })?.code !== "ECONNREFUSED") throw error;
  const table = await bun!.file("/proc/net/unix").text().catch((readError) => outOfDescriptors(readError, error));
  const bound: string[] = []; // each name, after its type: "0001 /run/vm1.qmp"
  for (const line of table.split("\n").slice(1)) { // after the header
    const fields = line.trim().split(/\s+/);
    const stream = fields[4] === "0001";
    if ((!stream || fields[3] === "00010000") && fields.length > 7) {
      bound.push(`${fields[4]} ${fields.slice(7).join(" ")}`);
    }
  }
  // node:fs only here, on a refusal: a one-shot run that connects never loads it.
  const { realpath } = await import("node:fs/promises");
  const real = (name: string) => realpath(name).catch(() => undefined);
  const target = bound.length > 0 ? await real(path) : undefined;
  if (target === undefined) throw error;
  const last = target.slice(target.lastIndexOf("/"));
  let code = "";
  for (const entry of bound) {
    const name = entry.slice(5);
    if (!name.endsWith(last) && name !== last.slice(1)) continue; // another socket's name (a cheap first look)
    const same = name.startsWith("/")
      ? await real(name) === target
      : target.endsWith(`/${name.replace(/^(\.\/)+/, "")}`);
    // a stream socket that listens wins over another kind bound to the same name (one whose file was replaced)
    if (same) code = entry.startsWith("0001 ") ? "EAGAIN" : code || "EPROTOTYPE";
  }
  if (code) throw Object.assign(new Error(`connect ${code} ${path}`), { code, cause: error });
  throw error;
}

/**
 * Bun also reports a socket(2) that failed for want of a descriptor as
 * ECONNREFUSED: a file opened then fails too, with the real reason.
 */
async function tcpFailure(error: unknown): Promise<never> {
  if ((error as { code?: string })?.code !== "ECONNREFUSED") throw error;
  await bun!.file("/dev/null").text().catch((readError) => outOfDescriptors(readError, error));
  throw error;
}

/** Throws the failure to open a file as the connect's, when it was for want of a descriptor (EMFILE, ENFILE). */
function outOfDescriptors(readError: unknown, connectError: unknown): string {
  const code = (readError as { code?: string })?.code;
  if (code !== "EMFILE" && code !== "ENFILE") return "";
  throw Object.assign(new Error(`socket ${code}`), { code, cause: connectError });
}
