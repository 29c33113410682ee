/**
 * `qmpctl proxy -s UPSTREAM --listen PATH` in front of a real QEMU: socat,
 * qmpctl's own commands and raw pipelining clients all share the one monitor.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, statSync } from "node:fs";
import { qmpctl } from "./helpers/cli.ts";
import { startListener } from "./helpers/listener.ts";
import {
  negotiatedClient,
  rawClient,
  type RunningProxy,
  startProxiedQemu,
  startProxy,
  stopProxiedQemu,
} from "./helpers/proxy.ts";
import type { TestQemu } from "./helpers/qemu.ts";

let qemu: TestQemu;
let proxy: RunningProxy;
let shared: string;

beforeAll(async () => ({ qemu, proxy, shared } = await startProxiedQemu()));
afterAll(() => stopProxiedQemu({ qemu, proxy }));

/** What socat prints for `requests` sent to `path`, one parsed message a line. */
async function socat(path: string, requests: string): Promise<Record<string, unknown>[]> {
  const child = Bun.spawn(["socat", "-t", "2", "-", `UNIX-CONNECT:${path}`], {
    stdin: new Blob([requests]),
    stdout: "pipe",
  });
  const killer = setTimeout(() => child.kill("SIGKILL"), 10_000);
  const text = await new Response(child.stdout).text();
  clearTimeout(killer);
  expect(await child.exited).toBe(0);
  return text.trim().split("\n").map((line) => JSON.parse(line));
}

describe("proxy: each client sees a normal QEMU", () => {
  test("the socket is created with mode 0600", () => {
    expect(statSync(shared).mode & 0o777).toBe(0o600);
  });

  test("socat gets QEMU's own greeting, a local qmp_capabilities and its replies with its ids", async () => {
    const messages = await socat(
      shared,
      '{"execute":"qmp_capabilities"}\n{"execute":"query-version","id":"v"}\n{"execute":"query-status"}\n',
    );
    const version = await qemu.control.execute("query-version");
    expect(messages[0]).toEqual({
      QMP: { version, capabilities: ["oob"] },
    });
    expect(messages.slice(1).filter((m) => !("event" in m))).toEqual([
      { return: {} },
      { return: version, id: "v" },
      { return: await qemu.control.execute("query-status") },
    ]);
  });

  test("qmpctl exec, shell and three wait-event STOP share the monitor at once", async () => {
    const waiters = [0, 1, 2].map(() => startListener(["-s", shared, "wait-event", "STOP", "--timeout", "20s"]));
    await Promise.all(waiters.map((w) => w.ready));
    const shell = await qmpctl(["-s", shared, "shell"], { stdin: "query-status\nquery-name\n" });
    expect(shell).toMatchObject({ code: 0, stderr: "" });
    expect(shell.stdout.trim().split("\n").map((l) => JSON.parse(l))).toEqual([
      { return: await qemu.control.execute("query-status") },
      { return: {} },
    ]);
    const stop = await qmpctl(["-s", shared, "exec", "stop"]);
    expect(stop).toMatchObject({ code: 0, stdout: "{}\n", stderr: "" });
    const results = await Promise.all(waiters.map((w) => w.result));
    for (const result of results) {
      expect(result.code).toBe(0);
      expect(JSON.parse(result.stdout)).toMatchObject({ event: "STOP", timestamp: expect.any(Object) });
    }
    const status = await qmpctl(["-s", shared, "exec", "query-status"]);
    expect(JSON.parse(status.stdout)).toMatchObject({ running: false, status: "paused" });
    await qemu.control.execute("cont");
  });

  test("20 clients × 200 pipelined commands: every reply goes to its sender with its own id, in order", async () => {
    const clients = await Promise.all(Array.from({ length: 20 }, () => negotiatedClient(shared)));
    const idOf = (c: number, i: number): unknown =>
      i % 4 === 0 ? c * 1000 + i : i % 4 === 1 ? `c${c}-${i}` : i % 4 === 2 ? { c, i, path: [c, "x", i] } : undefined;
    for (const [c, { client }] of clients.entries()) {
      for (let i = 0; i < 200; i++) {
        const id = idOf(c, i);
        const command = i % 2 === 0 ? "query-name" : "query-status";
        client.send(id === undefined ? { execute: command } : { execute: command, id });
      }
    }
    const name = await qemu.control.execute("query-name");
    const status = await qemu.control.execute("query-status");
    await Promise.all(clients.map(async ({ client }, c) => {
      const replies = await client.replies(200, 30_000);
      const expected = Array.from({ length: 200 }, (_, i) => {
        const id = idOf(c, i);
        const reply: Record<string, unknown> = { return: i % 2 === 0 ? name : status };
        if (id !== undefined) reply.id = id;
        return reply;
      });
      expect(replies).toEqual(expected);
      expect(replies.filter((r) => !("id" in r))).toHaveLength(50); // no id given, none added
      client.close();
    }));
  });
});

describe("proxy: per-connection commands and negotiation", () => {
  test("commands before qmp_capabilities, a second qmp_capabilities and getfd get QEMU-style errors, in order", async () => {
    const client = await rawClient(shared);
    await client.read(1); // greeting
    client.send({ execute: "query-status", id: 1 });
    client.send({ execute: "qmp_capabilities", arguments: { enable: ["oob"] }, id: 2 });
    client.send({ execute: "query-name", id: 3 });
    client.send({ execute: "qmp_capabilities", id: 4 });
    client.send({ execute: "getfd", arguments: { fdname: "x" }, id: 5 });
    client.send({ execute: "query-name", id: 6 });
    const replies = await client.replies(6);
    expect(replies).toEqual([
      {
        error: { class: "CommandNotFound", desc: "Expecting capabilities negotiation with 'qmp_capabilities'" },
        id: 1,
      },
      { return: {}, id: 2 },
      { return: {}, id: 3 },
      {
        error: { class: "CommandNotFound", desc: "Capabilities negotiation is already complete, command ignored" },
        id: 4,
      },
      {
        error: { class: "GenericError", desc: expect.stringMatching(/^'getfd' is not available through qmpctl proxy/) },
        id: 5,
      },
      { return: {}, id: 6 },
    ]);
    client.close();
  });

  test("malformed requests before negotiation get QEMU 7.2's own errors, and negotiate nothing", async () => {
    const client = await rawClient(shared);
    await client.read(1); // greeting
    const asQemu: [Record<string, unknown>, string][] = [ // each request, and what QEMU 7.2 answers it
      [{ execute: "qmp_capabilities", arguments: { bogus: 1 } }, "Parameter 'bogus' is unexpected"],
      [{ execute: "qmp_capabilities", foo: 1 }, "QMP input member 'foo' is unexpected"],
      [{ execute: "qmp_capabilities", arguments: null }, "QMP input member 'arguments' must be an object"],
      [{ "exec-oob": "qmp_capabilities" }, "QMP input member 'exec-oob' is unexpected"],
      [{ execute: 5 }, "QMP input member 'execute' must be a string"],
      [{}, "QMP input lacks member 'execute'"],
    ];
    asQemu.forEach(([request], i) => client.send({ ...request, id: i }));
    client.send({ execute: "query-name", id: "still-unnegotiated" });
    expect(await client.replies(asQemu.length + 1)).toEqual([
      ...asQemu.map(([, desc], i) => ({ error: { class: "GenericError", desc }, id: i })),
      {
        error: { class: "CommandNotFound", desc: "Expecting capabilities negotiation with 'qmp_capabilities'" },
        id: "still-unnegotiated",
      },
    ]);
    client.close();
  });

  test("exec-oob from a client that did not enable oob gets QEMU 7.2's own error, and nothing runs", async () => {
    const { client } = await negotiatedClient(shared);
    client.send({ "exec-oob": "stop", id: 9 });
    client.send({ execute: "stop", "exec-oob": "x", id: 3 });
    client.send({ execute: "query-status", id: 4 });
    const unexpected = { class: "GenericError", desc: "QMP input member 'exec-oob' is unexpected" };
    expect(await client.replies(3)).toEqual([
      { error: unexpected, id: 9 },
      { error: unexpected, id: 3 },
      { return: { status: "running", singlestep: false, running: true }, id: 4 },
    ]);
    client.close();
  });

  test("input that is not a JSON object gets an id-less error, and the client reads on, as with QEMU", async () => {
    const { client } = await negotiatedClient(shared);
    for (const line of ["[1]", '"text"', "1"]) client.send(line);
    client.send("foo");
    // QEMU 7.2 answers the three JSON values so; of the garbage it says "invalid keyword 'foo'"
    const notAnObject = { error: { class: "GenericError", desc: "QMP input must be a JSON object" } };
    expect(await client.replies(4)).toEqual([
      notAnObject,
      notAnObject,
      notAnObject,
      { error: { class: "GenericError", desc: 'JSON parse error, expected a JSON object, got "foo"' } },
    ]);
    client.send({ execute: "query-name", id: "next" });
    expect(await client.replies(1)).toEqual([{ return: {}, id: "next" }]);
    client.close();
  });

  test("a message that is not UTF-8 is refused, as QEMU refuses it, not sent on with U+FFFD; the next line is read", async () => {
    const { client } = await negotiatedClient(shared);
    const text = (t: string) => [...new TextEncoder().encode(t)];
    client.sendPart(
      new Uint8Array([
        ...text(
          '{"execute": "query-status", "id": "ok"}\n{"execute": "qom-get", "arguments": {"path": "/machine", "property": "caf',
        ),
        0xe9,
        ...text('"}, "id": "bad"}\n{"execute": "query-name", "id": "after"}\n'),
      ]),
    );
    expect(await client.replies(3)).toEqual([
      { return: { status: "running", singlestep: false, running: true }, id: "ok" },
      { error: { class: "GenericError", desc: "JSON parse error, invalid UTF-8 sequence in a message" } },
      { return: {}, id: "after" },
    ]);
    client.close();
  });

  test("a key given twice is refused whole, as QEMU refuses it: a second 'execute' does not run", async () => {
    const { client } = await negotiatedClient(shared);
    const duplicate = { error: { class: "GenericError", desc: "JSON parse error, duplicate key" } };
    client.send('{"execute": "query-name", "execute": "stop", "id": 1}');
    expect(await client.replies(1)).toEqual([duplicate]);
    client.send('{"execute": "query-name", "arguments": {}, "\\u0069d": 2, "id": 3}'); // the same key, escaped
    expect(await client.replies(1)).toEqual([duplicate]);
    client.send({ execute: "query-status", id: "after" });
    expect(await client.replies(1)).toEqual([
      { return: { status: "running", singlestep: false, running: true }, id: "after" }, // stop did not run
    ]);
    client.close();
  });

  test("malformed input in a write: the commands before it are answered, then its error, then those after it", async () => {
    const { client } = await negotiatedClient(shared);
    client.send(
      '{"execute": "stop", "id": "s"}\n{"execute": "query-status", "id": "q"}\n{bad}, "x"\n{"execute": "cont", "id": "c"}',
    );
    expect(await client.replies(4)).toEqual([
      { return: {}, id: "s" },
      { return: { status: "paused", singlestep: false, running: false }, id: "q" },
      { error: { class: "GenericError", desc: expect.stringMatching(/^JSON parse error, /) } },
      { return: {}, id: "c" }, // the line after the malformed one is read, as QEMU reads on
    ]);
    client.close();
  });

  test("a malformed line that goes on over several writes: one error, and the line after it is read", async () => {
    const { client } = await negotiatedClient(shared);
    client.sendPart('[1, {"execute": "stop"}'); // no JSON object: refused at its first byte
    expect(await client.replies(1)).toEqual([
      {
        error: {
          class: "GenericError",
          desc: 'JSON parse error, expected a JSON object, got "[1, {\\"execute\\": \\"stop\\"}"',
        },
      },
    ]);
    client.sendPart(', {"execute": "stop"}'); // the same line goes on: dropped with it
    await Bun.sleep(100);
    client.send(']\n{"execute": "query-name", "id": "next"}');
    expect(await client.replies(1)).toEqual([{ return: {}, id: "next" }]);
    expect((await qemu.control.execute("query-status") as { running: boolean }).running).toBe(true);
    client.close();
  });

  test("a write that ends a message begun in an earlier one, then one more, then garbage: each runs once", async () => {
    const { client } = await negotiatedClient(shared);
    client.sendPart('{"execute": "query-name", "id": "n", "arguments":');
    await Bun.sleep(100);
    // `{}}` ends the first message: read afresh it would pass for a message of its own, then fail.
    client.send('{}}\n{"execute": "stop", "id": "s"} ]');
    expect(await client.replies(3)).toEqual([
      { return: {}, id: "n" },
      { return: {}, id: "s" },
      { error: { class: "GenericError", desc: expect.stringMatching(/^JSON parse error, /) } },
    ]);
    client.send({ execute: "cont", id: "c" }); // stop ran once: a second would have left QEMU paused after cont
    expect(await client.replies(1)).toEqual([{ return: {}, id: "c" }]);
    expect((await qemu.control.execute("query-status") as { running: boolean }).running).toBe(true);
    client.close();
  });

  test.each([
    [
      "a malformed message over several lines is one error, as QEMU gives, not one a line",
      '{"execute": "stop",\n "id": 1,,\n}',
    ],
    [
      "as QEMU's parser, a ']' closing a '{' is no error before the message ends: the lines after go on with it",
      '{"a": [1}\n{"execute": "stop", "id": "swallowed"}\n]',
    ],
  ])("%s (in one write; the stop in it is not run)", async (_what, malformed) => {
    const { client } = await negotiatedClient(shared);
    client.send(`${malformed}\n{"execute": "query-name", "id": "after"}`);
    expect(await client.replies(2)).toEqual([
      { error: { class: "GenericError", desc: expect.stringMatching(/^JSON parse error, /) } },
      { return: {}, id: "after" },
    ]);
    expect((await qemu.control.execute("query-status") as { running: boolean }).running).toBe(true);
    client.close();
  });

  test("JSON that QEMU's parser rejects (deep nesting, a lone surrogate, a noncharacter) is refused with the client's id", async () => {
    const { client } = await negotiatedClient(shared);
    let deep: unknown = 1;
    for (let i = 0; i < 1100; i++) deep = [deep];
    client.send({ execute: "query-name", arguments: { deep }, id: "deep" });
    client.send({ execute: "human-monitor-command", arguments: { "command-line": "info\ud800" }, id: "lone" });
    client.send({ execute: "qom-get", arguments: { path: "/machine", property: "a\u0000b" }, id: "nul" }); // QEMU takes it
    client.send({ execute: "human-monitor-command", arguments: { "command-line": "info \ufdd0" }, id: "nonchar" });
    client.send({ execute: "query-name", id: "after" });
    expect(await client.replies(5)).toEqual([
      { error: { class: "GenericError", desc: "JSON nesting depth limit exceeded" }, id: "deep" },
      {
        error: { class: "GenericError", desc: "JSON parse error, \\ud800 is not a valid Unicode character" },
        id: "lone",
      },
      { error: { class: "GenericError", desc: expect.stringContaining("a\u0000b' not found") }, id: "nul" },
      { error: { class: "GenericError", desc: "JSON parse error, invalid UTF-8 sequence in string" }, id: "nonchar" },
      { return: {}, id: "after" },
    ]);
    client.close();
  });

  test("exec-oob works for a client that enabled oob", async () => {
    const client = await rawClient(shared);
    await client.read(1);
    client.send({ execute: "qmp_capabilities", arguments: { enable: ["oob"] } });
    client.send({ "exec-oob": "migrate-pause", id: "oob" });
    const replies = await client.replies(2);
    expect(replies[0]).toEqual({ return: {} });
    expect(replies[1]).toMatchObject({ id: "oob", error: { class: "GenericError" } }); // no migration to pause
    client.close();
  });
});

describe("proxy: clients that leave", () => {
  test("a client killed mid-command does not disturb the others", async () => {
    const { client: other } = await negotiatedClient(shared);
    const killed = Bun.spawn(["socat", "-", `UNIX-CONNECT:${shared}`], { stdin: "pipe", stdout: "pipe" });
    const stdin = killed.stdin as import("bun").FileSink;
    stdin.write('{"execute":"qmp_capabilities"}\n');
    for (let i = 0; i < 20; i++) stdin.write(`{"execute":"query-qmp-schema","id":${i}}\n`);
    stdin.flush();
    // Kill it once the first schema reply is arriving: the other 19 are still in flight.
    const reader = (killed.stdout as ReadableStream<Uint8Array>).getReader();
    let seen = "";
    while (!seen.includes('{"return":[')) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`socat ended before a schema reply: ${seen}`);
      seen += new TextDecoder().decode(value);
    }
    killed.kill("SIGKILL");
    await killed.exited;
    other.send({ execute: "query-status", id: "after" });
    const [reply] = await other.replies(1);
    expect(reply).toEqual({ return: await qemu.control.execute("query-status"), id: "after" });
    other.close();
    expect(await qmpctl(["-s", shared, "exec", "query-name"])).toMatchObject({ code: 0, stdout: "{}\n" });
    expect(proxy.child.exitCode).toBeNull();
  });
});

describe("proxy: the socket file", () => {
  test("a live socket is not taken over: exit 3 at once, the first proxy goes on", async () => {
    const second = await startProxy(["-s", qemu.socket, "--listen", shared]).result;
    expect(second.code).toBe(3);
    expect(second.stderr).toBe(`qmpctl: cannot listen on ${shared}: another process is serving this socket\n`);
    expect(existsSync(shared)).toBe(true);
    expect(await qmpctl(["-s", shared, "exec", "query-name"])).toMatchObject({ code: 0, stdout: "{}\n" });
  });
});

describe("fairness", () => {
  test(
    "a client's hundreds of pipelined commands delay another's by a few; those it leaves unsent do not run",
    async () => {
      const { client: flooder } = await negotiatedClient(shared);
      // Slow commands (~200 KB replies) with a trace between them: each blockdev-add that runs leaves a node.
      for (let i = 0; i < 150; i++) {
        flooder.send({ execute: "query-qmp-schema", id: `s${i}` });
        flooder.send({
          execute: "blockdev-add",
          arguments: { driver: "null-co", "node-name": `flood${i}` },
          id: `a${i}`,
        });
      }
      flooder.close(); // at once, without reading a reply
      const { client: asker } = await negotiatedClient(shared);
      const asked = performance.now();
      asker.send({ execute: "query-name", id: "after" });
      expect(await asker.replies(1, 30_000)).toEqual([{ return: {}, id: "after" }]);
      expect(performance.now() - asked).toBeLessThan(2000); // behind the few at QEMU when it left, not all 300
      await proxy.stderrLine(/^qmpctl: proxy: client \d+ (left|did not read)/);
      await Bun.sleep(500); // what was still sent has run by now
      const nodes = (await qemu.control.execute("query-named-block-nodes") as { "node-name": string }[])
        .map((node) => node["node-name"]).filter((name) => name.startsWith("flood"));
      expect(nodes.length).toBeLessThan(20); // of 150: those sent before its leaving was seen (8 at a time)
      for (const name of nodes) await qemu.control.execute("blockdev-del", { "node-name": name });
      asker.close();
    },
    60_000,
  );
});
