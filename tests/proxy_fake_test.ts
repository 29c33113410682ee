/**
 * QmpProxy (the library) in front of a scripted server: what QEMU will not
 * do on demand (no `oob` offered, no greeting, a reply for nobody).
 */
import { afterEach, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AbortedError, ConnectTimeoutError, QmpProxy, TimeoutError } from "../lib/mod.ts";
import { NO_GREETING_HINT } from "../lib/errors.ts";
import { Upstream } from "../lib/proxy/upstream.ts";
import { listenTransport } from "../lib/transport_listen.ts";
import { qmpctl } from "./helpers/cli.ts";
import { fakeServer, QEMU_GREETING } from "./helpers/fake_server.ts";
import { negotiatedClient, rawClient } from "./helpers/proxy.ts";
import { startQemu } from "./helpers/qemu.ts";

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function listenPath(): string {
  const dir = mkdtempSync(join(tmpdir(), "qmpctl-proxy-fake-"));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return join(dir, "shared.sock");
}

const NO_OOB = { QMP: { version: { qemu: { micro: 0, minor: 12, major: 2 }, package: "old" }, capabilities: [] } };

test("without oob upstream, the greeting says so and a client that asks for oob is refused", async () => {
  const server = fakeServer(async (connection) => {
    await connection.handshake(NO_OOB);
    for (;;) {
      const request = await connection.nextRequest();
      connection.reply(request, { name: "vm" });
    }
  });
  cleanups.push(() => server.stop());
  const path = listenPath();
  const proxy = await QmpProxy.share(server.path, path, { connectTimeoutMs: 5000 });
  cleanups.push(() => proxy.close());
  expect(server.requests[0]).toEqual({
    execute: "qmp_capabilities",
    arguments: { enable: [] },
    id: "qmpctl-proxy-negotiation",
  });

  const client = await rawClient(path);
  expect(await client.read(1)).toEqual([NO_OOB]);
  client.send({ execute: "qmp_capabilities", arguments: { enable: ["oob"] }, id: 1 });
  client.send({ execute: "qmp_capabilities", id: 2 });
  client.send({ execute: "query-name", id: 3 });
  expect(await client.read(3)).toEqual([
    { error: { class: "GenericError", desc: "Capability 'oob' not available" }, id: 1 },
    { return: {}, id: 2 },
    { return: { name: "vm" }, id: 3 },
  ]);
  // The proxy sent its own id upstream, not the client's.
  expect(server.requests.at(-1)).toEqual({ execute: "query-name", id: expect.any(String) });
  client.close();
});

test("no greeting from upstream: share() fails with ConnectTimeoutError within the bound", async () => {
  const server = fakeServer(() => {}); // accepts, never greets
  cleanups.push(() => server.stop());
  const started = performance.now();
  const error = await QmpProxy.share(server.path, listenPath(), { connectTimeoutMs: 300 }).catch((e) => e);
  expect(error).toBeInstanceOf(ConnectTimeoutError);
  expect(error.message).toMatch(/^no QMP greeting from .* within 300ms: another client may hold/);
  expect(performance.now() - started).toBeLessThan(3000);

  // The caller's own signal gives the library's TimeoutError (or AbortedError), not the connect timeout's class.
  const caller = await QmpProxy.share(server.path, listenPath(), { signal: AbortSignal.timeout(200) }).catch((e) => e);
  expect(caller).toBeInstanceOf(TimeoutError);
});

test("a greeting but no answer to qmp_capabilities: the proxy says that phase ran out, in exec's words", async () => {
  const server = fakeServer((connection) => connection.sendJson(QEMU_GREETING)); // greets, never answers
  cleanups.push(() => server.stop());
  const proxy = await qmpctl(["proxy", "-s", server.path, "--listen", listenPath(), "--connect-timeout", "1s"]);
  const exec = await qmpctl(["-s", server.path, "--connect-timeout", "1s", "exec", "query-status"]);
  expect(proxy).toMatchObject({
    code: 3,
    stderr: `qmpctl: no answer to qmp_capabilities from ${server.path} within 1s\n`,
  });
  expect(proxy.stderr).toBe(exec.stderr);
});

test("a greeting begun but unfinished upstream: the proxy says how much came, in exec's words", async () => {
  const server = fakeServer((connection) => connection.send(JSON.stringify(QEMU_GREETING).slice(0, 20)));
  cleanups.push(() => server.stop());
  const proxy = await qmpctl(["proxy", "-s", server.path, "--listen", listenPath(), "--connect-timeout", "1s"]);
  const exec = await qmpctl(["-s", server.path, "--connect-timeout", "1s", "exec", "query-status"]);
  expect(proxy).toMatchObject({
    code: 3,
    stderr: `qmpctl: no whole QMP greeting from ${server.path} within 1s: it had sent 20 bytes of it\n`,
  });
  expect(proxy.stderr).toBe(exec.stderr);
});

test("an old greeting whose version is a plain string: replayed as it came, and qmpctl takes it through the proxy", async () => {
  const greeting = { QMP: { version: "0.12.5", capabilities: [] } };
  const server = fakeServer(async (connection) => {
    await connection.handshake(greeting);
    for (;;) connection.reply(await connection.nextRequest(), { status: "running" });
  });
  cleanups.push(() => server.stop());
  const path = listenPath();
  const proxy = await QmpProxy.share(server.path, path, { connectTimeoutMs: 5000 });
  cleanups.push(() => proxy.close());
  const client = await rawClient(path);
  expect(await client.read(1)).toEqual([greeting]);
  client.close();
  expect(await qmpctl(["-s", path, "exec", "query-status"])).toMatchObject({
    code: 0,
    stdout: '{"status":"running"}\n',
    stderr: "",
  });
});

test("a client's quit: ended is 'quit', though QEMU also sends SHUTDOWN (reason host-qmp-quit)", async () => {
  const qemu = await startQemu();
  cleanups.push(() => qemu.stop());
  const path = listenPath();
  const proxy = await QmpProxy.share(qemu.socket, path, { connectTimeoutMs: 5000 });
  cleanups.push(() => proxy.close());
  const { client } = await negotiatedClient(path);
  client.send({ execute: "quit", id: "q" });
  expect(await proxy.ended).toEqual({ reason: "quit", clients: 1 });
});

test("upstream gone without SHUTDOWN: clients closed, ended is 'lost', the socket file removed", async () => {
  let hangUp = () => {};
  const server = fakeServer(async (connection) => {
    await connection.handshake();
    hangUp = () => connection.close();
    // a reply for an id the proxy never used is dropped
    connection.sendJson({ return: {}, id: 999 });
  });
  cleanups.push(() => server.stop());
  const path = listenPath();
  const proxy = await QmpProxy.share(server.path, path);
  const { client } = await negotiatedClient(path);
  hangUp();
  await client.closed;
  expect(await proxy.ended).toEqual({ reason: "lost", error: undefined, clients: 1 });
  expect(await Bun.file(path).exists()).toBe(false);
});

test("a reply out of turn (it skips an older in-band command) is dropped: each client gets its own", async () => {
  const server = fakeServer(async (connection) => {
    await connection.handshake();
    const [first, second] = [await connection.nextRequest(), await connection.nextRequest()];
    connection.sendJson({ return: { forged: true }, id: second.id }); // as a command hidden in a message would answer
    connection.reply(first, { who: first.execute });
    connection.reply(second, { who: second.execute });
  });
  cleanups.push(() => server.stop());
  const path = listenPath();
  const notices: string[] = [];
  const proxy = await QmpProxy.share(server.path, path, { notice: (line) => notices.push(line) });
  cleanups.push(() => proxy.close());
  const [{ client: a }, { client: b }] = [await negotiatedClient(path), await negotiatedClient(path)];
  a.send({ execute: "query-a", id: "a" });
  await waitFor(() => server.requests.length === 2); // qmp_capabilities, then query-a
  b.send({ execute: "query-b", id: "b" });
  expect(await a.replies(1)).toEqual([{ return: { who: "query-a" }, id: "a" }]);
  expect(await b.replies(1)).toEqual([{ return: { who: "query-b" }, id: "b" }]);
  expect(notices.filter((line) => line.startsWith("dropped"))).toHaveLength(1);
  a.close();
  b.close();
});

test("a reply forged through a client's message cannot name another client's pending command", async () => {
  // The server plays a QEMU whose parser has a hole the proxy does not know of: each id a message lists in
  // `arguments.guesses` comes back at once with a forged reply, as a hidden exec-oob would be answered.
  const server = fakeServer(async (connection) => {
    await connection.handshake();
    const victim = await connection.nextRequest(); // held: the oldest in-band command while the forgeries come
    const attack = await connection.nextRequest();
    for (const id of (attack.arguments as { guesses: unknown[] }).guesses) {
      connection.sendJson({ return: { forged: true }, id });
    }
    connection.reply(victim, { who: victim.execute });
    connection.reply(attack, { who: attack.execute });
  });
  cleanups.push(() => server.stop());
  const path = listenPath();
  const proxy = await QmpProxy.share(server.path, path);
  cleanups.push(() => proxy.close());
  const [{ client: victim }, { client: attacker }] = [await negotiatedClient(path), await negotiatedClient(path)];
  victim.send({ execute: "query-victim", id: "v" });
  await waitFor(() => server.requests.length === 2); // qmp_capabilities, then query-victim
  // Counters start small: the victim's command is among the first ids a proxy hands out.
  const guesses = Array.from({ length: 1000 }, (_, i) => i);
  attacker.send({ execute: "query-attacker", arguments: { guesses }, id: "a" });
  expect(await victim.replies(1)).toEqual([{ return: { who: "query-victim" }, id: "v" }]);
  expect(await attacker.replies(1)).toEqual([{ return: { who: "query-attacker" }, id: "a" }]);
  // The ids sent upstream are short (QEMU reads a monitor byte by byte), and unlike each other.
  const ids = server.requests.slice(1).map(({ id }) => id);
  expect(ids).toEqual([expect.stringMatching(/^[\w-]{8}$/), expect.stringMatching(/^[\w-]{8}$/)]);
  expect(ids[0]).not.toBe(ids[1]);
  victim.close();
  attacker.close();
});

async function waitFor(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !condition(); i++) await Bun.sleep(10);
}

/** `{"execute":"x","arguments":{"x":[0,…]}}` of `tokens` tokens as the proxy sends it (its id added). */
function ofTokens(tokens: number): Record<string, unknown> {
  return { execute: "x", arguments: { x: new Array((tokens - 17) / 2).fill(0) } };
}

test("QEMU's message bounds: just under goes upstream unchanged, at them refused with the id", async () => {
  const server = fakeServer(async (connection) => {
    await connection.handshake();
    for (;;) connection.reply(await connection.nextRequest(), {});
  });
  cleanups.push(() => server.stop());
  const path = listenPath();
  const proxy = await QmpProxy.share(server.path, path, { maxMessageBytes: 80 * 1024 * 1024 });
  cleanups.push(() => proxy.close());
  const { client } = await negotiatedClient(path);

  const under = ofTokens(2 ** 21 - 1);
  client.send({ ...under, id: "under" });
  client.send({ ...ofTokens(2 ** 21 + 1), id: "count" });
  // Few tokens, but 64 MiB as sent: QEMU's other bound (MAX_TOKEN_SIZE).
  const json = '{"execute":"x","arguments":{"s":""},"id":1}';
  client.send({ execute: "x", arguments: { s: "a".repeat(2 ** 26 - json.length) }, id: "size" });
  client.send({ execute: "x", id: "after" });
  expect(await client.replies(4, 30_000)).toEqual([
    { return: {}, id: "under" },
    {
      error: {
        class: "GenericError",
        desc: "JSON token count limit exceeded: 2097153 tokens, QEMU parses fewer than 2097152 in one message",
      },
      id: "count",
    },
    {
      error: {
        class: "GenericError",
        desc: expect.stringMatching(/^JSON token size limit exceeded: \d+ bytes, QEMU parses fewer than 67108864 /),
      },
      id: "size",
    },
    { return: {}, id: "after" },
  ]);
  expect(server.requests.slice(1)).toEqual([
    { ...under, id: expect.any(String) },
    { execute: "x", id: expect.any(String) },
  ]);
  client.close();
}, 60_000);

test(
  "refusals held behind a pending command count toward the queue bound: the flooding client is disconnected",
  async () => {
    const server = fakeServer(async (connection) => {
      await connection.handshake();
      await connection.nextRequest(); // never answered: the client's command stays pending
      await connection.closed;
    });
    cleanups.push(() => server.stop());
    const path = listenPath();
    const notices: string[] = [];
    const proxy = await QmpProxy.share(server.path, path, {
      maxQueuedBytes: 64 * 1024,
      notice: (line) => notices.push(line),
    });
    cleanups.push(() => proxy.close());
    const { client } = await negotiatedClient(path);
    client.send({ execute: "query-status", id: "slow" });
    // Each refusal (~100 bytes) waits for the reply to "slow"; it reads them all, and they would pile up unbounded.
    let sent = 0;
    let closed = false;
    void client.closed.then(() => (closed = true));
    while (!closed && sent < 50_000) {
      for (let i = 0; i < 1000; i++) client.send('{"exec-oob":0}');
      sent += 1000;
      await Bun.sleep(1);
    }
    expect(closed).toBe(true);
    expect(notices).toContain(
      "client 1 did not read (more than 65536 bytes queued for it): disconnected (0 connected)",
    );
    expect(sent).toBeLessThan(10_000);
  },
  30_000,
);

test("two listeners started at once on one path: one serves, the other fails saying it is served", async () => {
  const path = listenPath();
  const events = { accept: () => ({ data() {}, close() {} }) };
  const started = await Promise.allSettled([listenTransport(path, events), listenTransport(path, events)]);
  const served = started.filter((s) => s.status === "fulfilled");
  const refused = started.filter((s) => s.status === "rejected").map((s) => (s as PromiseRejectedResult).reason);
  expect(served).toHaveLength(1);
  expect(refused.map((error) => error.message)).toEqual([
    `cannot listen on ${path}: another process is serving this socket`,
  ]);
  await (served[0] as PromiseFulfilledResult<{ close(): Promise<void> }>).value.close();
});

test("a listen path too long for a UNIX socket address is refused at once, not bound elsewhere and moved", async () => {
  const path = join(listenPath(), "..", "x".repeat(120) + ".sock");
  const error = await listenTransport(path, { accept: () => ({ data() {}, close() {} }) }).catch((e) => e);
  expect(error.message).toMatch(
    /^cannot listen on .*: the path is too long for a UNIX socket \(\d+ bytes; at most 107\)$/,
  );
});

test("a listen path in a directory that does not exist names the directory, not a missing socket", async () => {
  const path = join(listenPath(), "..", "no-such-dir", "x.sock");
  const error = await listenTransport(path, { accept: () => ({ data() {}, close() {} }) }).catch((e) => e);
  expect(error.message).toBe(`cannot listen on ${path}: no such directory ${join(path, "..")} (ENOENT)`);
});

test("negotiating with a signal aborted already fails at once, not when QEMU next sends something", async () => {
  const upstream = new Upstream("vm1.qmp");
  upstream.attach({ write() {}, pause() {}, resume() {}, close() {} }); // a QEMU that sends nothing
  const outcome = await Promise.race([
    upstream.negotiate({ message() {}, closed() {} }, 0, AbortSignal.abort()).then(() => "negotiated", (e) => e),
    Bun.sleep(2000).then(() => "still waiting"),
  ]);
  expect(outcome).toBeInstanceOf(AbortedError);
  expect((outcome as Error).message).toBe(
    "aborted while waiting for the QMP greeting from vm1.qmp: " + NO_GREETING_HINT,
  );
});
