/**
 * Event subscriptions: each subscriber gets its own queue from the moment it
 * subscribes, so an event that arrives before anyone iterates (STOP comes
 * before the reply to `stop`) is kept for it. Filters: event names (exact or
 * globs such as `BLOCK_JOB_*`) and a predicate on the whole event.
 *
 * The queue is bounded by backpressure, not by dropping: once it holds
 * `highWaterMark` events the client stops reading its socket (the kernel and
 * then QEMU hold the backlog) until the reader has taken half of them. The
 * client never stops reading while a command waits for its reply, so a reply
 * queued behind many events cannot deadlock.
 *
 * @module
 */
import { abortable } from "./abort.ts";
import { abortErrorFor, DisconnectedError, QmpError } from "./errors.ts";
import { globMatcher, isGlob } from "./glob.ts";

/** An event as QEMU sends it. */
export interface QmpEvent {
  /** Its name: `STOP`, `BLOCK_JOB_COMPLETED`, ... */
  event: string;
  /** Its details, for an event that has any (the event's `data` type in the schema). */
  data?: Record<string, unknown>;
  /** When QEMU sent it, in host time since the Unix epoch. QEMU always gives it; a bare `{ event }` is an event too. */
  timestamp?: { seconds: number; microseconds: number };
  /** Any other member, as received. */
  [key: string]: unknown;
}

/** Which events a subscription keeps. All given conditions must hold. */
export interface EventFilter {
  /** Names, exact or globs (`*` any run, `?` one character); any may match. Empty or absent: all. */
  names?: readonly string[];
  /** A further test on the event. */
  where?: (event: QmpEvent) => boolean;
}

/** Options of `QmpClient.events`. */
export interface SubscribeOptions {
  /** Ends the subscription: reads throw TimeoutError or AbortedError once the queued events are read. */
  signal?: AbortSignal;
  /**
   * Keep at most this many events, then end (they are still delivered).
   * Default: no limit. A connection that ends before they all came ends the
   * subscription too: once the queued events are read, `next` (a `for await`)
   * throws DisconnectedError (or the error that broke the connection), so the
   * loop's end means they came; `nextBatch`,
   * whose callers count what came (qmpctl's waits say how many of N), resolves
   * to `[]` as at any end.
   */
  limit?: number;
  /** Queued events at which the client stops reading its socket. Default 1024; `Infinity` never stops it. */
  highWaterMark?: number;
}

/** The default queue length at which reading pauses. */
export const DEFAULT_HIGH_WATER_MARK = 1024;

/** Compile a filter into one test. */
export function eventMatcher(filter: EventFilter = {}): (event: QmpEvent) => boolean {
  const names = filter.names ?? [];
  const exact = new Set(names.filter((name) => !isGlob(name)));
  const patterns = names.filter(isGlob).map(globMatcher);
  const where = filter.where;
  const named = (name: string) => names.length === 0 || exact.has(name) || patterns.some((matches) => matches(name));
  return (event) => named(event.event) && (!where || where(event));
}

export { isGlob };

/** What a wait for events named `names` awaits, for a message: `event STOP or RESUME`, or `an event`. */
export function awaitedEvents(names: readonly string[] | undefined): string {
  return names?.length ? `event ${names.join(" or ")}` : "an event";
}

/** @ignore Internal: how a subscription tells its client about its queue. */
export interface SubscriptionHooks {
  /** The subscription ended (it no longer takes events). */
  ended(subscription: EventSubscription): void;
  /** The queue fell from the high-water mark to half of it: reading may resume. */
  drained(): void;
}

/**
 * A live subscription: an async iterable of the events that pass its filter.
 * `break` out of a `for await`, `close()`, the `limit`, or the AbortSignal
 * given to `QmpClient.events` ends it. When the connection ends the events
 * already queued are still delivered, then the iteration is done, or throws:
 * the error that broke the connection, or, for a subscription whose `limit`
 * was not reached, DisconnectedError (a clean close is no answer to a wait
 * for N events).
 */
export class EventSubscription implements AsyncIterableIterator<QmpEvent> {
  // TypeScript's `private`, not `#private`: cheaper for a one-shot run (README, Development).
  private readonly matches: (event: QmpEvent) => boolean;
  private readonly hooks: SubscriptionHooks;
  private readonly highWaterMark: number;
  private readonly limit: number;
  private remaining: number;
  private queue: QmpEvent[] = [];
  private head = 0;
  private wakeup?: PromiseWithResolvers<void>; // shared by every waiting read
  private isCongested = false;
  private isEnded = false;
  private failure?: QmpError;
  /** How the connection ended before `limit` events came; `next` throws it as a DisconnectedError. */
  private cutShort?: string;
  private readonly names?: readonly string[];
  private unlisten = () => {};

  /** @ignore Internal: created by `QmpClient.events`. */
  constructor(filter: EventFilter, hooks: SubscriptionHooks, options: SubscribeOptions = {}) {
    this.matches = eventMatcher(filter);
    this.hooks = hooks;
    this.highWaterMark = Math.max(1, options.highWaterMark ?? DEFAULT_HIGH_WATER_MARK);
    this.limit = this.remaining = options.limit ?? Infinity;
    this.names = filter.names;
    if (this.remaining <= 0) { // at most none: ended before any comes
      this.end();
      return;
    }
    const { signal } = options;
    if (!signal) return;
    const abortError = abortErrorFor(filter.names?.length ? `events ${filter.names.join(" or ")}` : "events");
    if (signal.aborted) { // at once, not a microtask later
      this.end(abortError(signal));
      return;
    }
    const ended = Promise.withResolvers<void>();
    this.unlisten = ended.resolve; // ending stops listening to the signal
    abortable(ended.promise, signal, abortError).catch((error: QmpError) => this.end(error));
  }

  /** How many matching events wait to be read. */
  get queued(): number {
    return this.queue.length - this.head;
  }

  /** True once the subscription takes no more events (queued ones may still be read). */
  get ended(): boolean {
    return this.isEnded;
  }

  /** @ignore Internal: true while the queue is over its high-water mark (the client then pauses reading). */
  get congested(): boolean {
    return this.isCongested;
  }

  /** @ignore Internal: offer an event; kept only if it matches. */
  offer(event: QmpEvent): void {
    this.offerAll([event]);
  }

  /** @ignore Internal: offer events in order (those of one chunk); each kept only if it matches. */
  offerAll(events: readonly QmpEvent[]): void {
    const matches = this.matches, queued = this.queued;
    for (let i = 0; i < events.length && !this.isEnded; i++) {
      let matched;
      try {
        matched = matches(events[i]);
      } catch (error) { // the caller's `where` threw: that ends this subscription, not the client
        this.end(
          new QmpError(`an event filter threw on ${events[i].event}: ${(error as Error)?.message}`, { cause: error }),
        );
        break;
      }
      if (!matched) continue;
      this.queue.push(events[i]);
      if (--this.remaining <= 0) this.end();
    }
    if (this.queued === queued) return;
    if (this.queued >= this.highWaterMark) this.isCongested = true;
    this.wake(); // the reader takes them all when it runs
  }

  /** @ignore Internal: end the subscription: queued events are still delivered, then `failure` (if any) is thrown. */
  end(failure?: QmpError): void {
    if (this.isEnded) return;
    this.isEnded = true;
    this.failure = failure;
    this.unlisten();
    this.hooks.ended(this);
    this.wake();
  }

  /**
   * @ignore Internal: the connection ended, broken by `failure` or, without one,
   * as `reason` says: a `limit` not reached is then a DisconnectedError for `next`.
   */
  disconnected(failure: QmpError | undefined, reason: string): void {
    if (!this.isEnded && !failure && this.remaining !== Infinity) this.cutShort = reason;
    this.end(failure);
  }

  /**
   * Wait for at least one event, then take every queued one (at most `max`).
   * Events that arrived together come out together, so a printer can write
   * them at once. Resolves to `[]` when the subscription has ended, also when
   * the connection ended before its `limit` was reached (the caller counts).
   *
   * @example
   * ```ts
   * import { QmpClient } from "./client.ts";
   * import type { QmpEvent } from "./events.ts";
   * const qmp = await QmpClient.connect("/run/vm1.qmp");
   * const subscription = qmp.events();
   * const write = async (events: QmpEvent[]) => console.log(events.map((e) => JSON.stringify(e)).join("\n"));
   * for (let batch; (batch = await subscription.nextBatch()).length > 0;) await write(batch);
   * ```
   * @throws {TimeoutError | AbortedError} when the signal ended it; the connection's error when that broke
   */
  async nextBatch(max = Infinity): Promise<QmpEvent[]> {
    while (this.queued === 0) {
      if (this.isEnded) {
        if (this.failure) throw this.failure;
        return [];
      }
      this.wakeup ??= Promise.withResolvers();
      await this.wakeup.promise;
    }
    return this.take(Math.min(max, this.queued));
  }

  /**
   * The next event; done once the subscription has ended and its queue is read.
   * @throws {TimeoutError | AbortedError} when the signal ended it; the connection's error when that broke
   * @throws {DisconnectedError} when the connection ended, even cleanly (QEMU quit or died, or the client
   *   was closed), before `limit` events came
   */
  async next(): Promise<IteratorResult<QmpEvent>> {
    const [value] = this.queued > 0 ? this.take(1) : await this.nextBatch(1);
    if (value) return { value, done: false };
    if (this.cutShort !== undefined) throw new DisconnectedError(this.cutShortMessage());
    return { value: undefined, done: true };
  }

  /** Called by `break` in `for await`: unsubscribes. */
  return(): Promise<IteratorResult<QmpEvent>> {
    this.close();
    return Promise.resolve({ value: undefined, done: true });
  }

  /** Unsubscribe; queued events are dropped and pending reads end. */
  close(): void {
    this.cutShort = undefined; // closed by its reader: nothing is awaited any more
    this.queue = [];
    this.head = 0;
    this.end();
    this.relieve();
  }

  /** A subscription is its own iterator: an event one reader takes is gone for any other. */
  [Symbol.asyncIterator](): this {
    return this;
  }

  /** Take the first `count` queued events; reading may resume once the queue is down to half its mark. */
  private take(count: number): QmpEvent[] {
    const events = this.queue.slice(this.head, this.head + count);
    this.head += count;
    if (this.head === this.queue.length) {
      this.queue = [];
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue.splice(0, this.head); // compact now and then, not on every read
      this.head = 0;
    }
    if (this.queued <= this.highWaterMark / 2) this.relieve();
    return events;
  }

  /** What a wait cut short says: how the connection ended, before what, and how many came of several. */
  private cutShortMessage(): string {
    const { limit } = this;
    const came = limit > 1 ? `; ${limit - this.remaining} of ${limit} came` : "";
    return `${this.cutShort} before ${awaitedEvents(this.names)}${came}`;
  }

  /** Resolve every waiting read, which then looks at the queue again. */
  private wake(): void {
    this.wakeup?.resolve();
    this.wakeup = undefined;
  }

  /** No longer congested: tell the client, which may resume reading. */
  private relieve(): void {
    if (!this.isCongested) return;
    this.isCongested = false;
    this.hooks.drained();
  }
}
