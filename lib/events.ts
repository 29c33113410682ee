/**
 * Event subscriptions: each subscriber gets its own queue from the moment it
 * subscribes, so an event that arrives before anyone iterates (STOP comes
 * before the reply to `stop`) is kept for it. Filters: event names (exact or
 * globs such as `BLOCK_JOB_*`) and a predicate on the whole event.
 *
 * @module
 */
import { abortErrorFor, type QmpError } from "./errors.ts";

/** An event as QEMU sends it. */
export interface QmpEvent {
  event: string;
  data?: Record<string, unknown>;
  timestamp?: { seconds: number; microseconds: number };
  [key: string]: unknown;
}

/** Which events a subscription keeps. All given conditions must hold. */
export interface EventFilter {
  /** Names, exact or globs (`*` any run, `?` one character); any may match. Empty or absent: all. */
  names?: readonly string[];
  /** A further test on the event. */
  where?: (event: QmpEvent) => boolean;
}

/** Compile a filter into one test. */
export function eventMatcher(filter: EventFilter = {}): (event: QmpEvent) => boolean {
  const patterns = (filter.names ?? []).map(globToRegExp);
  const where = filter.where;
  return (event) => (patterns.length === 0 || patterns.some((re) => re.test(event.event))) && (!where || where(event));
}

/** True when the name holds glob characters. */
export function isGlob(name: string): boolean {
  return /[*?]/.test(name);
}

function globToRegExp(glob: string): RegExp {
  const body = glob.replace(/[.+^${}()|[\]\\]/g, "\\$&").replaceAll("*", ".*").replaceAll("?", ".");
  return new RegExp(`^${body}$`);
}

/**
 * A live subscription: an async iterable of the events that pass its filter.
 * `break` out of a `for await`, `close()`, or the AbortSignal given to
 * `QmpClient.events` ends it.
 */
export class EventSubscription implements AsyncIterableIterator<QmpEvent> {
  readonly #matches: (event: QmpEvent) => boolean;
  readonly #onEnd: (subscription: EventSubscription) => void;
  readonly #queue: QmpEvent[] = [];
  #head = 0;
  #waiter?: { resolve: (result: IteratorResult<QmpEvent>) => void; reject: (error: unknown) => void };
  #ended = false;
  #failure?: QmpError;

  /** @internal Created by `QmpClient.events`. */
  constructor(filter: EventFilter, onEnd: (subscription: EventSubscription) => void, signal?: AbortSignal) {
    this.#matches = eventMatcher(filter);
    this.#onEnd = onEnd;
    if (signal) {
      const abortError = abortErrorFor("events");
      if (signal.aborted) this.end(abortError(signal));
      else signal.addEventListener("abort", () => this.end(abortError(signal)), { once: true });
    }
  }

  /** How many matching events wait to be read. */
  get queued(): number {
    return this.#queue.length - this.#head;
  }

  /** @internal Offer an event; kept only if it matches. */
  offer(event: QmpEvent): void {
    if (this.#ended || !this.#matches(event)) return;
    if (this.#waiter) {
      const waiter = this.#waiter;
      this.#waiter = undefined;
      waiter.resolve({ value: event, done: false });
    } else {
      this.#queue.push(event);
    }
  }

  /** @internal End the subscription: queued events are still delivered, then `failure` (if any) is thrown. */
  end(failure?: QmpError): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#failure = failure;
    this.#onEnd(this);
    const waiter = this.#waiter;
    this.#waiter = undefined;
    if (!waiter) return;
    if (failure) waiter.reject(failure);
    else waiter.resolve({ value: undefined, done: true });
  }

  next(): Promise<IteratorResult<QmpEvent>> {
    if (this.#head < this.#queue.length) {
      const value = this.#queue[this.#head++];
      if (this.#head > 1024 && this.#head * 2 > this.#queue.length) {
        this.#queue.splice(0, this.#head); // compact now and then, not on every read
        this.#head = 0;
      }
      return Promise.resolve({ value, done: false });
    }
    if (this.#ended) {
      return this.#failure ? Promise.reject(this.#failure) : Promise.resolve({ value: undefined, done: true });
    }
    return new Promise((resolve, reject) => (this.#waiter = { resolve, reject }));
  }

  /** Called by `break` in `for await`: unsubscribes. */
  return(): Promise<IteratorResult<QmpEvent>> {
    this.close();
    return Promise.resolve({ value: undefined, done: true });
  }

  /** Unsubscribe; pending reads end. */
  close(): void {
    this.#queue.length = this.#head = 0;
    this.end();
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}
