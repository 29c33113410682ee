/**
 * `ssh://` against a stand-in for ssh (QMPCTL_SSH_COMMAND), for what real
 * OpenSSH does only under load: a forwarded socket whose listen queue is full
 * when qmpctl first connects; and the arguments it is given.
 */
import { afterAll, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connectedPid1, QMPCTL, qmpctl, startQmpctl, unsharesPid } from "./helpers/cli.ts";
import { hasConnectedUnixSocket, waitUntil } from "./helpers/process_state.ts";

const dir = mkdtempSync(join(tmpdir(), "qmpctl-fake-ssh-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/**
 * Serves the -L socket with a listen queue of one that it fills itself, so
 * the first connections get EAGAIN; after 300 ms it accepts and plays a
 * monitor that answers qmp_capabilities and query-status.
 */
const FAKE_SSH = `
import json, socket, sys, time
local = sys.argv[sys.argv.index("-L") + 1].split(":")[0]
server = socket.socket(socket.AF_UNIX)
server.bind(local)
server.listen(0)
fillers = []
for _ in range(3):
    filler = socket.socket(socket.AF_UNIX)
    filler.setblocking(False)
    try:
        filler.connect(local)
    except OSError:
        pass
    fillers.append(filler)
time.sleep(0.3)
for filler in fillers:
    filler.close()  # accepted below, they end at once
while True:
    conn, _ = server.accept()
    try:
        conn.sendall(b'{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}, "package": ""}, "capabilities": []}}\\r\\n')
        for line in conn.makefile("rb"):
            request = json.loads(line)
            answer = {} if request["execute"] == "qmp_capabilities" else {"status": "running"}
            conn.sendall(json.dumps({"return": answer, "id": request.get("id")}).encode() + b"\\r\\n")
    except OSError:
        pass  # a filler
`;

test("a forwarded socket whose listen queue is full at first is retried, not an error", async () => {
  const script = join(dir, "fake_ssh.py");
  writeFileSync(script, FAKE_SSH);
  const result = await qmpctl(["-s", "ssh://host/run/vm.qmp", "exec", "query-status"], {
    env: { QMPCTL_SSH_COMMAND: `python3 ${script}`, TMPDIR: dir },
  });
  expect(result).toMatchObject({ code: 0, stdout: '{"status":"running"}\n', stderr: "" });
}, 15_000);

test("--wait-socket: an sshd that refuses (its host still starting) is tried again, as a local socket that refuses", async () => {
  const runs = join(dir, "refused-runs");
  const refusing = `sh -c 'echo run >> "$0"; echo "ssh: connect to host host port 22: Connection refused" >&2; ` +
    `exit 255' '${runs}'`;
  const said = "qmpctl: cannot connect to ssh://host/run/vm.qmp: ssh: connect to host host port 22: Connection refused";
  const once = await qmpctl(["-s", "ssh://host/run/vm.qmp", "exec", "query-status"], {
    env: { QMPCTL_SSH_COMMAND: refusing, TMPDIR: dir },
  });
  expect(once).toMatchObject({ code: 3, stderr: `${said}\n` });
  expect(readFileSync(runs, "utf8")).toBe("run\n");
  rmSync(runs);
  const waited = await qmpctl(["-s", "ssh://host/run/vm.qmp", "--wait-socket", "1s", "exec", "query-status"], {
    env: { QMPCTL_SSH_COMMAND: refusing, TMPDIR: dir },
  });
  expect(waited).toMatchObject({ code: 3, stderr: `${said} (still so after 1s of retries)\n` });
  expect(waited.ms).toBeGreaterThan(900);
  expect(readFileSync(runs, "utf8").split("\n").length).toBeGreaterThan(3);
});

test("an ssh that never gets through (a hung sshd): exit 3 at --connect-timeout, saying at which step", async () => {
  const result = await qmpctl(["-s", "ssh://host/run/vm.qmp", "--connect-timeout", "500ms", "exec", "query-status"], {
    env: { QMPCTL_SSH_COMMAND: "sh -c 'exec sleep 30'", TMPDIR: dir },
  });
  expect(result).toMatchObject({
    code: 3,
    stdout: "",
    stderr: "qmpctl: no connection to ssh://host/run/vm.qmp within 500ms: ssh did not get through (its sshd does " +
      "not answer, or ssh waits for an answer: try ssh HOST once; one of many sockets on a host may also still " +
      "have waited for its turn to log in, a few at a time)\n",
  });
});

test("a relative TMPDIR is ignored: ssh's socket goes under /tmp, nothing under the working directory", async () => {
  const work = join(dir, "work");
  mkdirSync(join(work, "rel"), { recursive: true });
  const record = join(dir, "argv-relative");
  const result = await qmpctl(["-s", "ssh://host/run/vm.qmp", "exec", "query-status"], {
    env: { QMPCTL_SSH_COMMAND: `sh -c 'printf "%s\\n" "$@" > "$0"; exit 255' '${record}'`, TMPDIR: "rel" },
    cwd: work,
  });
  expect(result.code).toBe(3);
  const argv = readFileSync(record, "utf8").split("\n");
  expect(argv[argv.indexOf("-L") + 1]).toMatch(/^\/tmp\/qmpctl-ssh-[^/]+\/monitor\.sock:\/run\/vm\.qmp$/);
  expect(readdirSync(join(work, "rel"))).toEqual([]);
});

test("a TMPDIR too long for a socket's path: exit 2 saying so, ssh not run (it says only 'Bad local forwarding')", async () => {
  const long = join(dir, "t".repeat(90));
  mkdirSync(long, { recursive: true });
  const record = join(dir, "argv-long");
  const result = await qmpctl(["-s", "ssh://host/run/vm.qmp", "exec", "query-status"], {
    env: { QMPCTL_SSH_COMMAND: `sh -c 'echo ran > "$0"; exit 255' '${record}'`, TMPDIR: long },
  });
  expect(result).toMatchObject({ code: 2, stdout: "" });
  expect(result.stderr).toStartWith(`qmpctl: TMPDIR '${long}' is too long for ssh's socket in it (`);
  expect(result.stderr).toEndWith("set a shorter TMPDIR\n");
  expect(existsSync(record)).toBe(false);
  expect(readdirSync(long)).toEqual([]);
});

test("started by a parent that ignores SIGCHLD: ssh's failure is told in one line at once, as usual", async () => {
  const result = await qmpctl(["-s", "ssh://host/run/vm.qmp", "--connect-timeout", "10s", "exec", "query-status"], {
    env: { QMPCTL_SSH_COMMAND: "false", TMPDIR: dir },
    ignoring: ["SIGCHLD"],
  });
  expect(result).toMatchObject({
    code: 3,
    stderr: "qmpctl: cannot connect to ssh://host/run/vm.qmp: false exited with status 1\n",
  });
  expect(result.ms).toBeLessThan(5000);
});

/** The fake ssh's environment, and the words of an ssh:// events run through it. */
function eventsThroughFakeSsh() {
  const script = join(dir, "fake_ssh.py");
  writeFileSync(script, FAKE_SSH);
  return {
    env: { QMPCTL_SSH_COMMAND: `python3 ${script}`, TMPDIR: dir },
    words: ["-s", "ssh://host/run/vm.qmp", "events"],
  };
}

test.skipIf(!unsharesPid())("as PID 1 (a container's), SIGTERM ends ssh:// events with 143, ssh stopped", async () => {
  const { env, words } = eventsThroughFakeSsh();
  const pid1 = startQmpctl([...words, "--timeout", "20s"], { env, asPid1: true });
  process.kill(await connectedPid1(pid1), "SIGTERM");
  expect(await pid1.result).toMatchObject({ code: 143, stderr: "" });
  expect(readdirSync(dir).filter((name) => name.startsWith("qmpctl-ssh-"))).toEqual([]);
}, 30_000);

test("under nohup (SIGHUP ignored at start), SIGHUP leaves ssh:// events running: --timeout ends it", async () => {
  const { env, words } = eventsThroughFakeSsh();
  const nohup = startQmpctl([...words, "--timeout", "8s"], { env, ignoring: ["SIGHUP"] });
  await waitUntil(() => hasConnectedUnixSocket(nohup.child.pid), "qmpctl connected through ssh");
  nohup.child.kill("SIGHUP");
  const result = await nohup.result;
  expect(result).toMatchObject({ code: 0, stdout: "", stderr: "" }); // events: --timeout ends it well
  expect(result.ms).toBeGreaterThan(7000); // not at the SIGHUP
  expect(readdirSync(dir).filter((name) => name.startsWith("qmpctl-ssh-"))).toEqual([]);
}, 30_000);

test("at the descriptor limit (ulimit -n), ssh:// ends in one line, exit 3 (or works), its directory removed", () => {
  const script = join(dir, "fake_ssh.py");
  writeFileSync(script, FAKE_SSH);
  const tmp = mkdtempSync(join(dir, "tmp-"));
  for (let limit = 5; limit <= 12; limit++) {
    const run = Bun.spawnSync(
      [
        "sh",
        "-c",
        `ulimit -n ${limit}; exec "$@"`,
        "sh",
        QMPCTL,
        "-s",
        "ssh://host/run/vm.qmp",
        "exec",
        "query-status",
      ],
      { env: { ...process.env, QMPCTL_SSH_COMMAND: `python3 ${script}`, TMPDIR: tmp }, stderr: "pipe", stdout: "pipe" },
    );
    const stderr = run.stderr.toString();
    if (run.exitCode === 0) expect(run.stdout.toString()).toBe('{"status":"running"}\n');
    else expect({ limit, code: run.exitCode, lines: stderr.split("\n").length }).toEqual({ limit, code: 3, lines: 2 });
    expect({ limit, stderr }).not.toMatchObject({ stderr: expect.stringContaining("internal error") });
    expect({ limit, left: readdirSync(tmp) }).toEqual({ limit, left: [] });
  }
}, 30_000);

test("a ProxyCommand that fails before the handshake gets ssh's words without the MaxStartups hint", async () => {
  const script = join(dir, "proxy_failed_ssh.sh");
  writeFileSync(
    script,
    'echo "sh: 1: nc: not found" >&2; echo "kex_exchange_identification: Connection closed by remote host" >&2\n' +
      "exit 255\n",
  );
  const result = await qmpctl(["-s", "ssh://host/run/vm.qmp", "exec", "query-status"], {
    env: { QMPCTL_SSH_COMMAND: `sh ${script}`, TMPDIR: dir },
  });
  expect(result).toMatchObject({
    code: 3,
    stderr: "qmpctl: cannot connect to ssh://host/run/vm.qmp: sh: 1: nc: not found; kex_exchange_identification: " +
      "Connection closed by remote host\n",
  });
});

test("an older ssh's words for a connection sshd dropped before its handshake get the same hint", async () => {
  const script = join(dir, "dropped_ssh.sh");
  writeFileSync(script, 'echo "ssh_exchange_identification: read: Connection reset by peer" >&2; exit 255\n');
  const result = await qmpctl(["-s", "ssh://host/run/vm.qmp", "exec", "query-status"], {
    env: { QMPCTL_SSH_COMMAND: `sh ${script}`, TMPDIR: dir },
  });
  expect(result).toMatchObject({
    code: 3,
    stderr: "qmpctl: cannot connect to ssh://host/run/vm.qmp: ssh_exchange_identification: read: Connection reset " +
      "by peer (sshd drops connections past its MaxStartups when many open at once: share one with ControlMaster, " +
      "or try again)\n",
  });
});
