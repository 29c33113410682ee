/**
 * Transport: bytes in, bytes out, to an address: a UNIX or TCP socket
 * (lib/transport_socket.ts), or a monitor on another host through OpenSSH
 * (lib/transport_ssh.ts, loaded only for `ssh://` addresses).
 *
 * @module
 */
import type { Address } from "./address.ts";
import { connectSocket } from "./transport_socket.ts";
import type { Transport, TransportEvents, TransportOptions } from "./transport_types.ts";

export type {
  AcceptedTransport,
  Connect,
  Listen,
  Listener,
  ListenEvents,
  SocketAddress,
  Transport,
  TransportEvents,
  TransportOptions,
} from "./transport_types.ts";
export { describeSystemError } from "./transport_socket.ts";

/**
 * Open a byte stream to `address`; `options.signal` abandons connecting (what
 * was started is stopped) and bounds the retries of a busy server.
 * @throws {ConnectionError} naming the address and the reason
 */
export async function connectTransport(
  address: Address,
  events: TransportEvents,
  options: TransportOptions = {},
): Promise<Transport> {
  if (address.kind === "ssh") return (await import("./transport_ssh.ts")).connectSsh(address, events, options);
  return connectSocket(address, events, options);
}
