/**
 * Launch mode (`proxy --listen PATH -- qemu ...`) asked to stop by a QEMU that does not act on it (faked:
 * real QEMU exits on SIGTERM): no new clients from then on, those connected still served, and QEMU killed
 * after the grace --timeout gives it, or at once on a second signal, each said in one line.
 */
import { afterEach, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { SAME_STOP_MS } from "../cli/proxy_launch.ts";
import { qmpctl } from "./helpers/cli.ts";
import { alive, waitUntil } from "./helpers/process_state.ts";
import { negotiatedClient, startProxy } from "./helpers/proxy.ts";
import { scratchDir } from "./helpers/scratch.ts";
import { killStubbornQemus, stubbornQemu, stubbornQemuPid } from "./helpers/stubborn_qemu.ts";

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** The proxy serving a fake QEMU that ignores SIGTERM and SIGINT; its pid once it serves. */
async function serveStubbornQemu() {
  const dir = scratchDir("qmpctl-launch-stop-");
  const shared = join(dir, "vm.sock"), pidFile = join(dir, "qemu.pid");
  const proxy = startProxy(["--listen", shared, "--", ...stubbornQemu(pidFile, true)], 40_000);
  cleanups.push(() => proxy.child.kill("SIGKILL"), () => killStubbornQemus(pidFile));
  await proxy.ready;
  const pid = await stubbornQemuPid(pidFile);
  return { proxy, shared, pid };
}

test(
  "SIGTERM that QEMU ignores: no new clients, those connected served on, SIGKILL after the grace, exit 0",
  async () => {
    const { proxy, shared, pid } = await serveStubbornQemu();
    const { client } = await negotiatedClient(shared);
    proxy.child.kill("SIGTERM");
    await proxy.stderrLine(/^qmpctl: proxy: SIGTERM: stopping sh$/);
    await waitUntil(() => !existsSync(shared), "the socket file is removed");
    expect((await qmpctl(["-s", shared, "exec", "query-status"])).code).toBe(3);
    client.send({ execute: "query-status", id: "after the stop" });
    expect(await client.replies(1)).toEqual([{ return: {}, id: "after the stop" }]);
    const result = await proxy.result;
    expect({ code: result.code, signal: result.signal }).toEqual({ code: 0, signal: null });
    expect(result.stderr).toEndWith(
      "qmpctl: proxy: sh did not exit within 10s of SIGTERM: killed it (SIGKILL)\n" +
        "qmpctl: proxy: sh was killed by SIGKILL (1 client disconnected)\n",
    );
    expect(alive(pid)).toBe(false);
  },
  60_000,
);

// A second SIGINT dies of it once done (130), as a first one does.
for (
  const [first, second, line, status, diedOf] of [
    ["SIGTERM", "SIGTERM", "SIGTERM again", 0, null],
    ["SIGHUP", "SIGINT", "SIGINT", 130, "SIGINT"],
  ] as const
) {
  test(`${first}, then ${second}: QEMU killed at once, saying so; exit ${status}`, async () => {
    const { proxy, pid } = await serveStubbornQemu();
    proxy.child.kill(first);
    await proxy.stderrLine(/: stopping sh/);
    if (first === second) await Bun.sleep(SAME_STOP_MS + 200); // at once, it would be the same stop
    proxy.child.kill(second);
    const result = await proxy.result;
    expect({ code: result.code, signal: result.signal }).toEqual({ code: status, signal: diedOf });
    expect(result.stderr).toEndWith(
      `qmpctl: proxy: ${line}: killing sh (SIGKILL)\nqmpctl: proxy: sh was killed by SIGKILL\n`,
    );
    expect(result.stderr).not.toContain("did not exit within");
    expect(alive(pid)).toBe(false);
  });
}

// timeout -s INT: its signal to the proxy, then to its process group; systemd with SendSIGHUP=: SIGTERM, then
// SIGHUP (passed on as SIGTERM) right after.
for (
  const [first, second, status, diedOf] of [["SIGINT", "SIGINT", 130, "SIGINT"], [
    "SIGTERM",
    "SIGHUP",
    0,
    null,
  ]] as const
) {
  test(`${first} and ${second} at once are one stop; ${first} once more later kills`, async () => {
    const { proxy, pid } = await serveStubbornQemu();
    proxy.child.kill(first);
    proxy.child.kill(second); // back to back
    await proxy.stderrLine(/: stopping sh/);
    await Bun.sleep(SAME_STOP_MS + 200); // past the window: the next one is a second stop
    expect(proxy.stderr()).not.toContain("killing");
    expect(alive(pid)).toBe(true);
    proxy.child.kill(first);
    const result = await proxy.result;
    expect({ code: result.code, signal: result.signal }).toEqual({ code: status, signal: diedOf });
    expect(result.stderr).toContain(`qmpctl: proxy: ${first} again: killing sh (SIGKILL)\n`);
    expect(alive(pid)).toBe(false);
  });
}
