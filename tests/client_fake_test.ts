/** QmpClient against a scripted fake server: greetings, negotiation, ids, events, faults, cancellation. */
import { afterEach, describe, expect, test } from "bun:test";
import { QmpClient } from "../lib/client.ts";
import { connectWhenReady, isNotReady } from "../lib/connect_ready.ts";
import { exactNumber } from "../lib/exact_json.ts";
import {
  AbortedError,
  ArgumentError,
  CommandError,
  ConnectionError,
  ConnectTimeoutError,
  DisconnectedError,
  GreetingError,
  MessageTooLargeError,
  NegotiationError,
  ProtocolError,
  type QmpError,
  TimeoutError,
  UnparsedRequestError,
} from "../lib/errors.ts";
import { type FakeConnection, type FakeServer, fakeServer, QEMU_GREETING } from "./helpers/fake_server.ts";

/** The form of the client's own ids: the process's tag, then a count (lib/client.ts, ID_PREFIX). */
const OWN_ID = /^(qmpctl-[0-9a-z]+-)([1-9][0-9]*)$/;

const V01_GREETING = { QMP: { version: { qemu: "0.12.50", package: "" }, capabilities: [] } };

let servers: FakeServer[] = [];
let clients: QmpClient[] = [];
afterEach(async () => {
  await Promise.all(clients.map((c) => c.close()));
  for (const server of servers) server.stop();
  servers = [];
  clients = [];
});

function serve(script: (connection: FakeConnection) => Promise<void> | void): FakeServer {
  const server = fakeServer(script);
  servers.push(server);
  return server;
}

async function connect(server: FakeServer, options: Parameters<typeof QmpClient.connect>[1] = {}) {
  const client = await QmpClient.connect(server.path, { connectTimeout: 5000, ...options });
  clients.push(client);
  return client;
}

/** The error `promise` rejects with. */
async function rejection(promise: Promise<unknown>): Promise<QmpError> {
  try {
    await promise;
  } catch (error) {
    return error as QmpError;
  }
  throw new Error("resolved");
}

describe("greeting and negotiation", () => {
  test("today's greeting: version and capabilities read, oob enabled because it was offered", async () => {
    const server = serve((c) => c.handshake());
    const client = await connect(server);
    expect(client.greeting.version).toEqual({ major: 7, minor: 2, micro: 0, package: "" });
    expect(client.greeting.capabilities).toEqual(["oob"]);
    expect(client.greeting.raw).toEqual(QEMU_GREETING);
    expect(client.capabilities).toEqual(["oob"]);
    expect(server.requests).toEqual([
      { execute: "qmp_capabilities", arguments: { enable: ["oob"] }, id: expect.anything() },
    ]);
  });

  test("a v0.1 greeting ('qemu': '0.12.50') is read, and oob is not enabled when not offered", async () => {
    const server = serve((c) => c.handshake(V01_GREETING));
    const client = await connect(server);
    expect(client.greeting.version).toEqual({ major: 0, minor: 12, micro: 50, package: "" });
    expect(client.capabilities).toEqual([]);
    expect(server.requests).toEqual([{ execute: "qmp_capabilities", id: expect.anything() }]);
  });

  test('an old greeting whose version is a plain string ("version": "0.12.5") is read, package ""', async () => {
    const greeting = { QMP: { version: "0.12.5", capabilities: [] } };
    const server = serve(async (c) => {
      await c.handshake(greeting);
      c.reply(await c.nextRequest(), { status: "running" });
    });
    const client = await connect(server);
    expect(client.greeting.version).toEqual({ major: 0, minor: 12, micro: 5, package: "" });
    expect(client.greeting.raw).toEqual(greeting);
    expect(client.capabilities).toEqual([]);
    expect(await client.execute("query-status")).toEqual({ status: "running" });
  });

  test("with pipeline, a call's signal bounds its wait for negotiation too", async () => {
    const server = serve((c) => c.sendJson(QEMU_GREETING)); // qmp_capabilities is never answered
    const client = await connect(server, { pipeline: true });
    const started = performance.now();
    for (const oob of [false, true]) {
      const error = await rejection(
        client.execute("query-status", undefined, { signal: AbortSignal.timeout(200), oob }),
      );
      expect(error).toBeInstanceOf(TimeoutError);
      expect(error.message).toBe(
        `timed out waiting for the answer to qmp_capabilities from ${server.path} (query-status was sent behind it: QEMU may run it)`,
      );
    }
    expect(performance.now() - started).toBeLessThan(3000); // not the 5 s connect timeout
  });

  test("with pipeline, the command's reply before the answer to qmp_capabilities (a peer out of order) is taken", async () => {
    const server = serve(async (c) => {
      c.sendJson(QEMU_GREETING);
      const [capabilities, command] = [await c.nextRequest(), await c.nextRequest()];
      c.reply(command, "ours");
      c.reply(capabilities, {});
    });
    const client = await connect(server, { pipeline: true });
    expect(await client.execute("query-status", undefined, { signal: AbortSignal.timeout(2000) })).toBe("ours");
  });

  // QEMU sends the replies to the commands an earlier client left running to the next client, before that
  // client's qmp_capabilities is answered.
  test("an earlier client's replies before the answer to qmp_capabilities are dropped, whatever their id", async () => {
    let connection = 0;
    const stale: Record<string, unknown>[] = [];
    const server = serve(async (c) => {
      if (++connection === 1) { // the earlier client: its command is never answered
        await c.handshake();
        return;
      }
      c.sendJson(QEMU_GREETING);
      const [capabilities, command, callers] = [await c.nextRequest(), await c.nextRequest(), await c.nextRequest()];
      const [, prefix, n] = OWN_ID.exec(command.id as string)!;
      const tag = prefix.slice("qmpctl-".length, -1);
      const otherProcess = `qmpctl-${tag[0] === "a" ? "b" : "a"}${tag.slice(1)}-${n}`; // our command's id, but its tag
      for (const id of [...stale.map((r) => r.id), "qmpctl-2", otherProcess, "mine"]) c.sendJson({ return: id, id });
      c.sendJson({ return: "no id" });
      c.reply(capabilities, {});
      c.reply(command, "ours");
      c.reply(callers, "the caller's");
    });
    // An earlier client in this process (a library user's): cut short, then closed.
    const earlier = await connect(server);
    const error = await rejection(earlier.execute("dump", undefined, { signal: AbortSignal.timeout(50) }));
    expect(error).toBeInstanceOf(TimeoutError);
    await earlier.close();
    stale.push(...server.requests);
    expect(stale.map((r) => r.id)).toEqual([expect.stringMatching(OWN_ID), expect.stringMatching(OWN_ID)]);
    const client = await connect(server, { pipeline: true });
    const signal = AbortSignal.timeout(2000);
    expect(
      await Promise.all([
        client.execute("query-status", undefined, { signal }),
        client.execute("query-name", undefined, { signal, id: "mine" }), // a caller's id: alike from run to run
      ]),
    ).toEqual(["ours", "the caller's"]);
  });

  test("capabilities other than oob are not enabled", async () => {
    const greeting = {
      QMP: { version: { qemu: { major: 9, minor: 1, micro: 2 }, package: "v9" }, capabilities: ["x"] },
    };
    const server = serve((c) => c.handshake(greeting));
    const client = await connect(server);
    expect(client.greeting.version).toEqual({ major: 9, minor: 1, micro: 2, package: "v9" });
    expect(server.requests[0]).not.toHaveProperty("arguments");
  });

  test("exec-oob is refused locally when oob was not negotiated, and nothing is sent", async () => {
    const server = serve((c) => c.handshake(V01_GREETING));
    const client = await connect(server);
    expect(await rejection(client.execute("query-status", undefined, { oob: true }))).toBeInstanceOf(
      NegotiationError,
    );
    expect(server.requests).toHaveLength(1);
  });

  test("a greeting that is not JSON is a GreetingError naming the address and quoting what came", async () => {
    const server = serve((c) => c.send("SSH-2.0-OpenSSH_9.2\r\nmore\r\n"));
    const error = await rejection(connect(server));
    expect(error).toBeInstanceOf(GreetingError);
    expect(error.message).toBe(`${server.path} is not a QMP server: it sent "SSH-2.0-OpenSSH_9.2"`);
  });

  /** The error connecting to a peer that sends `first`, then (50 ms later) `then`. */
  async function inTwoChunks(first: string, then: string) {
    const server = serve(async (c) => {
      c.send(first);
      await Bun.sleep(50);
      c.send(then);
    });
    return { path: server.path, message: (await rejection(connect(server))).message };
  }

  test("what is quoted is the start of what came (its first chunk), even when the fault is in a later one", async () => {
    const { path, message } = await inTwoChunks('{"QMP": {"version"', " garbage}}\r\n");
    expect(message).toBe(`${path} is not a QMP server: it sent "{\\"QMP\\": {\\"version\\""`);
  });

  test("a blank line first (a getty's) is not what is quoted: the first chunk with something in it is", async () => {
    const { path, message } = await inTwoChunks("\r\n", "login: ");
    expect(message).toBe(`${path} is not a QMP server: it sent "login: "`);
    const blanksFirst = await inTwoChunks("\n".repeat(300) + "login: ", "");
    expect(blanksFirst.message).toBe(`${blanksFirst.path} is not a QMP server: it sent "login: "`);
  });

  test("a greeting over the size limit says so, not that the peer is no QMP server", async () => {
    const server = serve((c) => c.send(`{"QMP": "${"A".repeat(4096)}`));
    const error = await rejection(connect(server, { maxMessageBytes: 1024 }));
    expect(error.message).toBe(`${server.path}: a message exceeded the limit of 1024 bytes`);
  });

  test("a JSON greeting without QMP is a GreetingError naming the address", async () => {
    const server = serve((c) => c.sendJson({ hello: "world" }));
    const error = await rejection(connect(server));
    expect(error).toBeInstanceOf(GreetingError);
    expect(error.code).toBe("GREETING");
    expect(error.message).toBe(`${server.path} did not send a QMP greeting: {"hello":"world"}`);
    expect(server.requests).toEqual([]);
  });

  test("an event before the greeting (QEMU broadcasts RESUME at start-up) does not stand in for it", async () => {
    const server = serve(async (c) => {
      c.sendJson({ timestamp: { seconds: 1, microseconds: 2 }, event: "RESUME" });
      await c.handshake();
      c.reply(await c.nextRequest(), { status: "running" });
    });
    const client = await connect(server);
    expect(client.greeting.version.major).toBe(7);
    expect(await client.execute("query-status")).toEqual({ status: "running" });
  });

  test("a peer that closes before greeting is a GreetingError", async () => {
    const server = serve((c) => c.close());
    const error = await rejection(connect(server));
    expect(error).toBeInstanceOf(GreetingError);
    expect(error.message).toBe(`${server.path} closed the connection before its QMP greeting`);
  });

  test("no greeting within connectTimeout: ConnectTimeoutError saying another client may hold the monitor", async () => {
    const server = serve(() => {});
    const started = performance.now();
    const error = await rejection(connect(server, { connectTimeout: 300 }));
    expect(performance.now() - started).toBeLessThan(5000);
    expect(error).toBeInstanceOf(ConnectTimeoutError);
    expect(error).toBeInstanceOf(ConnectionError);
    expect(error.noGreeting).toBe(true);
    expect(error.message).toBe(
      `no QMP greeting from ${server.path} within 300ms: another client may hold the monitor (QEMU serves one client at a time), QEMU may be stopped or hung, or it is no QMP monitor`,
    );
  });

  test("JSON.stringify of a client shows its address only", async () => {
    const server = serve((c) => c.handshake());
    const client = await connect(server);
    expect(JSON.parse(JSON.stringify(client))).toEqual({
      address: { kind: "unix", path: server.path, text: server.path },
    });
  });

  test.each([Infinity, 2 ** 31, 30 * 24 * 3600e3])(
    "connectTimeout %p: no bound (or ~24.8 days), not an error at once",
    async (ms) => {
      const server = serve(() => {}); // never greets
      const started = performance.now();
      const error = await rejection(connect(server, { connectTimeout: ms, signal: AbortSignal.timeout(300) }));
      expect(error).toBeInstanceOf(TimeoutError); // the caller's signal ended it, not connectTimeout
      expect(performance.now() - started).toBeGreaterThan(250);
    },
  );

  test("a greeting begun but unfinished within connectTimeout: ConnectTimeoutError saying how much came", async () => {
    const server = serve((c) => c.send('{"QMP": {"version": {')); // 21 bytes, then nothing
    const started = performance.now();
    const error = await rejection(connect(server, { connectTimeout: 300 }));
    expect(performance.now() - started).toBeLessThan(5000);
    expect(error).toBeInstanceOf(ConnectTimeoutError);
    expect(error.message).toBe(`no whole QMP greeting from ${server.path} within 300ms: it had sent 21 bytes of it`);
    // The caller's own signal says the same of it.
    const timedOut = await rejection(connect(server, { signal: AbortSignal.timeout(200) }));
    expect(timedOut).toBeInstanceOf(TimeoutError);
    expect(timedOut.message).toBe(
      `timed out waiting for the whole QMP greeting from ${server.path}: it had sent 21 bytes of it`,
    );
  });

  test("blanks and an event before a greeting that never comes: the busy-monitor hint still holds", async () => {
    const server = serve((c) => c.send('\r\n{"event": "RESUME", "timestamp": {"seconds": 1, "microseconds": 0}}\r\n'));
    const error = await rejection(connect(server, { connectTimeout: 300 }));
    expect(error).toBeInstanceOf(ConnectTimeoutError);
    expect(error.message).toStartWith(`no QMP greeting from ${server.path} within 300ms: another client may hold`);
  });

  test("the caller's signal ends connecting with TimeoutError or AbortedError", async () => {
    const server = serve(() => {});
    const timedOut = await rejection(connect(server, { signal: AbortSignal.timeout(100) }));
    expect(timedOut).toBeInstanceOf(TimeoutError);
    const controller = new AbortController();
    const pending = connect(server, { signal: controller.signal });
    setTimeout(() => controller.abort(), 50);
    expect(await rejection(pending)).toBeInstanceOf(AbortedError);
  });

  test("a refused qmp_capabilities is a NegotiationError", async () => {
    const server = serve(async (c) => {
      c.sendJson(QEMU_GREETING);
      const request = await c.nextRequest();
      c.sendJson({ error: { class: "GenericError", desc: "no way" }, id: request.id });
    });
    const error = await rejection(connect(server));
    expect(error).toBeInstanceOf(NegotiationError);
    expect(error.message).toBe(`${server.path} refused qmp_capabilities: GenericError: no way`);
  });

  test("a close right after the greeting is a DisconnectedError during negotiation", async () => {
    const server = serve(async (c) => {
      c.sendJson(QEMU_GREETING);
      await c.nextRequest();
      c.close();
    });
    const error = await rejection(connect(server));
    expect(error).toBeInstanceOf(DisconnectedError);
    expect(error.message).toBe(
      `${server.path} closed the connection during capabilities negotiation before the reply to qmp_capabilities`,
    );
  });

  test("subscribe: events sent in the same write as the qmp_capabilities answer reach a subscription made there", async () => {
    const server = serve(async (c) => {
      c.sendJson(QEMU_GREETING);
      const request = await c.nextRequest();
      c.send(
        JSON.stringify({ return: {}, id: request.id }) + "\r\n" +
          JSON.stringify({ event: "STOP", timestamp: { seconds: 1, microseconds: 0 } }) + "\r\n",
      );
    });
    let early: ReturnType<QmpClient["events"]> | undefined;
    const client = await connect(server, { subscribe: (c) => (early = c.events()) });
    const late = client.events();
    const [event] = await early!.nextBatch();
    expect(event).toEqual({ event: "STOP", timestamp: { seconds: 1, microseconds: 0 } });
    client.close();
    expect(await late.nextBatch()).toEqual([]); // subscribed after connect returned: too late for it
  });

  test("a socket that does not exist is a ConnectionError naming the address and the reason", async () => {
    const error = await rejection(QmpClient.connect("/nonexistent/qmpctl-test.sock"));
    expect(error).toBeInstanceOf(ConnectionError);
    expect(error.message).toBe("cannot connect to /nonexistent/qmpctl-test.sock: no such socket (ENOENT)");
  });
});

describe("execute", () => {
  test("arguments that are not JSON (a cycle), or that QEMU's parser would refuse: an ArgumentError, nothing sent, later calls unaffected", async () => {
    const answering = serve(async (c) => {
      await c.handshake();
      for (;;) {
        const request = await c.nextRequest();
        c.reply(request, { answered: request.execute });
      }
    });
    const client = await connect(answering);
    const cycle: Record<string, unknown> = {};
    cycle.self = cycle;
    const bad = await rejection(client.execute("query-name", cycle, { inOrder: true }));
    expect(bad).toBeInstanceOf(ArgumentError);
    expect(bad.message).toStartWith("query-name: its arguments are not JSON: ");
    // QEMU would answer these with errors that have no id, which end the session for every call.
    const surrogate = await rejection(client.execute("qom-get", { property: "\ud83d" }));
    expect(surrogate.message).toBe(
      "qom-get: QEMU's parser would refuse it: JSON parse error, \\ud83d is not a valid Unicode character",
    );
    for (const depth of [1100, 200_000]) { // deeper than the stack JSON.stringify and the checks could walk
      let deep: unknown = [];
      for (let i = 0; i < depth; i++) deep = [deep];
      expect((await rejection(client.execute("query-name", { deep }))).message).toBe(
        "query-name: QEMU's parser would refuse it: JSON nesting depth limit exceeded",
      );
    }
    const signal = AbortSignal.timeout(2000);
    const [name, status] = await Promise.all([
      client.execute("query-name", undefined, { inOrder: true, signal }),
      client.execute("query-status", undefined, { inOrder: true, signal }),
    ]);
    expect([name, status]).toEqual([{ answered: "query-name" }, { answered: "query-status" }]);
    expect(answering.requests.map((r) => r.execute)).toEqual(["qmp_capabilities", "query-name", "query-status"]);
  });

  test("numbers go out exactly: a BigInt, a whole number past 2^53 as the integer it holds, exactNumber's text as written", async () => {
    const answering = serve(async (c) => {
      await c.handshake();
      for (;;) c.reply(await c.nextRequest(), { ok: true });
    });
    const sent: string[] = [];
    const client = await connect(answering, { log: (direction, json) => direction === "send" && sent.push(json) });
    await client.execute("x-set", {
      big: 18446744073709551615n,
      negative: -(2n ** 63n),
      double: 2 ** 60, // JSON.stringify alone: 1152921504606847000, another integer to QEMU
      past64: [2 ** 64, -(2 ** 70), 1e21], // JSON.stringify alone: 18446744073709552000, ..., 1e+21
      text: exactNumber("0.10000000000000000001"),
      plain: [1.5, -0, 9007199254740991],
    }, { inOrder: true });
    expect(sent.at(-1)).toBe(
      '{"execute":"x-set","arguments":{"big":18446744073709551615,"negative":-9223372036854775808,' +
        '"double":1152921504606846976,"past64":[18446744073709551616,-1180591620717411303424,' +
        '1000000000000000000000],"text":0.10000000000000000001,"plain":[1.5,0,9007199254740991]}}',
    );
    // A BigInt as the id, alone or inside one: sent as its digits, its reply matched.
    expect(await client.execute("x", undefined, { id: 18446744073709551615n })).toEqual({ ok: true });
    expect(await client.execute("x", undefined, { id: { n: 5n } })).toEqual({ ok: true });
    expect(sent.slice(-2)).toEqual(['{"execute":"x","id":18446744073709551615}', '{"execute":"x","id":{"n":5}}']);
    expect(() => exactNumber('"1"')).toThrow(SyntaxError);
    expect(() => exactNumber("1x")).toThrow(SyntaxError);
  });

  test("NaN or ±Infinity in arguments (JSON.stringify's null) is an ArgumentError naming the value; nothing sent", async () => {
    const answering = serve(async (c) => {
      await c.handshake();
      for (;;) c.reply(await c.nextRequest(), { ok: true });
    });
    const client = await connect(answering);
    const cases: [Record<string, unknown>, string][] = [
      [{ ratio: NaN }, '"ratio" is NaN'],
      [{ limits: [1, Infinity] }, '"1" is Infinity'],
      [{ nested: { low: -Infinity }, path: "/dev/null" }, '"low" is -Infinity'],
    ];
    for (const [args, what] of cases) {
      const error = await rejection(client.execute("x-set", args));
      expect(error).toBeInstanceOf(ArgumentError);
      expect(error.message).toBe(`x-set: its arguments are not JSON: ${what}, which JSON has no number for`);
    }
    expect(await client.execute("x-set", { nothing: null, path: "/dev/null" })).toEqual({ ok: true });
    expect(answering.requests.map((r) => r.execute)).toEqual(["qmp_capabilities", "x-set"]);
  });

  test("the client's own ids skip one a caller chose in their form (qmpctl-TAG-N) while it waits", async () => {
    const server = serve(async (c) => {
      await c.handshake();
      for (;;) {
        const request = await c.nextRequest();
        c.reply(request, request.execute);
      }
    });
    const client = await connect(server);
    const [, prefix, n] = OWN_ID.exec(server.requests[0].id as string)!; // qmp_capabilities took the last one
    const own = (k: number) => `${prefix}${Number(n) + k}`;
    const results: PromiseSettledResult<unknown>[] = await Promise.allSettled([
      client.execute("query-name", undefined, { id: own(1) }),
      client.execute("query-status"),
      client.execute("query-kvm", undefined, { id: own(3) }),
      client.execute("query-uuid"),
    ]);
    expect(results).toEqual(
      ["query-name", "query-status", "query-kvm", "query-uuid"].map((value) => ({ status: "fulfilled", value })),
    );
    expect(server.requests.slice(1).map((r) => r.id)).toEqual([own(1), own(2), own(3), own(4)]);
    // A caller's id that a call still waits on is refused, as before.
    const first = client.execute("a", undefined, { id: "mine" });
    expect(await rejection(client.execute("b", undefined, { id: "mine" }))).toBeInstanceOf(ArgumentError);
    expect(await first).toBe("a");
  });

  test("sends the command with arguments and an id of its own, and returns the return value", async () => {
    const server = serve(async (c) => {
      await c.handshake();
      const request = await c.nextRequest();
      c.reply(request, { status: "running", args: request.arguments });
    });
    const client = await connect(server);
    expect(await client.execute("query-status", { a: [1] })).toEqual({ status: "running", args: { a: [1] } });
    const request = server.requests[1];
    expect(request).toEqual({ execute: "query-status", arguments: { a: [1] }, id: expect.any(String) });
    expect(request.id).not.toBe(server.requests[0].id);
  });

  test("a caller's id of any JSON type is sent and matched, also when QEMU reorders an object id", async () => {
    const ids = [0, 1.5, -7, "qmpctl-1", "", true, false, null, [1, "a", {}], { b: 1, a: { d: [2], c: 3 } }];
    const server = serve(async (c) => {
      await c.handshake();
      for (let i = 0; i < ids.length; i++) {
        const request = await c.nextRequest();
        // QEMU's dictionaries are hash tables: it echoes members in another order.
        const id = typeof request.id === "object" && request.id !== null && !Array.isArray(request.id)
          ? Object.fromEntries(Object.entries(request.id).reverse())
          : request.id;
        c.sendJson({ return: i, id });
      }
    });
    const client = await connect(server);
    for (let i = 0; i < ids.length; i++) {
      expect(await client.execute("x", undefined, { id: ids[i] })).toBe(i);
      expect(server.requests.at(-1)!.id).toEqual(ids[i]);
    }
  });

  test("a reply with an unknown id is dropped; the right one still resolves the call", async () => {
    const server = serve(async (c) => {
      await c.handshake();
      const request = await c.nextRequest();
      c.sendJson({ return: "wrong", id: "not-ours" });
      c.sendJson({ return: "wrong too", id: { other: request.id } });
      c.reply(request, "right");
    });
    const client = await connect(server);
    expect(await client.execute("query-status")).toBe("right");
  });

  test("late replies to a caller's id abandoned twice are both dropped; the client still works", async () => {
    const server = serve(async (c) => {
      await c.handshake();
      const [first, second] = [await c.nextRequest(), await c.nextRequest()];
      const third = await c.nextRequest();
      c.reply(first, "late 1");
      c.reply(second, "late 2");
      c.reply(third, "third");
    });
    const client = await connect(server);
    for (const command of ["a", "b"]) {
      const error = await rejection(
        client.execute(command, undefined, { id: "mine", signal: AbortSignal.timeout(50) }),
      );
      expect(error).toBeInstanceOf(TimeoutError);
    }
    expect(await client.execute("c")).toBe("third");
    await Bun.sleep(20);
    expect(await Promise.race([client.closed, Bun.sleep(50).then(() => "open")])).toBe("open");
  });

  test("onReply gets the whole response, every member in QEMU's order, without qmpctl's id", async () => {
    const server = serve(async (c) => {
      await c.handshake();
      const request = await c.nextRequest();
      c.send(`{"extra": 5, "return": {"a": 1}, "id": ${JSON.stringify(request.id)}, "more": [1]}\r\n`);
    });
    const client = await connect(server);
    let response: Record<string, unknown> | undefined;
    expect(await client.execute("x", undefined, { onReply: (r) => (response = r) })).toEqual({ a: 1 });
    expect(JSON.stringify(response)).toBe('{"extra":5,"return":{"a":1},"more":[1]}');
  });

  test("replies are matched by id when they come in another order", async () => {
    const server = serve(async (c) => {
      await c.handshake();
      const first = await c.nextRequest();
      const second = await c.nextRequest();
      c.reply(second, "second");
      c.reply(first, "first");
    });
    const client = await connect(server);
    expect(await Promise.all([client.execute("a"), client.execute("b")])).toEqual(["first", "second"]);
  });

  test("an error reply is a CommandError with QEMU's class, desc and the response without our id", async () => {
    const server = serve(async (c) => {
      await c.handshake();
      const request = await c.nextRequest();
      c.sendJson({
        error: { class: "CommandNotFound", desc: "The command nosuch has not been found" },
        id: request.id,
      });
    });
    const client = await connect(server);
    const error = await rejection(client.execute("nosuch")) as CommandError;
    expect(error).toBeInstanceOf(CommandError);
    expect(error.code).toBe("COMMAND");
    expect(error.errorClass).toBe("CommandNotFound");
    expect(error.desc).toBe("The command nosuch has not been found");
    expect(error.message).toBe("CommandNotFound: The command nosuch has not been found");
    expect(error.command).toBe("nosuch");
    expect(error.response).toEqual({
      error: { class: "CommandNotFound", desc: "The command nosuch has not been found" },
    });
  });

  test("an old server's error.data is accepted and kept", async () => {
    const server = serve(async (c) => {
      await c.handshake(V01_GREETING);
      const request = await c.nextRequest();
      c.sendJson({
        error: { class: "DeviceNotFound", desc: "Device 'x' not found", data: { device: "x" } },
        id: request.id,
      });
    });
    const client = await connect(server);
    const error = await rejection(client.execute("eject", { device: "x" })) as CommandError;
    expect(error.errorClass).toBe("DeviceNotFound");
    expect(error.response).toEqual({
      error: { class: "DeviceNotFound", desc: "Device 'x' not found", data: { device: "x" } },
    });
  });

  test("an error without an id ends the session: every pending call and subscription gets QEMU's error", async () => {
    const server = serve(async (c) => {
      await c.handshake();
      await c.nextRequest();
      await c.nextRequest();
      c.sendJson({ error: { class: "GenericError", desc: "JSON parse error, invalid keyword 'x'" } });
    });
    const client = await connect(server);
    const events = client.events();
    const first = rejection(client.execute("query-status"));
    const second = rejection(client.execute("query-name"));
    const error = await first;
    expect(error).toBeInstanceOf(UnparsedRequestError);
    expect(error).toBeInstanceOf(CommandError); // QEMU's answer, not a fault of the connection
    expect(error).toMatchObject({ errorClass: "GenericError", code: "UNPARSED_REQUEST" });
    expect(error.message).toBe(
      `${server.path} could not parse a request (an error without an id): GenericError: JSON parse error, invalid keyword 'x'`,
    );
    expect(await second).toBe(error);
    expect(await client.closed).toBe(error);
    expect(await events.nextBatch().catch((e) => e)).toBe(error);
  });

  test("an error without an id while no call waits ends the session too", async () => {
    const server = serve(async (c) => {
      await c.handshake();
      c.sendJson({ error: { class: "GenericError", desc: "Invalid JSON syntax" } });
    });
    const client = await connect(server);
    const error = await client.closed;
    expect(error).toBeInstanceOf(UnparsedRequestError);
    expect(await rejection(client.execute("query-status"))).toBe(error!);
  });

  test("a reply without an id is a ProtocolError that ends the connection", async () => {
    const server = serve(async (c) => {
      await c.handshake();
      await c.nextRequest();
      c.sendJson({ return: {} });
    });
    const client = await connect(server);
    const error = await rejection(client.execute("query-status"));
    expect(error).toBeInstanceOf(ProtocolError);
    expect(error.message).toBe(`${server.path}: received a reply without an id: {"return":{}}`);
    expect(await client.closed).toBe(error);
  });

  test("a message that is neither reply nor event is a ProtocolError", async () => {
    const server = serve(async (c) => {
      await c.handshake();
      await c.nextRequest();
      c.sendJson({ what: 1 });
    });
    const client = await connect(server);
    expect(await rejection(client.execute("query-status"))).toBeInstanceOf(ProtocolError);
  });

  test("events before, between and after replies are events, never replies", async () => {
    const server = serve(async (c) => {
      c.sendJson(QEMU_GREETING);
      const negotiate = await c.nextRequest();
      c.sendJson({ event: "EARLY", data: {}, timestamp: { seconds: 1, microseconds: 0 } });
      c.reply(negotiate, {});
      const request = await c.nextRequest();
      // An event that carries the request's id in its data, and one that shares a member name with replies.
      c.sendJson({ event: "STOP", data: { id: request.id }, timestamp: { seconds: 2, microseconds: 0 } });
      c.sendJson({ event: "RESUME", id: request.id, timestamp: { seconds: 3, microseconds: 0 } });
      c.reply(request, "reply");
      c.sendJson({ event: "LATE", timestamp: { seconds: 4, microseconds: 0 } });
    });
    const client = await connect(server);
    const events = client.events();
    expect(await client.execute("stop")).toBe("reply");
    const names: string[] = [];
    for await (const event of events) {
      names.push(event.event);
      if (names.length === 3) break;
    }
    expect(names).toEqual(["STOP", "RESUME", "LATE"]);
  });

  test("5000 events before the reply: the reply still resolves and every event is kept", async () => {
    const server = serve(async (c) => {
      await c.handshake();
      const request = await c.nextRequest();
      let text = "";
      for (let i = 0; i < 5000; i++) text += JSON.stringify({ event: "E", data: { i } }) + "\r\n";
      c.send(text);
      c.reply(request, "done");
    });
    const client = await connect(server);
    const events = client.events();
    expect(await client.execute("x")).toBe("done");
    let count = 0;
    for await (const event of events) {
      expect(event.data).toEqual({ i: count });
      if (++count === 5000) break;
    }
    expect(count).toBe(5000);
  });
});

describe("events and other messages in one chunk", () => {
  const event = (name: string) => JSON.stringify({ event: name, timestamp: { seconds: 1, microseconds: 0 } }) + "\r\n";

  test("events before a fault in the same chunk are delivered, then the ProtocolError", async () => {
    const server = serve(async (c) => {
      await c.handshake();
      await c.nextRequest();
      c.send(event("A") + event("B") + "garbage\r\n");
    });
    const client = await connect(server);
    const events = client.events();
    const call = rejection(client.execute("query-status"));
    const error = await call;
    expect(error).toEqual(new ProtocolError(`${server.path}: expected a JSON object, got "garbage"`));
    expect((await events.nextBatch()).map((e) => e.event)).toEqual(["A", "B"]);
    expect(await events.nextBatch().catch((e) => e)).toBe(error);
  });

  test("events around a reply in one chunk keep their order, and the reply resolves its call", async () => {
    const server = serve(async (c) => {
      await c.handshake();
      const request = await c.nextRequest();
      c.send(event("BEFORE") + JSON.stringify({ return: "done", id: request.id }) + "\r\n" + event("AFTER"));
    });
    const client = await connect(server);
    const events = client.events({ names: ["BEFORE", "AFTER"] });
    expect(await client.execute("stop")).toBe("done");
    expect((await events.nextBatch()).map((e) => e.event)).toEqual(["BEFORE", "AFTER"]);
  });
});

describe("bytes on the wire", () => {
  test("one byte per write: greeting and reply are read whole", async () => {
    const server = serve(async (c) => {
      await c.sendSlowly(JSON.stringify(QEMU_GREETING) + "\r\n");
      const negotiate = await c.nextRequest();
      await c.sendSlowly(JSON.stringify({ return: {}, id: negotiate.id }) + "\r\n");
      const request = await c.nextRequest();
      await c.sendSlowly(JSON.stringify({ return: { text: "é😀" }, id: request.id }) + "\r\n");
    });
    const client = await connect(server);
    expect(await client.execute("x")).toEqual({ text: "é😀" });
  });

  test("pretty=on replies spread over many CRLF lines are read as one message each", async () => {
    const server = serve(async (c) => {
      c.send(JSON.stringify(QEMU_GREETING, null, 4).replaceAll("\n", "\r\n") + "\r\n");
      const negotiate = await c.nextRequest();
      c.send(JSON.stringify({ return: {}, id: negotiate.id }, null, 4).replaceAll("\n", "\r\n") + "\r\n");
      const request = await c.nextRequest();
      c.send(JSON.stringify({ return: { a: [1, { b: "}" }] }, id: request.id }, null, 4).replaceAll("\n", "\r\n"));
      c.send("\r\n");
    });
    const client = await connect(server);
    expect(await client.execute("x")).toEqual({ a: [1, { b: "}" }] });
  });

  test("invalid UTF-8 in a reply becomes U+FFFD", async () => {
    const server = serve(async (c) => {
      await c.handshake();
      const request = await c.nextRequest();
      const encoder = new TextEncoder();
      c.send(
        new Uint8Array([
          ...encoder.encode('{"return": "a'),
          0xff,
          0xfe,
          ...encoder.encode(`b", "id": ${JSON.stringify(request.id)}}\r\n`),
        ]),
      );
    });
    const client = await connect(server);
    expect(await client.execute("x")).toBe("a\uFFFD\uFFFDb");
  });

  test("a reply over maxMessageBytes fails the call with MessageTooLargeError and ends the connection", async () => {
    const server = serve(async (c) => {
      await c.handshake();
      const request = await c.nextRequest();
      c.reply(request, "x".repeat(10_000));
    });
    const client = await connect(server, { maxMessageBytes: 1000 });
    const error = await rejection(client.execute("x"));
    expect(error).toBeInstanceOf(MessageTooLargeError);
    expect(error.message).toBe(`${server.path}: a message exceeded the limit of 1000 bytes`);
    expect(await client.closed).toBe(error);
  });

  test("a 20 MB reply is read whole", async () => {
    const big = Array.from({ length: 200_000 }, (_, i) => ({ i, name: `node-${i}-é`, pad: "x".repeat(60) }));
    const server = serve(async (c) => {
      await c.handshake();
      const request = await c.nextRequest();
      c.reply(request, big);
    });
    const client = await connect(server);
    const value = await client.execute("x");
    expect(JSON.stringify(value).length).toBeGreaterThan(20_000_000);
    expect(value).toEqual(big);
  });

  test("a close in the middle of a reply is a DisconnectedError that says so", async () => {
    const server = serve(async (c) => {
      await c.handshake();
      await c.nextRequest();
      c.send('{"return": {"status": "runn');
      c.close();
    });
    const client = await connect(server);
    const error = await rejection(client.execute("query-status"));
    expect(error).toBeInstanceOf(DisconnectedError);
    expect(error.message).toBe(
      `${server.path} closed the connection in the middle of a message before the reply to query-status`,
    );
  });
});

describe("cancellation and close", () => {
  test("connect with a signal already aborted rejects, and leaves no unhandled rejection behind (exit 0)", () => {
    const client = new URL("../lib/client.ts", import.meta.url).pathname;
    const script = `import { QmpClient } from ${JSON.stringify(client)};
      const signal = AbortSignal.abort();
      const error = await QmpClient.connect("/nonexistent/qmp.sock", { signal }).catch((e) => e);
      await new Promise((resolve) => setTimeout(resolve, 100)); // the abandoned connect fails meanwhile
      console.log(error.name);`;
    const run = Bun.spawnSync([process.execPath, "-e", script], { stdout: "pipe", stderr: "pipe" });
    expect({ code: run.exitCode, stdout: run.stdout.toString(), stderr: run.stderr.toString() }).toEqual({
      code: 0,
      stdout: "AbortedError\n",
      stderr: "",
    });
  });

  test("a signal that times out rejects with TimeoutError; the late reply is dropped; the client still works", async () => {
    let sendLate = () => {};
    const server = serve(async (c) => {
      await c.handshake();
      const slow = await c.nextRequest();
      sendLate = () => c.reply(slow, "late");
      const next = await c.nextRequest();
      sendLate();
      c.reply(next, "next");
    });
    const client = await connect(server);
    const error = await rejection(client.execute("slow", undefined, { signal: AbortSignal.timeout(100) }));
    expect(error).toBeInstanceOf(TimeoutError);
    expect(error.code).toBe("TIMEOUT");
    expect(error.message).toBe(`timed out waiting for the reply to slow from ${server.path}`);
    expect(await client.execute("next")).toBe("next");
  });

  test("an aborted call's id is forgotten: the same caller id can be used again", async () => {
    const server = serve(async (c) => {
      await c.handshake();
      await c.nextRequest();
      c.reply(await c.nextRequest(), "second");
    });
    const client = await connect(server);
    const controller = new AbortController();
    const first = client.execute("a", undefined, { id: "mine", signal: controller.signal });
    await Bun.sleep(20);
    controller.abort();
    const error = await rejection(first);
    expect(error).toBeInstanceOf(AbortedError);
    expect(error.message).toBe(`aborted while waiting for the reply to a from ${server.path}`);
    expect(await client.execute("b", undefined, { id: "mine" })).toBe("second");
  });

  test("an already aborted signal rejects at once and sends nothing", async () => {
    const server = serve((c) => c.handshake());
    const client = await connect(server);
    const error = await rejection(client.execute("x", undefined, { signal: AbortSignal.abort() }));
    expect(error).toBeInstanceOf(AbortedError);
    await Bun.sleep(20);
    expect(server.requests).toHaveLength(1);
  });

  test("close() rejects every pending call with DisconnectedError and later calls too", async () => {
    const server = serve(async (c) => {
      await c.handshake();
    });
    const client = await connect(server);
    const pending = [client.execute("a"), client.execute("b")];
    const closed = client.close();
    for (const call of pending) {
      const error = await rejection(call);
      expect(error).toBeInstanceOf(DisconnectedError);
      expect(error.code).toBe("DISCONNECTED");
    }
    expect(await rejection(pending[0])).toHaveProperty(
      "message",
      "the client closed the connection before the reply to a",
    );
    expect(await closed).toBeUndefined();
    expect(await rejection(client.execute("c"))).toBeInstanceOf(DisconnectedError);
  });

  test("the server closing ends pending calls with DisconnectedError and settles closed", async () => {
    const server = serve(async (c) => {
      await c.handshake();
      await c.nextRequest();
      c.close();
    });
    const client = await connect(server);
    const error = await rejection(client.execute("quit"));
    expect(error).toBeInstanceOf(DisconnectedError);
    expect(error.message).toBe(`${server.path} closed the connection before the reply to quit`);
    expect(await client.closed).toBeUndefined();
  });
});

describe("closed by the caller while connecting", () => {
  const expectClosedByCaller = async (pending: Promise<unknown>, before: string) => {
    const error = await rejection(pending);
    expect(error).toBeInstanceOf(DisconnectedError);
    expect(error.message).toBe(`the client closed the connection before ${before}`);
  };

  test("before the greeting (from subscribe, at once or a moment later): a DisconnectedError saying the client closed it", async () => {
    const greeting = serve((c) => c.handshake());
    const silent = serve(() => {});
    const before = (server: FakeServer) => `the QMP greeting from ${server.path}`;
    await expectClosedByCaller(connect(greeting, { subscribe: (c) => void c.close() }), before(greeting));
    await expectClosedByCaller(
      connect(greeting, { subscribe: (c) => queueMicrotask(() => c.close()) }),
      before(greeting),
    );
    await expectClosedByCaller(
      connect(silent, { subscribe: (c) => void setTimeout(() => c.close(), 50) }),
      before(silent),
    );
  });

  test("during negotiation: a DisconnectedError, as close() gives every pending call", async () => {
    const server = serve(async (c) => {
      c.sendJson(QEMU_GREETING);
      await c.nextRequest(); // never answered
    });
    let client!: QmpClient;
    const pending = connect(server, {
      subscribe: (c) => void (client = c),
      log: (direction) => direction === "send" && queueMicrotask(() => client.close()),
    });
    await expectClosedByCaller(pending, "the reply to qmp_capabilities");
  });

  test("connectWhenReady does not retry it: one try, the caller's close reported", async () => {
    const server = serve((c) => c.handshake());
    let tries = 0;
    const pending = connectWhenReady(server.path, {
      waitMs: 2000,
      subscribe: (c) => void (tries++, queueMicrotask(() => c.close())),
    });
    await expectClosedByCaller(pending, `the QMP greeting from ${server.path}`);
    expect(tries).toBe(1);
    expect(isNotReady(await rejection(pending))).toBe(false);
  });
});

describe("connectWhenReady", () => {
  test("its error once the time is up is still 'not ready' (isNotReady), as each try's was", async () => {
    const missing = "/nonexistent/vm.qmp";
    const error = await rejection(connectWhenReady(missing, { waitMs: 100 }));
    expect(error).toBeInstanceOf(ConnectionError);
    expect(error.message).toBe(
      `cannot connect to ${missing}: no such socket (ENOENT) (still so after 100ms of retries)`,
    );
    expect(isNotReady(error)).toBe(true);
  });
});
