/**
 * Launch mode (`proxy --listen PATH -- PROGRAM`) with a PROGRAM that is a wrapper script running QEMU as its
 * child (no `exec`): signals reach the wrapper only, so the proxy stops QEMU through its monitor (`quit`),
 * and QEMU has ended only once the wrapper has exited and the monitor has closed.
 */
import { afterEach, expect, test } from "bun:test";
import { existsSync, readFileSync, watch, writeFileSync } from "node:fs";
import { join } from "node:path";
import { SAME_STOP_MS } from "../cli/proxy_launch.ts";
import { qmpctl } from "./helpers/cli.ts";
import { alive, childrenOf, processesNaming, waitUntil } from "./helpers/process_state.ts";
import { negotiatedClient, type RawClient, startProxy } from "./helpers/proxy.ts";
import { scratchDir } from "./helpers/scratch.ts";
import { killStubbornQemus, stubbornQemu, stubbornQemuPid } from "./helpers/stubborn_qemu.ts";

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const QEMU = "qemu-system-x86_64 -nodefaults -display none -machine none";

/**
 * QEMU's command line for a wrapper in `dir`, marked with it (-name) so that the test's end stops that QEMU
 * even when the test failed before it knew its pid (a wrapper gone, QEMU orphaned).
 */
function markedQemu(dir: string): string {
  cleanups.push(() => {
    for (const pid of processesNaming(`-name\0${dir}\0`)) process.kill(pid, "SIGKILL");
  });
  return `${QEMU} -name ${dir}`;
}

/**
 * The proxy started on the wrapper script `body` (after #!/bin/sh; $QEMU: QEMU's command line, $SHARED: the
 * proxy's socket), serving; QEMU's pid and a client.
 */
async function serveWrapped(body: string) {
  const dir = scratchDir("qmpctl-launch-wrapper-");
  const wrapper = join(dir, "vm.sh"), shared = join(dir, "vm.sock");
  const script = body.replaceAll("$QEMU", markedQemu(dir)).replaceAll("$SHARED", shared);
  writeFileSync(wrapper, `#!/bin/sh\n${script}\n`, { mode: 0o755 });
  const proxy = startProxy(["--listen", shared, "--", wrapper], 60_000);
  cleanups.push(() => proxy.child.kill("SIGKILL"));
  await proxy.ready;
  let qemu = 0;
  await waitUntil(() => (qemu = findQemu(proxy.child.pid)) !== 0, "QEMU runs under the wrapper");
  cleanups.push(() => alive(qemu) && process.kill(qemu, "SIGKILL"));
  const { client } = await negotiatedClient(shared);
  return { proxy, qemu, client, shared, wrapper };
}

/** The pid of the QEMU a wrapper under `proxyPid` started (0 until there is one). */
function findQemu(proxyPid: number): number {
  for (const wrapper of childrenOf(proxyPid)) {
    for (const child of childrenOf(wrapper)) {
      if (readFileSync(`/proc/${child}/comm`, "utf8").startsWith("qemu-system")) return child;
    }
  }
  return 0;
}

/** Read until QEMU's SHUTDOWN event, then the connection's close. */
async function expectShutdownThenClose(client: RawClient): Promise<void> {
  let message: Record<string, unknown> | undefined;
  while (message?.event !== "SHUTDOWN") [message] = await client.read(1);
  expect(message).toMatchObject({ event: "SHUTDOWN", data: { reason: "host-qmp-quit" } });
  await client.closed;
}

test("SIGTERM kills a wrapper running QEMU as its child: QEMU quit on its monitor, SHUTDOWN seen, exit 0", async () => {
  const { proxy, qemu, client, wrapper } = await serveWrapped(`$QEMU "$@"`);
  proxy.child.kill("SIGTERM");
  await expectShutdownThenClose(client);
  const result = await proxy.result;
  expect({ code: result.code, signal: result.signal }).toEqual({ code: 0, signal: null });
  expect(result.stderr).toContain(`qmpctl: proxy: SIGTERM: stopping ${wrapper}\n`);
  expect(result.stderr).toContain(`qmpctl: proxy: QEMU quit on its monitor; ${wrapper} was killed by SIGTERM`);
  expect(alive(qemu)).toBe(false);
}, 30_000);

test(
  "a wrapper ignoring SIGTERM, killed at a second signal: QEMU quit on its monitor all the same; exit 130",
  async () => {
    const { proxy, qemu, client, wrapper } = await serveWrapped(`trap '' TERM\n$QEMU "$@"`);
    proxy.child.kill("SIGTERM");
    await proxy.stderrLine(/: stopping /);
    proxy.child.kill("SIGINT");
    await expectShutdownThenClose(client);
    const result = await proxy.result;
    expect({ code: result.code, signal: result.signal }).toEqual({ code: 130, signal: "SIGINT" });
    expect(result.stderr).toContain(`qmpctl: proxy: SIGINT: killing ${wrapper} (SIGKILL)\n`);
    expect(alive(qemu)).toBe(false);
  },
  30_000,
);

test(
  "a wrapper that exits by itself, leaving QEMU: served on until QEMU closes its monitor; the wrapper's status",
  async () => {
    // The wrapper leaves once the proxy serves (QEMU has connected its monitor), QEMU in the background: at the
    // test's word, once QEMU was found as the wrapper's child (an orphan's parent no longer names it).
    const { proxy, qemu, client, shared, wrapper } = await serveWrapped(
      `$QEMU "$@" &\nwhile [ ! -e "$SHARED.go" ]; do sleep 0.05; done\nexit 3`,
    );
    writeFileSync(`${shared}.go`, "");
    await proxy.stderrLine(/while QEMU's monitor stays connected/);
    expect(proxy.stderr()).toContain(
      `qmpctl: proxy: ${wrapper} exited with status 3 while QEMU's monitor stays connected: serving it until it closes\n`,
    );
    expect(await qmpctl(["-s", shared, "exec", "query-status"])).toMatchObject({ code: 0 });
    expect(await qmpctl(["-s", shared, "exec", "quit"])).toMatchObject({ code: 0, stdout: "{}\n" });
    await client.closed;
    const result = await proxy.result;
    expect(result.code).toBe(3);
    expect(result.stderr).toMatch(/\nqmpctl: proxy: QEMU closed its monitor \([12] clients? disconnected\)\n$/);
    expect(alive(qemu)).toBe(false);
  },
  30_000,
);

// A wrapper that ignores the signal, then starts QEMU: QEMU never got that stop of its own.
for (const [signal, status, diedOf] of [["SIGTERM", 0, null], ["SIGINT", 130, "SIGINT"]] as const) {
  test(
    `${signal} before QEMU connected its monitor: not served (no socket), QEMU quit as it connects; exit ${status}`,
    async () => {
      const dir = scratchDir("qmpctl-launch-wrapper-");
      const wrapper = join(dir, "vm.sh"), shared = join(dir, "vm.sock");
      const started = join(dir, "started"), go = join(dir, "go");
      // QEMU starts once the test says so, when the proxy has taken the stop.
      const wait = `while [ ! -e ${go} ]; do sleep 0.05; done`;
      writeFileSync(wrapper, `#!/bin/sh\ntrap '' TERM INT\n: > ${started}\n${wait}\nexec ${QEMU} "$@"\n`, {
        mode: 0o755,
      });
      let socketMade = false; // inotify: a socket made and removed at once is seen too
      const watcher = watch(dir, (_, name) => (socketMade ||= name === "vm.sock"));
      const proxy = startProxy(["--listen", shared, "--", wrapper], 60_000);
      cleanups.push(() => proxy.child.kill("SIGKILL"));
      await waitUntil(() => existsSync(started), "the wrapper ignores the signal");
      proxy.child.kill(signal);
      await proxy.stderrLine(/: stopping /);
      writeFileSync(go, "");
      const result = await proxy.result;
      watcher.close();
      expect({ code: result.code, signal: result.signal }).toEqual({ code: status, signal: diedOf });
      expect(result.stderr).not.toContain("serving");
      expect(result.stderr).not.toContain("did not exit within"); // not left for the grace's SIGKILL
      expect(socketMade).toBe(false);
    },
    30_000,
  );
}

/** The proxy on a wrapper running, as its child, a fake QEMU that answers quit but never closes its monitor. */
async function serveWrappedStubborn() {
  const dir = scratchDir("qmpctl-launch-wrapper-");
  const wrapper = join(dir, "vm.sh"), shared = join(dir, "vm.sock"), pidFile = join(dir, "qemu.pid");
  const words = stubbornQemu(pidFile, true).map((word) => `'${word.replaceAll("'", `'\\''`)}'`).join(" ");
  // Its stdio not the proxy's: left running, it would hold the test's pipe from the proxy's stderr open.
  writeFileSync(wrapper, `#!/bin/sh\n${words} "$@" </dev/null >/dev/null 2>&1\n`, { mode: 0o755 });
  const proxy = startProxy(["--listen", shared, "--", wrapper], 60_000);
  cleanups.push(() => proxy.child.kill("SIGKILL"), () => killStubbornQemus(pidFile));
  await proxy.ready;
  const qemu = await stubbornQemuPid(pidFile);
  return { proxy, qemu, wrapper, wrapperPid: childrenOf(proxy.child.pid)[0] };
}

/** The run's end once the wrapper died of SIGTERM and the fake QEMU stayed: `why` said, QEMU left running, exit 3. */
async function expectLeftRunning(run: Awaited<ReturnType<typeof serveWrappedStubborn>>, why: string): Promise<void> {
  const result = await run.proxy.result;
  expect({ code: result.code, signal: result.signal }).toEqual({ code: 3, signal: null });
  expect(result.stderr).toEndWith(
    `qmpctl: proxy: ${why}\n` +
      `qmpctl: proxy: QEMU left running without its monitor after ${run.wrapper} was killed by SIGTERM\n`,
  );
  expect(alive(run.qemu)).toBe(true); // the fake: a real QEMU quits
}

test(
  "a QEMU that does not close its monitor after the proxy's quit: said, left running, exit 3 (not a stop done)",
  async () => {
    const run = await serveWrappedStubborn();
    run.proxy.child.kill("SIGTERM");
    await expectLeftRunning(run, "QEMU did not close its monitor within 2s of quit");
  },
  30_000,
);

test(
  "a second signal once the wrapper is gone ends the wait for QEMU's monitor at once, saying so; exit 3",
  async () => {
    const run = await serveWrappedStubborn();
    run.proxy.child.kill("SIGTERM");
    await waitUntil(() => !alive(run.wrapperPid), "the wrapper died of SIGTERM");
    await Bun.sleep(SAME_STOP_MS + 100); // sooner, a SIGHUP is that SIGTERM's own (systemd's SendSIGHUP=)
    run.proxy.child.kill("SIGHUP");
    await expectLeftRunning(run, "SIGHUP: not waiting for QEMU to close its monitor");
  },
  30_000,
);
test(
  "a wrapper that exits before the QEMU it left in the background has connected: served when it does; its status",
  async () => {
    const dir = scratchDir("qmpctl-launch-wrapper-");
    const wrapper = join(dir, "bg.sh"), shared = join(dir, "vm.sock"), pidFile = join(dir, "qemu.pid");
    writeFileSync(wrapper, `#!/bin/sh\n${markedQemu(dir)} "$@" &\necho $! > ${pidFile}\nexit 5\n`, { mode: 0o755 });
    const proxy = startProxy(["--listen", shared, "--", wrapper], 60_000);
    cleanups.push(() => proxy.child.kill("SIGKILL"));
    await waitUntil(() => existsSync(pidFile) && readFileSync(pidFile, "utf8").endsWith("\n"), "the wrapper ran QEMU");
    const qemu = Number(readFileSync(pidFile, "utf8"));
    cleanups.push(() => alive(qemu) && process.kill(qemu, "SIGKILL"));
    await proxy.ready; // before, the proxy said the wrapper "exited with status 5 before it connected its monitor"
    await proxy.stderrLine(/while QEMU's monitor stays connected/);
    expect(proxy.stderr()).toContain(
      `qmpctl: proxy: ${wrapper} exited with status 5 while QEMU's monitor stays connected: serving it until it closes\n`,
    );
    expect(await qmpctl(["-s", shared, "exec", "query-status"])).toMatchObject({ code: 0 });
    expect(await qmpctl(["-s", shared, "exec", "quit"])).toMatchObject({ code: 0, stdout: "{}\n" });
    const result = await proxy.result;
    expect({ code: result.code, signal: result.signal }).toEqual({ code: 5, signal: null });
    expect(result.stderr).toMatch(/\nqmpctl: proxy: QEMU closed its monitor( \(\d clients? disconnected\))?\n$/);
    await waitUntil(() => !alive(qemu), "QEMU has exited");
  },
  30_000,
);
