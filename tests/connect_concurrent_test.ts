/**
 * Many one-shot runs at once against one QEMU monitor: QEMU's listen queue is
 * short, so connect(2) says EAGAIN to some; qmpctl tries again until
 * --connect-timeout, and each run waits its turn for the monitor.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { symlinkSync } from "node:fs";
import { basename, join } from "node:path";
import { QmpClient } from "../lib/mod.ts";
import { qmpctl } from "./helpers/cli.ts";
import { startQemu, type TestQemu } from "./helpers/qemu.ts";

let qemu: TestQemu;
beforeAll(async () => {
  qemu = await startQemu();
});
afterAll(async () => {
  await qemu.stop();
});

test("50 concurrent exec query-status against one QEMU all succeed", async () => {
  const runs = Array.from(
    { length: 50 },
    () => qmpctl(["-s", qemu.socket, "--connect-timeout", "4m", "exec", "query-status"], { killAfterMs: 280_000 }),
  );
  const results = await Promise.all(runs);
  const failures = results.filter((r) => r.code !== 0).map((r) => `${r.code} ${r.stderr.trim()}`);
  expect(failures).toEqual([]);
  for (const result of results) expect(JSON.parse(result.stdout)).toMatchObject({ status: "running" });
}, 300_000);

test("a socket file nobody listens on is still refused at once (exit 3, no retries)", async () => {
  const path = `${qemu.dir}/stale.sock`;
  // A listener killed with SIGKILL leaves its socket file behind, as a QEMU that was killed does.
  const script = `Bun.listen({ unix: ${JSON.stringify(path)}, socket: { data() {} } }); console.log("listening");`;
  const listener = Bun.spawn([process.execPath, "-e", script], { stdout: "pipe" });
  const reader = listener.stdout.getReader();
  await reader.read(); // the "listening" line
  listener.kill("SIGKILL");
  await listener.exited;
  const result = await qmpctl(["-s", path, "--connect-timeout", "30s", "exec", "query-status"]);
  expect(result).toMatchObject({
    code: 3,
    stdout: "",
    stderr: `qmpctl: cannot connect to ${path}: connection refused (nothing is listening there) (ECONNREFUSED)\n`,
  });
  expect(result.ms).toBeLessThan(5000);
});

test(
  "a listen queue that stays full: exit 3 at --connect-timeout, saying so (EAGAIN), not 'refused', however the path is spelled",
  async () => {
    // One client holds the monitor; QEMU accepts no other until it leaves, so
    // raw connections fill its short listen queue, and qmpctl finds it full.
    const holder = await QmpClient.connect(qemu.socket, { connectTimeout: 30_000 });
    const fillers: { end(): void }[] = [];
    try {
      for (let i = 0; i < 64; i++) {
        const socket = await Bun.connect({ unix: qemu.socket, socket: { data() {} } }).catch(() => undefined);
        if (!socket) break; // the queue is full
        fillers.push(socket);
      }
      // The same socket by other names: a doubled slash, a detour through "..", a symlink.
      const link = join(qemu.dir, "link.sock");
      symlinkSync(qemu.socket, link);
      const spellings = [
        qemu.socket,
        qemu.socket.replace(/\/([^/]+)$/, "//$1"),
        join(qemu.dir, "..", basename(qemu.dir), basename(qemu.socket)),
        link,
      ];
      const results = await Promise.all(
        spellings.map((socket) => qmpctl(["-s", socket, "--connect-timeout", "1s", "exec", "query-status"])),
      );
      results.forEach((result, i) =>
        expect(result).toMatchObject({
          code: 3,
          stdout: "",
          stderr: `qmpctl: no connection to ${spellings[i]} within 1s: its listen queue stayed full (EAGAIN): ` +
            "another client may hold the monitor while others wait their turn (QEMU serves one client at a time), " +
            "QEMU may be stopped or hung, or too many clients are connecting at once\n",
        })
      );
      // The proxy waits it out too, within its bound (it gave up at once, so a unit restarted in a loop).
      const proxied = await qmpctl([
        "proxy",
        "-s",
        qemu.socket,
        "--connect-timeout",
        "1s",
        "--listen",
        join(qemu.dir, "p.sock"),
      ]);
      expect(proxied.code).toBe(3);
      expect(proxied.stderr).toContain(
        `no connection to ${qemu.socket} within 1s: its listen queue stayed full (EAGAIN)`,
      );
      expect(proxied.ms).toBeGreaterThan(900);
    } finally {
      for (const socket of fillers) socket.end();
      await holder.close();
    }
  },
  60_000,
);

test(
  "over TCP, a listen queue that stays full: exit 3 at --connect-timeout, saying what an unanswered connect may mean",
  async () => {
    const tcp = await startQemu({ tcp: true });
    const holder = await QmpClient.connect(`127.0.0.1:${tcp.tcpPort}`, { connectTimeout: 30_000 });
    const fillers: Promise<{ end(): void } | undefined>[] = [];
    try {
      // A full TCP queue does not refuse: the SYN goes unanswered, so a connect not made within 300 ms tells it.
      for (let i = 0; i < 64; i++) {
        const socket = Bun.connect({ hostname: "127.0.0.1", port: tcp.tcpPort!, socket: { data() {} } })
          .catch(() => undefined);
        fillers.push(socket);
        if (await Promise.race([socket.then(() => false), Bun.sleep(300).then(() => true)])) break;
      }
      const address = `127.0.0.1:${tcp.tcpPort}`;
      expect(await qmpctl(["-s", address, "--connect-timeout", "1s", "exec", "query-status"])).toMatchObject({
        code: 3,
        stdout: "",
        stderr: `qmpctl: no connection to ${address} within 1s: the host accepted none: another client may hold ` +
          "the monitor while others fill its listen queue (QEMU serves one client at a time), QEMU may be stopped " +
          "or hung, or a firewall drops the packets\n",
      });
    } finally {
      await holder.close();
      await tcp.stop();
      for (const filler of fillers) void filler.then((socket) => socket?.end());
    }
  },
  60_000,
);
