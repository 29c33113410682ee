/**
 * Several targets against real QEMUs: sixteen `-machine none` VMs reached
 * through one directory of socket links, as a host's /run/qemu/*.qmp.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { QMPCTL, qmpctl, qmpctlInShell, startQmpctl } from "./helpers/cli.ts";
import { fakeServer } from "./helpers/fake_server.ts";
import { startQemu, type TestQemu } from "./helpers/qemu.ts";

const COUNT = 16;
let vms: TestQemu[] = [];
let fleet: string; // a directory with vm01.qmp ... vm16.qmp, links to each VM's monitor
const name = (i: number) => `vm${String(i + 1).padStart(2, "0")}`;
const socketOf = (i: number) => join(fleet, `${name(i)}.qmp`);

beforeAll(async () => {
  fleet = mkdtempSync(join(tmpdir(), "qmpctl-fleet-"));
  const started = await Promise.allSettled(
    Array.from({ length: COUNT }, (_, i) => startQemu({ extraArgs: ["-name", name(i)] })),
  );
  vms = started.flatMap((s) => (s.status === "fulfilled" ? [s.value] : []));
  const failed = started.find((s) => s.status === "rejected");
  if (failed) throw (failed as PromiseRejectedResult).reason;
  vms.forEach((vm, i) => symlinkSync(vm.socket, socketOf(i)));
}, 180_000);
afterAll(async () => {
  await Promise.all(vms.map((vm) => vm.stop()));
  if (fleet) rmSync(fleet, { recursive: true, force: true });
});

const lines = (stdout: string) => stdout.trimEnd().split("\n").map((line) => JSON.parse(line));
const bySocket = (a: { socket: string }, b: { socket: string }) => a.socket.localeCompare(b.socket);

/** Start qmpctl and wait until its stderr (with -v) shows `ready` held for the text so far. */
async function startListening(args: string[], ready: (stderr: string) => boolean) {
  let stderr = "";
  let onReady = () => {};
  const isReady = new Promise<void>((resolve) => (onReady = resolve));
  const running = startQmpctl(["-v", ...args], {
    onStderr: (text) => {
      stderr += text;
      if (ready(stderr)) onReady();
    },
  });
  const ended = running.result.then((r) => Promise.reject(new Error(`qmpctl ended before it was ready: ${r.stderr}`)));
  const late = Bun.sleep(15_000).then(() => Promise.reject(new Error(`qmpctl did not get ready: ${stderr}`)));
  await Promise.race([isReady, ended, late]);
  return running;
}

/** The number of negotiated connections in a -v log: each gets one reply to qmp_capabilities first. */
const negotiated = (stderr: string) => (stderr.match(/^\S+: > \{"execute":"qmp_capabilities"/gm) ?? []).length;

describe("several targets over real QEMUs", () => {
  test("a glob reaches every VM: one labelled line each, exit 0", async () => {
    const { code, stdout, stderr } = await qmpctl(["-s", join(fleet, "*.qmp"), "exec", "query-name"]);
    expect(stderr).toBe("");
    expect(code).toBe(0);
    expect(lines(stdout).sort(bySocket)).toEqual(
      Array.from({ length: COUNT }, (_, i) => ({ socket: socketOf(i), return: { name: name(i) } })),
    );
  });

  test("-v: each logged message names the socket it went to or came from", async () => {
    const [a, b] = [socketOf(0), socketOf(1)];
    const { code, stderr } = await qmpctl(["-v", "-s", a, "-s", b, "exec", "query-name"]);
    expect(code).toBe(0);
    const logged = stderr.trimEnd().split("\n");
    for (const socket of [a, b]) {
      const own = logged.filter((line) => line.startsWith(`${socket}: `)).map((line) => line.slice(socket.length + 2));
      expect(own.map((line) => line.slice(0, 2))).toEqual(["< ", "> ", "> ", "< ", "< "]); // greeting, 2 sent, 2 replies
      const { id } = JSON.parse(own[2].slice(2)); // the command's, one of the process's own
      expect(own).toContain(`< {"return":{"name":"${socket === a ? name(0) : name(1)}"},"id":${JSON.stringify(id)}}`);
    }
    expect(logged).toHaveLength(10);
  });

  test("--timeout running out while a target waits for its turn: 'not tried', not a connection that timed out", async () => {
    const silent = fakeServer(() => new Promise(() => {})); // accepts, never greets
    try {
      const result = await qmpctl([
        "-j",
        "1",
        "-s",
        silent.path,
        "-s",
        socketOf(2),
        "exec",
        "query-name",
        "--timeout",
        "1s",
      ]);
      expect(result.code).toBe(124);
      expect(lines(result.stdout)).toEqual([
        { socket: silent.path, failure: expect.stringMatching(/^timed out waiting for the QMP greeting/) },
        { socket: socketOf(2), failure: "not tried: --timeout ran out while it waited for its turn (--jobs 1)" },
      ]);
      expect(result.stderr).toContain(`qmpctl: ${socketOf(2)}: not tried: --timeout ran out`);
    } finally {
      silent.stop();
    }
  });

  test("--wait-socket: a glob that matches nothing yet is looked at again until a socket comes", async () => {
    const later = mkdtempSync(join(tmpdir(), "qmpctl-later-"));
    try {
      const appears = Bun.sleep(300).then(() => symlinkSync(vms[3].socket, join(later, "vm.qmp")));
      const result = await qmpctl(["-s", join(later, "*.qmp"), "--wait-socket", "10s", "exec", "query-name"]);
      await appears;
      expect(result).toMatchObject({
        code: 0,
        stdout: `${JSON.stringify({ socket: join(later, "vm.qmp"), return: { name: name(3) } })}\n`,
      });
      const never = await qmpctl(["-s", join(later, "*.sock"), "--wait-socket", "200ms", "exec", "query-name"]);
      expect(never).toMatchObject({
        code: 3,
        stderr: `qmpctl: no socket matches ${join(later, "*.sock")} (still so after 200ms of retries)\n`,
      });
    } finally {
      rmSync(later, { recursive: true, force: true });
    }
  });

  test("--wait-socket: globs that match nothing hold up no other target, and wait out one bound together", async () => {
    const [late1, late2] = [join(fleet, "late1", "*.qmp"), join(fleet, "late2", "*.qmp")];
    const sockets = ["-s", late1, "-s", late2, "-s", socketOf(0)];
    const result = await qmpctl([...sockets, "--wait-socket", "2s", "exec", "query-name"]);
    expect(lines(result.stdout)[0]).toEqual({ socket: socketOf(0), return: { name: name(0) } }); // answered first
    expect(lines(result.stdout).slice(1).sort(bySocket)).toEqual([
      { socket: late1, failure: `no socket matches ${late1} (still so after 2s of retries)` },
      { socket: late2, failure: `no socket matches ${late2} (still so after 2s of retries)` },
    ]);
    expect(result.code).toBe(3);
    expect(result.ms).toBeGreaterThanOrEqual(2000);
    expect(result.ms).toBeLessThan(3500); // one bound, not one after the other (4 s)
  });

  test("--timeout shorter than --wait-socket: the other targets answer; the glob's line says the timeout, exit 124", async () => {
    const late = join(fleet, "late3", "*.qmp");
    const args = ["-s", socketOf(1), "-s", late, "--wait-socket", "10s", "--timeout", "1s", "exec", "query-name"];
    const result = await qmpctl(args);
    const why = `timed out waiting for the socket to be ready; the last try: no socket matches ${late}`;
    expect(lines(result.stdout)).toEqual([
      { socket: socketOf(1), return: { name: name(1) } },
      { socket: late, failure: why },
    ]);
    expect(result).toMatchObject({ code: 124, stderr: `qmpctl: ${why} (--timeout 1s)\n` });
  });

  test("--wait-socket: a glob that matches once another target has answered joins the run with all it matches", async () => {
    const later = join(fleet, "later"), staged = join(fleet, "later.staged");
    mkdirSync(staged);
    symlinkSync(vms[3].socket, join(staged, "a.qmp"));
    symlinkSync(vms[4].socket, join(staged, "b.qmp"));
    try {
      // The glob's two sockets come at once (a directory renamed into place), once socketOf(2) has answered.
      const running = await startListening(
        ["-s", socketOf(2), "-s", join(later, "*.qmp"), "--wait-socket", "3s", "exec", "query-name"],
        (stderr) => stderr.includes(`${socketOf(2)}: < {"return":{"name"`),
      );
      renameSync(staged, later);
      const { code, stdout } = await running.result;
      const got = lines(stdout);
      expect(got[0]).toEqual({ socket: socketOf(2), return: { name: name(2) } });
      expect(got.slice(1).sort(bySocket)).toEqual([
        { socket: join(later, "a.qmp"), return: { name: name(3) } },
        { socket: join(later, "b.qmp"), return: { name: name(4) } },
      ]);
      expect(code).toBe(0);
    } finally {
      rmSync(later, { recursive: true, force: true });
      rmSync(staged, { recursive: true, force: true });
    }
  });

  test("a glob with --jobs 1 gives the same lines, one VM at a time", async () => {
    const { code, stdout } = await qmpctl(["-s", join(fleet, "vm0*.qmp"), "--jobs", "1", "hmp", "info status"]);
    expect(code).toBe(0);
    expect(lines(stdout)).toEqual(
      Array.from({ length: 9 }, (_, i) => ({ socket: socketOf(i), text: "VM status: running\n" })),
    );
    // --raw: QEMU's return as it is (CRLF and all), as for one VM
    const raw = await qmpctl(["-s", join(fleet, "vm0*.qmp"), "--jobs", "1", "--raw", "hmp", "info status"]);
    expect(lines(raw.stdout)).toEqual(
      Array.from({ length: 9 }, (_, i) => ({ socket: socketOf(i), return: "VM status: running\r\n" })),
    );
  });

  test("a stale socket file among live ones: its failure line, the others' answers, exit 3", async () => {
    const dead = await startQemu(); // killed: its socket file stays, with nothing listening
    dead.process.kill("SIGKILL");
    await dead.process.exited;
    const stale = join(fleet, "stale.qmp");
    symlinkSync(dead.socket, stale);
    const { code, stdout, stderr } = await qmpctl([
      "-s",
      socketOf(0),
      "-s",
      stale,
      "-s",
      socketOf(1),
      "exec",
      "query-name",
    ]);
    expect(lines(stdout).sort(bySocket)).toEqual([
      { socket: stale, failure: expect.stringMatching(/^cannot connect to .*stale\.qmp: connection refused/) },
      { socket: socketOf(0), return: { name: name(0) } },
      { socket: socketOf(1), return: { name: name(1) } },
    ]);
    expect(stderr).toMatch(/^qmpctl: cannot connect to .*stale\.qmp: connection refused.*\n$/);
    expect(code).toBe(3);
    rmSync(stale);
    await dead.stop();
  });

  test("a QEMU error on some targets: their error lines, exit 1", async () => {
    await vms[2].control.execute("blockdev-add", { driver: "null-co", "node-name": "only2" });
    const { code, stdout, stderr } = await qmpctl([
      ...["-s", socketOf(2), "-s", socketOf(3)],
      ...["exec", "block-dirty-bitmap-add", "node=only2", "name=b"],
    ]);
    expect(lines(stdout).sort(bySocket)).toEqual([
      { socket: socketOf(2), return: {} },
      { socket: socketOf(3), error: { class: "GenericError", desc: expect.stringContaining("only2") } },
    ]);
    expect(stderr.split("\n")).toHaveLength(2);
    expect(code).toBe(1);
  });

  test("an error that quotes a target's address (a node named as its socket) still says on stderr whose it is", async () => {
    const { code, stderr } = await qmpctl([
      ...["-s", socketOf(4), "-s", socketOf(5)],
      ...["exec", "blockdev-del", `node-name=${socketOf(4)}`],
    ]);
    const said = `GenericError: Failed to find node with node-name='${socketOf(4)}'`;
    expect(stderr.split("\n").sort()).toEqual([
      "",
      `qmpctl: ${socketOf(4)}: ${said}`,
      `qmpctl: ${socketOf(5)}: ${said}`,
    ]);
    expect(code).toBe(1);
  });

  test("wait-event STOP over two VMs ends when both have stopped", async () => {
    const running = await startListening(
      ["-s", socketOf(4), "-s", socketOf(5), "wait-event", "STOP", "--timeout", "20s"],
      (stderr) => negotiated(stderr) === 2 && (stderr.match(/^\S+: < \{"return":\{\}/gm) ?? []).length >= 2,
    );
    await vms[4].control.execute("stop");
    const early = await Promise.race([running.result, Bun.sleep(300).then(() => "still waiting")]);
    expect(early).toBe("still waiting"); // one VM stopped is not all of them
    await vms[5].control.execute("stop");
    const { code, stdout } = await running.result;
    expect(code).toBe(0);
    const events = lines(stdout).sort(bySocket);
    expect(events.map((e) => [e.socket, e.event])).toEqual([[socketOf(4), "STOP"], [socketOf(5), "STOP"]]);
    expect(events[0].timestamp).toEqual({ seconds: expect.any(Number), microseconds: expect.any(Number) });
    await Promise.all([vms[4].control.execute("cont"), vms[5].control.execute("cont")]);
  });

  test("wait-event over several: one that never sees its event times out, exit 124", async () => {
    const { code, stdout, stderr } = await qmpctl([
      "-s",
      socketOf(6),
      "-s",
      socketOf(7),
      "wait-event",
      "SHUTDOWN",
      "--timeout",
      "500ms",
    ]);
    expect(lines(stdout).sort(bySocket)).toEqual([
      { socket: socketOf(6), failure: "timed out waiting for SHUTDOWN" },
      { socket: socketOf(7), failure: "timed out waiting for SHUTDOWN" },
    ]);
    // stderr names the bound, as for one target
    expect(stderr.split("\n").sort()).toEqual([
      "",
      `qmpctl: ${socketOf(6)}: timed out waiting for SHUTDOWN (--timeout 500ms)`,
      `qmpctl: ${socketOf(7)}: timed out waiting for SHUTDOWN (--timeout 500ms)`,
    ]);
    expect(code).toBe(124);
  });

  test("wait-event beside a glob not there yet (--wait-socket): the other VM is heard from the start", async () => {
    const late = join(fleet, "late4", "*.qmp");
    let stderr = "";
    const sockets = ["-s", late, "-s", socketOf(15), "--wait-socket", "2s"];
    const running = startQmpctl(["-v", ...sockets, "wait-event", "STOP", "--timeout", "4s"], {
      onStderr: (text) => (stderr += text),
    });
    // The VM stops once qmpctl listens to it, or after 1 s in any case, as a script's VM would.
    const listening = () => stderr.includes(`${socketOf(15)}: < {"return":{}`); // negotiated: it listens
    const since = performance.now();
    while (!listening() && performance.now() - since < 1000) await Bun.sleep(20);
    await vms[15].control.execute("stop");
    try {
      const { code, stdout } = await running.result;
      expect(lines(stdout).map((line) => [line.socket, line.event ?? line.failure])).toEqual([
        [socketOf(15), "STOP"],
        [late, `no socket matches ${late} (still so after 2s of retries)`],
      ]);
      expect(code).toBe(3);
    } finally {
      await vms[15].control.execute("cont");
    }
  }, 10_000);

  test("events from three VMs, merged into one stream with their sockets", async () => {
    const three = [8, 9, 10];
    const running = await startListening(
      [...three.flatMap((i) => ["-s", socketOf(i)]), "events", "STOP", "--count", "1", "--timeout", "20s"],
      (stderr) => (stderr.match(/^\S+: < \{"return":\{\}/gm) ?? []).length >= 3,
    );
    for (const i of three) await vms[i].control.execute("stop");
    const { code, stdout } = await running.result;
    expect(code).toBe(0);
    expect(lines(stdout).map((e) => [e.socket, e.event]).sort()).toEqual(three.map((i) => [socketOf(i), "STOP"]));
    for (const i of three) await vms[i].control.execute("cont");
  });

  test("events on several VMs: one whose monitor closes is said on stderr; the others' events go on, exit 0", async () => {
    const closing = fakeServer(async (connection) => {
      await connection.handshake();
      await Bun.sleep(300);
      connection.close();
    });
    try {
      const result = await qmpctl(["-s", socketOf(7), "-s", closing.path, "events", "--timeout", "1s"]);
      expect(result).toMatchObject({
        code: 0,
        stdout: "",
        stderr: `qmpctl: ${closing.path}: closed the connection: its events end here\n`,
      });
      // Not when the count is reached: the monitor did not close, qmpctl had what it waited for.
      const counted = startQmpctl(["-s", socketOf(7), "-s", socketOf(6), "events", "STOP", "--count", "1"]);
      await Bun.sleep(500);
      for (const i of [7, 6]) await vms[i].control.execute("stop");
      expect(await counted.result).toMatchObject({ code: 0, stderr: "" });
      for (const i of [7, 6]) await vms[i].control.execute("cont");
    } finally {
      closing.stop();
    }
  });

  test("batch on several VMs: each runs every line, labelled", async () => {
    const { code, stdout } = await qmpctl(["-s", socketOf(11), "-s", socketOf(12), "batch"], {
      stdin: "query-name\nno-such-command\n",
    });
    const got = lines(stdout);
    for (const i of [11, 12]) {
      expect(got.filter((l) => l.socket === socketOf(i))).toEqual([
        { socket: socketOf(i), return: { name: name(i) } },
        { socket: socketOf(i), error: { class: "CommandNotFound", desc: expect.any(String) } },
      ]);
    }
    expect(code).toBe(1);
  });

  test("batch FILE that is a pipe (<(...)) on several VMs: each runs every line, not only the first", () => {
    const script = `exec "$0" -s "$1" -s "$2" batch <(printf 'query-name\\nquery-status\\n')`;
    const result = Bun.spawnSync(["bash", "-c", script, QMPCTL, socketOf(13), socketOf(14)], { stdout: "pipe" });
    const got = lines(result.stdout.toString());
    for (const i of [13, 14]) {
      expect(got.filter((l) => l.socket === socketOf(i)).map((l) => Object.keys(l.return ?? {}))).toEqual([
        ["name"],
        ["status", "singlestep", "running"],
      ]);
    }
    expect(result.exitCode).toBe(0);
  });

  test("batch FILE that cannot be read, on several VMs (one down): one usage error, before connecting", async () => {
    const absent = join(fleet, "down.qmp");
    const result = await qmpctl(["-s", socketOf(13), "-s", absent, "batch", join(fleet, "no-such-file")]);
    expect(result).toMatchObject({
      code: 2,
      stdout: "",
      stderr: `qmpctl: cannot read ${join(fleet, "no-such-file")}: no such file or directory (ENOENT)\n`,
    });
  });

  test("a glob that matches nothing beside other targets: they still run, it gets its failure line, exit 3", async () => {
    const nothing = join(fleet, "*.nothing");
    const result = await qmpctl(["-s", socketOf(4), "-s", nothing, "exec", "query-name"]);
    expect(lines(result.stdout).sort(bySocket)).toEqual([
      { socket: nothing, failure: `no socket matches ${nothing}` },
      { socket: socketOf(4), return: { name: name(4) } },
    ].sort(bySocket));
    expect(result.stderr).toBe(`qmpctl: no socket matches ${nothing}\n`);
    expect(result.code).toBe(3);
    const both = await qmpctl(["-s", nothing, "-s", join(fleet, "*.none"), "exec", "query-name"]);
    expect(both).toMatchObject({
      code: 3,
      stderr: `qmpctl: no socket matches ${nothing}; no socket matches ${join(fleet, "*.none")}\n`,
    });
    const shell = await qmpctl(["-s", socketOf(4), "-s", nothing, "shell"], { stdin: "query-name\n" });
    expect(shell).toMatchObject({ code: 3, stdout: "", stderr: `qmpctl: no socket matches ${nothing}\n` });
  });

  test("a socket a glob matches whose name is not UTF-8: its failure line, labelled \\xHH; the others run, exit 3", async () => {
    const weird = join(fleet, "weird");
    // Made by python (Bun's paths are text): a socket named x<0xe9>y.qmp, beside a link to a VM's monitor.
    const script = "import os, socket, sys; d = os.fsencode(sys.argv[1]); os.mkdir(d); " +
      "socket.socket(socket.AF_UNIX).bind(d + b'/x\\xe9y.qmp'); os.symlink(os.fsencode(sys.argv[2]), d + b'/vm.qmp')";
    expect(Bun.spawnSync(["python3", "-c", script, weird, vms[6].socket]).exitCode).toBe(0);
    const label = `${weird}/x\\xe9y.qmp`;
    const why = (glob: string) => `'${label}' matches ${glob}, but its name is not valid UTF-8: qmpctl cannot open it`;
    const glob = join(weird, "*");
    const result = await qmpctl(["-s", glob, "-s", socketOf(5), "exec", "query-name"]);
    expect(lines(result.stdout).sort(bySocket)).toEqual([
      { socket: join(weird, "vm.qmp"), return: { name: name(6) } },
      { socket: label, failure: why(glob) },
      { socket: socketOf(5), return: { name: name(5) } },
    ].sort(bySocket));
    expect(result.stderr).toBe(`qmpctl: ${why(glob)}\n`);
    expect(result.code).toBe(3);
    // The only target (a glob that matches that socket alone; a command of one target): said the same way, exit 3.
    for (const command of [["exec", "query-name"], ["shell"]]) {
      const one = await qmpctl(["-s", join(weird, "x*"), ...command], { stdin: "query-name\n" });
      expect(one).toMatchObject({ code: 3, stdout: "", stderr: `qmpctl: ${why(join(weird, "x*"))}\n` });
    }
  });

  test("an address wrong as written among several (-s '', an unset $VM): exit 2 before any target is sent a thing", async () => {
    const server = fakeServer(async (connection) => {
      await connection.handshake();
      connection.reply(await connection.nextRequest(), {});
    });
    try {
      for (
        const [bad, why] of [
          [
            "",
            "empty address: expected PATH, unix:PATH, HOST:PORT, tcp:HOST:PORT, [IPV6]:PORT or ssh://[USER@]HOST[:PORT]/PATH",
          ],
          ["localhost:99999", "'localhost:99999': port 99999 is not in 1-65535"],
        ]
      ) {
        const result = await qmpctl(["-s", server.path, "-s", bad, "exec", "system_powerdown"]);
        expect(result).toMatchObject({ code: 2, stdout: "", stderr: `qmpctl: ${why}\n` });
      }
      expect(server.connections).toBe(0);
    } finally {
      server.stop();
    }
  });

  test("a glob that matches nothing: exit 3, saying so; shell takes one target: exit 2", async () => {
    const none = await qmpctl(["-s", join(fleet, "*.nothing"), "exec", "query-name"]);
    expect(none).toMatchObject({
      code: 3,
      stdout: "",
      stderr: `qmpctl: no socket matches ${join(fleet, "*.nothing")}\n`,
    });
    const shell = await qmpctl(["-s", join(fleet, "*.qmp"), "shell"], { stdin: "query-name\n" });
    expect(shell).toMatchObject({
      code: 2,
      stdout: "",
      stderr: `qmpctl: shell takes one target (-s gave ${COUNT} sockets)\n`,
    });
    // A glob of one socket, or one -s given twice, is that one target: the shell runs there, unlabelled.
    for (const sockets of [[join(fleet, `${name(3)}.q?p`)], [socketOf(3), socketOf(3)]]) {
      const one = await qmpctl([...sockets.flatMap((s) => ["-s", s]), "shell"], { stdin: "query-name\n" });
      expect(one).toMatchObject({ code: 0, stdout: `{"return":{"name":"${name(3)}"}}\n`, stderr: "" });
    }
  });

  test("--args - over several targets: stdin is read once and each gets the same arguments", async () => {
    const { code, stdout } = await qmpctl([
      "-s",
      socketOf(14),
      "-s",
      socketOf(15),
      "exec",
      "human-monitor-command",
      "--args",
      "-",
    ], {
      stdin: '{"command-line": "info status"}',
    });
    expect(lines(stdout).sort(bySocket)).toEqual([
      { socket: socketOf(14), return: "VM status: running\r\n" },
      { socket: socketOf(15), return: "VM status: running\r\n" },
    ]);
    expect(code).toBe(0);
  });

  test("--jobs must be a number of 1 or more, with one target too (a script must not break when a second comes)", async () => {
    for (const socket of [join(fleet, "*.qmp"), socketOf(0)]) {
      const { code, stdout, stderr } = await qmpctl(["-s", socket, "--jobs", "0", "exec", "query-name"]);
      expect({ code, stdout, stderr }).toEqual({
        code: 2,
        stdout: "",
        stderr: "qmpctl: --jobs '0': how many run at once must be a whole number, 1 or more\n",
      });
    }
  });

  for (const command of [["events"], ["wait-event", "STOP"], ["job", "wait"], ["migrate", "wait"]]) {
    test(`${command[0]} runs on every target at once: --jobs is a usage error (one target too), not a target left unheard`, async () => {
      for (const socket of [join(fleet, "*.qmp"), socketOf(0)]) {
        const { code, stdout, stderr } = await qmpctl(["-s", socket, "-j", "1", ...command, "--timeout", "1s"]);
        expect({ code, stdout, stderr }).toEqual({
          code: 2,
          stdout: "",
          stderr:
            `qmpctl: ${command[0]} runs on every target at once (a target not yet listened to misses its events): ` +
            "--jobs does not apply\n",
        });
      }
    });
  }

  test("a glob in $QMPCTL_SOCKET is one address, taken as written: the error says only -s expands a glob", async () => {
    const glob = join(fleet, "vm0?.qmp");
    const result = await qmpctl(["exec", "query-name"], { env: { QMPCTL_SOCKET: glob } });
    expect(result).toEqual(expect.objectContaining({
      code: 3,
      stdout: "",
      stderr: `qmpctl: cannot connect to ${glob}: no such socket (ENOENT) ` +
        "(the address is $QMPCTL_SOCKET's: a glob is expanded only in -s)\n",
    }));
    // A missing path without a glob is told as before; -s expands the same glob.
    const missing = join(fleet, "vm00.qmp");
    const plain = await qmpctl(["exec", "query-name"], { env: { QMPCTL_SOCKET: missing } });
    expect(plain.stderr).toBe(
      `qmpctl: cannot connect to ${missing}: no such socket (ENOENT) (the address is $QMPCTL_SOCKET's)\n`,
    );
    const expanded = await qmpctl(["-s", glob, "exec", "query-name"]);
    expect({ code: expanded.code, count: lines(expanded.stdout).length }).toEqual({ code: 0, count: 9 });
  });

  test("stdout closed: each VM says on stderr whether stop was run on it; those that say so are paused", async () => {
    const { code, stderr } = await qmpctlInShell('exec "$0" "$@" >&-', "-s", join(fleet, "*.qmp"), "exec", "stop");
    try {
      expect(code).toBe(74);
      const said = stderr.trimEnd().split("\n");
      expect(said).toHaveLength(COUNT); // one line each: every VM was under way (--jobs 32)
      for (let i = 0; i < COUNT; i++) {
        const line = said.find((text) => text.startsWith(`qmpctl: ${socketOf(i)}: `));
        expect(line).toMatch(
          /: (could not write the output: .*\(stop was run: QEMU answered it\)|stopped when the output failed, while waiting for .*\bstop\b)/,
        );
        const status = JSON.parse((await qmpctl(["-s", socketOf(i), "exec", "query-status"])).stdout).status;
        if (line!.includes("stop was run")) expect(status).toBe("paused");
      }
    } finally {
      await qmpctl(["-s", join(fleet, "*.qmp"), "exec", "cont"]);
    }
  });

  test("one plain -s prints exactly what it did before: no socket member", async () => {
    const { code, stdout, stderr } = await qmpctl(["-s", socketOf(13), "exec", "query-name"]);
    expect({ code, stdout, stderr }).toEqual({ code: 0, stdout: `{"name":"${name(13)}"}\n`, stderr: "" });
    const hmp = await qmpctl(["-s", socketOf(13), "hmp", "info status"]);
    expect(hmp.stdout).toBe("VM status: running\n");
    const failed = await qmpctl(["-s", socketOf(13), "exec", "no-such-command"]);
    expect(failed.stdout).toBe("");
    expect(failed.code).toBe(1);
  });
});
