/**
 * One way to race a wait against an AbortSignal: the signal is checked
 * first (an already-aborted signal rejects at once), the listener is removed
 * when the wait settles, and the error is made where the wait begins. Also
 * the timed waits: a pause a signal cuts short, a value or none after ms.
 *
 * @module
 */
import { abortErrorFor } from "./errors.ts";

/**
 * `work`, or the error for `signal` if it aborts first (TimeoutError for a
 * timeout, AbortedError otherwise, naming `what` was awaited; or, when `what`
 * is a function, the error it makes at the abort). The abandoned work is not
 * cancelled: the caller owns it.
 *
 * @example
 * ```ts
 * import { abortable } from "./abort.ts";
 * const answer = new Promise<string>((resolve) => setTimeout(() => resolve("42"), 10));
 * const text = await abortable(answer, AbortSignal.timeout(1000), "the answer"); // "42"
 * ```
 */
export function abortable<T>(
  work: Promise<T>,
  signal: AbortSignal | undefined,
  what: string | ((signal: AbortSignal) => Error),
): Promise<T> {
  if (!signal) return work;
  const abortError = typeof what === "string" ? abortErrorFor(what) : what;
  // Promise.withResolvers, not `new Promise(executor)`: a process's first
  // call of the constructor costs ~0.1 M instructions (~1.5% of an exec).
  const { promise, resolve, reject } = Promise.withResolvers<T>();
  const onAbort = () => reject(abortError(signal));
  if (signal.aborted) {
    work.catch(() => {}); // abandoned: its failure is no one's to handle, and must not surface as unhandled
    onAbort();
    return promise;
  }
  signal.addEventListener("abort", onAbort, { once: true });
  const settle = <V>(then: (value: V) => void) => (value: V) => {
    signal.removeEventListener("abort", onAbort);
    then(value);
  };
  work.then(settle(resolve), settle(reject));
  return promise;
}

/**
 * Resolves after `ms`, or rejects as `abortable` does (the error for
 * `signal`, naming `what`) if `signal` aborts first. The timer goes with the
 * abort: a pause cut short keeps no process alive to its end.
 */
export function sleep(
  ms: number,
  signal: AbortSignal | undefined,
  what: string | ((signal: AbortSignal) => Error),
): Promise<void> {
  const { promise, resolve, reject } = Promise.withResolvers<void>();
  if (!signal) {
    setTimeout(resolve, ms);
    return promise;
  }
  const abortError = typeof what === "string" ? abortErrorFor(what) : what;
  if (signal.aborted) {
    reject(abortError(signal));
    return promise;
  }
  const onAbort = () => {
    clearTimeout(timer);
    reject(abortError(signal));
  };
  const timer = setTimeout(() => {
    signal.removeEventListener("abort", onAbort);
    resolve();
  }, ms);
  signal.addEventListener("abort", onAbort, { once: true });
  return promise;
}

/**
 * `work`'s value if it settles within `ms` (its error if it fails), else
 * undefined; the work is not cancelled. The timer goes when `work` settles
 * first, so a quick one keeps no process alive for `ms`.
 */
export function within<T>(work: Promise<T>, ms: number): Promise<T | undefined> {
  const { promise, resolve, reject } = Promise.withResolvers<T | undefined>();
  const timer = setTimeout(() => resolve(undefined), ms);
  work.then((value) => {
    clearTimeout(timer);
    resolve(value);
  }, (error) => {
    clearTimeout(timer);
    reject(error);
  });
  return promise;
}

/** The longest delay a timer takes (2^31 - 1 ms, ~24.8 days): Deno fires a longer one at once, Bun throws. */
const MAX_TIMER_MS = 2_147_483_647;

/**
 * A signal that times out after `ms` (as AbortSignal.timeout), or undefined
 * for no bound: 0, a negative number or not one, and Infinity. A bound past
 * a timer's range is taken as that range, ~24.8 days, where a runtime would
 * throw or fire at once.
 */
export function timeoutSignal(ms: number): AbortSignal | undefined {
  if (!(ms > 0) || ms === Infinity) return undefined;
  return AbortSignal.timeout(ms > MAX_TIMER_MS ? MAX_TIMER_MS : ms);
}

/**
 * A signal that aborts when either `signal` or `limit` does (a caller's signal and a bound of the call's
 * own, from timeoutSignal); undefined when neither is given.
 */
export function eitherAborts(signal: AbortSignal | undefined, limit: AbortSignal | undefined): AbortSignal | undefined {
  return signal && limit ? AbortSignal.any([signal, limit]) : signal ?? limit;
}

/**
 * `work`, bounded by `signal` with a grace: the error for `signal` (naming
 * `what`, as `abortable` makes it) when `work` has not settled `graceMs`
 * after `signal` aborted, or after this call if it had already. For what may
 * outlast a run's bound a little: output a reader is taking, a guest file
 * being closed. The listener and the timer go when `work` settles.
 */
export function abortableWithGrace<T>(
  work: Promise<T>,
  signal: AbortSignal,
  graceMs: number,
  what: string,
): Promise<T> {
  const { promise, resolve, reject } = Promise.withResolvers<T>();
  let late: ReturnType<typeof setTimeout> | undefined;
  const giveUp = () => {
    late = setTimeout(() => reject(abortErrorFor(what)(signal)), graceMs);
  };
  if (signal.aborted) giveUp();
  else signal.addEventListener("abort", giveUp, { once: true });
  const settle = (then: () => void) => {
    signal.removeEventListener("abort", giveUp);
    clearTimeout(late);
    then();
  };
  work.then((value) => settle(() => resolve(value)), (error) => settle(() => reject(error)));
  return promise;
}
