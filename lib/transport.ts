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
import type { Transport, TransportEvents } from "./transport_types.ts";

export type {
  AcceptedTransport,
  Connect,
  Listen,
  Listener,
  ListenEvents,
  Transport,
  TransportEvents,
} from "./transport_types.ts";

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

/** A system error as words, with its code (ENOENT: "no such socket (ENOENT)"). */
export function describeSystemError(error: unknown): string {
  const { code, message } = error as { code?: string; message?: string };
  if (code && REASONS[code]) return `${REASONS[code]} (${code})`;
  return code ?? message ?? String(error);
}
