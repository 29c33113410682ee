/**
 * Transport: bytes in, bytes out, over a UNIX or TCP socket, or a UNIX
 * socket on another host through OpenSSH (lib/transport_ssh.ts, loaded only
 * for `ssh://` addresses).
 *
 * Under Bun the socket is `Bun.connect` (importing `node:net` costs a
 * compiled binary ~14 ms of start-up, more than a whole QMP exchange);
 * elsewhere (Deno, Node) it is `node:net`. Both sit behind this interface and
 * are loaded only when used.
 *
 * @module
 */
import type { Address, SshAddress } from "./address.ts";
import { ConnectionError } from "./errors.ts";

/** What the transport reports to its owner. */
export interface TransportEvents {
  /** A chunk arrived (it may hold part of a message, or several). */
  data(chunk: Uint8Array): void;
  /** The socket closed; `error` when it broke rather than ended. */
  close(error?: Error): void;
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

/** An address a socket connects to directly. */
export type SocketAddress = Exclude<Address, SshAddress>;

/** What bounds connecting (a transport that starts a process needs both). */
export interface TransportOptions {
  /** Abandon connecting: whatever was started is stopped. */
  signal?: AbortSignal;
  /** The caller's connect timeout in ms (0: none), for tools that take their own. */
  connectTimeout?: number;
}

/** The runtime-specific connect function that each socket implementation exports. */
export type Connect = (address: SocketAddress, events: TransportEvents) => Promise<Transport>;

/**
 * Open a socket to `address`.
 * @throws {ConnectionError} naming the address and the system's reason
 */
export async function connectTransport(
  address: Address,
  events: TransportEvents,
  options: TransportOptions = {},
): Promise<Transport> {
  if (address.kind === "ssh") return (await import("./transport_ssh.ts")).connectSsh(address, events, options);
  return connectSocket(address, events);
}

/**
 * Open a socket to `address` with the runtime's own API.
 * @throws {ConnectionError} naming the address and the system's reason
 */
export async function connectSocket(address: SocketAddress, events: TransportEvents): Promise<Transport> {
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
