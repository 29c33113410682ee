/**
 * Events that QEMU sends in the same write as its answer to qmp_capabilities
 * reach `events` and `wait-event`: they subscribe before negotiation ends.
 */
import { afterEach, expect, test } from "bun:test";
import { qmpctl } from "./helpers/cli.ts";
import { type FakeServer, fakeServer, QEMU_GREETING } from "./helpers/fake_server.ts";
import { freshCacheHome, SMALL_SCHEMA } from "./helpers/schema_fixture.ts";

const COUNT = 2000;
let servers: FakeServer[] = [];
afterEach(() => {
  for (const server of servers) server.stop();
  servers = [];
});

/** Answers qmp_capabilities and sends COUNT STOP events in the same write; then serves the schema; `close` after. */
function earlyEvents(close: boolean): FakeServer {
  const server = fakeServer(async (c) => {
    c.sendJson(QEMU_GREETING);
    const negotiation = await c.nextRequest();
    let text = JSON.stringify({ return: {}, id: negotiation.id }) + "\r\n";
    for (let i = 0; i < COUNT; i++) {
      text += JSON.stringify({ event: "STOP", data: { n: i }, timestamp: { seconds: i, microseconds: 0 } }) + "\r\n";
    }
    c.send(text);
    if (close) return c.close();
    for (;;) {
      const request = await c.nextRequest();
      if (request.execute === "query-target") c.reply(request, { arch: "x86_64" });
      else if (request.execute === "query-qmp-schema") c.reply(request, SMALL_SCHEMA);
      else c.reply(request, {});
    }
  });
  servers.push(server);
  return server;
}

function numbers(stdout: string): number[] {
  return stdout.trimEnd().split("\n").map((line) => JSON.parse(line).data.n);
}

test(`events: all ${COUNT} events sent with the qmp_capabilities answer are printed, in order`, async () => {
  const server = earlyEvents(true);
  const result = await qmpctl(["-s", server.path, "events"]);
  expect(result).toMatchObject({ code: 0, stderr: "" });
  expect(numbers(result.stdout)).toEqual(Array.from({ length: COUNT }, (_, i) => i));
});

test(`wait-event STOP --count ${COUNT}: the events sent with the qmp_capabilities answer count`, async () => {
  const server = earlyEvents(false);
  const result = await qmpctl(["-s", server.path, "wait-event", "STOP", "--count", String(COUNT), "--timeout", "10s"], {
    env: { XDG_CACHE_HOME: freshCacheHome() },
  });
  expect(result).toMatchObject({ code: 0, stderr: "" });
  expect(numbers(result.stdout)).toEqual(Array.from({ length: COUNT }, (_, i) => i));
});
