/** Every address form, and each connection error, as a user meets them against a real QEMU. */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, lstatSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { QmpClient } from "../lib/mod.ts";
import { interrupt, QMPCTL, qmpctl, startQmpctl } from "./helpers/cli.ts";
import { blockedIn, hasConnectedUnixSocket, waitUntil } from "./helpers/process_state.ts";
import { freePort, startQemu, type TestQemu } from "./helpers/qemu.ts";

let qemu: TestQemu;
let expected: string; // query-status as the control monitor sees it, one line
let scratch: string; // a directory for sockets nobody listens on
beforeAll(async () => {
  qemu = await startQemu({ tcp: true, tcp6: true, pretty: true });
  expected = JSON.stringify(await qemu.control.execute("query-status")) + "\n";
  scratch = mkdtempSync(join(tmpdir(), "qmpctl-connect-"));
});
afterAll(async () => {
  await qemu?.stop();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

const ok = () => expect.objectContaining({ code: 0, stdout: expected, stderr: "" });

describe("address forms", () => {
  test("a UNIX socket path, absolute and relative", async () => {
    expect(await qmpctl(["-s", qemu.socket, "exec", "query-status"])).toEqual(ok());
    expect(await qmpctl(["-s", "./" + relative(process.cwd(), qemu.socket), "exec", "query-status"])).toEqual(ok());
  });

  test("unix:PATH, and the -qmp argument pasted as is (unix:PATH,server=on,wait=off)", async () => {
    expect(await qmpctl(["-s", `unix:${qemu.socket}`, "exec", "query-status"])).toEqual(ok());
    expect(await qmpctl(["-s", `unix:${qemu.socket},server=on,wait=off`, "exec", "query-status"])).toEqual(ok());
  });

  test("HOST:PORT and tcp:HOST:PORT over IPv4 loopback", async () => {
    expect(await qmpctl(["-s", `127.0.0.1:${qemu.tcpPort}`, "exec", "query-status"])).toEqual(ok());
    expect(await qmpctl(["-s", `tcp:127.0.0.1:${qemu.tcpPort}`, "exec", "query-status"])).toEqual(ok());
    expect(await qmpctl(["-s", `tcp:127.0.0.1:${qemu.tcpPort},server=on,wait=off`, "exec", "query-status"]))
      .toEqual(ok());
  });

  test("over TCP the command goes out once qmp_capabilities is answered (QEMU's Nagle: no ~40 ms stall)", async () => {
    // Behind an unanswered qmp_capabilities, QEMU's second reply would wait for the ACK of its first.
    const direction = (stderr: string) => stderr.split("\n").filter((l) => l !== "").map((l) => l.slice(0, 1));
    const tcp = await qmpctl(["-v", "-s", `127.0.0.1:${qemu.tcpPort}`, "exec", "query-name"]);
    expect(direction(tcp.stderr)).toEqual(["<", ">", "<", ">", "<"]);
    // Over a UNIX socket it goes right behind it: one round trip fewer.
    const unix = await qmpctl(["-v", "-s", qemu.socket, "exec", "query-name"]);
    expect(direction(unix.stderr)).toEqual(["<", ">", ">", "<", "<"]);
  });

  test("[::1]:PORT and tcp:[::1]:PORT over IPv6 loopback", async () => {
    expect(await qmpctl(["-s", `[::1]:${qemu.tcp6Port}`, "exec", "query-status"])).toEqual(ok());
    expect(await qmpctl(["-s", `tcp:[::1]:${qemu.tcp6Port}`, "exec", "query-status"])).toEqual(ok());
  });

  test("QMPCTL_SOCKET from the environment, and -s winning over it", async () => {
    expect(await qmpctl(["exec", "query-status"], { env: { QMPCTL_SOCKET: qemu.socket } })).toEqual(ok());
    const missing = join(scratch, "missing.sock");
    expect(await qmpctl(["-s", qemu.socket, "exec", "query-status"], { env: { QMPCTL_SOCKET: missing } }))
      .toEqual(ok());
  });

  test("options after the command mean the same as before it, in every spelling", async () => {
    expect(await qmpctl(["exec", "query-status", "-s", qemu.socket])).toEqual(ok());
    expect(await qmpctl(["exec", "-s", qemu.socket, "query-status"])).toEqual(ok());
    expect(await qmpctl([`--socket=${qemu.socket}`, "exec", "query-status"])).toEqual(ok());
    expect(await qmpctl([`-s${qemu.socket}`, "exec", "query-status"])).toEqual(ok());
    expect(await qmpctl(["-vs", qemu.socket, "exec", "query-status"])).toMatchObject({ code: 0, stdout: expected });
  });

  test("a pretty=on monitor (one message over many lines) works identically, -v included", async () => {
    const plain = await qmpctl(["-v", "-s", qemu.socket, "exec", "query-version"]);
    const pretty = await qmpctl(["-v", "-s", qemu.prettySocket!, "exec", "query-version"]);
    expect(pretty).toMatchObject({ code: 0, stdout: plain.stdout });
    expect(plain.stdout.split("\n")).toHaveLength(2);
    // The same log lines, each message compact on one line, whatever the server's layout (and for the ids: each
    // run has its own tag).
    const withoutTag = (log: string) => log.replaceAll(/"id":"qmpctl-[0-9a-z]+-/g, '"id":"qmpctl-TAG-');
    expect(withoutTag(pretty.stderr)).toBe(withoutTag(plain.stderr));
    const hmp = await qmpctl(["-s", qemu.prettySocket!, "hmp", "info status"]);
    expect(hmp).toEqual(expect.objectContaining({ code: 0, stdout: "VM status: running\n", stderr: "" }));
    const error = await qmpctl(["-s", qemu.prettySocket!, "exec", "no-such-command", "--raw"]);
    expect(error).toMatchObject({
      code: 1,
      stdout: '{"error":{"class":"CommandNotFound","desc":"The command no-such-command has not been found"}}\n',
    });
  });
});

describe("connection errors name the address and the reason", () => {
  test("a socket path that does not exist: exit 3", async () => {
    const path = join(scratch, "no-such.sock");
    const result = await qmpctl(["-s", path, "exec", "query-status"]);
    expect(result).toEqual(expect.objectContaining({
      code: 3,
      stdout: "",
      stderr: `qmpctl: cannot connect to ${path}: no such socket (ENOENT)\n`,
    }));
  });

  test("QMPCTL_SOCKET set but empty (QMPCTL_SOCKET=$VM, $VM unset): exit 2 saying it is empty, not unset", async () => {
    expect(await qmpctl(["exec", "query-status"], { env: { QMPCTL_SOCKET: "" } })).toMatchObject({
      code: 2,
      stdout: "",
      stderr: "qmpctl: no address: QMPCTL_SOCKET is set but empty: give -s/--socket ADDR or a value to QMPCTL_SOCKET\n",
    });
    // -s wins over it, as over any value
    expect(await qmpctl(["-s", qemu.socket, "exec", "query-status"], { env: { QMPCTL_SOCKET: "" } })).toEqual(ok());
  });

  test("a stale socket file nobody listens on: exit 3, connection refused", async () => {
    const path = join(scratch, "stale.sock");
    // What a QEMU killed with SIGKILL leaves behind: the socket file, and nobody listening.
    const listener = Bun.spawn(["socat", `UNIX-LISTEN:${path}`, "-"], { stdin: "pipe", stdout: "ignore" });
    while (!existsSync(path)) await Bun.sleep(10);
    listener.kill("SIGKILL");
    await listener.exited;
    expect(lstatSync(path).isSocket()).toBe(true);
    const result = await qmpctl(["-s", `unix:${path},server=on,wait=off`, "exec", "query-status"]);
    expect(result.code).toBe(3);
    expect(result.stdout).toBe("");
    expect(result.stderr).toMatch(
      new RegExp(`^qmpctl: cannot connect to unix:${path},server=on,wait=off: connection refused.*\\n$`),
    );
  });

  test("a path that is no socket (a pidfile, a directory): exit 3 saying what it is", async () => {
    const pidfile = join(scratch, "vm1.pid");
    writeFileSync(pidfile, "1234\n");
    for (const [path, kind] of [[pidfile, "a regular file"], [scratch, "a directory"]]) {
      expect(await qmpctl(["-s", path, "exec", "query-status"])).toEqual(expect.objectContaining({
        code: 3,
        stdout: "",
        stderr: `qmpctl: cannot connect to ${path}: not a socket (${kind})\n`,
      }));
    }
  });

  test("a socket of another kind (datagram, seqpacket): exit 3 at once saying so, not 'refused' nor a full queue", async () => {
    // A stream connect(2) to either fails with EPROTOTYPE, which Bun reports as ECONNREFUSED.
    const datagram = join(scratch, "dgram.sock"), seqpacket = join(scratch, "seqpacket.sock");
    const script = "import socket, sys; d = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); d.bind(sys.argv[1]); " +
      "s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET); s.bind(sys.argv[2]); s.listen(1); " +
      "print('bound', flush=True); sys.stdin.read()";
    const holder = Bun.spawn(["python3", "-c", script, datagram, seqpacket], { stdin: "pipe", stdout: "pipe" });
    try {
      await holder.stdout.getReader().read(); // the "bound" line
      for (const path of [datagram, seqpacket]) {
        // --wait-socket waits for a socket to come, not out this one: at once, not after 5 s (nor --connect-timeout)
        const result = await qmpctl(["-s", path, "--wait-socket", "5s", "exec", "query-status"]);
        expect(result).toMatchObject({
          code: 3,
          stdout: "",
          stderr: `qmpctl: cannot connect to ${path}: a socket of another kind (not a stream socket): ` +
            "no QMP monitor there (EPROTOTYPE)\n",
        });
        expect(result.ms).toBeLessThan(3000);
      }
    } finally {
      holder.kill("SIGKILL");
      await holder.exited;
    }
  });

  test("a path that cannot be followed (a symlink loop, a file as a directory): its own reason, not 'refused'", async () => {
    const loop = join(scratch, "loop1");
    symlinkSync(join(scratch, "loop2"), loop);
    symlinkSync(loop, join(scratch, "loop2"));
    const file = join(scratch, "plain");
    writeFileSync(file, "");
    const cases = [
      [loop, "too many levels of symbolic links (ELOOP)"],
      [join(file, "x.sock"), "a part of the path is not a directory (ENOTDIR)"],
      [file, "not a socket (a regular file)"],
    ];
    for (const [path, reason] of cases) {
      // --wait-socket waits for a socket to appear, not out these: at once, not after 5 s.
      const result = await qmpctl(["-s", path, "--wait-socket", "5s", "exec", "query-status"]);
      expect(result).toMatchObject({ code: 3, stdout: "", stderr: `qmpctl: cannot connect to ${path}: ${reason}\n` });
      expect(result.ms).toBeLessThan(3000);
    }
  });

  test("an HMP monitor's socket (-monitor) is not a QMP server: exit 3, quoting its banner; proxy -s too", async () => {
    const hmp = join(scratch, "hmp.sock");
    const other = await startQemu({ extraArgs: ["-monitor", `unix:${hmp},server=on,wait=off`] });
    try {
      const proxied = await qmpctl(["-s", hmp, "proxy", "--listen", join(scratch, "p.sock")]);
      expect(proxied).toMatchObject({ code: 3, stdout: "" });
      expect(proxied.stderr).toStartWith(`qmpctl: ${hmp} is not a QMP server: it sent "QEMU `);
      const result = await qmpctl(["-s", hmp, "exec", "query-status"]);
      expect(result).toMatchObject({ code: 3, stdout: "" });
      expect(result.stderr).toMatch(
        new RegExp(
          `^qmpctl: ${hmp} is not a QMP server: it sent "QEMU \\d+\\.\\d+\\.\\d+ monitor - type 'help' for more information"\n$`,
        ),
      );
    } finally {
      await other.stop();
    }
  });

  test("a TCP port nobody listens on: exit 3, connection refused", async () => {
    const port = freePort();
    const result = await qmpctl(["-s", `127.0.0.1:${port}`, "exec", "query-status"]);
    expect(result.code).toBe(3);
    expect(result.stderr).toMatch(
      new RegExp(`^qmpctl: cannot connect to 127\\.0\\.0\\.1:${port}: connection refused.*\\n$`),
    );
  });

  test("no file descriptor left (ulimit -n): exit 3 saying so at once, not 'connection refused' (Bun's word for it)", () => {
    const port = freePort();
    for (
      const [address, retry] of [[qemu.socket, []], [`127.0.0.1:${port}`, []], [qemu.socket, ["--wait-socket", "30s"]]]
    ) {
      // 5: the runtime starts, and has none left for the socket.
      const run = Bun.spawnSync([
        "prlimit",
        "--nofile=5",
        QMPCTL,
        "-s",
        address as string,
        ...retry,
        "exec",
        "query-status",
      ], {
        stderr: "pipe",
      });
      expect({ address, code: run.exitCode, stderr: run.stderr.toString() }).toEqual({
        address,
        code: 3,
        stderr:
          `qmpctl: cannot connect to ${address}: too many open files (this process's limit, ulimit -n) (EMFILE)\n`,
      });
    }
  });

  // Tests run as root, who may open any socket: run the binary as nobody.
  const nobody = 65534;
  const canRunAsNobody =
    Bun.spawnSync(["setpriv", `--reuid=${nobody}`, `--regid=${nobody}`, "--clear-groups", "--", "test", "-x", QMPCTL])
      .exitCode === 0;
  test.skipIf(!canRunAsNobody)("permission denied (run as nobody): exit 3 naming the address", async () => {
    chmodSync(qemu.dir, 0o755); // so that the socket's own mode (srwxr-xr-x, no write for others) is what refuses
    const result = await qmpctl(["-s", qemu.socket, "exec", "query-status"], { runAs: nobody });
    expect(result).toEqual(expect.objectContaining({
      code: 3,
      stdout: "",
      stderr: `qmpctl: cannot connect to ${qemu.socket}: permission denied (EACCES)\n`,
    }));
  });

  test("a QEMU stopped (SIGSTOP, a debugger): exit 3 at --connect-timeout, the hint naming that too", async () => {
    qemu.process.kill("SIGSTOP");
    try {
      // Tried again and again, as a script does: from the third try the listen queue is full (EAGAIN).
      const first = await qmpctl(["-s", qemu.socket, "--connect-timeout", "500ms", "exec", "query-status"]);
      expect(first.stderr).toStartWith(`qmpctl: no QMP greeting from ${qemu.socket} within 500ms: `);
      for (let i = 0; i < 3; i++) {
        const result = i === 0
          ? first
          : await qmpctl(["-s", qemu.socket, "--connect-timeout", "500ms", "exec", "query-status"]);
        expect(result).toMatchObject({ code: 3, stdout: "" });
        expect(result.stderr).toContain("QEMU may be stopped or hung");
      }
    } finally {
      qemu.process.kill("SIGCONT");
    }
    expect(await qmpctl(["-s", qemu.socket, "exec", "query-status"])).toEqual(ok()); // answers again
  });

  test("a second client while the first holds the monitor: exit 3 within --connect-timeout, saying why", async () => {
    const holder = await QmpClient.connect(qemu.socket, { connectTimeout: 5000 });
    try {
      const result = await qmpctl(["-s", qemu.socket, "--connect-timeout", "1s", "exec", "query-status"]);
      expect(result).toEqual(expect.objectContaining({
        code: 3,
        stdout: "",
        stderr: `qmpctl: no QMP greeting from ${qemu.socket} within 1s: ` +
          "another client may hold the monitor (QEMU serves one client at a time), QEMU may be stopped or hung, or it is no QMP monitor (a guest agent's socket: use qmpctl ga)\n",
      }));
      expect(result.ms).toBeLessThan(5000); // the 1 s bound, not the 10 s default
    } finally {
      await holder.close();
    }
    expect(await qmpctl(["-s", qemu.socket, "exec", "query-status"])).toEqual(ok()); // free again
  });

  test("--timeout shorter than --connect-timeout while the monitor is held: exit 124", async () => {
    const holder = await QmpClient.connect(qemu.socket, { connectTimeout: 5000 });
    try {
      const result = await qmpctl(["-s", qemu.socket, "--timeout", "500ms", "exec", "query-status"]);
      expect(result).toMatchObject({ code: 124, stdout: "" });
      expect(result.stderr).toStartWith("qmpctl: timed out ");
      expect(result.stderr).toContain(qemu.socket);
      expect(result.stderr).toEndWith(" (--timeout 500ms)\n");
      expect(result.stderr.split("\n")).toHaveLength(2); // one line
    } finally {
      await holder.close();
    }
  });

  test("SIGINT while waiting for the greeting (long --connect-timeout): exit 130 promptly", async () => {
    const holder = await QmpClient.connect(qemu.socket, { connectTimeout: 5000 });
    try {
      const running = startQmpctl(["-s", qemu.socket, "--connect-timeout", "60s", "exec", "query-status"]);
      const connected = waitUntil(() => hasConnectedUnixSocket(running.child.pid), "qmpctl has connected");
      const result = await interrupt(running, connected);
      expect(result).toMatchObject({ code: 130, signal: "SIGINT", stdout: "" });
      expect(result.exitedAfterMs).toBeLessThan(2000);
    } finally {
      await holder.close();
    }
  });
});

describe("when QEMU goes away (a throwaway QEMU each)", () => {
  test("exec quit: QEMU answers, then closes; qmpctl prints {} and exits 0", async () => {
    const doomed = await startQemu();
    try {
      const result = await qmpctl(["-s", doomed.socket, "exec", "quit"]);
      expect(result).toEqual(expect.objectContaining({ code: 0, stdout: "{}\n", stderr: "" }));
      expect(await doomed.process.exited).toBe(0);
    } finally {
      await doomed.stop();
    }
  });

  test("QEMU killed while qmpctl waits for a reply: exit 3, the connection was lost", async () => {
    const doomed = await startQemu();
    try {
      // `logfile` opens a FIFO nobody reads, which blocks QEMU: the reply never comes.
      const fifo = join(doomed.dir, "fifo");
      expect(Bun.spawnSync(["mkfifo", fifo]).exitCode).toBe(0);
      const running = startQmpctl(["-s", doomed.socket, "hmp", `logfile ${fifo}`]);
      await waitUntil(() => blockedIn(doomed.process.pid, "wait_for_partner"), "QEMU blocks opening the FIFO");
      doomed.process.kill("SIGKILL");
      const result = await running.result;
      expect(result).toMatchObject({ code: 3, signal: null, stdout: "" });
      expect(result.stderr).toStartWith(`qmpctl: ${doomed.socket} closed the connection`);
      expect(result.stderr).toContain("human-monitor-command");
      expect(result.stderr.split("\n")).toHaveLength(2);
    } finally {
      await doomed.stop();
    }
  });

  test("QEMU killed while qmpctl waits for the greeting: exit 3", async () => {
    const doomed = await startQemu();
    const holder = await QmpClient.connect(doomed.socket, { connectTimeout: 5000 });
    try {
      const running = startQmpctl(["-s", doomed.socket, "exec", "query-status"]);
      await waitUntil(
        () => hasConnectedUnixSocket(running.child.pid),
        "qmpctl has connected (and waits for the greeting)",
      );
      doomed.process.kill("SIGKILL");
      const result = await running.result;
      expect(result).toMatchObject({ code: 3, signal: null, stdout: "" });
      expect(result.stderr).toStartWith(`qmpctl: ${doomed.socket} closed the connection before its QMP greeting`);
      expect(result.ms).toBeLessThan(5000); // not the 10 s connect timeout
    } finally {
      await holder.close();
      await doomed.stop();
    }
  });

  // The same death can land between the kernel taking the connection and the
  // runtime reporting it open: connect(2) then fails with ECONNRESET. strace
  // injects that failure so the case runs every time, not by chance.
  const resetOnConnect = (when: string, args: string[]) =>
    Bun.spawnSync([
      "strace",
      "-f",
      "-qq",
      "-o",
      "/dev/null",
      "-e",
      `inject=connect:error=ECONNRESET:when=${when}`,
      QMPCTL,
      ...args,
    ]);

  test("a reset while connecting reads as a close before the greeting (exit 3); --wait-socket retries it", () => {
    const reset = resetOnConnect("1+", ["-s", qemu.socket, "exec", "query-status"]);
    expect(reset.exitCode).toBe(3);
    expect(reset.stdout.toString()).toBe("");
    expect(reset.stderr.toString()).toBe(`qmpctl: ${qemu.socket} closed the connection before its QMP greeting\n`);

    const retried = resetOnConnect("1", ["-s", qemu.socket, "--wait-socket", "5", "exec", "query-status"]);
    expect({ code: retried.exitCode, stdout: retried.stdout.toString(), stderr: retried.stderr.toString() })
      .toEqual({ code: 0, stdout: expected, stderr: "" });
  });
});
