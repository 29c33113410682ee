/**
 * `ssh://` addresses end to end: the built binary, the system's OpenSSH
 * client, a throwaway sshd on 127.0.0.1 and a real QEMU behind it. After
 * every case no ssh process of this test is left, and the private directory
 * of the forwarded socket is gone (qmpctl runs with TMPDIR set to a
 * directory that must be empty again).
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { EventSubscription } from "../lib/events.ts";
import { interrupt, QMPCTL, qmpctl, type RunningCli, startQmpctl } from "./helpers/cli.ts";
import { startListener } from "./helpers/listener.ts";
import { startQemu, type TestQemu } from "./helpers/qemu.ts";
import { startAgent } from "./helpers/qemu_ga.ts";
import { startProxy } from "./helpers/proxy.ts";
import {
  killListed,
  processesAfter,
  sshProcesses,
  sshProcessesAfter,
  startSshd,
  type TestSshd,
} from "./helpers/sshd.ts";
import { startTerminal } from "./helpers/terminal.ts";
import { waitUntil } from "./helpers/process_state.ts";

let sshd: TestSshd;
let qemu: TestQemu;
let runDir: string; // qmpctl's TMPDIR: where it makes the private directory of the forwarded socket
let env: Record<string, string>;
let stops: EventSubscription;

beforeAll(async () => {
  [sshd, qemu] = await Promise.all([startSshd(), startQemu()]);
  runDir = mkdtempSync(join(tmpdir(), "qmpctl-ssh-run-"));
  env = { QMPCTL_SSH_COMMAND: `ssh -F '${sshd.sshConfig}'`, TMPDIR: runDir };
  stops = qemu.control.events({ names: ["STOP"] });
});

afterEach(async () => {
  expect(await sshProcessesAfter(sshd.marker)).toEqual([]);
  expect(readdirSync(runDir).filter((name) => name.startsWith("qmpctl-ssh-"))).toEqual([]);
  if ((await qemu.control.execute("query-status") as { running: boolean }).running === false) {
    await qemu.control.execute("cont");
  }
  while (stops.queued > 0) await stops.nextBatch();
});

afterAll(async () => {
  await Promise.all([qemu?.stop(), sshd?.stop()]);
  rmSync(runDir, { recursive: true, force: true });
});

const viaAlias = () => `ssh://vmhost${qemu.socket}`;

describe("commands over ssh://", () => {
  test("exec prints the return value, through a Host alias of the ssh config", async () => {
    const result = await qmpctl(["-s", viaAlias(), "exec", "query-status"], { env });
    expect(result).toMatchObject({ code: 0, stderr: "" });
    expect(JSON.parse(result.stdout)).toEqual({ status: "running", singlestep: false, running: true });
  });

  test("a backslash in the remote path is a backslash (ssh's -L would read it as an escape)", async () => {
    const linkDir = mkdtempSync(join(tmpdir(), "qmpctl-ssh-path-"));
    try {
      symlinkSync(qemu.socket, join(linkDir, "v\\m.sock")); // the socket as `v\m.sock`; no `vm.sock` there
      const result = await qmpctl(["-s", `ssh://vmhost${linkDir}/v\\m.sock`, "exec", "query-status"], { env });
      expect(result).toMatchObject({ code: 0, stderr: "" });
      expect(JSON.parse(result.stdout)).toEqual({ status: "running", singlestep: false, running: true });
    } finally {
      rmSync(linkDir, { recursive: true, force: true });
    }
  });

  test("USER@HOST:PORT reaches the same monitor: hmp prints its text", async () => {
    const address = `ssh://root@127.0.0.1:${sshd.port}${qemu.socket}`;
    const result = await qmpctl(["-s", address, "hmp", "info status"], { env });
    expect(result).toMatchObject({ code: 0, stdout: "VM status: running\n", stderr: "" });
  });

  test("QMPCTL_SOCKET may be an ssh:// address; exec --wait-event STOP prints the reply, then the event", async () => {
    const result = await qmpctl(["exec", "stop", "--wait-event", "STOP", "--timeout", "10s"], {
      env: { ...env, QMPCTL_SOCKET: viaAlias() },
    });
    expect(result.code).toBe(0);
    const [reply, event] = result.stdout.trimEnd().split("\n").map((l) => JSON.parse(l));
    expect(reply).toEqual({});
    expect(event.event).toBe("STOP");
  });

  test("wait-event prints the STOP that the other monitor's stop causes", async () => {
    const listener = startListener(["-s", viaAlias(), "wait-event", "STOP", "--timeout", "10s"], 20_000, env);
    await listener.ready;
    await qemu.control.execute("stop");
    const [seen] = await stops.nextBatch(1);
    const result = await listener.result;
    expect(result).toMatchObject({ code: 0, stderr: "" });
    expect(result.stdout).toBe(JSON.stringify(seen) + "\n");
  });

  test("commands and describe work too (through the second Host alias)", async () => {
    const address = `ssh://vmhost2${qemu.socket}`;
    const listed = await qmpctl(["-s", address, "commands", "query-stat*"], { env });
    expect(listed).toMatchObject({ code: 0, stderr: "" });
    expect(JSON.parse(listed.stdout)).toContain("query-status");
    const described = await qmpctl(["-s", address, "describe", "STOP"], { env });
    expect(described).toMatchObject({ code: 0, stderr: "" });
    expect(JSON.parse(described.stdout)).toMatchObject({ event: "STOP" });
  });

  test("shell with piped lines runs each one on the remote monitor", async () => {
    const result = await qmpctl(["-s", viaAlias(), "shell"], { env, stdin: "query-name\nno-such-command\n" });
    expect(result.code).toBe(1);
    const lines = result.stdout.trimEnd().split("\n").map((l) => JSON.parse(l));
    expect(lines[0]).toEqual({ return: {} });
    expect(lines[1].error.class).toBe("CommandNotFound");
  });

  test("ssh gets BatchMode (stdin is not a terminal), ConnectTimeout from --connect-timeout, and the quoted words", async () => {
    const record = join(sshd.dir, "argv");
    // A wrapper that records its arguments, then runs ssh with them: quoting that only a shell-like split gets right.
    const command = `sh -c 'printf "%s\\n" "$@" > "$0"; exec ssh "$@"' '${record}' -F "${sshd.sshConfig}"`;
    const result = await qmpctl(["-s", viaAlias(), "--connect-timeout", "29500ms", "exec", "query-name"], {
      env: { ...env, QMPCTL_SSH_COMMAND: command },
    });
    expect(result).toMatchObject({ code: 0, stdout: "{}\n", stderr: "" });
    const argv = readFileSync(record, "utf8").split("\n");
    expect(argv.slice(0, 2)).toEqual(["-F", sshd.sshConfig]);
    expect(argv).toContain("BatchMode=yes");
    expect(argv).toContain("ConnectTimeout=30"); // 29.5 s, rounded up to whole seconds
    expect(argv).toContain("ExitOnForwardFailure=yes");
    expect(argv.slice(-3, -1)).toEqual(["--", "vmhost"]);
  });
});

describe("failures over ssh:// are exit 3 with ssh's own reason", () => {
  test("an unknown host", async () => {
    const address = `ssh://no-such-host.invalid${qemu.socket}`;
    const result = await qmpctl(["-s", address, "exec", "query-status"], { env });
    expect(result.code).toBe(3);
    expect(result.stderr).toStartWith(`qmpctl: cannot connect to ${address}: `);
    expect(result.stderr).toContain("Could not resolve hostname no-such-host.invalid");
    expect(result.stderr.trimEnd().split("\n")).toHaveLength(1);
  });

  test("a missing remote socket", async () => {
    const address = `ssh://vmhost${qemu.dir}/missing.sock`;
    const result = await qmpctl(["-s", address, "exec", "query-status"], { env });
    expect(result.code).toBe(3);
    expect(result.stderr).toStartWith(`qmpctl: cannot connect to ${address}: `);
    expect(result.stderr).toContain("open failed");
    expect(result.stderr).toContain(
      `is there a socket at ${qemu.dir}/missing.sock on vmhost, may the ssh login user write to it, does its sshd allow forwarding to it, and is its monitor free?`,
    );
    expect(result.stderr.trimEnd().split("\n")).toHaveLength(1);
  });

  test("a missing remote socket with a shell's [...] in its path says that is no glob (only * and ? are), as locally", async () => {
    const address = `ssh://vmhost${qemu.dir}/vm[12].qmp`;
    const result = await qmpctl(["-s", address, "exec", "query-status"], { env });
    expect(result.code).toBe(3);
    expect(result.stderr).toStartWith(`qmpctl: cannot connect to ${address}: `);
    expect(result.stderr).toEndWith("and is its monitor free?) ('[...]' is no glob: only * and ? are)\n");
  });

  test("a remote socket that accepts and closes: said at once as a close before the greeting, not as a missing socket", async () => {
    const closing = join(qemu.dir, "closing.sock");
    const listener = Bun.listen({ unix: closing, socket: { open: (s) => void s.end(), data() {} } });
    try {
      // What an ssh login and one exchange take on this machine now (a loaded CI machine: several hundred ms).
      const login = await qmpctl(["-s", viaAlias(), "exec", "query-status"], { env });
      expect(login.code).toBe(0);
      const address = `ssh://vmhost${closing}`;
      const said = `qmpctl: ${address} closed the connection before its QMP greeting`;
      const result = await qmpctl(["-s", address, "exec", "query-status"], { env });
      expect(result).toMatchObject({ code: 3, stderr: `${said}\n` });
      // No second's wait for a reason ssh does not give (its channel opened).
      expect(result.ms).toBeLessThan(login.ms + 700);
      // Each try told at once, so --wait-socket ends near its bound: with it, the try under way then (an ssh login).
      const waited = await qmpctl(["-s", address, "--wait-socket", "1500ms", "exec", "query-status"], { env });
      expect(waited).toMatchObject({ code: 3, stderr: `${said} (still so after 1500ms of retries)\n` });
      expect(waited.ms).toBeLessThan(1500 + login.ms + 700);
    } finally {
      listener.stop(true);
    }
  });

  test("sshd dropping the connection before its handshake (MaxStartups): said with the way out; --wait-socket retries it", async () => {
    const busy = await startSshd({ maxStartups: 1 });
    // One connection that never speaks holds sshd's only handshake place: the next one is dropped.
    const held = await Bun.connect({ hostname: "127.0.0.1", port: busy.port, socket: { data() {} } });
    try {
      const busyEnv = { ...env, QMPCTL_SSH_COMMAND: `ssh -F '${busy.sshConfig}'` };
      const result = await qmpctl(["-s", viaAlias(), "exec", "query-status"], { env: busyEnv });
      expect(result.code).toBe(3);
      expect(result.stderr).toMatch(
        /^qmpctl: cannot connect to ssh:\/\/vmhost\S+: kex_exchange_identification: .* \(sshd drops connections past its MaxStartups when many open at once: share one with ControlMaster, or try again\)\n$/,
      );
      // Let go within the retries: the run gets in.
      setTimeout(() => held.end(), 1000);
      const waited = await qmpctl(["-s", viaAlias(), "--wait-socket", "10s", "exec", "query-status"], { env: busyEnv });
      expect(waited).toMatchObject({ code: 0, stdout: '{"status":"running","singlestep":false,"running":true}\n' });
    } finally {
      held.end();
      await busy.stop();
    }
  });

  test("refused authentication", async () => {
    const address = `ssh://nobody@127.0.0.1:${sshd.port}${qemu.socket}`;
    const result = await qmpctl(["-s", address, "exec", "query-status"], { env });
    expect(result.code).toBe(3);
    expect(result.stderr).toStartWith(`qmpctl: cannot connect to ${address}: `);
    expect(result.stderr).toContain("Permission denied (publickey)");
  });

  test("a changed host key: one line with ssh's headline and its last words, not the middle of its warning", async () => {
    const other = join(sshd.dir, "other_host_key");
    expect(Bun.spawnSync(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", other]).exitCode).toBe(0);
    const otherKey = readFileSync(`${other}.pub`, "utf8").split(" ").slice(0, 2).join(" ");
    writeFileSync(join(sshd.dir, "changed_known_hosts"), `[127.0.0.1]:${sshd.port} ${otherKey}\n`);
    const config = join(sshd.dir, "ssh_config_changed_key");
    writeFileSync(config, readFileSync(sshd.sshConfig, "utf8").replace("/known_hosts", "/changed_known_hosts"));
    const result = await qmpctl(["-s", viaAlias(), "exec", "query-status"], {
      env: { ...env, QMPCTL_SSH_COMMAND: `ssh -F '${config}'` },
    });
    expect(result.code).toBe(3);
    expect(result.stderr.trimEnd().split("\n")).toHaveLength(1);
    expect(result.stderr).toStartWith(
      `qmpctl: cannot connect to ${viaAlias()}: WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!; `,
    );
    expect(result.stderr).toEndWith("Host key verification failed.\n");
  });

  test("a host that accepts TCP but never speaks ssh: exit 3 within the connect timeout", async () => {
    const silent = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    try {
      const address = `ssh://127.0.0.1:${silent.port}${qemu.socket}`;
      const result = await qmpctl(["-s", address, "--connect-timeout", "2s", "exec", "query-status"], { env });
      expect(result.code).toBe(3);
      expect(result.stderr).toStartWith("qmpctl: ");
      expect(result.stderr).toContain(address);
      expect(result.ms).toBeLessThan(8000); // 2 s, and room for a loaded machine; without the bound it would wait forever
    } finally {
      silent.stop(true);
    }
  });

  test("a QMPCTL_SSH_COMMAND whose quote does not close is a usage error", async () => {
    const result = await qmpctl(["-s", viaAlias(), "exec", "query-status"], {
      env: { ...env, QMPCTL_SSH_COMMAND: "ssh -F 'x" },
    });
    expect(result).toMatchObject({ code: 2, stdout: "" });
    expect(result.stderr).toStartWith("qmpctl: QMPCTL_SSH_COMMAND: unterminated '");
  });
});

describe("fan-out across hosts", () => {
  test("a TMPDIR that is not there: a connection error for the ssh:// target (exit 3), the local one still runs", async () => {
    const missing = join(runDir, "not-there");
    const result = await qmpctl(["-s", viaAlias(), "-s", qemu.socket, "exec", "query-status"], {
      env: { ...env, TMPDIR: missing },
    });
    expect(result.code).toBe(3);
    const lines = result.stdout.trimEnd().split("\n").map((line) => JSON.parse(line));
    expect(lines).toContainEqual({
      socket: viaAlias(),
      failure:
        `cannot connect to ${viaAlias()}: cannot make a directory for ssh's socket in TMPDIR ${missing} (ENOENT)`,
    });
    expect(lines).toContainEqual({
      socket: qemu.socket,
      return: { status: "running", singlestep: false, running: true },
    });
  });

  test("two host aliases in one run: labelled lines, a missing remote socket as its failure line, exit 3", async () => {
    const other = await startQemu({ extraArgs: ["-name", "vm2"] });
    try {
      const targets = [`ssh://vmhost${qemu.socket}`, `ssh://vmhost2${other.socket}`, "ssh://vmhost2/no/such.sock"];
      const result = await qmpctl([...targets.flatMap((t) => ["-s", t]), "exec", "query-name"], { env });
      expect(result.code).toBe(3);
      const lines = result.stdout.trimEnd().split("\n").map((line) => JSON.parse(line));
      const bySocket = Object.fromEntries(lines.map((line) => [line.socket, line]));
      expect(Object.keys(bySocket).sort()).toEqual([...targets].sort());
      expect(bySocket[targets[0]]).toEqual({ socket: targets[0], return: {} });
      expect(bySocket[targets[1]]).toEqual({ socket: targets[1], return: { name: "vm2" } });
      expect(bySocket[targets[2]].failure).toContain("ssh://vmhost2/no/such.sock");
      expect(result.stderr).toContain("ssh://vmhost2/no/such.sock");
    } finally {
      await other.stop();
    }
  });
});

test("many sockets on one host, 24 at once (--jobs 32): all served, none dropped by sshd's MaxStartups", async () => {
  // A stock sshd's MaxStartups is 10:30:100, dropping some logins past 10 at once; this one drops all past 10.
  const strict = await startSshd({ maxStartups: 10 });
  const dir = mkdtempSync(join(tmpdir(), "qmpctl-many-"));
  const sockets = Array.from({ length: 24 }, (_, i) => join(dir, `m${i}.sock`));
  const many = await startQemu({ extraArgs: sockets.flatMap((s) => ["-qmp", `unix:${s},server=on,wait=off`]) });
  try {
    const targets = sockets.map((socket) => `ssh://vmhost${socket}`);
    const result = await qmpctl([...targets.flatMap((t) => ["-s", t]), "exec", "query-status"], {
      env: { ...env, QMPCTL_SSH_COMMAND: `ssh -F '${strict.sshConfig}'` },
    });
    expect(result).toMatchObject({ code: 0, stderr: "" });
    const lines = result.stdout.trimEnd().split("\n").map((line) => JSON.parse(line));
    expect(lines.map((line) => line.socket).sort()).toEqual(targets.sort());
    expect(await sshProcessesAfter(strict.marker)).toEqual([]);
  } finally {
    await many.stop();
    await strict.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}, 60_000);

describe("no ssh left on the ways out of a wait", () => {
  test("--timeout: exit 124", async () => {
    const result = await qmpctl(["-s", viaAlias(), "wait-event", "STOP", "--timeout", "3s"], { env });
    expect(result).toMatchObject({ code: 124, stderr: "qmpctl: timed out waiting for STOP (--timeout 3s)\n" });
  });

  test("SIGINT while waiting: exit 130", async () => {
    const listener = startListener(["-s", viaAlias(), "wait-event", "STOP"], 20_000, env);
    await listener.ready;
    listener.child.kill("SIGINT");
    expect((await listener.result).code).toBe(130);
  });

  test("a Ctrl-C at a terminal that ends ssh before qmpctl handles its SIGINT: qmpctl still dies of SIGINT", async () => {
    // At a terminal ssh shares qmpctl's process group: the Ctrl-C reaches both, and ssh's end may be seen first.
    // Dying of the signal (not exit 130) is what stops a shell loop.
    const listener = startListener(["-s", viaAlias(), "wait-event", "STOP"], 20_000, env);
    await listener.ready;
    Bun.spawnSync(["pkill", "-INT", "-f", `ssh -F ${sshd.sshConfig} -N`]);
    await Bun.sleep(100);
    listener.child.kill("SIGINT");
    expect((await listener.result).code).toBe(130);
    expect(listener.child.signalCode).toBe("SIGINT");
  });

  test("ssh killed under a running events: the connection was lost (exit 3 saying so), not the stream's end", async () => {
    const listener = startListener(["-s", viaAlias(), "events", "--timeout", "20s"], 20_000, env);
    await listener.ready;
    Bun.spawnSync(["pkill", "-TERM", "-f", `ssh -F ${sshd.sshConfig} -N`]);
    const result = await listener.result;
    expect(result.code).toBe(3);
    expect(result.stderr).toStartWith(`qmpctl: lost the connection to ${viaAlias()}: `);
  });

  test("SIGTERM (as timeout(1) sends): qmpctl dies of it and takes ssh along", async () => {
    const listener = startListener(["-s", viaAlias(), "wait-event", "STOP"], 20_000, env);
    await listener.ready;
    listener.child.kill("SIGTERM");
    await listener.result;
    expect(listener.child.signalCode).toBe("SIGTERM");
  });

  test("SIGINT while ssh is still connecting (a host that never answers): exit 130", async () => {
    const silent = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    try {
      const running = startQmpctl(["-s", `ssh://127.0.0.1:${silent.port}${qemu.socket}`, "exec", "query-status"], {
        env,
      });
      const result = await interrupt(running);
      expect(result.code).toBe(130);
    } finally {
      silent.stop(true);
    }
  });
});

describe("what ssh started goes with it (without a terminal ssh leads a process group of its own)", () => {
  /** Whether processes matching `pattern` are left after the run (killed then, by pid, not left to the next case). */
  const leftOver = async (pattern: string) => {
    const left = await processesAfter(pattern, 500);
    killListed(left);
    return left;
  };

  test.each([["--connect-timeout", 3], ["--timeout", 124]] as const)(
    "a ProxyCommand that never gets through: %s 1s ends the run (exit %d), and the ProxyCommand with it",
    async (option, code) => {
      const proxy = option === "--timeout" ? "sleep 7.31" : "sleep 7.32";
      const result = await qmpctl(["-s", viaAlias(), option, "1s", "exec", "query-status"], {
        env: { ...env, QMPCTL_SSH_COMMAND: `ssh -F '${sshd.sshConfig}' -o 'ProxyCommand=${proxy}'` },
      });
      expect({ code: result.code, stdout: result.stdout }).toEqual({ code, stdout: "" });
      expect(await leftOver(`^${proxy}$`)).toEqual([]);
    },
  );

  test("a ProxyJump to a host that never speaks ssh: --timeout ends the run, and the jump's ssh -W with it", async () => {
    // Accepts, and neither speaks nor closes: not even at the end of its input (a Bun listener would close
    // then, and with it the jump host's forwarding, which ends the ssh -W by itself).
    const silent = Bun.spawn([
      "python3",
      "-c",
      "import socket, time\ns = socket.create_server(('127.0.0.1', 0))\nprint(s.getsockname()[1], flush=True)\n" +
      "held = []\nwhile True: held.append(s.accept())",
    ], { stdout: "pipe" });
    try {
      const port = Number(new TextDecoder().decode((await silent.stdout.getReader().read()).value));
      // (Not --connect-timeout 1s: ssh's own ConnectTimeout=1 would end it first, and ssh stops its proxy itself.)
      const address = `ssh://root@127.0.0.1:${port}${qemu.socket}`;
      const result = await qmpctl(["-s", address, "--timeout", "1s", "exec", "query-status"], {
        env: { ...env, QMPCTL_SSH_COMMAND: `ssh -F '${sshd.sshConfig}' -J vmhost` },
      });
      expect(result.code).toBe(124);
      expect(await leftOver(`^ssh .* -W \\[127\\.0\\.0\\.1\\]:${port} vmhost$`)).toEqual([]);
    } finally {
      silent.kill("SIGKILL");
    }
  });

  test("a QMPCTL_SSH_COMMAND script that runs ssh without exec: the run is done (exit 0), and its ssh with it", async () => {
    const wrapper = join(sshd.dir, "wrap.sh");
    writeFileSync(wrapper, `#!/bin/sh\nssh -F '${sshd.sshConfig}' "$@"\n`, { mode: 0o755 });
    const result = await qmpctl(["-s", viaAlias(), "exec", "query-status"], {
      env: { ...env, QMPCTL_SSH_COMMAND: wrapper },
    });
    expect(result).toMatchObject({ code: 0, stderr: "" });
    expect(await leftOver(`^ssh .*${sshd.marker}`)).toEqual([]);
  });
});

describe("on a terminal", () => {
  test("Ctrl-C, which ssh gets too (it shares the terminal to prompt): exit 130 every time, not 3 or 0", async () => {
    for (const command of [["events"], ["wait-event", "SHUTDOWN"]]) {
      for (let round = 0; round < 3; round++) {
        const terminal = await startTerminal([QMPCTL, "-s", viaAlias(), ...command], {
          env: { ...env, HOME: sshd.dir },
        });
        try {
          // Listening once ssh has set up its forwarding (its private directory is there) and a moment more.
          for (let waited = 0; readdirSync(runDir).length === 0 && waited < 10_000; waited += 20) await Bun.sleep(20);
          await Bun.sleep(300);
          await terminal.press("C-c");
          expect({ command, status: await terminal.exitStatus(10_000) }).toEqual({ command, status: 130 });
        } finally {
          await terminal.close();
        }
      }
    }
  }, 60_000);

  test("the interactive shell works over ssh:// (ssh may prompt there: no BatchMode), and Ctrl-D leaves nothing behind", async () => {
    const record = join(sshd.dir, "argv-tty");
    const command = `sh -c 'printf "%s\\n" "$@" > "$0"; exec ssh "$@"' '${record}' -F "${sshd.sshConfig}"`;
    const terminal = await startTerminal([QMPCTL, "shell", "-s", viaAlias()], {
      env: { ...env, QMPCTL_SSH_COMMAND: command, HOME: sshd.dir },
    });
    try {
      await terminal.waitForLastLine("(QEMU)", 30_000); // the machine has no name: the prompt says QEMU
      await terminal.type("query-status");
      await terminal.press("Enter");
      await terminal.waitFor("the status", (screen) => screen.some((row) => row.includes('"status":"running"')));
      await terminal.press("C-d");
      expect(await terminal.exitStatus()).toBe(0);
      expect(readFileSync(record, "utf8").split("\n")).not.toContain("BatchMode=yes");
    } finally {
      await terminal.close();
    }
  });
});

describe("connection sharing (ControlMaster in the user's ssh config)", () => {
  /** An ssh config whose connections share a ControlMaster that persists; `control` sends it `ssh -O`. */
  function sharedConnection(name: string) {
    const config = join(sshd.dir, name);
    writeFileSync(
      config,
      readFileSync(sshd.sshConfig, "utf8") +
        `  ControlMaster auto\n  ControlPath ${sshd.dir}/${name}-%C\n  ControlPersist 60\n`,
    );
    return {
      shared: { ...env, QMPCTL_SSH_COMMAND: `ssh -F ${config}` },
      control: (op: string) => Bun.spawnSync(["ssh", "-F", config, "-O", op, "vmhost"], { stdin: "ignore" }),
    };
  }

  test("runs go through the master, and each cancels its forwarding there: the master listens on nothing more after", async () => {
    const { shared, control } = sharedConnection("ssh_config_shared");
    try {
      expect((await qmpctl(["-s", viaAlias(), "exec", "query-name"], { env: shared })).code).toBe(0); // opens the master
      const pid = /pid=(\d+)/.exec(control("check").stderr.toString())?.[1];
      expect(pid).toBeDefined();
      // What the master listens on: its control socket, and any forwarding not cancelled.
      const listening = () =>
        Bun.spawnSync(["ss", "-xlp"]).stdout.toString().split("\n").filter((l) => l.includes(`pid=${pid},`))
          .map((l) => l.split(/\s+/)[4]);
      expect(listening()).toEqual([expect.stringContaining(`${sshd.dir}/ssh_config_shared-`)]);
      for (let i = 0; i < 3; i++) {
        const result = await qmpctl(["-s", viaAlias(), "exec", "query-name"], { env: shared });
        expect(result).toMatchObject({ code: 0, stdout: "{}\n", stderr: "" });
      }
      expect(listening()).toEqual([expect.stringContaining(`${sshd.dir}/ssh_config_shared-`)]);
      // A missing remote socket: the master, not this run's ssh, knows why; the message says what it may be.
      const missing = `ssh://vmhost${qemu.socket}.missing`;
      expect(await qmpctl(["-s", missing, "exec", "query-name"], { env: shared })).toMatchObject({
        code: 3,
        stderr: `qmpctl: cannot connect to ${missing}: closed before QEMU greeted, through the shared ssh connection ` +
          `(ControlMaster), which does not say why: no socket at ${qemu.socket}.missing on vmhost, one whose ` +
          "monitor another client holds (its listen queue full), or one that closed at once\n",
      });
      // The same close can come while the runtime is still connecting (a loaded machine): connect(2) fails with
      // ECONNRESET. strace injects that into qmpctl's own connect only (no -f: ssh's connections are untouched).
      const reset = Bun.spawnSync(
        [
          "strace",
          "-qq",
          "-o",
          "/dev/null",
          "-e",
          "inject=connect:error=ECONNRESET",
          QMPCTL,
          "-s",
          missing,
          "exec",
          "query-name",
        ],
        { env: { ...process.env, ...shared }, stdin: "ignore" },
      );
      expect({ code: reset.exitCode, stderr: reset.stderr.toString() }).toEqual({
        code: 3,
        stderr: expect.stringContaining("through the shared ssh connection (ControlMaster), which does not say why"),
      });
      expect(listening()).toEqual([expect.stringContaining(`${sshd.dir}/ssh_config_shared-`)]);
    } finally {
      control("exit");
    }
  });

  test(
    "events: a master that ends lost the connection (3); QEMU's own close through a live one ends it (0)",
    async () => {
      const { shared, control } = sharedConnection("ssh_config_events");
      const other = await startQemu();
      try {
        const lost = startListener(["-s", viaAlias(), "events", "--timeout", "20s"], 20_000, shared);
        await lost.ready;
        control("exit");
        expect(await lost.result).toMatchObject({
          code: 3,
          stderr: `qmpctl: lost the connection to ${viaAlias()}: the shared ssh connection (ControlMaster) ended\n`,
        });
        const address = `ssh://vmhost${other.socket}`;
        const ended = startListener(["-s", address, "events", "--timeout", "20s"], 20_000, shared);
        await ended.ready;
        await other.control.execute("quit");
        expect(await ended.result).toMatchObject({ code: 0, stderr: "" });
      } finally {
        control("exit");
        await other.stop();
      }
    },
    30_000,
  );
});

/**
 * Run `body` (after `const qmp = await QmpClient.connect(process.argv[2])`) as a program using the library,
 * connected through the ssh alias; resolves once it printed "connected", with its stdout's later lines.
 */
async function libraryProgram(name: string, body: string) {
  const script = join(runDir, name);
  writeFileSync(
    script,
    `import { QmpClient } from ${JSON.stringify(join(import.meta.dir, "../lib/mod.ts"))};
const qmp = await QmpClient.connect(process.argv[2]);
${body}
console.log("connected");
`,
  );
  const child = Bun.spawn([process.execPath, script, viaAlias()], {
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
    env: { ...process.env, ...env },
  });
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  expect((await lines.read()).value).toBe("connected\n");
  return { child, lines };
}

describe("the library over ssh://", () => {
  test(
    "a program's own SIGTERM handler runs once, and its connection still serves it (ssh is left to it)",
    async () => {
      const { child, lines } = await libraryProgram(
        "graceful.ts",
        `let calls = 0;
process.on("SIGTERM", async () => {
  calls++;
  const { status } = await qmp.execute("query-status", undefined, { signal: AbortSignal.timeout(5000) }) as { status: string };
  await qmp.close();
  console.log(\`handler calls \${calls}, last status \${status}\`);
  process.exit(0);
});`,
      );
      child.kill("SIGTERM");
      let rest = "";
      for (let chunk = await lines.read(); !chunk.done; chunk = await lines.read()) rest += chunk.value;
      expect({ code: await child.exited, stdout: rest }).toEqual({
        code: 0,
        stdout: "handler calls 1, last status running\n",
      });
    },
    20_000,
  );

  test(
    "without handlers of its own, SIGINT (kill -INT: no terminal's Ctrl-C reaches ssh) ends it, and ssh and its directory",
    async () => {
      const { child } = await libraryProgram("plain.ts", "setInterval(() => {}, 1000);");
      child.kill("SIGINT");
      await child.exited;
      expect(child.signalCode).toBe("SIGINT"); // afterEach: no ssh left, nor its directory in TMPDIR
    },
    20_000,
  );
});

describe("the guest agent over ssh://", () => {
  test("ga guest-ping, ga exec and ga cp reach a qemu-ga socket on the remote host", async () => {
    const agent = await startAgent();
    try {
      const address = `ssh://vmhost${agent.socket}`;
      expect(await qmpctl(["-s", address, "ga", "guest-ping"], { env })).toMatchObject({
        code: 0,
        stdout: "{}\n",
        stderr: "",
      });
      const exec = await qmpctl(["-s", address, "ga", "exec", "--", "sh", "-c", "echo out; exit 3"], { env });
      expect(exec).toMatchObject({ code: 3, stdout: "out\n", stderr: "" });
      const local = join(agent.dir, "local.bin"), remote = join(agent.dir, "remote.bin");
      const bytes = crypto.getRandomValues(new Uint8Array(60_000));
      writeFileSync(local, bytes);
      expect(await qmpctl(["-s", address, "ga", "cp", local, `:${remote}`], { env })).toMatchObject({
        code: 0,
        stderr: "",
      });
      expect(new Uint8Array(readFileSync(remote))).toEqual(bytes);
    } finally {
      await agent.stop();
    }
  }, 30_000);

  test("SIGTERM while ga exec waits (it cleans up first): qmpctl dies of the signal, and takes ssh along", async () => {
    const agent = await startAgent();
    try {
      const running = startQmpctl(["-s", `ssh://vmhost${agent.socket}`, "ga", "exec", "--", "sleep", "7.75"], { env });
      await waitUntil(() => Bun.spawnSync(["pgrep", "-f", "^sleep 7.75$"]).exitCode === 0, "the program started");
      running.child.kill("SIGTERM");
      const result = await running.result;
      expect({ signal: result.signal, code: result.code }).toEqual({ signal: "SIGTERM", code: 143 });
    } finally {
      Bun.spawnSync(["pkill", "-f", "^sleep 7.75$"]);
      await agent.stop();
    }
  }, 30_000);
});

describe("proxy over ssh://", () => {
  test("a proxy whose upstream is ssh:// serves the remote monitor, and SIGTERM leaves no ssh behind", async () => {
    const listen = join(runDir, "shared.sock");
    const proxy = startProxy(["-s", viaAlias(), "--listen", listen], 30_000, env);
    await proxy.ready;
    const result = await qmpctl(["-s", listen, "exec", "query-status"]);
    expect(result).toMatchObject({ code: 0, stderr: "" });
    expect(JSON.parse(result.stdout)).toMatchObject({ status: "running" });
    proxy.child.kill("SIGTERM");
    expect((await proxy.result).code).toBe(0);
  }, 30_000);
});

describe("odd remote paths", () => {
  test("a remote socket path with a space in it", async () => {
    const spaced = join(runDir, "vm one.qmp");
    symlinkSync(qemu.socket, spaced);
    try {
      const result = await qmpctl(["-s", `ssh://vmhost${spaced}`, "exec", "query-status"], { env });
      expect(result).toMatchObject({ code: 0, stderr: "" });
      expect(JSON.parse(result.stdout)).toMatchObject({ status: "running" });
    } finally {
      rmSync(spaced);
    }
  });

  test("a % in the remote path is a %, not one of ssh's tokens (%u: the local user)", async () => {
    const linkDir = mkdtempSync(join(tmpdir(), "qmpctl-ssh-path-"));
    try {
      symlinkSync(qemu.socket, join(linkDir, "vm%u.sock")); // and no vmroot.sock: %u must stay itself
      const result = await qmpctl(["-s", `ssh://vmhost${linkDir}/vm%u.sock`, "exec", "query-status"], { env });
      expect(result).toMatchObject({ code: 0, stderr: "" });
      expect(JSON.parse(result.stdout)).toMatchObject({ status: "running" });
    } finally {
      rmSync(linkDir, { recursive: true, force: true });
    }
  });

  test("a line end in the remote path is refused before ssh runs: ssh would misread its option", async () => {
    const address = `ssh://vmhost${runDir}/a\nb.sock`;
    expect(await qmpctl(["-s", address, "exec", "query-status"], { env })).toMatchObject({
      code: 2,
      stdout: "",
      stderr: `qmpctl: ${JSON.stringify(address)}: ssh cannot forward a path with a line end\n`,
    });
  });

  test("${NAME} in the remote path is refused: ssh would expand it from the local environment", async () => {
    const address = `ssh://vmhost${runDir}/\${HOME}.sock`;
    expect(await qmpctl(["-s", address, "exec", "query-status"], { env })).toMatchObject({
      code: 2,
      stdout: "",
      stderr: `qmpctl: '${address}': ssh would expand the \${...} in its path\n`,
    });
  });
});

describe("--wait-socket over ssh://", () => {
  // Each try runs an ssh, stopped (SIGTERM) when its remote socket turns out missing. OpenSSH 9.2 misses a
  // SIGTERM that comes as it handles the channel's failure (its handler runs before it enters poll(2), which
  // then waits up to 5 minutes): such an ssh outlives its stop, by chance. One that ignores SIGTERM (it keeps
  // an ignored SIGTERM ignored) does so every time.
  const retrying = (absent: string, command = ["exec", "query-status"]) =>
    startQmpctl(["-s", `ssh://root@127.0.0.1:${sshd.port}${absent}`, "--wait-socket", "20s", ...command], {
      env: { ...env, QMPCTL_SSH_COMMAND: `sh -c 'trap "" TERM; exec ssh "$@"' ssh -F '${sshd.sshConfig}'` },
    });
  const pidsOf = (absent: string) => sshProcesses(absent).map((line) => Number(line.split(" ")[0]));
  /** The pids of the tries' ssh seen until `enough` holds for them (polled while qmpctl retries, at most 10 s). */
  const triesUntil = async (absent: string, running: RunningCli, enough: (seen: number[]) => boolean) => {
    const seen: number[] = [];
    const deadline = Date.now() + 10_000;
    while (!enough(seen)) {
      expect(running.child.exitCode).toBeNull(); // still retrying
      if (Date.now() > deadline) throw new Error(`still not so after 10 s; the tries' ssh: ${seen.join(" ")}`);
      for (const pid of pidsOf(absent)) if (!seen.includes(pid)) seen.push(pid);
      await Bun.sleep(20);
    }
    return seen;
  };
  /** Ends a case: qmpctl stopped if it still runs, and the ssh it left (a failure's) killed, not left to the next. */
  const cleanUp = async (absent: string, running: RunningCli) => {
    if (running.child.exitCode === null && running.child.signalCode === null) running.child.kill("SIGTERM");
    await running.result;
    for (const pid of pidsOf(absent)) process.kill(pid, "SIGKILL");
  };

  test.each(
    [
      ["SIGTERM", 143, "exec"],
      ["SIGHUP", 129, "exec"],
      ["SIGINT", 130, "exec"],
      ["SIGTERM", 143, "ga"], // ga ends its work first (its own handler), then dies of the signal
    ] as const,
  )(
    "%s during the retries: exit %d (%s), and no try's ssh outlives qmpctl, not even one that ignores SIGTERM",
    async (signal, code, command) => {
      const absent = join(runDir, `absent-${command}-${signal}.qmp`);
      const running = retrying(absent, command === "ga" ? ["ga", "guest-ping"] : undefined);
      try {
        await triesUntil(absent, running, (seen) => seen.length >= 2); // the second try has started
        running.child.kill(signal);
        const result = await running.result;
        expect({ code: result.code, stdout: result.stdout }).toEqual({ code, stdout: "" });
        if (signal !== "SIGINT") {
          expect({ signal: result.signal, stderr: result.stderr }).toEqual({ signal, stderr: "" });
        }
        expect(await sshProcessesAfter(absent, 500)).toEqual([]);
      } finally {
        await cleanUp(absent, running);
      }
    },
    30_000,
  );

  test(
    "a try's ssh that ignores SIGTERM is killed soon after, not left to hold its login for the whole wait",
    async () => {
      const absent = join(runDir, "absent-kept.qmp");
      const running = retrying(absent);
      try {
        const [first] = await triesUntil(absent, running, (seen) => seen.length >= 2);
        await triesUntil(absent, running, () => !pidsOf(absent).includes(first));
        running.child.kill("SIGTERM");
        expect((await running.result).signal).toBe("SIGTERM");
      } finally {
        await cleanUp(absent, running);
      }
    },
    30_000,
  );

  test("and for the guest agent: its remote socket that appears later is retried too", async () => {
    const agent = await startAgent();
    const later = join(runDir, "later-ga.sock");
    try {
      const running = startQmpctl(["-s", `ssh://vmhost${later}`, "--wait-socket", "20s", "ga", "guest-ping"], { env });
      await Bun.sleep(1500); // some tries fail first: nothing at that path yet
      symlinkSync(agent.socket, later);
      expect(await running.result).toMatchObject({ code: 0, stdout: "{}\n", stderr: "" });
    } finally {
      rmSync(later, { force: true });
      await agent.stop();
    }
  }, 30_000);

  test.each([
    ["exec", ["exec", "query-status"]],
    ["ga", ["ga", "guest-ping"]],
    ["proxy", ["proxy", "--listen", "LISTEN"]], // a path in runDir, made when the test runs
  ])(
    "--timeout while a try's ssh is still getting through (%s): the last finished try's reason, as for a local socket",
    async (name, words) => {
      const absent = join(runDir, `absent-timeout-${name}.qmp`);
      const tried = join(sshd.dir, `tried-once-${name}`);
      // The first try's ssh gets through (and finds no socket); the next tries' never do.
      const command = `sh -c '[ -e "$0" ] && exec sleep 30; : > "$0"; exec ssh "$@"' '${tried}' -F '${sshd.sshConfig}'`;
      const address = `ssh://vmhost${absent}`;
      const given = words.map((word) => word === "LISTEN" ? join(runDir, "proxy-listen.sock") : word);
      const result = await qmpctl(["-s", address, "--wait-socket", "20s", "--timeout", "2s", ...given], {
        env: { ...env, QMPCTL_SSH_COMMAND: command },
      });
      expect({ code: result.code, stdout: result.stdout }).toEqual({ code: 124, stdout: "" });
      expect(result.stderr).toStartWith(
        `qmpctl: timed out waiting for the socket to be ready; the last try: cannot connect to ${address}: ` +
          "channel 1: open failed: ",
      );
      expect(result.stderr).toEndWith(" (--timeout 2s)\n");
    },
  );

  test("a remote socket that appears later is retried until it answers", async () => {
    const later = join(runDir, "later.sock");
    const running = startQmpctl(["-s", `ssh://vmhost${later}`, "--wait-socket", "20s", "exec", "query-status"], {
      env,
    });
    await Bun.sleep(1500); // some tries fail first: nothing at that path yet
    symlinkSync(qemu.socket, later);
    try {
      const result = await running.result;
      expect(result).toMatchObject({ code: 0, stderr: "" });
      expect(JSON.parse(result.stdout)).toMatchObject({ status: "running" });
    } finally {
      rmSync(later);
    }
  });
});
