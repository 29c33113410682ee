/**
 * What following long work (block jobs, migrations) needs from events: wait
 * for the next batch of events or for a tick of the progress clock,
 * whichever comes first, without losing a batch that arrives after the tick
 * won (the pending read is kept for the next call).
 *
 * @module
 */
import { abortable } from "./abort.ts";
import type { EventSubscription, QmpEvent } from "./events.ts";

/** Reads a subscription in turns, each bounded by an optional tick. */
export class EventTurns {
  readonly #subscription: EventSubscription;
  #pending?: Promise<QmpEvent[]>;

  constructor(subscription: EventSubscription) {
    this.#subscription = subscription;
  }

  /**
   * The next events (`[]` once the subscription has ended), or `"tick"` when
   * `tickMs` passed first (no tick when undefined).
   * @throws {TimeoutError | AbortedError} when `signal` aborts first, naming `what`
   */
  async next(tickMs: number | undefined, signal: AbortSignal | undefined, what: string): Promise<QmpEvent[] | "tick"> {
    const events = this.#pending ??= this.#subscription.nextBatch();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const tick = tickMs === undefined
      ? new Promise<never>(() => {})
      : new Promise<"tick">((resolve) => (timer = setTimeout(() => resolve("tick"), tickMs)));
    try {
      const turn = await abortable(Promise.race([events, tick]), signal, what);
      if (turn !== "tick") this.#pending = undefined;
      return turn;
    } finally {
      clearTimeout(timer);
    }
  }
}
