/** `qmpctl ga AGENT-COMMAND` and `ga wait` against a real qemu-ga, and faults from a fake agent. */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { qmpctl, qmpctlInShell, startQmpctl } from "./helpers/cli.ts";
import { startQemu } from "./helpers/qemu.ts";
import { agentDir, answerSync, fakeAgent, startAgent, type TestAgent } from "./helpers/qemu_ga.ts";

let agent: TestAgent;
beforeAll(async () => {
  agent = await startAgent();
});
afterAll(() => agent?.stop());

const ga = (...args: string[]) => qmpctl(["-s", agent.socket, "ga", ...args]);

describe("ga AGENT-COMMAND against qemu-ga", () => {
  test("guest-ping prints {} and exits 0", async () => {
    expect(await ga("guest-ping")).toMatchObject({ code: 0, stdout: "{}\n", stderr: "" });
  });

  test("an output that cannot be written: exit 74, saying the guest agent answered (the command was run)", async () => {
    expect(await qmpctlInShell('"$0" -s "$1" ga guest-ping > /dev/full', agent.socket)).toEqual({
      code: 74,
      stdout: "",
      stderr: "qmpctl: could not write the output: no space left on the device (ENOSPC) " +
        "(guest-ping was run: the guest agent answered it)\n",
    });
  });

  test(
    "guest-file-read of the most qemu-ga reads at once (48 MiB: 64 MiB and its JSON in base64) is printed",
    async () => {
      const file = join(agent.dir, "largest-read.bin"), size = 48 * 1024 * 1024;
      const bytes = new Uint8Array(size);
      for (let i = 0; i < size; i += 65536) crypto.getRandomValues(bytes.subarray(i, i + 65536));
      writeFileSync(file, bytes);
      try {
        const opened = await ga("guest-file-open", `path=${file}`);
        expect(opened.code).toBe(0);
        const handle = opened.stdout.trim();
        try {
          const read = await ga("guest-file-read", `handle=${handle}`, `count=${size}`);
          expect({ code: read.code, stderr: read.stderr }).toEqual({ code: 0, stderr: "" });
          const { count, eof, "buf-b64": base64 } = JSON.parse(read.stdout);
          expect({ count, eof }).toEqual({ count: size, eof: false });
          expect(Buffer.from(base64, "base64").equals(bytes)).toBe(true);
        } finally {
          await ga("guest-file-close", `handle=${handle}`);
        }
      } finally {
        rmSync(file);
      }
    },
    30_000,
  );

  test("$QMPCTL_GA_SOCKET gives the address", async () => {
    const result = await qmpctl(["ga", "guest-ping"], { env: { QMPCTL_GA_SOCKET: agent.socket } });
    expect(result).toMatchObject({ code: 0, stdout: "{}\n" });
  });

  test("guest-info prints the agent's version and its commands, enabled or not", async () => {
    const result = await ga("guest-info");
    expect(result.code).toBe(0);
    const info = JSON.parse(result.stdout);
    expect(info.version).toMatch(/^\d+\.\d+/);
    const names = info.supported_commands.map((c: { name: string }) => c.name);
    expect(names).toContain("guest-exec");
    expect(names).toContain("guest-sync-delimited");
  });

  test("--raw prints the whole reply, --pretty indents it", async () => {
    expect((await ga("guest-ping", "--raw")).stdout).toBe('{"return":{}}\n');
    const pretty = await ga("guest-get-host-name", "--pretty");
    expect(pretty.stdout).toMatch(/^\{\n {2}"host-name": ".+"\n\}\n$/);
  });

  test("KEY=VALUE words are typed by the agent's schema: path stays text, arg.N builds a list", async () => {
    const started = await ga("guest-exec", "path=/bin/echo", "arg.0=007", "arg.1=true", "capture-output=true");
    expect(started.code).toBe(0);
    const { pid } = JSON.parse(started.stdout);
    let status: Record<string, unknown> = {};
    for (let i = 0; i < 100 && !status.exited; i++) {
      status = JSON.parse((await ga("guest-exec-status", `pid=${pid}`)).stdout);
    }
    expect(status.exitcode).toBe(0);
    expect(atob(status["out-data"] as string)).toBe("007 true\n"); // not 7, not the boolean
  });

  test("-v logs the sync and the command, each marked with its direction", async () => {
    const result = await ga("guest-ping", "-v");
    expect(result.stderr).toMatch(/^> \{"execute":"guest-sync-delimited","arguments":\{"id":\d+\}\}$/m);
    expect(result.stderr).toMatch(/^< \{"return":\d+\}$/m);
    const sync = /"id":(\d+)/.exec(result.stderr)![1];
    expect(result.stderr).toMatch(new RegExp(`^> \\{"execute":"guest-ping","id":"qmpctl-${sync}-1"\\}$`, "m"));
  });

  test("an agent error exits 1 with its class and description", async () => {
    const result = await ga("guest-file-open", "path=/nonexistent/file");
    expect(result.code).toBe(1);
    expect(result.stdout).toBe("");
    expect(result.stderr).toMatch(/^qmpctl: GenericError: failed to open file '\/nonexistent\/file'.*\n$/);
  });

  test("an unknown command exits 2 with the closest names from guest-info", async () => {
    const result = await ga("guest-pnig");
    expect(result).toMatchObject({ code: 2, stdout: "" });
    expect(result.stderr).toBe("qmpctl: unknown guest agent command 'guest-pnig' (did you mean guest-ping?)\n");
  });

  test("a command the agent disabled is its error (exit 1, as exec's), with why it may be so", async () => {
    const blocking = await startAgent(undefined, "unix-listen", ["-b", "guest-get-time,guest-exec,guest-file-open"]);
    const disabled = (command: string, about = "") =>
      `qmpctl: ${about}CommandNotFound: Command ${command} has been disabled (unsupported on this guest, ` +
      "or blocked by qemu-ga --block-rpcs)\n";
    try {
      const result = await qmpctl(["-s", blocking.socket, "ga", "guest-get-time"]);
      expect(result).toEqual(expect.objectContaining({ code: 1, stdout: "", stderr: disabled("guest-get-time") }));
      // ga exec and ga cp say the same of the agent's commands they send.
      const exec = await qmpctl(["-s", blocking.socket, "ga", "exec", "--", "true"]);
      expect(exec).toEqual(expect.objectContaining({ code: 1, stdout: "", stderr: disabled("guest-exec") }));
      const cp = await qmpctl(["-s", blocking.socket, "ga", "cp", ":/etc/hostname", "-"]);
      expect(cp).toEqual(
        expect.objectContaining({
          code: 1,
          stdout: "",
          stderr: disabled("guest-file-open", "cannot read /etc/hostname in the guest: "),
        }),
      );
    } finally {
      await blocking.stop();
    }
  });

  test("bad words exit 2 before anything is sent", async () => {
    for (
      const [words, message] of [
        [["guest-exec", "pth=/bin/true"], "unknown argument 'pth' (did you mean path?)"],
        [["guest-exec", "path=/bin/true", "arg=x"], "'arg=x': expected an array"],
        [["guest-file-read", "handle=abc"], "'handle=abc': expected int"],
        [["guest-ping", "novalue"], "'novalue' is not KEY=VALUE"],
        [["guest-exec", '{"path": "/bin/true"}'], "(a JSON object of arguments goes with --args)"],
        [["guest-ping", "--args", "{bad"], "--args: invalid JSON"],
      ] as const
    ) {
      const result = await qmpctl(["-s", "/nonexistent/ga.sock", "ga", ...words]);
      expect(result.code).toBe(2);
      expect(result.stderr).toContain(message);
    }
  });

  test("options of other forms, no command, no address: usage errors", async () => {
    expect(await ga("guest-ping", "--json")).toMatchObject({
      code: 2,
      stderr: "qmpctl: ga AGENT-COMMAND does not take --json\n",
    });
    expect(await ga("cp", "--args", "{}", "a", ":/b")).toMatchObject({ code: 2 });
    // Output options where nothing they shape is printed: refused, not ignored, before connecting.
    for (
      const [words, message] of [
        [["exec", "--raw", "--", "true"], "ga exec does not take --raw"],
        [["exec", "--json", "--raw", "--", "true"], "ga exec does not take --raw"],
        [["exec", "--pretty", "--", "true"], "ga exec takes --pretty only with --json"],
        [["cp", "--raw", ":/etc/hostname", "-"], "ga cp does not take --raw"],
        [["wait", "--pretty"], "ga wait does not take --pretty"],
      ]
    ) {
      const refused = await qmpctl(["-s", "/nonexistent/ga.sock", "ga", ...words]);
      expect(refused).toMatchObject({ code: 2, stdout: "", stderr: `qmpctl: ${message}\n` });
    }
    expect((await ga()).stderr).toContain("ga needs an agent command");
    const none = await qmpctl(["ga", "guest-ping"]);
    expect(none).toMatchObject({ code: 2, stderr: expect.stringContaining("QMPCTL_GA_SOCKET") });
  });

  test("exec pointed at the agent's socket (it never greets): exit 3 at --connect-timeout, suggesting qmpctl ga", async () => {
    const result = await qmpctl(["-s", agent.socket, "--connect-timeout", "500ms", "exec", "query-status"]);
    expect(result).toMatchObject({ code: 3, stdout: "" });
    expect(result.stderr).toEndWith("or it is no QMP monitor (a guest agent's socket: use qmpctl ga)\n");
  });

  test("a missing socket exits 3 naming it", async () => {
    const result = await qmpctl(["-s", "/nonexistent/ga.sock", "ga", "guest-ping"]);
    expect(result.code).toBe(3);
    expect(result.stderr).toBe("qmpctl: cannot connect to /nonexistent/ga.sock: no such socket (ENOENT)\n");
  });

  test("--wait-socket: a socket that appears later is retried, for ga CMD and ga exec alike", async () => {
    for (const words of [["guest-ping"], ["exec", "--", "echo", "hi"]]) {
      const later = join(agent.dir, "later.sock");
      const running = startQmpctl(["-s", later, "--wait-socket", "20s", "ga", ...words]);
      await Bun.sleep(300); // some tries fail first: nothing at that path yet
      symlinkSync(agent.socket, later);
      try {
        expect(await running.result).toMatchObject({
          code: 0,
          stdout: words[0] === "exec" ? "hi\n" : "{}\n",
          stderr: "",
        });
      } finally {
        rmSync(later);
      }
    }
    for (const words of [["guest-ping"], ["wait"]]) { // ga wait too: it waits for an answer, the socket as bounded
      const gone = await qmpctl(["-s", join(agent.dir, "never.sock"), "--wait-socket", "300ms", "ga", ...words]);
      expect(gone.code).toBe(3);
      expect(gone.stderr).toContain("(still so after 300ms of retries)");
      expect(gone.ms).toBeLessThan(5000);
    }
  });

  test("after a client that sent commands and left without reading the replies, guest-ping prints {}", async () => {
    // Through a serial channel, as in a VM: the replies, and half a request, wait in the port for the next client.
    const serial = await startAgent(undefined, "serial");
    try {
      const stale = await Bun.connect({ unix: serial.socket, socket: { data() {} } });
      stale.write(
        '{"execute":"guest-sync-delimited","arguments":{"id":4242}}\n{"execute":"guest-info"}\n' +
          '{"execute":"guest-exec","arguments":{"path":"/bin/true"}}\n{"execute":"guest-get-time","id":"qmpctl-1"}\n' +
          '{"execute":"guest-pi',
      );
      stale.end();
      const result = await qmpctl(["-s", serial.socket, "ga", "guest-ping", "-v"]);
      expect(result).toMatchObject({ code: 0, stdout: "{}\n" });
      expect(result.stderr).toMatch(/^< \{"return":\{\},"id":"qmpctl-\d+-1"\}$/m);
      // The stale replies did reach qmpctl (-v logs them), before the reply to its own sync: skipped.
      const lines = result.stderr.split("\n");
      const staleReply = lines.findIndex((line) => /^< \{"return":\d+,"id":"qmpctl-1"\}$/.test(line));
      const sync = lines.findIndex((line) => /^< \{"return":\d+\}$/.test(line) && !line.includes("4242"));
      expect(staleReply).toBeGreaterThan(0);
      expect(sync).toBeGreaterThan(staleReply);
    } finally {
      await serial.stop();
    }
  });
});

test("ga guest-sync-delimited: the 0xFF before its reply is a delimiter, not a broken reply", async () => {
  expect(await ga("guest-sync-delimited", "id=5")).toMatchObject({ code: 0, stdout: "5\n", stderr: "" });
});

test("ga --help names the agent's socket and its variable for -s; 'ga help' points to it", async () => {
  const help = await qmpctl(["ga", "--help"]);
  expect(help.stdout.replace(/\s+/g, " ")).toContain(
    "-s, --socket ADDR the guest agent's socket: PATH, unix:PATH, HOST:PORT, [IPV6]:PORT, " +
      "ssh://[USER@]HOST[:PORT]/PATH (default $QMPCTL_GA_SOCKET); one only",
  );
  expect(help.stdout).not.toContain("$QMPCTL_SOCKET");
  expect(await qmpctl(["ga", "help"], { env: { QMPCTL_GA_SOCKET: "" } })).toMatchObject({
    code: 2,
    stdout: "",
    stderr: "qmpctl: 'help' is no guest agent command: see qmpctl ga --help (the agent's commands: ga guest-info)\n",
  });
});

describe("ga against a fake agent", () => {
  test("an agent that does not echo ids: each reply answers the oldest call (no hang)", async () => {
    const idless = fakeAgent((request, connection) => {
      if (answerSync(request, connection)) return;
      connection.send(JSON.stringify({ return: { answered: request.execute } }) + "\n");
    });
    try {
      const result = await qmpctl(["-s", idless.path, "ga", "guest-get-time", "--timeout", "5s"]);
      expect(result).toMatchObject({ code: 0, stdout: '{"answered":"guest-get-time"}\n', stderr: "" });
    } finally {
      idless.stop();
    }
  });

  test("an agent whose error is no {class, desc}: exit 3 (the peer's fault), not 1 (the agent's refusal)", async () => {
    const odd = fakeAgent((request, connection) => {
      if (answerSync(request, connection)) return;
      connection.send(JSON.stringify({ error: "boom", id: request.id }) + "\n");
    });
    try {
      const result = await qmpctl(["-s", odd.path, "ga", "guest-ping", "--timeout", "5s"]);
      expect(result).toMatchObject({ code: 3, stdout: "" });
      expect(result.stderr).toStartWith(
        `qmpctl: ${odd.path}: received a reply with an error that is not {"class": ..., "desc": ...}: {"error":"boom"`,
      );
    } finally {
      odd.stop();
    }
  });

  test("an agent that answers with something not JSON: exit 3, the message names the agent", async () => {
    const broken = fakeAgent((request, connection) => {
      if (answerSync(request, connection)) return;
      connection.send("%%%% not json\n");
    });
    try {
      const result = await qmpctl(["-s", broken.path, "ga", "guest-ping", "--timeout", "5s"]);
      expect(result).toMatchObject({
        code: 3,
        stdout: "",
        stderr: `qmpctl: ${broken.path}: expected a JSON object, got "%%%% not json"\n`,
      });
    } finally {
      broken.stop();
    }
  });

  test("a socket that accepts but never answers exits 3 within --connect-timeout", async () => {
    const silent = fakeAgent(() => {});
    try {
      const result = await qmpctl(["-s", silent.path, "ga", "guest-ping", "--connect-timeout", "500ms"]);
      expect(result.code).toBe(3);
      expect(result.stderr).toBe(
        `qmpctl: no guest agent answered at ${silent.path} within 500ms ` +
          "(the guest may still be booting, or run no qemu-ga; or another client is using the agent, which answers one at a time)\n",
      );
      expect(result.ms).toBeLessThan(5000);
    } finally {
      silent.stop();
    }
  });

  test("bytes before the 0xFF and replies that are not the sync's are skipped", async () => {
    const stale = fakeAgent((request, connection) => {
      if (request.execute === "guest-sync-delimited") {
        const id = (request.arguments as { id: number }).id;
        connection.send('{"return": {"pid": 1}}\n{"ret'); // a dead client's leftovers, cut mid-message
        connection.send(new Uint8Array([0xff]));
        connection.send('{"return": 17}\n{"return": {"stale": true}, "id": "qmpctl-17-1"}\n'); // an earlier sync's
        connection.send(new Uint8Array([0xff]));
        connection.send(`{"return": ${id}}\n`);
      } else connection.send(JSON.stringify({ return: { answered: request.execute }, id: request.id }) + "\n");
    });
    try {
      const result = await qmpctl(["-s", stale.path, "ga", "guest-get-time", "--connect-timeout", "2s"]);
      expect(result).toMatchObject({ code: 0, stdout: '{"answered":"guest-get-time"}\n', stderr: "" });
    } finally {
      stale.stop();
    }
  });

  test("a QMP monitor given as the agent's address exits 3 at once and says what it is", async () => {
    // QEMU greets first, then answers the 0xFF and the sync with errors: never a 0xFF.
    const qemu = await startQemu();
    try {
      const result = await qmpctl(["-s", qemu.socket, "ga", "guest-ping", "--connect-timeout", "5s"]);
      expect(result.code).toBe(3);
      expect(result.stderr).toBe(
        `qmpctl: ${qemu.socket} is a QMP monitor, not a guest agent (qmpctl exec talks to a monitor)\n`,
      );
      expect(result.ms).toBeLessThan(2500);
    } finally {
      await qemu.stop();
    }
  }, 15_000);

  test("a peer that closes before the sync is answered exits 3", async () => {
    const closing = fakeAgent((_request, connection) => connection.close());
    try {
      const result = await qmpctl(["-s", closing.path, "ga", "guest-ping"]);
      expect(result.code).toBe(3);
      expect(result.stderr).toBe(`qmpctl: ${closing.path} closed the connection before the guest agent answered\n`);
    } finally {
      closing.stop();
    }
  });
});

describe("commands the agent answers only when they fail (guest-shutdown, guest-suspend-*)", () => {
  /**
   * A fake agent that answers the sync and (unless `hung`) guest-ping, and `other` for anything else (nothing
   * when undefined).
   */
  const agentAnswering = (other?: Record<string, unknown>, hung = false) =>
    fakeAgent((request, connection) => {
      if (answerSync(request, connection)) return;
      if (request.execute === "guest-ping") {
        if (!hung) connection.send(`{"return": {}, "id": "${request.id}"}\n`);
      } else if (other) connection.send(JSON.stringify({ ...other, id: request.id }) + "\n");
    });

  test("an agent that hangs after it: the bound's message names the command, not the ping qmpctl sent", async () => {
    const agent = agentAnswering(undefined, true);
    try {
      const result = await qmpctl(["-s", agent.path, "ga", "guest-shutdown", "--timeout", "500ms"]);
      expect(result).toMatchObject({
        code: 124,
        stdout: "",
        stderr: `qmpctl: timed out waiting for the guest agent at ${agent.path} to take guest-shutdown ` +
          "(a guest-ping after it) (--timeout 500ms)\n",
      });
    } finally {
      agent.stop();
    }
  });

  test("an agent frozen after it (a suspending guest): exit 0 once --connect-timeout passes, not a wait without end", async () => {
    const agent = agentAnswering(undefined, true);
    try {
      const result = await qmpctl([
        "-s",
        agent.path,
        "ga",
        "guest-suspend-ram",
        "--connect-timeout",
        "1s",
        "--timeout",
        "8s",
      ]);
      expect(result).toMatchObject({ code: 0, stdout: "", stderr: "" });
      expect(result.ms).toBeLessThan(5000);
    } finally {
      agent.stop();
    }
  });

  test("no answer: exit 0 and nothing on stdout", async () => {
    const agent = agentAnswering();
    try {
      const result = await qmpctl(["-s", agent.path, "ga", "guest-shutdown", "mode=powerdown"]);
      expect(result).toMatchObject({ code: 0, stdout: "", stderr: "" });
      const raw = await qmpctl(["-s", agent.path, "ga", "guest-shutdown", "mode=powerdown", "--raw"]);
      expect(raw).toMatchObject({ code: 0, stdout: "", stderr: "" }); // no response: nothing to print
    } finally {
      agent.stop();
    }
  });

  test("an error answer: exit 1 with it", async () => {
    const agent = agentAnswering({ error: { class: "GenericError", desc: "suspend not supported" } });
    try {
      const result = await qmpctl(["-s", agent.path, "ga", "guest-suspend-ram"]);
      expect(result).toMatchObject({ code: 1, stdout: "", stderr: "qmpctl: GenericError: suspend not supported\n" });
    } finally {
      agent.stop();
    }
  });

  test('an error answer with --raw: printed as {"error": ...}, as for any command, and exit 1', async () => {
    const agent = agentAnswering({ error: { class: "GenericError", desc: "suspend not supported" } });
    try {
      expect(await qmpctl(["-s", agent.path, "ga", "guest-suspend-ram", "--raw"])).toMatchObject({
        code: 1,
        stdout: '{"error":{"class":"GenericError","desc":"suspend not supported"}}\n',
        stderr: "qmpctl: GenericError: suspend not supported\n",
      });
    } finally {
      agent.stop();
    }
  });

  test("qemu-ga refusing them (-b guest-shutdown,guest-suspend-ram): --raw prints its error, as for guest-get-time", async () => {
    const blocking = await startAgent(undefined, "unix-listen", [
      "-b",
      "guest-shutdown,guest-suspend-ram,guest-get-time",
    ]);
    try {
      for (const command of ["guest-shutdown", "guest-suspend-ram", "guest-get-time"]) {
        const result = await qmpctl(["-s", blocking.socket, "ga", command, "--raw"]);
        expect(result).toEqual(expect.objectContaining({
          code: 1,
          stdout: `{"error":{"class":"CommandNotFound","desc":"Command ${command} has been disabled"}}\n`,
          stderr: `qmpctl: CommandNotFound: Command ${command} has been disabled (unsupported on this guest, ` +
            "or blocked by qemu-ga --block-rpcs)\n",
        }));
        const pretty = await qmpctl(["-s", blocking.socket, "ga", command, "--raw", "--pretty"]);
        expect(JSON.parse(pretty.stdout)).toEqual({
          error: { class: "CommandNotFound", desc: `Command ${command} has been disabled` },
        });
      }
      // Without --raw, nothing on stdout (the error is on stderr), as before.
      expect(await qmpctl(["-s", blocking.socket, "ga", "guest-shutdown"])).toMatchObject({ code: 1, stdout: "" });
    } finally {
      await blocking.stop();
    }
  });
});

/** A peer on a socket that, once connected to, sends `text` every `everyMs` and never answers. */
function peerSending(text: string, everyMs: number): { path: string; stop(): void } {
  const dir = agentDir();
  const path = join(dir, "peer.sock");
  const bytes = new TextEncoder().encode(text);
  const senders: ReturnType<typeof setInterval>[] = [];
  const listener = Bun.listen({
    unix: path,
    socket: { open: (socket) => void senders.push(setInterval(() => socket.write(bytes), everyMs)), data() {} },
  });
  return {
    path,
    stop() {
      senders.forEach(clearInterval);
      listener.stop(true);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

describe("ga wait", () => {
  test("exits 0 at once when the agent answers", async () => {
    expect(await ga("wait", "--timeout", "5s")).toMatchObject({ code: 0, stdout: "", stderr: "" });
  });

  test("waits for an agent that starts a second later, then exits 0", async () => {
    const dir = agentDir();
    const socket = join(dir, "ga.sock");
    const waiting = startQmpctl(["-s", socket, "ga", "wait", "--timeout", "15s"]);
    await Bun.sleep(1000);
    const late = await startAgent(dir);
    try {
      const result = await waiting.result;
      expect(result).toMatchObject({ code: 0, stderr: "" });
      expect(result.ms).toBeGreaterThan(1000);
      expect(result.ms).toBeLessThan(8000);
    } finally {
      await late.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("exits 124 when --timeout runs out first", async () => {
    const result = await qmpctl(["-s", "/nonexistent/ga.sock", "ga", "wait", "--timeout", "700ms"]);
    expect(result.code).toBe(124);
    expect(result.stderr).toBe(
      "qmpctl: timed out waiting for the guest agent at /nonexistent/ga.sock to answer; the last try: " +
        "cannot connect to /nonexistent/ga.sock: no such socket (ENOENT) (--timeout 700ms)\n",
    );
    expect(result.ms).toBeLessThan(5000);
  });

  test("a path that can never be an agent (a regular file) fails at once, exit 3, saying why", async () => {
    const dir = agentDir();
    const file = join(dir, "not-a-socket");
    writeFileSync(file, "");
    try {
      const result = await qmpctl(["-s", file, "ga", "wait", "--timeout", "4s"]);
      expect(result.stderr).toContain(`${file}: not a socket`);
      expect(result.code).toBe(3);
      expect(result.ms).toBeLessThan(3000);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  /** `ga wait --timeout TIMEOUT` over ssh://, with a stand-in for ssh that says `line` on stderr and exits 255. */
  async function waitThroughFailingSsh(line: string, timeout: string) {
    const dir = agentDir();
    try {
      const ssh = join(dir, "ssh");
      writeFileSync(ssh, `#!/bin/sh\necho '${line}' >&2\nexit 255\n`, { mode: 0o755 });
      return await qmpctl(["-s", "ssh://vm-host/run/vm1.ga", "ga", "wait", "--timeout", timeout], {
        env: { QMPCTL_SSH_COMMAND: ssh },
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  test("an ssh:// agent whose sshd refuses (its host still starting) is tried again until --timeout, saying why", async () => {
    const result = await waitThroughFailingSsh("ssh: connect to host vm-host port 22: Connection refused", "1s");
    expect(result).toMatchObject({ code: 124, stdout: "" });
    expect(result.stderr).toStartWith(
      "qmpctl: timed out waiting for the guest agent at ssh://vm-host/run/vm1.ga to answer; the last try: " +
        "cannot connect to ssh://vm-host/run/vm1.ga: ssh: connect to host vm-host port 22: Connection refused",
    );
  });

  test("an ssh:// agent whose ssh cannot log in (a host key, a key) fails at once, exit 3, as --wait-socket does", async () => {
    const result = await waitThroughFailingSsh("Host key verification failed.", "5s");
    expect(result).toMatchObject({
      code: 3,
      stdout: "",
      stderr: "qmpctl: cannot connect to ssh://vm-host/run/vm1.ga: Host key verification failed.\n",
    });
    expect(result.ms).toBeLessThan(3000);
  });

  test("retries an agent that stays silent, until --timeout", async () => {
    const silent = fakeAgent(() => {});
    try {
      const result = await qmpctl(["-s", silent.path, "ga", "wait", "--connect-timeout", "300ms", "--timeout", "1s"]);
      expect(result.code).toBe(124);
      expect(result.stderr).toContain("; the last try: "); // the sync no agent answered
    } finally {
      silent.stop();
    }
  });

  test(
    "a peer that sends bytes without end and never answers: --timeout ends the run within a second of it",
    async () => {
      const chatty = peerSending("garbage\n".repeat(8192), 5);
      try {
        const result = await qmpctl(["-s", chatty.path, "ga", "guest-ping", "--timeout", "1s"]);
        expect(result).toMatchObject({ code: 124, stdout: "" });
        expect(result.ms).toBeLessThan(2500); // it took 6 s: the wait for owed replies went on while bytes came
      } finally {
        chatty.stop();
      }
    },
    15_000,
  );

  test(
    "a peer that floods bytes without a 0xFF (no sync answer) is no agent: exit 3 past 64 MiB and 64 KiB",
    async () => {
      const flood = peerSending(`{"return": "${"A".repeat(1 << 20)}`, 1);
      try {
        const result = await qmpctl(["-s", flood.path, "ga", "guest-ping", "--timeout", "8s"]);
        expect(result).toMatchObject({
          code: 3,
          stdout: "",
          stderr: `qmpctl: ${flood.path} sent more than 67174400 bytes without answering the sync ` +
            "(guest-sync-delimited): is it a guest agent?\n",
        });
      } finally {
        flood.stop();
      }
    },
    15_000,
  );

  test("an agent that opens its port after the first sync (which it never sees) is found within seconds, not --connect-timeout", async () => {
    const opened = Date.now() + 1500; // what came before is lost, as a serial port's input before qemu-ga opens it
    const late = fakeAgent((request, connection) => {
      if (request.execute !== "guest-sync-delimited" || Date.now() < opened) return;
      const id = (request.arguments as { id: number }).id;
      connection.send(new Uint8Array([0xff, ...new TextEncoder().encode(`{"return": ${id}}\n`)]));
    });
    try {
      const result = await qmpctl(["-s", late.path, "ga", "wait", "--timeout", "8s"]); // --connect-timeout: 10s
      expect(result).toMatchObject({ code: 0, stderr: "" });
      expect(result.ms).toBeLessThan(6000);
    } finally {
      late.stop();
    }
  });
});
