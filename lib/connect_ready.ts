/**
 * Connecting to a monitor that may not be there yet. QEMU creates a
 * `server=on` socket file a moment before it listens on it, and a script
 * that starts QEMU and then talks to it races that: the socket is missing,
 * refuses the connection, or closes before its greeting. `connectWhenReady`
 * retries those (and only those) with short pauses until a bound.
 *
 * @module
 */
import type { Address } from "./address.ts";
import { sleep } from "./abort.ts";
import { type ConnectOptions, QmpClient } from "./client.ts";
import { formatDuration } from "./duration.ts";
import {
  AbortedError,
  abortErrorFor,
  ConnectionError,
  ConnectTimeoutError,
  GreetingClosedError,
  TimeoutError,
} from "./errors.ts";

/** Options of `connectWhenReady`: those of `QmpClient.connect`, and how long to keep trying. */
export interface ConnectWhenReadyOptions extends ConnectOptions {
  /** Keep retrying a socket that is not ready for this long (ms). */
  waitMs: number;
}

const FIRST_PAUSE_MS = 10;
const LONGEST_PAUSE_MS = 100;

/** The error at the end of the retries: the monitor was still not ready. */
class StillNotReadyError extends ConnectionError {}

/**
 * Whether connecting failed because the monitor is not ready yet (worth
 * another try); also true for `connectWhenReady`'s error once its time is up.
 */
export function isNotReady(error: unknown): boolean {
  if (error instanceof GreetingClosedError || error instanceof StillNotReadyError) return true;
  if (!(error instanceof ConnectionError) || error instanceof ConnectTimeoutError) return false;
  // The system errors that mean "not there yet" rather than "never", compared in turn, not looked up: a
  // process's first Set costs ~0.05 M instructions (see lib/client.ts), and a constant array a block of
  // JavaScriptCore's heap on every start (see the README's speed notes).
  const code = (error.cause as { code?: string } | undefined)?.code;
  return code === "ENOENT" || code === "ECONNREFUSED" || code === "ECONNRESET";
}

/**
 * `QmpClient.connect`, retried while the socket is missing, refuses, or
 * closes before its greeting, until `waitMs` has passed; other errors
 * (permission, not a socket, no greeting in time) fail at once.
 *
 * @example
 * ```ts
 * const qmp = await connectWhenReady("/run/vm1.qmp", { waitMs: 5000 }); // QEMU is still starting
 * ```
 * @throws {ConnectionError} naming the last reason once `waitMs` has passed
 */
export function connectWhenReady(address: string | Address, options: ConnectWhenReadyOptions): Promise<QmpClient> {
  const connect = () => QmpClient.connect(address, options);
  return retryWhileNotReady(connect, options.waitMs, options.signal, { remote: isRemote(address) });
}

/** Whether `address` is reached through ssh (see `RetryOptions.remote`). */
export function isRemote(address: string | Address): boolean {
  return typeof address === "string" ? address.startsWith("ssh://") : address.kind === "ssh";
}

/** How `retryWhileNotReady` tells a failed try. */
export interface RetryOptions {
  /** Whether a try's error means "not there yet", retried: by default `isNotReady`; a peer may widen it. */
  notReady?: (error: unknown) => boolean;
  /**
   * The socket is reached through ssh, whose try tells nothing of it until it ends (ssh getting through,
   * then saying whether the remote socket opened): `signal` cutting a try short is then said as between
   * tries, with the last try's reason.
   */
  remote?: boolean;
}

/** What a retry waits for, cut short (--timeout, Ctrl-C): the socket, and why the last try found it not ready. */
function lastTry(error: Error): string {
  return `the socket to be ready; the last try: ${error.message}`;
}

/**
 * `connect()` (to a monitor, or a guest agent), retried while it fails as
 * not ready (see `RetryOptions`), until `waitMs` has passed or `signal`
 * aborts; with `waitMs` 0 (no --wait-socket), tried once, its error as it is.
 * @throws {ConnectionError} naming the last reason once `waitMs` has passed
 */
export async function retryWhileNotReady<T>(
  connect: () => Promise<T>,
  waitMs: number,
  signal?: AbortSignal,
  { notReady = isNotReady, remote = false }: RetryOptions = {},
): Promise<T> {
  if (waitMs <= 0) return await connect();
  const deadline = performance.now() + waitMs;
  let pause = FIRST_PAUSE_MS;
  let last: Error | undefined;
  for (;;) {
    try {
      return await connect();
    } catch (error) {
      // A try that `signal` cut short, over ssh: said as a cut between tries is (below), by the last try's reason.
      const cutShort = error instanceof TimeoutError || error instanceof AbortedError;
      if (remote && last && cutShort && signal?.aborted) throw abortErrorFor(lastTry(last))(signal);
      if (!notReady(error)) throw error;
      last = error as Error;
      const left = deadline - performance.now();
      if (left <= 0) {
        if (error instanceof StillNotReadyError) throw error; // an inner retry's: said once
        throw new StillNotReadyError(
          `${(error as Error).message} (still so after ${formatDuration(waitMs)} of retries)`,
          { cause: error },
        );
      }
      const wait = Math.min(pause, left);
      // Cut short (--timeout, Ctrl-C): the message names the socket and why it was not ready, as at the bound.
      await sleep(wait, signal, lastTry(last));
      pause = Math.min(pause * 2, LONGEST_PAUSE_MS);
    }
  }
}
