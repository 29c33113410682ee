/**
 * What `wait-event`, `events` and `exec --wait-event` share: reading
 * `--match` and `--count`, subscribing, and printing events as QEMU sent them
 * (`event`, `data`, `timestamp`), one JSON line each, as they arrive. The
 * events that arrived together are written at once.
 *
 * @module
 */
import { type KeyValueWord, splitKeyValueWords } from "../lib/args.ts";
import type { QmpClient } from "../lib/client.ts";
import { ArgumentError, DisconnectedError, TimeoutError } from "../lib/errors.ts";
import type { EventSubscription, QmpEvent } from "../lib/events.ts";
import { numberText, parseExact, sameNumber } from "../lib/exact_json.ts";
import { OutputError, stdoutWritable } from "./io/output.ts";
import { normalJit } from "./io/process.ts";
import { UsageError } from "./options.ts";
import { type CommandContext, formatEvents, write } from "./session.ts";

/** The events a command waits for or streams. */
export interface EventWait {
  /** Names or globs; empty: every event. */
  names: string[];
  /** The `--match` conditions, all of which must hold. */
  where?: (event: QmpEvent) => boolean;
  /** The same, as words, for the schema to check. */
  conditions: KeyValueWord[];
  /** How many to print (`--count`); Infinity without a bound. */
  count: number;
  /** For messages: `STOP or RESUME with reason=x`. */
  what: string;
}

/**
 * Read `--match` and `--count` for events named `names`; `countName` is how
 * a bad count is named (the Ansible module's parameter is `count`).
 * @throws {UsageError} for a malformed --match or --count
 */
export function readEventWait(
  context: CommandContext,
  names: string[],
  defaultCount: number,
  countName = "--count",
): EventWait {
  const matches = context.options.list("match");
  const countText = context.options.text("count");
  // 01 too (printf %02d); at most 2^53-1, which counts exactly (a larger one would be said rounded)
  if (
    countText !== undefined &&
    !(/^\d+$/.test(countText) && Number(countText) >= 1 && Number.isSafeInteger(Number(countText)))
  ) {
    throw new UsageError(`${countName} '${countText}' is not a number of events (1 to ${Number.MAX_SAFE_INTEGER})`);
  }
  const named = names.length > 0 ? names.join(" or ") : "any event";
  const conditions = matchConditions(matches);
  return {
    names,
    where: conditions.length > 0 ? conditionsMatcher(conditions) : undefined,
    conditions,
    count: countText === undefined ? defaultCount : Number(countText),
    what: matches.length > 0 ? `${named} with ${matches.join(" ")}` : named,
  };
}

/**
 * A test on an event's `data` from `--match KEY=VALUE` words. A dotted KEY
 * reaches into nested objects. VALUE matches the JSON it parses as (`true`,
 * `3`, `{"a":1}`) or, as text, a string equal to it: `--match id=123` holds
 * for `"id": 123` and for `"id": "123"`. `KEY:=JSON` matches only that JSON.
 *
 * @example
 * ```ts
 * dataMatcher(["reason=host-qmp-quit"])({ event: "SHUTDOWN", data: { guest: false, reason: "host-qmp-quit" } }); // true
 * ```
 * @throws {UsageError} for a word that is not KEY=VALUE, or bad JSON after `:=`
 */
export function dataMatcher(words: readonly string[]): (event: QmpEvent) => boolean {
  return conditionsMatcher(matchConditions(words));
}

/** `dataMatcher` for words already read as conditions. */
function conditionsMatcher(conditions: readonly KeyValueWord[]): (event: QmpEvent) => boolean {
  const tests = conditions.map(({ word, path, text, raw }) => {
    let json: unknown, parses = true;
    try {
      json = parseExact(text); // a big integer stays its digits, as in the event
    } catch {
      if (raw) throw new UsageError(`--match '${word}': the value after := is not JSON`);
      parses = false;
    }
    return (data: unknown) => {
      const value = path.reduce<unknown>(
        (at, key) => isObject(at) && Object.hasOwn(at, key) ? at[key] : undefined,
        data,
      );
      if (value === undefined) return false;
      return (parses && sameJson(value, json)) || (!raw && value === text);
    };
  });
  return (event) => tests.every((test) => test(event.data));
}

/** `--match` words as conditions. @throws {UsageError} for a word that is not KEY=VALUE */
function matchConditions(words: readonly string[]): KeyValueWord[] {
  try {
    return splitKeyValueWords(words);
  } catch (error) {
    if (error instanceof ArgumentError) throw new UsageError(`--match ${error.message}`);
    throw error;
  }
}

/**
 * Check the names and the `--match` conditions against QEMU's schema (loaded
 * only here): a name QEMU does not know, or a condition no such event can
 * meet, would wait forever, so it is a usage error (exit 2). Call after
 * subscribing, so that no event is missed meanwhile. With `closeEndsCheck`
 * (wait-event, events: subscribed already), a connection that closes during
 * the check ends the check only: the wait goes on to print the events that
 * came before the close (a QEMU that quit through a proxy), and ends as on
 * any close.
 */
export async function checkEventWait(
  client: QmpClient,
  wait: EventWait,
  signal: AbortSignal,
  { closeEndsCheck = false } = {},
): Promise<void> {
  if (wait.names.length === 0 && wait.conditions.length === 0) return;
  const schema = await import("../lib/schema/mod.ts");
  await schema.checkEventFilter(client, wait.names, wait.conditions, { signal }).catch((error) => {
    if (!closeEndsCheck || !(error instanceof DisconnectedError)) throw error;
  });
}

/**
 * exec's `--wait-event NAME` (repeatable) with `--match` and `--count`;
 * undefined without it.
 * @throws {UsageError} for --match or --count without --wait-event
 */
export function readWaitEventOption(context: CommandContext): EventWait | undefined {
  const names = context.options.list("wait-event");
  if (names.length > 0) return readEventWait(context, names, 1);
  if (context.options.flag("match") || context.options.flag("count")) {
    throw new UsageError("--match and --count go with --wait-event NAME");
  }
  return undefined;
}

/** Subscribe to what `wait` names; call before sending a command whose event is awaited. */
export function subscribe(client: QmpClient, wait: EventWait, signal: AbortSignal): EventSubscription {
  return client.events({ names: wait.names, where: wait.where }, {
    signal,
    limit: wait.count === Infinity ? undefined : wait.count,
  });
}

/**
 * Print events as they arrive until `wait.count` were printed or the
 * subscription ends. Returns how many were printed, and the error that ended
 * the wait early (a timeout, SIGINT, a broken connection).
 * @throws what the output failed with: a closed or full stdout, a reader
 * gone, or a reader that did not take the output before a timeout or SIGINT
 */
export async function printEvents(
  context: CommandContext,
  subscription: EventSubscription,
  wait: EventWait,
): Promise<{ printed: number; error?: unknown }> {
  let printed = 0;
  if (wait.count > 1) normalJit(); // a stream: its loop runs hot
  try {
    // A closed stdout fails now, not after the wait; each of several targets with an error of its own (the
    // fan-out adds its name to it).
    await stdoutWritable().catch((error) => {
      throw context.target && error instanceof OutputError ? new OutputError(error.message, { cause: error }) : error;
    });
    while (printed < wait.count) {
      let batch: QmpEvent[];
      try {
        batch = await subscription.nextBatch(wait.count - printed);
      } catch (error) {
        return { printed, error };
      }
      if (batch.length === 0) break;
      printed += batch.length;
      // A failed write is thrown, not returned: a timeout there is stdout's (the reader did not take the
      // events in time), not the end of the wait; how many had come is still said.
      await write(context, formatEvents(context, batch)).catch((error) => {
        if (error instanceof TimeoutError && Number.isFinite(wait.count)) error.message += progress(wait, printed);
        throw error;
      });
    }
    return { printed };
  } finally {
    subscription.close();
  }
}

/**
 * Print the awaited events; all `wait.count` of them must come.
 * @throws {TimeoutError} saying what was awaited, when --timeout ran out
 * @throws {DisconnectedError} when the connection ended first
 */
export async function printAwaitedEvents(
  context: CommandContext,
  client: QmpClient,
  subscription: EventSubscription,
  wait: EventWait,
): Promise<void> {
  const { printed, error } = await printEvents(context, subscription, wait);
  if (error instanceof TimeoutError) throw awaitedTimeout(wait, printed);
  if (error !== undefined) throw error;
  if (printed < wait.count) {
    throw new DisconnectedError(
      `${client.address.text} closed the connection while waiting for ${wait.what}${progress(wait, printed)}`,
    );
  }
}

/** The TimeoutError of a wait that saw `arrived` of its events: what was awaited, and how many came. */
export function awaitedTimeout(wait: EventWait, arrived: number): TimeoutError {
  return new TimeoutError(`timed out waiting for ${wait.what}${progress(wait, arrived)}`);
}

function progress(wait: EventWait, arrived: number): string {
  return wait.count > 1 ? `; ${arrived} of ${wait.count} arrived` : "";
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null;
}

/**
 * Equal as JSON values: numbers by their exact value (a number kept as
 * written is an object), objects by their members in any order (QEMU's order
 * is its hash table's).
 */
function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  const x = numberText(a), y = numberText(b);
  if (x !== undefined || y !== undefined) return x !== undefined && y !== undefined && sameNumber(x, y);
  if (!isObject(a) || !isObject(b) || Array.isArray(a) !== Array.isArray(b)) return false;
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((k) => Object.hasOwn(b, k) && sameJson(a[k], b[k]));
}
