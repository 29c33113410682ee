/**
 * The shape every transport has (bytes in, bytes out), in a file of its own
 * so that transport.ts and its implementations (transport_bun.ts,
 * transport_node.ts) import it rather than one another.
 *
 * @module
 */
import type { Address } from "./address.ts";

/** What the transport reports to its owner. */
export interface TransportEvents {
  /** A chunk arrived (it may hold part of a message, or several). */
  data(chunk: Uint8Array): void;
  /** The socket closed; `error` when it broke rather than ended. */
  close(error?: Error): void;
}

/** An open byte stream. */
export interface Transport {
  /** Queue text (sent as UTF-8) or raw bytes for sending, in order; never blocks. */
  write(data: string | Uint8Array): void;
  /** Stop reading, so the kernel buffer and then the server hold the backlog. */
  pause(): void;
  /** Start reading again after `pause`. */
  resume(): void;
  /** Close the socket; `close` is reported once. */
  close(): void;
}

/** The runtime-specific connect function that each implementation exports. */
export type Connect = (address: Address, events: TransportEvents) => Promise<Transport>;
