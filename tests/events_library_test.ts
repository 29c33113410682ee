/**
 * QmpClient's events against fake servers (backpressure to the socket,
 * waitForEvent, limits) and a real QEMU (a limit cut short by its death).
 */
import { afterEach, describe, expect, test } from "bun:test";
import { QmpClient } from "../lib/client.ts";
import { DisconnectedError, QmpError, TimeoutError } from "../lib/errors.ts";
import type { EventSubscription, QmpEvent } from "../lib/events.ts";
import { type FakeConnection, type FakeServer, fakeServer } from "./helpers/fake_server.ts";
import { floodEvent, floodServer } from "./helpers/flood_server.ts";
import { startQemu } from "./helpers/qemu.ts";

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

async function connectTo(path: string): Promise<QmpClient> {
  const client = await QmpClient.connect(path, { connectTimeout: 5000 });
  cleanups.push(() => client.close());
  return client;
}

function serve(script: (connection: FakeConnection) => Promise<void> | void): FakeServer {
  const server = fakeServer(script);
  cleanups.push(() => server.stop());
  return server;
}

const stopEvent = (seconds: number) => ({ timestamp: { seconds, microseconds: 0 }, event: "STOP" });

describe("backpressure", () => {
  test("a subscriber that does not read stops the reading: the server keeps the backlog", async () => {
    const total = 100_000; // ~6.5 MB
    const server = floodServer(total);
    cleanups.push(server.stop);
    const client = await connectTo(server.path);
    const events = client.events(); // never read, for now
    await Bun.sleep(500);
    // The kernel's socket buffers and one queue of 1024 events, not 6.5 MB.
    expect(events.queued).toBeLessThan(5000);
    expect(server.accepted).toBeLessThan(1_500_000);

    // A command's reply behind the backlog still comes: reading resumes while it is awaited.
    const reply = await client.execute("query-status", undefined, { signal: AbortSignal.timeout(10_000) });
    expect(reply).toBe("after the events");

    // Every event was kept, in order.
    let next = 0;
    for (let batch; next < total && (batch = await events.nextBatch()).length > 0;) {
      for (const event of batch) expect(event).toEqual(floodEvent(next++));
    }
    expect(next).toBe(total);
  });

  test("a slow reader gets every event, the queue staying near the high-water mark", async () => {
    const total = 20_000;
    const server = floodServer(total);
    cleanups.push(server.stop);
    const client = await connectTo(server.path);
    const events = client.events({}, { highWaterMark: 100 });
    let next = 0, maxQueued = 0;
    while (next < total) {
      maxQueued = Math.max(maxQueued, events.queued);
      const batch = await events.nextBatch(50);
      if (batch.length === 0) break;
      for (const event of batch) expect(event).toEqual(floodEvent(next++));
      if (next % 2000 === 0) await Bun.sleep(1);
    }
    // Over the mark by at most what one read of the socket holds.
    expect(maxQueued).toBeLessThan(100 + 5000);
    expect(server.backlog).toBe(0);
  });

  test("a full subscriber that has ended no longer holds up the socket", async () => {
    const total = 30_000;
    const server = floodServer(total);
    cleanups.push(server.stop);
    const client = await connectTo(server.path);
    const first = client.events({}, { highWaterMark: 10, limit: 10 });
    const all = client.events({}, { highWaterMark: Infinity });
    let count = 0;
    for (let batch; count < total && (batch = await all.nextBatch()).length > 0;) count += batch.length;
    expect(count).toBe(total);
    expect(first.queued).toBe(10);
  });
});

test("limit: 0 keeps no event: the subscription has ended before any comes", async () => {
  const server = serve(async (c) => {
    await c.handshake();
    const request = await c.nextRequest();
    c.sendJson(stopEvent(1));
    c.reply(request, {});
  });
  const client = await connectTo(server.path);
  const none = client.events({}, { limit: 0 });
  const one = client.events({}, { limit: 1 });
  await client.execute("stop");
  expect(none.ended).toBe(true);
  expect(await none.nextBatch()).toEqual([]);
  expect(await one.nextBatch()).toEqual([stopEvent(1)]);
});

describe("waitForEvent", () => {
  test("called before the command, it gets the event QEMU sends before the reply", async () => {
    const server = serve(async (c) => {
      await c.handshake();
      const request = await c.nextRequest();
      c.sendJson(stopEvent(7));
      c.reply(request, {});
    });
    const client = await connectTo(server.path);
    const stopped = client.waitForEvent({ names: ["STOP"] }, { signal: AbortSignal.timeout(5000) });
    expect(await client.execute("stop")).toEqual({});
    expect(await stopped).toEqual(stopEvent(7));
  });

  test("the connection ending first is a DisconnectedError; a timeout is a TimeoutError", async () => {
    const server = serve(async (c) => {
      await c.handshake();
      await Bun.sleep(50);
      c.sendJson({ event: "RESUME", timestamp: { seconds: 1, microseconds: 0 } });
      c.close();
    });
    const client = await connectTo(server.path);
    const error = await client.waitForEvent({ names: ["STOP"] }).catch((e) => e);
    expect(error).toBeInstanceOf(DisconnectedError);
    expect(error.message).toContain("ended before event STOP");

    const silent = serve((c) => c.handshake());
    const other = await connectTo(silent.path);
    const timeout = await other.waitForEvent({ names: ["STOP"] }, { signal: AbortSignal.timeout(50) }).catch((e) => e);
    expect(timeout).toBeInstanceOf(TimeoutError);
  });

  test("a where that throws ends its own subscription with a QmpError; the client and the others go on", async () => {
    const server = serve(async (c) => {
      await c.handshake();
      const request = await c.nextRequest();
      c.sendJson(stopEvent(1));
      c.reply(request, { ok: true });
    });
    const client = await connectTo(server.path);
    const broken = client.events({ where: (event) => (event.data as { nope: { x: 1 } }).nope.x === 1 });
    const working = client.events({ names: ["STOP"] });
    expect(await client.execute("stop")).toEqual({ ok: true });
    const error = await broken.nextBatch().catch((e) => e);
    expect(error).toBeInstanceOf(QmpError);
    expect(error.message).toStartWith("an event filter threw on STOP: ");
    expect(error.cause).toBeInstanceOf(TypeError);
    expect((await working.nextBatch()).map((e) => e.event)).toEqual(["STOP"]);
  });
});

/** What a `for await` over `subscription` saw: the events, and what it threw (undefined: it ended quietly). */
async function iterate(subscription: EventSubscription): Promise<{ events: QmpEvent[]; error?: unknown }> {
  const events: QmpEvent[] = [];
  try {
    for await (const event of subscription) events.push(event);
  } catch (error) {
    return { events, error };
  }
  return { events };
}

describe("a limit and the connection's end", () => {
  test("a clean close before the limit: for await throws DisconnectedError after the queued events", async () => {
    const server = serve(async (c) => {
      await c.handshake();
      const request = await c.nextRequest();
      c.sendJson(stopEvent(1));
      c.reply(request, {});
      c.close();
    });
    const client = await connectTo(server.path);
    const stops = client.events({ names: ["STOP"] }, { limit: 2 });
    const resets = client.events({ names: ["RESET"] }, { limit: 1 });
    const batches = client.events({ names: ["STOP"] }, { limit: 2 });
    const all = client.events(), reached = client.events({ names: ["STOP"] }, { limit: 1 });
    const unsubscribed = client.events({ names: ["RESET"] }, { limit: 1 });
    await client.execute("stop");
    await client.closed;
    unsubscribed.close();
    const { events, error } = await iterate(stops);
    expect(events).toEqual([stopEvent(1)]);
    expect(error).toBeInstanceOf(DisconnectedError);
    expect((error as Error).message).toBe(`${server.path} closed the connection before event STOP; 1 of 2 came`);
    expect((await iterate(resets)).error).toHaveProperty(
      "message",
      `${server.path} closed the connection before event RESET`,
    );
    // nextBatch's caller counts: [] at any end, as before.
    expect(await batches.nextBatch()).toEqual([stopEvent(1)]);
    expect(await batches.nextBatch()).toEqual([]);
    // Quiet: no limit, the limit reached, or closed by its reader.
    expect(await iterate(all)).toEqual({ events: [stopEvent(1)] });
    expect(await iterate(reached)).toEqual({ events: [stopEvent(1)] });
    expect(await iterate(unsubscribed)).toEqual({ events: [] });
  });

  test("the client's own close(), and a subscription made after it, are a DisconnectedError too", async () => {
    const server = serve((c) => c.handshake());
    const client = await connectTo(server.path);
    const waiting = client.events({ names: ["STOP"] }, { limit: 1 });
    await client.close();
    expect((await iterate(waiting)).error).toHaveProperty(
      "message",
      "the client closed the connection before event STOP",
    );
    const late = await iterate(client.events({}, { limit: 1 }));
    expect(late.error).toBeInstanceOf(DisconnectedError);
    expect((late.error as Error).message).toBe(`the connection to ${server.path} had ended before an event`);
  });
});

test("QEMU killed during README's wait for STOP: for await throws DisconnectedError; a loop without a limit ends", async () => {
  const qemu = await startQemu();
  cleanups.push(() => qemu.stop());
  const client = await connectTo(qemu.socket);
  const signal = AbortSignal.timeout(10_000);
  const stopped = client.events({ names: ["STOP"] }, { signal, limit: 1 }); // README's library example
  const all = client.events();
  const done = iterate(stopped);
  qemu.process.kill("SIGKILL");
  const { events, error } = await done;
  expect(events).toEqual([]);
  expect(error).toBeInstanceOf(DisconnectedError);
  expect((error as Error).message).toBe(`${qemu.socket} closed the connection before event STOP`);
  expect(await iterate(all)).toEqual({ events: [] });
});
