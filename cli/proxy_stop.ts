/** `qmpctl proxy`'s stops asked for (SIGTERM, SIGHUP, SIGINT, --timeout) and its log, for both its modes. @module */
import { AbortedError } from "../lib/errors.ts";
import { formatDuration } from "./duration.ts";
import { EXIT } from "./exit_status.ts";
import { writeStderrLine } from "./io/output.ts";
import { type FatalSignal, onFatalSignal } from "./io/signals.ts";
import type { CommandContext } from "./session.ts";

/** One line of the proxy's log. */
export function notice(line: string): void {
  writeStderrLine(`qmpctl: proxy: ${line}`);
}

/** What asks the proxy to stop: SIGINT, SIGTERM, SIGHUP (its terminal or ssh session closed), or --timeout. */
export type StopReason = "SIGINT" | FatalSignal | "timeout";

/** A stop asked for, watched from the proxy's first instant. */
export interface StopWatch {
  /** Resolves with what asked first. */
  requested: Promise<StopReason>;
  /** What asked first, once something has: set as the signal is handled. */
  readonly reason: StopReason | undefined;
  /** Aborts as a stop is asked for (with the run's own reason for SIGINT and --timeout): bounds the start. */
  signal: AbortSignal;
}

/**
 * Handle SIGTERM and SIGHUP from now on (but one ignored at start, as under
 * nohup), and watch the run's signal (SIGINT, --timeout): a stop that comes
 * while the proxy starts cuts the start short, and what it has made is
 * removed on the way out, as when it serves.
 */
export function watchForStop(context: CommandContext): StopWatch {
  const { promise, resolve } = Promise.withResolvers<StopReason>();
  let reason: StopReason | undefined;
  const stop = (why: StopReason) => resolve(reason ??= why);
  const fatal = new AbortController();
  onFatalSignal((signal) => {
    stop(signal);
    if (!fatal.signal.aborted) fatal.abort(new AbortedError(`stopped by ${signal}`));
  });
  const onAbort = () =>
    stop((context.signal.reason as { name?: string })?.name === "TimeoutError" ? "timeout" : "SIGINT");
  if (context.signal.aborted) onAbort();
  else context.signal.addEventListener("abort", onAbort, { once: true });
  return {
    requested: promise,
    get reason() {
      return reason;
    },
    signal: AbortSignal.any([context.signal, fatal.signal]),
  };
}

/**
 * The exit status of a stop asked for (stopStatus), said as `REASON: what` (`SIGTERM: stopped sharing`), as
 * every end of the proxy is, for a unit's journal.
 */
export function stoppedStatus(context: CommandContext, reason: StopReason, what: string): number {
  notice(`${stopName(context, reason)}: ${what}`);
  return stopStatus(reason);
}

/**
 * The exit status of a stop asked for: 0 for SIGTERM and SIGHUP (a service stopped), 130 for SIGINT (a Ctrl-C
 * ends a shell loop running the proxy too), 124 for --timeout.
 */
export function stopStatus(reason: StopReason): number {
  return reason === "SIGINT" ? EXIT.INTERRUPTED : reason === "timeout" ? EXIT.TIMEOUT : EXIT.OK;
}

/** A stop's reason as its log line names it: the signal, or `--timeout 1s ran out`. */
export function stopName(context: CommandContext, reason: StopReason): string {
  return reason === "timeout" ? `--timeout ${formatDuration(context.global.timeoutMs)} ran out` : reason;
}

/** ` (2 clients disconnected)`: the clients a stop closed, if any. */
export function disconnected(count: number): string {
  return count === 0 ? "" : ` (${count} ${count === 1 ? "client" : "clients"} disconnected)`;
}
