/**
 * `qmpctl proxy` and QEMU's bound on the tokens of one message (2^21,
 * qobject/json-streamer.c). Past it QEMU's parser resets mid-message and
 * runs what follows as messages of their own: commands hidden in one
 * client's arguments, with ids of its choosing, and on QEMU 7.2 with oob an
 * abort. The proxy refuses such a message with the client's id instead.
 * (QEMU reads a monitor at a few hundred KB/s: the boundary itself, where a
 * message goes through whole, is tested on a scripted server in
 * proxy_fake_test.ts.) And an id QEMU's parser refuses (a lone surrogate,
 * a noncharacter): answered as QEMU answers it, without an id.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { negotiatedClient, rawClient, type RunningProxy, startProxiedQemu, stopProxiedQemu } from "./helpers/proxy.ts";
import type { TestQemu } from "./helpers/qemu.ts";

let qemu: TestQemu;
let proxy: RunningProxy;
let shared: string;

beforeAll(async () => ({ qemu, proxy, shared } = await startProxiedQemu()));
afterAll(() => stopProxiedQemu({ qemu, proxy }));

const LIMIT = 2 ** 21;

/**
 * `{"execute":"query-status","arguments":{"x":[0,…,0,TAIL]},"id":ID}` of
 * `tokens` tokens as the proxy sends it (its own id a number): 18 outside
 * the array, and the items and the commas between them (a TAIL is one item
 * of at least one token).
 */
function message(tokens: number, id: string, tail?: unknown): string {
  const items = (tokens - 17) / 2 - (tail === undefined ? 0 : 1);
  const x = "0,".repeat(items).slice(0, -1) + (tail === undefined ? "" : "," + JSON.stringify(tail));
  return `{"execute":"query-status","arguments":{"x":[${x}]},"id":"${id}"}`;
}

test("a message past QEMU's token limit is refused with its id; the commands hidden in it never run", async () => {
  const { client } = await negotiatedClient(shared);
  const { client: other } = await negotiatedClient(shared);
  client.send(message(LIMIT + 1, "over", { execute: "query-name", id: "hidden" }));
  client.send({ execute: "query-status", id: "after" });
  other.send({ execute: "query-status", id: "other" });
  const status = await qemu.control.execute("query-status");
  expect(await client.replies(2)).toEqual([
    {
      error: { class: "GenericError", desc: expect.stringMatching(/^JSON token count limit exceeded: .*\b2097152\b/) },
      id: "over",
    },
    { return: status, id: "after" },
  ]);
  expect(await other.replies(1)).toEqual([{ return: status, id: "other" }]);
  // QEMU lives, and its monitor parses messages whole again: nothing stray came or comes to either client.
  expect(await qemu.control.execute("query-status")).toEqual(status);
  client.send({ execute: "query-name", id: "last" });
  expect(await client.replies(1)).toEqual([{ return: {}, id: "last" }]);
  expect(client.buffered + other.buffered).toBe(0);
  client.close();
  other.close();
}, 30_000);

test("an id QEMU's parser refuses (a lone surrogate, a noncharacter) is answered as QEMU does, without it; nothing runs", async () => {
  const { client } = await negotiatedClient(shared);
  const lone = (unit: string) => ({
    error: { class: "GenericError", desc: `JSON parse error, \\u${unit} is not a valid Unicode character` },
  });
  client.send('{"execute":"stop","id":"\\ud800"}');
  client.send('{"execute":"stop","id":["x","\\udfff"]}');
  client.send('{"execute":"stop","arguments":{"a\\ud801":1},"id":"\\udc01"}'); // QEMU names the first in the text
  client.send('{"execute":"stop","id":"\ufdd0"}');
  client.send('{"execute":"query-name","id":"\\ud800\\udc00"}'); // a pair is one character
  expect(await client.replies(5)).toEqual([
    lone("d800"),
    lone("dfff"),
    lone("d801"),
    { error: { class: "GenericError", desc: "JSON parse error, invalid UTF-8 sequence in string" } },
    { return: {}, id: "\u{10000}" },
  ]);
  expect(await qemu.control.execute("query-status")).toMatchObject({ running: true }); // no stop ran
  client.close();
});

test("a bad id is refused before anything else, as QEMU's parser does: before negotiation, and on getfd", async () => {
  const client = await rawClient(shared);
  await client.read(1); // the greeting
  const lone = { error: { class: "GenericError", desc: "JSON parse error, \\ud800 is not a valid Unicode character" } };
  client.send('{"execute":"qmp_capabilities","id":"\\ud800"}'); // not negotiated by it
  client.send({ execute: "query-name", id: "early" });
  expect(await client.replies(2)).toEqual([
    lone,
    {
      error: { class: "CommandNotFound", desc: "Expecting capabilities negotiation with 'qmp_capabilities'" },
      id: "early",
    },
  ]);
  client.send({ execute: "qmp_capabilities", id: "now" });
  expect(await client.replies(1)).toEqual([{ return: {}, id: "now" }]);
  client.send('{"execute":"getfd","arguments":{"fdname":"x"},"id":"\\ud800"}');
  expect(await client.replies(1)).toEqual([lone]);
  client.close();
});
