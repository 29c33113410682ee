/** Event filters, `--match`, and EventSubscription's queue, limit and high-water mark, without a socket. */
import { describe, expect, test } from "bun:test";
import { dataMatcher } from "../cli/event_output.ts";
import { UsageError } from "../cli/options.ts";
import { AbortedError, TimeoutError } from "../lib/errors.ts";
import { eventMatcher, EventSubscription, type QmpEvent } from "../lib/events.ts";

const ev = (event: string, data?: Record<string, unknown>): QmpEvent => ({ event, data });

/** A subscription outside a client, recording what it tells its client. */
function subscription(options: ConstructorParameters<typeof EventSubscription>[2] = {}, names?: string[]) {
  const told: string[] = [];
  const s = new EventSubscription({ names }, {
    ended: () => told.push("ended"),
    drained: () => told.push("drained"),
  }, options);
  return { s, told };
}

describe("eventMatcher", () => {
  test("exact names, globs and several names (any of them)", () => {
    const match = eventMatcher({ names: ["STOP", "BLOCK_JOB_*", "POWER?OWN"] });
    expect(["STOP", "BLOCK_JOB_COMPLETED", "BLOCK_JOB_", "POWERDOWN"].map((n) => match(ev(n)))).toEqual([
      true,
      true,
      true,
      true,
    ]);
    expect(["STOPPED", "XSTOP", "BLOCK_IO_ERROR", "POWERDOWNX", "RESUME"].some((n) => match(ev(n)))).toBe(false);
  });

  test("no names: every event; glob characters other than * and ? are literal", () => {
    expect(eventMatcher()(ev("ANYTHING"))).toBe(true);
    expect(eventMatcher({ names: ["A.B"] })(ev("AXB"))).toBe(false);
    expect(eventMatcher({ names: ["A+"] })(ev("A+"))).toBe(true);
  });

  test("the where predicate must hold too", () => {
    const match = eventMatcher({ names: ["RESET"], where: (e) => e.data?.guest === true });
    expect(match(ev("RESET", { guest: true }))).toBe(true);
    expect(match(ev("RESET", { guest: false }))).toBe(false);
    expect(match(ev("STOP", { guest: true }))).toBe(false);
  });
});

describe("dataMatcher (--match)", () => {
  const shutdown = ev("SHUTDOWN", { guest: false, reason: "host-qmp-quit", job: { id: "123", len: 5 } });

  test("a string value, a JSON value, dotted keys into nested data", () => {
    expect(dataMatcher(["reason=host-qmp-quit"])(shutdown)).toBe(true);
    expect(dataMatcher(["guest=false"])(shutdown)).toBe(true);
    expect(dataMatcher(["job.len=5"])(shutdown)).toBe(true);
    expect(dataMatcher(["reason=host-qmp-system-reset"])(shutdown)).toBe(false);
    expect(dataMatcher(["guest=true"])(shutdown)).toBe(false);
  });

  test("a value that parses as JSON also matches the same text as a string", () => {
    expect(dataMatcher(["job.id=123"])(shutdown)).toBe(true); // "123" in the data
    expect(dataMatcher(["job.len=05"])(shutdown)).toBe(false); // 05 is not JSON: compared as text only
    expect(dataMatcher(["job.id:=123"])(shutdown)).toBe(false); // := takes the JSON only
    expect(dataMatcher(['job.id:="123"'])(shutdown)).toBe(true);
  });

  test("objects compare by members in any order; a missing key never matches", () => {
    expect(dataMatcher(['job={"len":5,"id":"123"}'])(shutdown)).toBe(true);
    expect(dataMatcher(['job={"len":5}'])(shutdown)).toBe(false);
    expect(dataMatcher(["nosuch=null"])(shutdown)).toBe(false);
    expect(dataMatcher(["reason.x=1"])(shutdown)).toBe(false);
    expect(dataMatcher(["reason=x"])(ev("SHUTDOWN"))).toBe(false);
  });

  test("every --match must hold", () => {
    expect(dataMatcher(["guest=false", "reason=host-qmp-quit"])(shutdown)).toBe(true);
    expect(dataMatcher(["guest=false", "reason=guest-shutdown"])(shutdown)).toBe(false);
  });

  test("malformed words are usage errors", () => {
    expect(() => dataMatcher(["reason"])).toThrow(UsageError);
    expect(() => dataMatcher(["=x"])).toThrow(UsageError);
    expect(() => dataMatcher(["a..b=1"])).toThrow(UsageError);
    expect(() => dataMatcher(["a:={"])).toThrow(UsageError);
  });
});

describe("EventSubscription", () => {
  test("keeps matching events queued until they are read, in order", async () => {
    const { s } = subscription({}, ["E*"]);
    s.offer(ev("E1"));
    s.offer(ev("X"));
    s.offer(ev("E2"));
    expect(s.queued).toBe(2);
    expect((await s.next()).value?.event).toBe("E1");
    expect((await s.next()).value?.event).toBe("E2");
  });

  test("nextBatch returns the events that arrived together, at most max", async () => {
    const { s } = subscription();
    const batch = s.nextBatch();
    for (let i = 0; i < 5; i++) s.offer(ev(`E${i}`)); // one chunk's worth, before the reader runs
    expect((await batch).map((e) => e.event)).toEqual(["E0", "E1", "E2", "E3", "E4"]);
    for (let i = 5; i < 8; i++) s.offer(ev(`E${i}`));
    expect((await s.nextBatch(2)).map((e) => e.event)).toEqual(["E5", "E6"]);
    expect((await s.nextBatch(2)).map((e) => e.event)).toEqual(["E7"]);
  });

  test("limit: ends after that many events, which are still delivered", async () => {
    const { s, told } = subscription({ limit: 2 });
    for (let i = 0; i < 4; i++) s.offer(ev(`E${i}`));
    expect(told).toEqual(["ended"]);
    expect(s.ended).toBe(true);
    const names = [];
    for await (const e of s) names.push(e.event);
    expect(names).toEqual(["E0", "E1"]);
  });

  test("the signal ends it: queued events first, then TimeoutError or AbortedError", async () => {
    const { s } = subscription({ signal: AbortSignal.timeout(10) });
    s.offer(ev("E0"));
    await Bun.sleep(30);
    expect((await s.next()).value?.event).toBe("E0");
    await expect(s.next()).rejects.toBeInstanceOf(TimeoutError);

    const controller = new AbortController();
    const { s: s2, told } = subscription({ signal: controller.signal });
    const pending = s2.next();
    controller.abort();
    await expect(pending).rejects.toBeInstanceOf(AbortedError);
    expect(told).toEqual(["ended"]);
  });

  test("an already aborted signal ends it at once", async () => {
    const { s } = subscription({ signal: AbortSignal.abort() });
    expect(s.ended).toBe(true);
    await expect(s.next()).rejects.toBeInstanceOf(AbortedError);
  });

  test("break unsubscribes: the queue is dropped", async () => {
    const { s, told } = subscription();
    s.offer(ev("E0"));
    s.offer(ev("E1"));
    for await (const _ of s) break;
    expect(told).toEqual(["ended"]);
    expect(s.queued).toBe(0);
    s.offer(ev("E2"));
    expect(await s.next()).toEqual({ value: undefined, done: true });
  });

  test("congested at the high-water mark, drained at half of it", async () => {
    const { s, told } = subscription({ highWaterMark: 4 });
    for (let i = 0; i < 3; i++) s.offer(ev("E"));
    expect(s.congested).toBe(false);
    s.offer(ev("E"));
    expect(s.congested).toBe(true);
    await s.next(); // 3 left: still over half
    expect([s.congested, told]).toEqual([true, []]);
    await s.next(); // 2 left
    expect([s.congested, told]).toEqual([false, ["drained"]]);
  });

  test("offerAll: the events of one chunk, filtered, up to the limit, read in one batch", async () => {
    const { s, told } = subscription({ limit: 3, highWaterMark: 2 }, ["E*"]);
    const batch = s.nextBatch();
    s.offerAll([ev("E1"), ev("X"), ev("E2"), ev("E3"), ev("E4")]);
    expect([s.queued, s.congested, s.ended, told]).toEqual([3, true, true, ["ended"]]);
    expect((await batch).map((e) => e.event)).toEqual(["E1", "E2", "E3"]);
    s.offerAll([ev("E5")]);
    expect(await s.nextBatch()).toEqual([]);
  });

  test("offerAll of events that all fail the filter queues nothing and leaves a waiting read waiting", async () => {
    const { s } = subscription({}, ["STOP"]);
    let settled = false;
    const read = s.nextBatch().then((events) => (settled = true, events));
    s.offerAll([ev("RESUME"), ev("POWERDOWN")]);
    await Bun.sleep(0);
    expect([settled, s.queued]).toEqual([false, 0]);
    s.offerAll([ev("STOP")]);
    expect((await read).map((e) => e.event)).toEqual(["STOP"]);
  });

  test("concurrent reads each get an event", async () => {
    const { s } = subscription();
    const reads = [s.next(), s.next()];
    s.offer(ev("A"));
    s.offer(ev("B"));
    const names = (await Promise.all(reads)).map((r) => r.value?.event).sort();
    expect(names).toEqual(["A", "B"]);
  });
});
