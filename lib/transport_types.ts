/**
 * The shape every transport has (bytes in, bytes out), in a file of its own
 * so that transport.ts and its implementations (transport_bun.ts,
 * transport_node.ts) import it rather than one another.
 *
 * @module
 */
import type { Address, SshAddress } from "./address.ts";

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
  /** Queue text (sent as UTF-8) or raw bytes for sending, in order; never blocks. */
  write(data: string | Uint8Array): void;
  /** Stop reading, so the kernel buffer and then the server hold the backlog. */
  pause(): void;
  /** Start reading again after `pause`. */
  resume(): void;
  /** Close the socket; `close` is reported once. */
  close(): void;
}

/** An address a socket connects to directly. */
export type SocketAddress = Exclude<Address, SshAddress>;

/** What bounds connecting, and what it reports. */
export interface TransportOptions {
  /** Abandon connecting (whatever was started is stopped); also bounds the retries of a busy server. */
  signal?: AbortSignal;
  /** The caller's connect timeout in ms (0: none), for tools that take their own (ssh's ConnectTimeout). */
  connectTimeout?: number;
  /** Called at each retry after EAGAIN (a full listen queue), for a timeout message that says why. */
  onBusy?: () => void;
}

/** The runtime-specific connect function that each socket implementation exports. */
export type Connect = (address: SocketAddress, events: TransportEvents) => Promise<Transport>;

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
