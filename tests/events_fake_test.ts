/**
 * The event commands against scripted servers, for what QEMU will not do on
 * demand: odd event objects, thousands of events before a reply, a close in
 * the middle of a wait, a flood that outruns the reader.
 */
import { afterAll, afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { QMPCTL, qmpctl as runQmpctl } from "./helpers/cli.ts";
import { type FakeConnection, fakeServer } from "./helpers/fake_server.ts";
import { floodEvent, floodServer } from "./helpers/flood_server.ts";
import { waitUntil } from "./helpers/process_state.ts";

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});

// A schema cache of this file's own: these servers share QEMU 7.2's version but not its schema.
const env = { ...process.env, XDG_CACHE_HOME: mkdtempSync(join(tmpdir(), "qmpctl-events-cache-")) };
afterAll(() => rmSync(env.XDG_CACHE_HOME, { recursive: true, force: true }));
const qmpctl = (args: string[]) => runQmpctl(args, { env });

function serve(script: (connection: FakeConnection) => Promise<void> | void): string {
  const server = fakeServer(script);
  cleanups.push(() => server.stop());
  return server.path;
}

/** qmpctl's questions about the schema, which these servers answer as a QEMU before 2.5 would. */
const SCHEMA_QUERIES = new Set(["query-qmp-schema", "query-target"]);

/** The next request other than a schema query (answered CommandNotFound). */
async function nextCommand(c: FakeConnection): Promise<Record<string, unknown>> {
  for (;;) {
    const request = await c.nextRequest();
    if (!SCHEMA_QUERIES.has(request.execute as string)) return request;
    const desc = `The command ${request.execute} has not been found`;
    c.sendJson({ error: { class: "CommandNotFound", desc }, id: request.id });
  }
}

/**
 * Negotiate; events and wait-event have subscribed by then (before
 * negotiation ends), so what the script sends next reaches them.
 */
async function listening(c: FakeConnection): Promise<void> {
  await c.handshake();
  void nextCommand(c);
}

/** Negotiate, then answer qmpctl's check of event names (its last question is query-qmp-schema). */
async function namesChecked(c: FakeConnection): Promise<void> {
  await c.handshake();
  for (;;) {
    const request = await c.nextRequest();
    const desc = `The command ${request.execute} has not been found`;
    c.sendJson({ error: { class: "CommandNotFound", desc }, id: request.id });
    if (request.execute === "query-qmp-schema") return;
  }
}

const line = (message: unknown) => JSON.stringify(message) + "\n";
const ts = (seconds: number, microseconds = 0) => ({ seconds, microseconds });

describe("output", () => {
  const odd = [
    { timestamp: ts(1700000000, 1), event: "STOP" },
    {
      event: "BLOCK_JOB_COMPLETED", // members in another order than QEMU's usual one: kept
      data: { device: "job0", len: 9007199254740991, offset: 0, speed: 0, type: "mirror" },
      timestamp: ts(1700000001, 999999),
    },
    {
      timestamp: ts(1700000002, 2),
      event: "GUEST_PANICKED",
      data: { text: 'é ✓ \u0001 "quoted" \\ line\nbreak', nested: { list: [1, { a: null }], t: true }, empty: {} },
    },
    { timestamp: ts(0, 0), event: "VENDOR_X", data: {}, extra: "a member QMP may add one day" },
  ];

  test("events prints each event exactly as sent, one compact line each, whatever its spacing", async () => {
    const path = serve(async (c) => {
      await listening(c);
      c.send(JSON.stringify(odd[0], null, 1) + "\r\n"); // QEMU's pretty=on spreads one event over many lines
      c.send(odd.slice(1).map((e) => JSON.stringify(e).replaceAll(",", ", ") + "\r\n").join(""));
    });
    const result = await qmpctl(["-s", path, "events", "--count", "4", "--timeout", "10s"]);
    expect(result).toMatchObject({ code: 0, stdout: odd.map(line).join(""), stderr: "" });
  });

  test("wait-event prints the first event that passes the names and every --match, as sent", async () => {
    const path = serve(async (c) => {
      await listening(c);
      for (const event of odd) c.sendJson(event);
    });
    const result = await qmpctl([
      "-s",
      path,
      "wait-event",
      "BLOCK_*",
      "GUEST_*",
      "--match",
      "nested.t=true",
      "--match",
      "empty={}",
      "--timeout",
      "10s",
    ]);
    expect(result).toMatchObject({ code: 0, stdout: line(odd[2]), stderr: "" });
  });
});

describe("the connection ends before the events", () => {
  const stop = { timestamp: ts(1700000000, 1), event: "STOP" };
  const path = () =>
    serve(async (c) => {
      await listening(c);
      c.sendJson(stop);
      c.close();
    });

  test("events --count 3 gets one event, then QEMU goes: the event printed, exit 3 saying how many came", async () => {
    const result = await qmpctl(["-s", path(), "events", "--count", "3", "--timeout", "10s"]);
    expect(result).toMatchObject({ code: 3, stdout: line(stop) });
    expect(result.stderr).toContain("closed the connection after 1 of 3 events (any event)");
  });

  test("events without --count ends with 0 when the connection ends: the stream is over", async () => {
    expect(await qmpctl(["-s", path(), "events", "--timeout", "10s"])).toMatchObject({
      code: 0,
      stdout: line(stop),
      stderr: "",
    });
  });

  test("a close in the middle of an event is not the stream's end: the events before it, then exit 3 saying so", async () => {
    const cut = serve(async (c) => {
      await listening(c);
      c.send(JSON.stringify(stop) + '\n{"timestamp": {"seconds": 1, "micro');
      c.close();
    });
    const result = await qmpctl(["-s", cut, "events", "--timeout", "10s"]);
    expect(result).toMatchObject({ code: 3, stdout: line(stop) });
    expect(result.stderr).toMatch(/^qmpctl: .* closed the connection in the middle of a message\n$/);
  });
});

describe("thousands of events before a reply", () => {
  const stops = Array.from({ length: 5000 }, (_, i) => ({ timestamp: ts(i, 1), event: "STOP" }));
  const script = (c: FakeConnection) => async () => {
    await c.handshake();
    const request = await nextCommand(c);
    c.send(stops.map((e) => JSON.stringify(e) + "\r\n").join(""));
    c.reply(request, {});
  };
  const run = (...args: string[]) => {
    const path = serve((c) => script(c)());
    return qmpctl(["-s", path, "exec", "stop", ...args, "--timeout", "10s"]);
  };

  test("exec --wait-event prints the reply, then the first event, which came 4999 events before it", async () => {
    expect(await run("--wait-event", "STOP")).toMatchObject({ code: 0, stdout: "{}\n" + line(stops[0]), stderr: "" });
  });

  test("exec --wait-event --count 5000 prints the reply, then all 5000 in order", async () => {
    const result = await run("--wait-event", "STOP", "--count", "5000");
    expect(result).toMatchObject({ code: 0, stderr: "" });
    expect(result.stdout).toBe("{}\n" + stops.map(line).join(""));
  });

  test("plain exec prints only the reply", async () => {
    expect(await run()).toMatchObject({ code: 0, stdout: "{}\n", stderr: "" });
  });
});

describe("the connection closing", () => {
  const script = async (c: FakeConnection) => {
    await namesChecked(c); // the close comes after: the test is about events, not an unfinished check
    c.sendJson({ timestamp: ts(1), event: "E", data: { n: 1 } });
    c.sendJson({ timestamp: ts(2), event: "OTHER" });
    c.sendJson({ timestamp: ts(3), event: "E", data: { n: 2 } });
    c.close();
  };
  const expected = line({ timestamp: ts(1), event: "E", data: { n: 1 } }) +
    line({ timestamp: ts(3), event: "E", data: { n: 2 } });

  test("wait-event: the events that came are printed, then exit 3 saying what was awaited", async () => {
    const path = serve(script);
    const result = await qmpctl(["-s", path, "wait-event", "E", "--count", "3", "--timeout", "10s"]);
    expect(result).toMatchObject({
      code: 3,
      stdout: expected,
      stderr: `qmpctl: ${path} closed the connection while waiting for E; 2 of 3 arrived\n`,
    });
  });

  // A QEMU that quits through a proxy: its event comes while qmpctl asks about the names, then the close.
  const quitDuringCheck = async (c: FakeConnection) => {
    await c.handshake();
    await c.nextRequest(); // query-target, the check's first question: never answered
    c.sendJson({ timestamp: ts(1), event: "E", data: { n: 1 } });
    c.close();
  };

  test("wait-event: an event that comes while the names are checked, then the close: printed, exit 0", async () => {
    const result = await qmpctl(["-s", serve(quitDuringCheck), "wait-event", "E", "--timeout", "10s"]);
    expect(result).toMatchObject({ code: 0, stdout: line({ timestamp: ts(1), event: "E", data: { n: 1 } }) });
    expect(result.stderr).toBe("");
  });

  test("wait-event --count 2, and events, on that close: the event printed, then as on any close", async () => {
    const event = line({ timestamp: ts(1), event: "E", data: { n: 1 } });
    const path = serve(quitDuringCheck);
    expect(await qmpctl(["-s", path, "wait-event", "E", "--count", "2", "--timeout", "10s"])).toMatchObject({
      code: 3,
      stdout: event,
      stderr: `qmpctl: ${path} closed the connection while waiting for E; 1 of 2 arrived\n`,
    });
    expect(await qmpctl(["-s", serve(quitDuringCheck), "events", "E", "--timeout", "10s"]))
      .toMatchObject({ code: 0, stdout: event, stderr: "" });
  });

  test("events: the events that came are printed, then exit 0", async () => {
    const path = serve(script);
    const result = await qmpctl(["-s", path, "events", "E", "--timeout", "10s"]);
    expect(result).toMatchObject({ code: 0, stdout: expected, stderr: "" });
  });

  test("exec --wait-event: a command that fails exits 1 without waiting", async () => {
    const path = serve(async (c) => {
      await c.handshake();
      const request = await nextCommand(c);
      c.sendJson({ error: { class: "GenericError", desc: "not now" }, id: request.id });
      await c.closed;
    });
    const result = await qmpctl(["-s", path, "exec", "stop", "--wait-event", "STOP", "--timeout", "10s"]);
    expect(result).toMatchObject({ code: 1, stdout: "", stderr: "qmpctl: GenericError: not now\n" });
    expect(result.ms).toBeLessThan(5000);
  });
});

test("qmpctl events | head -1 ends quietly with 0", async () => {
  const path = serve(async (c) => {
    await listening(c);
    for (let i = 0; i < 500 && !closed; i++) {
      c.sendJson({ timestamp: ts(i), event: "TICK" });
      await Bun.sleep(20);
    }
  });
  let closed = false;
  const shell = Bun.spawn(["bash", "-c", 'set -o pipefail; "$0" -s "$1" events | head -1', QMPCTL, path], {
    stdout: "pipe",
    stderr: "pipe",
    env,
  });
  const [stdout, stderr, code] = await Promise.all([
    new Response(shell.stdout).text(),
    new Response(shell.stderr).text(),
    shell.exited,
  ]);
  closed = true;
  expect({ code, stdout, stderr }).toEqual({ code: 0, stdout: line({ timestamp: ts(0), event: "TICK" }), stderr: "" });
});

describe("backpressure", () => {
  test("a reader that does not keep up stops qmpctl reading the socket; every event still comes, in order", async () => {
    const total = 100_000; // ~7 MB
    const server = floodServer(total);
    cleanups.push(server.stop);
    // The reader starts reading only when the file `go` appears (a pipe of Bun.spawn's own would be read at once).
    const go = join(env.XDG_CACHE_HOME, `go-${process.pid}`);
    const pipeline =
      'set -o pipefail; "$0" -s "$1" events --count "$2" --timeout 60s | { while [ ! -e "$3" ]; do sleep 0.05; done; cat; }';
    const child = Bun.spawn(["bash", "-c", pipeline, QMPCTL, server.path, String(total), go], {
      stdout: "pipe",
      stderr: "pipe",
      env,
    });
    // Held up: the server has more than 4 MB it cannot send, because qmpctl stopped reading.
    await waitUntil(() => server.backlog > 4_000_000, "the server's backlog passes 4 MB");
    expect(server.accepted).toBeLessThan(2_000_000);
    writeFileSync(go, "");

    const [stdout, stderr, code] = await Promise.all([
      new Response(child.stdout).text(),
      new Response(child.stderr).text(),
      child.exited,
    ]);
    expect({ code, stderr }).toEqual({ code: 0, stderr: "" });
    const lines = stdout.split("\n");
    expect(lines.length).toBe(total + 1);
    for (let i = 0; i < total; i += 9999) expect(lines[i]).toBe(JSON.stringify(floodEvent(i)));
    expect(stdout).toBe(Array.from({ length: total }, (_, i) => line(floodEvent(i))).join(""));
  });

  test("exec --wait-event --count 5000: 100 000 events before the reply cannot hold it up", async () => {
    const server = floodServer(100_000);
    cleanups.push(server.stop);
    const result = await qmpctl(
      ["-s", server.path, "exec", "query-status", "--wait-event", "STOP", "--count", "5000", "--timeout", "20s"],
    );
    expect(result).toMatchObject({ code: 0, stderr: "" });
    const expected = Array.from({ length: 5000 }, (_, i) => line(floodEvent(i))).join("");
    expect(result.stdout).toBe('"after the events"\n' + expected);
  });
});

describe("several targets", () => {
  test("each event line names the target it came from, whatever socket member the event itself carries", async () => {
    const script = (c: FakeConnection) =>
      c.handshake().then(() => {
        c.sendJson({
          socket: "/run/vm-other.qmp",
          event: "SHUTDOWN",
          data: {},
          timestamp: { seconds: 1, microseconds: 2 },
        });
      });
    const a = serve(script), b = serve(script);
    const result = await qmpctl(["-s", a, "-s", b, "events", "--count", "1", "--timeout", "10s"]);
    expect(result.code).toBe(0);
    const lines = result.stdout.trimEnd().split("\n").map((line) => JSON.parse(line));
    expect(lines.map((line) => line.socket).sort()).toEqual([a, b].sort());
    for (const line of lines) expect(Object.keys(line)).toEqual(["socket", "event", "data", "timestamp"]);
  });
});
