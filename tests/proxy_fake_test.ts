/**
 * QmpProxy (the library) in front of a scripted server: what QEMU will not
 * do on demand (no `oob` offered, no greeting, a reply for nobody).
 */
import { afterEach, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConnectTimeoutError, QmpProxy } from "../lib/mod.ts";
import { fakeServer } from "./helpers/fake_server.ts";
import { negotiatedClient, rawClient } from "./helpers/proxy.ts";

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
  expect(server.requests.at(-1)).toEqual({ execute: "query-name", id: expect.any(Number) });
  client.close();
});

test("no greeting from upstream: share() fails with ConnectTimeoutError within the bound", async () => {
  const server = fakeServer(() => {}); // accepts, never greets
  cleanups.push(() => server.stop());
  const started = performance.now();
  const error = await QmpProxy.share(server.path, listenPath(), { connectTimeoutMs: 300 }).catch((e) => e);
  expect(error).toBeInstanceOf(ConnectTimeoutError);
  expect(error.message).toMatch(/^no QMP greeting and negotiation from .* within 300ms: another client may hold/);
  expect(performance.now() - started).toBeLessThan(3000);
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
  expect(await proxy.ended).toEqual({ reason: "lost", error: undefined });
  expect(await Bun.file(path).exists()).toBe(false);
});
