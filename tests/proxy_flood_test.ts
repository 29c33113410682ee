/**
 * `qmpctl proxy` while QEMU emits thousands of events and one client never
 * reads: that client is disconnected once its queue passes the bound, the
 * others get every event and quick answers, and the proxy's memory stays
 * bounded.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import {
  negotiatedClient,
  residentKiB,
  type RunningProxy,
  startProxiedQemu,
  stopProxiedQemu,
} from "./helpers/proxy.ts";
import type { TestQemu } from "./helpers/qemu.ts";
import { qmpctl } from "./helpers/cli.ts";

let qemu: TestQemu;
let proxy: RunningProxy;
let shared: string;

beforeAll(async () => ({ qemu, proxy, shared } = await startProxiedQemu(["--max-queue", "64k"])));
afterAll(() => stopProxiedQemu({ qemu, proxy }));

test(
  "a client that never reads is disconnected past --max-queue; the others get every event and quick answers",
  async () => {
    const { client: sleeper } = await negotiatedClient(shared);
    sleeper.pause();
    const { client: reader } = await negotiatedClient(shared);
    const { client: asker } = await negotiatedClient(shared);
    const rssBefore = await residentKiB(proxy.child.pid);

    const pairs = 4000; // 8000 events of ~85 bytes: more than the bound and the kernel's socket buffer (~200 KB)
    const flood = Promise.all(
      Array.from({ length: pairs }, () => [qemu.control.execute("stop"), qemu.control.execute("cont")]).flat(),
    );
    // While the events pour out, another client's command is answered quickly.
    await Bun.sleep(50);
    const asked = performance.now();
    asker.send({ execute: "query-name", id: "during" });
    expect(await asker.replies(1, 10_000)).toEqual([{ return: {}, id: "during" }]);
    const answeredMs = performance.now() - asked;
    await flood;

    await proxy.stderrLine(
      /^qmpctl: proxy: client 1 did not read \(more than 65536 bytes queued for it\): disconnected/,
    );
    const events = await reader.read(2 * pairs, 30_000);
    expect(events.filter((e) => e.event === "STOP")).toHaveLength(pairs);
    expect(events.filter((e) => e.event === "RESUME")).toHaveLength(pairs);
    expect(answeredMs).toBeLessThan(2000);
    const grownKiB = (await residentKiB(proxy.child.pid)) - rssBefore;
    expect(grownKiB).toBeLessThan(64 * 1024);

    // The proxy serves on: a new client is answered, the asker too.
    asker.send({ execute: "query-status", id: 2 });
    const [status] = await asker.replies(1);
    expect(status).toMatchObject({ id: 2, return: { running: true } });
    reader.close();
    asker.close();
  },
  60_000,
);

test("a reply larger than --max-queue still reaches a client that reads (the schema: ~190 KB over 64 KiB)", async () => {
  const result = await qmpctl(["-s", shared, "exec", "query-qmp-schema"]);
  expect(result.code).toBe(0);
  expect((JSON.parse(result.stdout) as unknown[]).length).toBeGreaterThan(1000);
});
