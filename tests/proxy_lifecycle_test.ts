/**
 * How `qmpctl proxy` ends: QEMU quits (0) or is killed (3), a signal stops
 * the proxy (0, socket file removed), a stale socket file is replaced, and
 * launch mode (`proxy --listen PATH -- qemu ...`) exits with QEMU's status.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { constants, tmpdir } from "node:os";
import { join } from "node:path";
import { QMPCTL, qmpctl, startQmpctl } from "./helpers/cli.ts";
import { startListener } from "./helpers/listener.ts";
import { alive, childrenOf, waitUntil } from "./helpers/process_state.ts";
import { negotiatedClient, type RawClient, type RunningProxy, startProxy } from "./helpers/proxy.ts";
import { startQemu, type TestQemu } from "./helpers/qemu.ts";
import { killStubbornQemus, stubbornQemu, stubbornQemuPid } from "./helpers/stubborn_qemu.ts";
import { runIntoUnreadPipe } from "./helpers/unread_pipe.ts";

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function sharedQemu(extraArgs: string[] = []): Promise<{ qemu: TestQemu; proxy: RunningProxy; shared: string }> {
  const qemu = await startQemu({ extraArgs });
  cleanups.push(() => qemu.stop());
  const shared = join(qemu.dir, "shared.sock");
  const proxy = startProxy(["-s", qemu.socket, "--listen", shared]);
  cleanups.push(() => proxy.child.kill("SIGKILL"));
  await proxy.ready;
  return { qemu, proxy, shared };
}

describe("proxy -s UPSTREAM: how it ends", () => {
  test("QEMU quits through the proxy: every client is closed, exit 0, socket file removed", async () => {
    const { proxy, shared } = await sharedQemu();
    const { client } = await negotiatedClient(shared);
    expect(await qmpctl(["-s", shared, "exec", "quit"])).toMatchObject({ code: 0, stdout: "{}\n" });
    await client.closed;
    const result = await proxy.result;
    expect(result.code).toBe(0);
    expect(result.stderr).not.toMatch(/without a quit/);
    expect(existsSync(shared)).toBe(false);
  });

  /** Kill the proxy's QEMU: the client is closed, and the proxy exits 3 saying QEMU went away. */
  async function expectLostWhenKilled({ qemu, proxy }: Awaited<ReturnType<typeof sharedQemu>>, client: RawClient) {
    qemu.process.kill("SIGKILL");
    await client.closed;
    const result = await proxy.result;
    expect(result.code).toBe(3);
    expect(result.stderr).toContain(
      `qmpctl: proxy: ${qemu.socket} closed the connection without a quit, or a SHUTDOWN event that no RESUME followed\n`,
    );
  }

  test("QEMU killed: exit 3 with one line saying so, socket file removed", async () => {
    const shared = await sharedQemu();
    const { client } = await negotiatedClient(shared.shared);
    await expectLostWhenKilled(shared, client);
    expect(existsSync(shared.shared)).toBe(false);
  });

  test("a quit QEMU refused (a bad argument, or as exec-oob) does not make a later crash exit 0", async () => {
    const shared = await sharedQemu();
    const { client } = await negotiatedClient(shared.shared);
    client.send({ execute: "quit", arguments: { bogus: 1 }, id: 1 });
    client.send({ "exec-oob": "quit", id: 2 });
    const replies = await client.replies(2);
    expect(replies.map((reply) => "error" in reply)).toEqual([true, true]);
    await expectLostWhenKilled(shared, client);
  });

  test("a SHUTDOWN the guest came back from (-no-shutdown, then RESUME) does not make a later crash exit 0", async () => {
    const shared = await sharedQemu(["-no-shutdown"]);
    const { client } = await negotiatedClient(shared.shared);
    const run = (...args: string[]) => qmpctl(["-s", shared.shared, "exec", ...args]);
    expect((await run("set-action", "reboot=shutdown")).code).toBe(0);
    expect((await run("system_reset", "--wait-event", "SHUTDOWN", "--timeout", "10s")).code).toBe(0);
    expect((await run("set-action", "reboot=reset")).code).toBe(0);
    expect((await run("system_reset")).code).toBe(0);
    expect((await run("cont", "--wait-event", "RESUME", "--timeout", "10s")).code).toBe(0);
    await expectLostWhenKilled(shared, client);
  });

  // SIGINT (a Ctrl-C) ends it as every command: death by that signal once done, which a shell loop stops on.
  for (
    const [signal, status, diedOf] of [["SIGTERM", 0, null], ["SIGINT", 130, "SIGINT"], ["SIGHUP", 0, null]] as const
  ) {
    test(`${signal}: exit ${status}, clients closed, one line saying so, socket file removed, QEMU's monitor free again`, async () => {
      const { qemu, proxy, shared } = await sharedQemu();
      const { client } = await negotiatedClient(shared);
      proxy.child.kill(signal);
      await client.closed;
      const result = await proxy.result;
      expect({ code: result.code, signal: result.signal }).toEqual({ code: status, signal: diedOf });
      // Logged as every other end is (--timeout's, QEMU's SHUTDOWN), for a unit's journal.
      expect(result.stderr).toEndWith(`qmpctl: proxy: ${signal}: stopped sharing (1 client disconnected)\n`);
      expect(existsSync(shared)).toBe(false);
      expect(await qmpctl(["-s", qemu.socket, "exec", "query-name"])).toMatchObject({ code: 0, stdout: "{}\n" });
    });
  }

  test("--timeout bounds the proxy's run: exit 124 with one line, socket file removed", async () => {
    const qemu = await startQemu();
    cleanups.push(() => qemu.stop());
    const shared = join(qemu.dir, "shared.sock");
    const proxy = startProxy(["-s", qemu.socket, "--listen", shared, "--timeout", "1s"]);
    cleanups.push(() => proxy.child.kill("SIGKILL"));
    await proxy.ready;
    const result = await proxy.result;
    expect(result.code).toBe(124);
    expect(result.stderr).toEndWith("qmpctl: proxy: --timeout 1s ran out: stopped sharing\n");
    expect(existsSync(shared)).toBe(false);
  });

  test("a stale socket file left by a killed proxy is replaced", async () => {
    const { qemu, proxy, shared } = await sharedQemu();
    proxy.child.kill("SIGKILL");
    await proxy.result;
    expect(existsSync(shared)).toBe(true);
    const again = startProxy(["-s", qemu.socket, "--listen", shared, "--listen-mode", "0660"]);
    cleanups.push(() => again.child.kill("SIGKILL"));
    await again.ready;
    expect(await qmpctl(["-s", shared, "exec", "query-name"])).toMatchObject({ code: 0, stdout: "{}\n" });
  });

  test("-v logs each client's messages and the upstream's, marked with their direction", async () => {
    const qemu = await startQemu();
    cleanups.push(() => qemu.stop());
    const shared = join(qemu.dir, "shared.sock");
    const proxy = startProxy(["-v", "-s", qemu.socket, "--listen", shared]);
    cleanups.push(() => proxy.child.kill("SIGKILL"));
    await proxy.ready;
    const { client } = await negotiatedClient(shared);
    client.send({ execute: "query-name", id: ["mine"] });
    expect(await client.replies(1)).toEqual([{ return: {}, id: ["mine"] }]);
    await proxy.stderrLine(/^client 1 > \{"return":\{\},"id":\["mine"\]\}$/);
    expect(proxy.stderr()).toContain('client 1 < {"execute":"query-name","id":["mine"]}\n');
    expect(proxy.stderr()).toMatch(/^upstream > \{"execute":"query-name","id":"[\w-]{8}"\}$/m);
    expect(proxy.stderr()).toMatch(/^upstream < \{"return":\{\},"id":"[\w-]{8}"\}$/m);
    expect(proxy.stderr()).toMatch(/^client 1 > \{"QMP":/m);
    client.send({ execute: "query-name", id: "c1\u0085" }); // a C1 control: logged as JSON's escape
    expect(await client.replies(1)).toEqual([{ return: {}, id: "c1\u0085" }]);
    await proxy.stderrLine(/^client 1 > \{"return":\{\},"id":"c1\\u0085"\}$/);
    client.close();
  });

  test("a log reader that stops reading (-v, into a full pipe) stops neither the serving nor SIGTERM", async () => {
    const qemu = await startQemu();
    cleanups.push(() => qemu.stop());
    const shared = join(qemu.dir, "shared.sock");
    const args = [QMPCTL, "proxy", "-v", "-s", qemu.socket, "--listen", shared];
    let pid: number | undefined;
    const run = runIntoUnreadPipe("both", args, { prefill: 4000, started: (started) => (pid = started) });
    await waitUntil(() => existsSync(shared), "the proxy serves its socket");
    for (let i = 0; i < 20; i++) { // each logs ~500 bytes: far more than the pipe holds
      expect((await qmpctl(["-s", shared, "exec", "query-status", "--timeout", "5s"])).stdout).toContain("running");
    }
    const stopping = performance.now();
    process.kill(pid!, "SIGTERM"); // it serves: its pid is known
    expect(await run).toMatchObject({ code: 0, stderr: "" });
    expect(performance.now() - stopping).toBeLessThan(5000);
    expect(existsSync(shared)).toBe(false);
  }, 40_000);

  test("usage errors: no --listen, an empty one, a bad mode, both -s and a QEMU command line, an empty program (exit 2)", async () => {
    expect(await qmpctl(["proxy", "--listen", "", "-s", "/x"])).toMatchObject({
      code: 2,
      stderr: "qmpctl: --listen is empty: give it the path of the socket to serve\n",
    });
    expect(await qmpctl(["proxy", "--listen", "/tmp/y", "--", ""])).toMatchObject({
      code: 2,
      stderr: "qmpctl: proxy: the QEMU program to start is empty ('')\n",
    });
    expect(await qmpctl(["proxy", "-s", "/nonexistent"])).toMatchObject({
      code: 2,
      stderr: "qmpctl: proxy needs --listen PATH (the socket to serve)\n",
    });
    expect((await qmpctl(["proxy", "-s", "/x", "--listen", "/tmp/y", "--listen-mode", "rw"])).code).toBe(2);
    for (const dashes of [["--"], []]) {
      expect(await qmpctl(["proxy", "-s", "/x", "--listen", "/tmp/y", ...dashes, "qemu-system-x86_64"]))
        .toMatchObject({
          code: 2,
          stderr: "qmpctl: proxy takes either -s UPSTREAM or a QEMU command line (qemu-system-x86_64 ...), not both\n",
        });
    }
    for (const late of [["--listen", "/tmp/y"], ["--listen=/tmp/y"]]) {
      expect(await qmpctl(["proxy", "qemu-system-x86_64", ...late])).toMatchObject({
        code: 2,
        stderr: "qmpctl: proxy needs --listen PATH (the socket to serve), before the QEMU command line (its words " +
          "are QEMU's)\n",
      });
    }
  });

  test("no upstream: none given, or QMPCTL_SOCKET set but empty (QMPCTL_SOCKET=$VM, $VM unset), said apart (exit 2)", async () => {
    expect(await qmpctl(["proxy", "--listen", "/tmp/y"])).toMatchObject({
      code: 2,
      stderr: "qmpctl: no upstream: give -s/--socket ADDR or set QMPCTL_SOCKET, or a QEMU command line\n",
    });
    expect(await qmpctl(["proxy", "--listen", "/tmp/y"], { env: { QMPCTL_SOCKET: "" } })).toMatchObject({
      code: 2,
      stderr: "qmpctl: no upstream: QMPCTL_SOCKET is set but empty: give -s/--socket ADDR or a value to " +
        "QMPCTL_SOCKET, or a QEMU command line\n",
    });
  });
});

describe("proxy --listen PATH -- qemu ...: launch mode", () => {
  function launch(
    extra: string[] = [],
    env: Record<string, string> = {},
    dashes = ["--"],
  ): { proxy: RunningProxy; shared: string } {
    const dir = mkdtempSync(join(tmpdir(), "qmpctl-launch-"));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const shared = join(dir, "vm.sock");
    const proxy = startProxy(
      [
        "--listen",
        shared,
        ...dashes,
        "qemu-system-x86_64",
        "-nodefaults",
        "-display",
        "none",
        "-machine",
        "none",
        ...extra,
      ],
      300_000,
      env,
    );
    cleanups.push(() => {
      for (const pid of existsSync(`/proc/${proxy.child.pid}`) ? childrenOf(proxy.child.pid) : []) {
        process.kill(pid, "SIGKILL");
      }
      proxy.child.kill("SIGKILL");
    });
    return { proxy, shared };
  }

  test("quit through the proxy: QEMU exits, the proxy exits 0, no QEMU left", async () => {
    const { proxy, shared } = launch();
    await proxy.ready;
    const [qemuPid] = childrenOf(proxy.child.pid);
    expect(alive(qemuPid)).toBe(true);
    const waiter = startListener(["-s", shared, "wait-event", "SHUTDOWN", "--timeout", "20s"]);
    await waiter.ready;
    expect(await qmpctl(["-s", shared, "exec", "quit"])).toMatchObject({ code: 0, stdout: "{}\n" });
    expect(JSON.parse((await waiter.result).stdout)).toMatchObject({ event: "SHUTDOWN", data: { guest: false } });
    const result = await proxy.result;
    expect(result.code).toBe(0);
    expect(alive(qemuPid)).toBe(false);
    expect(existsSync(shared)).toBe(false);
  });

  test("without --, every word from QEMU's program on is QEMU's (its -machine is not qmpctl's -m)", async () => {
    const { proxy, shared } = launch([], {}, []);
    await proxy.ready;
    expect(await qmpctl(["-s", shared, "exec", "query-status"])).toMatchObject({ code: 0, stderr: "" });
    proxy.child.kill("SIGTERM");
    expect((await proxy.result).code).toBe(0);
  });

  test("a TMPDIR with a comma: QEMU still finds the proxy's monitor (the comma is escaped in -chardev)", async () => {
    const tmp = mkdtempSync(join(tmpdir(), "qmpctl-comma,tmp-"));
    cleanups.push(() => rmSync(tmp, { recursive: true, force: true }));
    const { proxy, shared } = launch([], { TMPDIR: tmp });
    await proxy.ready;
    expect(await qmpctl(["-s", shared, "exec", "query-status"])).toMatchObject({ code: 0, stderr: "" });
  });

  test("SIGTERM is forwarded to QEMU; the proxy exits with QEMU's status, its last line saying how QEMU ended", async () => {
    const { proxy, shared } = launch();
    await proxy.ready;
    const [qemuPid] = childrenOf(proxy.child.pid);
    expect(await qmpctl(["-s", shared, "exec", "query-status"])).toMatchObject({ code: 0 });
    const { client } = await negotiatedClient(shared);
    proxy.child.kill("SIGTERM");
    await client.closed;
    const result = await proxy.result;
    expect(result.code).toBe(0); // QEMU ends with 0 on SIGTERM
    // The proxy's line first, then QEMU's on the signal, each a line of its own (a unit's journal reads in order).
    expect(result.stderr).toMatch(
      /^qmpctl: proxy: SIGTERM: stopping qemu-system-x86_64\n(.*\n)*qemu-system-x86_64: terminating on signal 15/m,
    );
    expect(result.stderr).toEndWith("qmpctl: proxy: qemu-system-x86_64 exited with status 0 (1 client disconnected)\n");
    expect(alive(qemuPid)).toBe(false);
    expect(existsSync(shared)).toBe(false);
  });

  test("--timeout stops QEMU when it runs out: exit 124 saying so (not QEMU's 0), socket file removed", async () => {
    const dir = mkdtempSync(join(tmpdir(), "qmpctl-launch-"));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const shared = join(dir, "vm.sock");
    const qemu = ["qemu-system-x86_64", "-nodefaults", "-display", "none", "-machine", "none"];
    const proxy = startProxy(["--listen", shared, "--timeout", "1s", "--", ...qemu]);
    await proxy.ready;
    const [qemuPid] = childrenOf(proxy.child.pid);
    const result = await proxy.result;
    expect(result.code).toBe(124);
    expect(result.stderr).toContain("qmpctl: proxy: --timeout 1s ran out: stopping qemu-system-x86_64\n");
    expect(alive(qemuPid)).toBe(false);
    expect(existsSync(shared)).toBe(false);
    // One that never connects its monitor: the timeout ends it, not "exited before it connected".
    const silent = await qmpctl([
      "proxy",
      "--listen",
      join(dir, "b.sock"),
      "--timeout",
      "500ms",
      "--",
      "sh",
      "-c",
      "exec sleep 30",
    ]);
    expect(silent).toMatchObject({
      code: 124,
      stderr: "qmpctl: proxy: --timeout 500ms ran out: stopping sh\n" +
        "qmpctl: proxy: sh was killed by SIGTERM before it connected its monitor\n",
    });
  });

  test("--timeout, QEMU ignoring SIGTERM: killed after a grace, as timeout -k does; exit 124, saying so", async () => {
    const dir = mkdtempSync(join(tmpdir(), "qmpctl-launch-"));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const shared = join(dir, "vm.sock"), pidFile = join(dir, "qemu.pid");
    const proxy = startProxy(["--listen", shared, "--timeout", "1s", "--", ...stubbornQemu(pidFile, true)], 30_000);
    cleanups.push(() => proxy.child.kill("SIGKILL"), () => killStubbornQemus(pidFile));
    await proxy.ready; // it greeted and negotiated through its monitor
    const pid = await stubbornQemuPid(pidFile);
    const result = await proxy.result;
    expect({ code: result.code, signal: result.signal }).toEqual({ code: 124, signal: null });
    expect(result.stderr).toContain("qmpctl: proxy: --timeout 1s ran out: stopping sh\n");
    expect(result.stderr).toContain("qmpctl: proxy: sh did not exit within 10s of SIGTERM: killed it (SIGKILL)\n");
    expect(alive(pid)).toBe(false);
    expect(existsSync(shared)).toBe(false);
  }, 60_000);

  test("--timeout before --connect-timeout, QEMU ignoring SIGTERM: 124, not the connect timeout's 3", async () => {
    const dir = mkdtempSync(join(tmpdir(), "qmpctl-launch-"));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const pidFile = join(dir, "qemu.pid");
    const run = startQmpctl(
      [
        ...["proxy", "--listen", join(dir, "vm.sock"), "--timeout", "1s"], // --connect-timeout: its default 10s
        ...["--", ...stubbornQemu(pidFile, false)],
      ],
      { killAfterMs: 30_000 },
    );
    cleanups.push(() => run.child.kill("SIGKILL"), () => killStubbornQemus(pidFile));
    const pid = await stubbornQemuPid(pidFile);
    const result = await run.result;
    expect(result.code).toBe(124);
    expect(result.stderr).toBe(
      "qmpctl: proxy: --timeout 1s ran out: stopping sh\n" +
        "qmpctl: proxy: sh did not exit within 10s of SIGTERM: killed it (SIGKILL)\n" +
        "qmpctl: proxy: sh was killed by SIGKILL before it connected its monitor\n",
    );
    expect(alive(pid)).toBe(false);
  }, 60_000);

  test("started by a parent that ignores SIGCHLD: QEMU's status and --timeout's 124 as usual, not an internal error", async () => {
    const dir = mkdtempSync(join(tmpdir(), "qmpctl-launch-"));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const early = await qmpctl(["proxy", "--listen", join(dir, "a.sock"), "--", "sh", "-c", "exit 5"], {
      ignoring: ["SIGCHLD"],
    });
    expect(early).toMatchObject({
      code: 5,
      stderr: "qmpctl: proxy: sh exited with status 5 before it connected its monitor\n",
    });
    const qemu = ["qemu-system-x86_64", "-nodefaults", "-display", "none", "-machine", "none"];
    const bounded = await qmpctl(["proxy", "--listen", join(dir, "b.sock"), "--timeout", "1s", "--", ...qemu], {
      ignoring: ["SIGCHLD"],
    });
    expect(bounded.code).toBe(124);
    expect(bounded.stderr).toContain("qmpctl: proxy: --timeout 1s ran out: stopping qemu-system-x86_64\n");
    expect(readdirSync(dir)).toEqual([]);
  });

  test("under nohup (SIGHUP ignored at start) a hangup stops neither the proxy nor QEMU: --timeout ends them", async () => {
    const dir = mkdtempSync(join(tmpdir(), "qmpctl-launch-"));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const qemu = ["qemu-system-x86_64", "-nodefaults", "-display", "none", "-machine", "none"];
    let stderr = "";
    const { promise: serving, resolve } = Promise.withResolvers<void>();
    const running = startQmpctl(["proxy", "--listen", join(dir, "vm.sock"), "--timeout", "2s", "--", ...qemu], {
      ignoring: ["SIGHUP"],
      onStderr: (text) => (stderr += text).includes("serving QEMU's monitor") && resolve(),
    });
    await serving;
    running.child.kill("SIGHUP");
    const result = await running.result;
    expect(result.code).toBe(124);
    expect(result.stderr).toContain("qmpctl: proxy: --timeout 2s ran out: stopping qemu-system-x86_64\n");
  });

  test("a program not found exits 127, one not runnable 126 (as env(1)); one that never connects a monitor is stopped at --connect-timeout: exit 3", async () => {
    const dir = mkdtempSync(join(tmpdir(), "qmpctl-launch-"));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const missing = await qmpctl(["proxy", "--listen", join(dir, "a.sock"), "--", "/nonexistent/qemu"]);
    expect(missing.code).toBe(127);
    expect(missing.stderr).toBe("qmpctl: proxy: cannot start /nonexistent/qemu: no such file or directory (ENOENT)\n");
    const notRunnable = await qmpctl(["proxy", "--listen", join(dir, "c.sock"), "--", dir]);
    expect(notRunnable.code).toBe(126); // there, but no program: as env(1) says
    expect(notRunnable.stderr).toBe(`qmpctl: proxy: cannot start ${dir}: permission denied (EACCES)\n`);
    // A script that is there, whose #! interpreter is not: said as bash says it, not as the script missing.
    const script = join(dir, "vm.sh");
    writeFileSync(script, '#!/nonexistent/sh\nexec qemu-system-x86_64 "$@"\n', { mode: 0o755 });
    expect(await qmpctl(["proxy", "--listen", join(dir, "d.sock"), "--", script])).toMatchObject({
      code: 127,
      stderr:
        `qmpctl: proxy: cannot start ${script}: its interpreter /nonexistent/sh was not found (bad interpreter)\n`,
    });
    // Found in PATH as exec finds it: a file of that name that is not executable, earlier in PATH, is passed over.
    const [early, late] = [join(dir, "early"), join(dir, "late")];
    mkdirSync(early), mkdirSync(late);
    writeFileSync(join(early, "vm.sh"), "#!/bin/sh\n"); // not executable
    writeFileSync(join(late, "vm.sh"), "#!/nonexistent/sh\n", { mode: 0o755 });
    const inPath = await qmpctl(["proxy", "--listen", join(dir, "e.sock"), "--", "vm.sh"], {
      env: { PATH: `${early}:${late}:${process.env.PATH}` },
    });
    expect(inPath).toMatchObject({
      code: 127,
      stderr: "qmpctl: proxy: cannot start vm.sh: its interpreter /nonexistent/sh was not found (bad interpreter)\n",
    });
    const silent = await qmpctl([
      ...["proxy", "--listen", join(dir, "b.sock"), "--connect-timeout", "500ms"],
      ...["--", "sh", "-c", "exec sleep 30"], // the monitor's -chardev and -mon become sh's $0, $1...: ignored
    ]);
    expect(silent.code).toBe(3);
    expect(silent.stderr).toBe(
      "qmpctl: proxy: sh did not connect its monitor within 500ms (--connect-timeout): stopped\n",
    );
    expect(silent.ms).toBeLessThan(10_000);
  });

  test("a script without #! is run by /bin/sh, as env(1) runs it: here one that starts QEMU, which is served", async () => {
    const dir = mkdtempSync(join(tmpdir(), "qmpctl-launch-"));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const script = join(dir, "vm"), shared = join(dir, "vm.sock");
    writeFileSync(script, 'exec qemu-system-x86_64 -nodefaults -display none -machine none "$@"\n', { mode: 0o755 });
    const proxy = startProxy(["--listen", shared, "--", script]);
    cleanups.push(() => proxy.child.kill("SIGKILL"));
    await proxy.ready;
    expect(await qmpctl(["-s", shared, "exec", "quit"])).toMatchObject({ code: 0, stdout: "{}\n" });
    expect((await proxy.result).code).toBe(0);
  });

  test("a TMPDIR it cannot make its directory in: exit 3 with one line naming it, no internal error", async () => {
    const dir = mkdtempSync(join(tmpdir(), "qmpctl-launch-"));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const result = await qmpctl(
      ["proxy", "--listen", join(dir, "vm.sock"), "--", "qemu-system-x86_64", "-machine", "none"],
      { env: { TMPDIR: "/nonexistent/dir" } },
    );
    expect(result).toMatchObject({
      code: 3,
      stderr: "qmpctl: cannot make a directory for QEMU's monitor socket in TMPDIR /nonexistent/dir (ENOENT)\n",
    });
    expect(existsSync(join(dir, "vm.sock"))).toBe(false);
  });

  test("a --listen that cannot be served (no such directory, a file for one, a directory): exit 3, said before QEMU is started", async () => {
    const dir = mkdtempSync(join(tmpdir(), "qmpctl-launch-"));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    writeFileSync(join(dir, "file"), "");
    const qemu = ["qemu-system-x86_64", "-nodefaults", "-display", "none", "-machine", "none"];
    for (
      const [listen, reason] of [
        [join(dir, "nodir", "vm.sock"), `no such directory ${join(dir, "nodir")} (ENOENT)`],
        [join(dir, "file", "vm.sock"), "a part of the path is not a directory (ENOTDIR)"],
        [dir, "it is a directory (give a path for the socket in it)"],
      ]
    ) {
      // qmpctl's line alone: a QEMU started and then stopped would add its "terminating on signal 15".
      expect(await qmpctl(["proxy", "--listen", listen, "--", ...qemu])).toMatchObject({
        code: 3,
        stderr: `qmpctl: cannot listen on ${listen}: ${reason}\n`,
      });
    }
    expect(readdirSync(dir)).toEqual(["file"]);
  });

  test("-daemonize is refused (exit 2): QEMU's launcher would exit and leave QEMU with a monitor gone with the proxy", async () => {
    const dir = mkdtempSync(join(tmpdir(), "qmpctl-launch-"));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const result = await qmpctl(
      ["proxy", "--listen", join(dir, "vm.sock"), "--", "qemu-system-x86_64", "-machine", "none", "-daemonize"],
    );
    expect(result).toMatchObject({
      code: 2,
      stderr: "qmpctl: proxy runs QEMU as its child: leave out -daemonize (run the proxy in the background instead)\n",
    });
    expect(existsSync(join(dir, "vm.sock"))).toBe(false);
  });

  test("QEMU killed under the proxy: one line saying by what, exit 128 + its number as a shell reports it", async () => {
    const { proxy } = launch();
    await proxy.ready;
    const [qemuPid] = childrenOf(proxy.child.pid);
    process.kill(qemuPid, "SIGKILL");
    const result = await proxy.result;
    expect(result.code).toBe(137);
    expect(result.stderr).toEndWith("qmpctl: proxy: qemu-system-x86_64 was killed by SIGKILL\n");
    // A signal beyond the usual few has this platform's number (it was 128 + 0: 128).
    const dir = mkdtempSync(join(tmpdir(), "qmpctl-launch-"));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const usr1 = await qmpctl(["proxy", "--listen", join(dir, "a.sock"), "--", "sh", "-c", "kill -USR1 $$"]);
    expect(usr1).toMatchObject({
      code: 128 + constants.signals.SIGUSR1,
      stderr: "qmpctl: proxy: sh was killed by SIGUSR1 before it connected its monitor\n",
    });
  });

  test("QEMU that fails to start: its own stderr passes through, the proxy exits with its status", async () => {
    const { proxy } = launch(["-no-such-option"]);
    const result = await proxy.result;
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("qemu-system-x86_64: -no-such-option: invalid option");
  });

  test("QEMU that fails after it connected its monitor (a bad -device): the proxy exits with its status, not 3, saying so", async () => {
    const { proxy } = launch(["-device", "no-such-device"]);
    const result = await proxy.result;
    expect(result.stderr).toContain("'no-such-device' is not a valid device model name");
    expect(result.stderr).toEndWith("qmpctl: proxy: qemu-system-x86_64 exited with status 1\n");
    expect(result.code).toBe(1);
  });
});

test("-s a socket that appears later, with --wait-socket: the proxy waits for QEMU, then serves it", async () => {
  const dir = mkdtempSync(join(tmpdir(), "qmpctl-proxy-late-"));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const upstream = join(dir, "late.sock"), shared = join(dir, "shared.sock");
  const proxy = startProxy(["-s", upstream, "--wait-socket", "20s", "--listen", shared]);
  cleanups.push(() => proxy.child.kill("SIGKILL"));
  await Bun.sleep(300); // the proxy is retrying: QEMU has not started
  const qemu = await startQemu({ extraArgs: ["-qmp", `unix:${upstream},server=on,wait=off`] });
  cleanups.push(() => qemu.stop());
  await proxy.ready;
  const result = await qmpctl(["-s", shared, "exec", "query-status"]);
  expect(result).toMatchObject({ code: 0, stderr: "" });
  expect(JSON.parse(result.stdout)).toMatchObject({ status: "running" });
});

test("a proxy that stops leaves alone a socket another proxy has since put at its path", async () => {
  const dir = mkdtempSync(join(tmpdir(), "qmpctl-proxy-two-"));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const other = join(dir, "other.sock"); // a second monitor: each proxy holds one
  const qemu = await startQemu({ extraArgs: ["-qmp", `unix:${other},server=on,wait=off`] });
  cleanups.push(() => qemu.stop());
  const shared = join(dir, "shared.sock");
  const first = startProxy(["-s", qemu.socket, "--listen", shared]);
  cleanups.push(() => first.child.kill("SIGKILL"));
  await first.ready;
  rmSync(shared); // someone removed the first proxy's socket, and a second proxy serves that path now
  const second = startProxy(["-s", other, "--listen", shared]);
  cleanups.push(() => second.child.kill("SIGKILL"));
  await second.ready;
  first.child.kill("SIGTERM");
  expect((await first.result).code).toBe(0);
  expect(existsSync(shared)).toBe(true); // the second proxy's socket
  second.child.kill("SIGTERM");
  expect((await second.result).code).toBe(0);
  expect(existsSync(shared)).toBe(false);
});
