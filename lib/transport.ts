/**
 * Transport: bytes in, bytes out, over a UNIX or TCP socket.
 *
 * Under Bun the socket is `Bun.connect` (importing `node:net` costs a
 * compiled binary ~14 ms of start-up, more than a whole QMP exchange);
 * elsewhere (Deno, Node) it is `node:net`. Both sit behind this interface and
 * are loaded only when used.
 *
 * @module
 */
import type { Address } from "./address.ts";
import { ConnectionError } from "./errors.ts";

/** What the transport reports to its owner. */
export interface TransportEvents {
  /** A chunk arrived (it may hold part of a message, or several). */
  data(chunk: Uint8Array): void;
  /** The socket closed; `error` when it broke rather than ended. */
  close(error?: Error): void;
  /**
   * The peer finished sending but still reads (a half-close, as `socat` does
   * at the end of its input). Reported by accepted connections only; the
   * owner closes when it has written its last answer.
   */
  end?(): void;
}

/** An open byte stream. */
export interface Transport {
  /** Queue bytes for sending, in order; never blocks. */
  write(text: string): void;
  /** Stop reading, so the kernel buffer and then the server hold the backlog. */
  pause(): void;
  /** Start reading again after `pause`. */
  resume(): void;
  /** Close the socket; `close` is reported once. */
  close(): void;
}

/** The runtime-specific connect function that each implementation exports. */
export type Connect = (address: Address, events: TransportEvents) => Promise<Transport>;

/**
 * Open a socket to `address`.
 * @throws {ConnectionError} naming the address and the system's reason
 */
export async function connectTransport(address: Address, events: TransportEvents): Promise<Transport> {
  const { connect } = "Bun" in globalThis ? await import("./transport_bun.ts") : await import("./transport_node.ts");
  try {
    return await connect(address, events);
  } catch (error) {
    throw new ConnectionError(`cannot connect to ${address.text}: ${describeSystemError(error)}`, { cause: error });
  }
}

const REASONS: Record<string, string> = {
  ENOENT: "no such socket",
  ECONNREFUSED: "connection refused (nothing is listening there)",
  ECONNRESET: "connection reset by the peer",
  EACCES: "permission denied",
  EPERM: "permission denied",
  ENOTDIR: "a part of the path is not a directory",
  ENOTSOCK: "not a socket",
  ETIMEDOUT: "connection timed out",
  EHOSTUNREACH: "host unreachable",
  ENETUNREACH: "network unreachable",
  ENOTFOUND: "unknown host",
  EAI_AGAIN: "host name lookup failed",
  EADDRNOTAVAIL: "address not available",
};

function describeSystemError(error: unknown): string {
  const { code, message } = error as { code?: string; message?: string };
  if (code && REASONS[code]) return `${REASONS[code]} (${code})`;
  return code ?? message ?? String(error);
}

/** An accepted connection: a transport that also tells how much it has not yet handed to the kernel. */
export interface AcceptedTransport extends Transport {
  /** Bytes written but still queued in this process (the peer is not reading fast enough). */
  queuedBytes(): number;
  /** Close at once, dropping what is still queued. */
  abort(): void;
}

/** What a listener reports: each new connection, which returns the events to report for it. */
export interface ListenEvents {
  accept(connection: AcceptedTransport): TransportEvents;
}

/** A listening socket. */
export interface Listener {
  /** Stop accepting; connections already accepted stay open. */
  close(): Promise<void>;
}

/** The runtime-specific listen function that each implementation exports (a UNIX socket at `path`). */
export type Listen = (path: string, events: ListenEvents) => Promise<Listener>;

/** Options of `listenTransport`. */
export interface ListenOptions {
  /** The socket file's permissions; default 0o600 (only the owner may connect). */
  mode?: number;
}

/**
 * Make sure `path` is free to serve: nothing there, or a stale socket file
 * (nothing accepts on it), which is removed.
 * @throws {ConnectionError} when a process serves it, or the file is not a socket
 */
export async function claimSocketPath(path: string): Promise<void> {
  const fs = await import("node:fs/promises");
  const fail = (reason: string) => new ConnectionError(`cannot listen on ${path}: ${reason}`);
  const existing = await fs.lstat(path).catch(() => undefined);
  if (!existing) return;
  if (!existing.isSocket()) throw fail("the file exists and is not a socket");
  const live = await connectTransport({ kind: "unix", path, text: path }, { data() {}, close() {} }).then(
    (transport) => (transport.close(), true),
    () => false,
  );
  if (live) throw fail("another process is serving this socket");
  await fs.unlink(path).catch(() => {}); // stale: whoever served it has gone
}

/**
 * Serve a UNIX socket at `path`, created with `mode` from its first instant:
 * it is bound in a private directory beside `path`, given its mode, then
 * renamed into place. A stale socket file (nothing accepts on it) is
 * replaced; a live one, or a file that is not a socket, is an error.
 * Closing the listener removes the socket file.
 * @throws {ConnectionError} naming the path and the reason
 */
export async function listenTransport(
  path: string,
  events: ListenEvents,
  options: ListenOptions = {},
): Promise<Listener> {
  const fs = await import("node:fs/promises");
  const { dirname, join } = await import("node:path");
  const fail = (reason: string, cause?: unknown) =>
    new ConnectionError(`cannot listen on ${path}: ${reason}`, { cause });
  await claimSocketPath(path);
  let privateDir: string;
  try {
    privateDir = await fs.mkdtemp(join(dirname(path), ".qmpctl-listen-"));
  } catch (error) {
    throw fail(describeSystemError(error), error);
  }
  const { listen } = "Bun" in globalThis ? await import("./transport_bun.ts") : await import("./transport_node.ts");
  const bound = join(privateDir, "s");
  let listener: Listener | undefined;
  try {
    listener = await listen(bound, events);
    await fs.chmod(bound, options.mode ?? 0o600);
    await fs.rename(bound, path);
  } catch (error) {
    await listener?.close();
    throw fail(describeSystemError(error), error);
  } finally {
    await fs.rm(privateDir, { recursive: true, force: true });
  }
  return {
    async close() {
      await listener.close();
      await fs.unlink(path).catch(() => {}); // already gone
    },
  };
}
