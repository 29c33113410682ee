/** `qmpctl shell` with commands piped on stdin: one JSON line per command, and the exit status. */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { QMPCTL, qmpctl, qmpctlInShell } from "./helpers/cli.ts";
import { fakeServer } from "./helpers/fake_server.ts";
import { startQemu, type TestQemu } from "./helpers/qemu.ts";

let qemu: TestQemu;
let home: string;

beforeAll(async () => {
  qemu = await startQemu({ extraArgs: ["-name", "vm1"] });
  home = mkdtempSync(join(tmpdir(), "qmpctl-shell-home-"));
});
afterAll(async () => {
  await qemu?.stop();
  rmSync(home, { recursive: true, force: true });
});

const shell = (stdin: string | Uint8Array<ArrayBuffer>, args: string[] = []) =>
  qmpctl(["shell", "-s", qemu.socket, ...args], {
    stdin,
    env: { XDG_STATE_HOME: join(home, "state"), XDG_CACHE_HOME: join(home, "cache") },
  });

describe("qmpctl shell with piped stdin", () => {
  test("runs each line in order, skips blanks and comments, prints one JSON line each, exits 1 if any failed", async () => {
    const input = [
      "# check the VM",
      "query-name",
      "",
      "   ",
      "no-such-command",
      '{"execute": "query-name"}',
      "query-name oops",
      "human-monitor-command command-line='info version'",
      "{not json",
    ].join("\n"); // the last line without its newline
    const { code, stdout, stderr } = await shell(input);
    const version = await qemu.control.execute("human-monitor-command", { "command-line": "info version" });
    expect(stdout.split("\n")).toEqual([
      '{"return":{"name":"vm1"}}',
      '{"error":{"class":"CommandNotFound","desc":"The command no-such-command has not been found"}}',
      '{"return":{"name":"vm1"}}',
      `{"error":{"class":"ArgumentError","desc":"'oops' is not KEY=VALUE"}}`,
      JSON.stringify({ return: version }),
      expect.stringMatching(/^\{"error":\{"class":"ArgumentError","desc":"the line: invalid JSON .*"\}\}$/),
      "",
    ]);
    expect(stderr).toBe("");
    expect(code).toBe(1);
  });

  test("a raw line with both execute and exec-oob, or neither: an error line saying which", async () => {
    const { code, stdout } = await shell('{"execute": "query-name", "exec-oob": "stop"}\n{"arguments": {}}\n');
    expect(stdout).toBe(
      '{"error":{"class":"ArgumentError","desc":"a raw QMP line holds \\"execute\\" or \\"exec-oob\\", not both"}}\n' +
        '{"error":{"class":"ArgumentError","desc":"a raw QMP line needs \\"execute\\" (or \\"exec-oob\\") with a command name"}}\n',
    );
    expect(code).toBe(1);
  });

  test("a line that is not UTF-8 is an ArgumentError line in its place, not sent with U+FFFD (shell and batch)", async () => {
    const text = (t: string) => [...new TextEncoder().encode(t)];
    const input = new Uint8Array([...text("set_link name=caf"), 0xe9, ...text(" up=on\nquery-name\n")]);
    const env = { XDG_STATE_HOME: join(home, "state"), XDG_CACHE_HOME: join(home, "cache") };
    const desc = String.raw`the line is not UTF-8: 'set_link name=caf\xe9 up=on'`; // its bytes shown as escapes
    for (const command of ["shell", "batch"]) {
      expect(await qmpctl([command, "-s", qemu.socket], { stdin: input, env })).toMatchObject({
        code: 1,
        stdout: `${JSON.stringify({ error: { class: "ArgumentError", desc } })}\n{"return":{"name":"vm1"}}\n`,
        // batch names each line that failed on stderr too; the shell's output is its stdout alone
        stderr: command === "batch" ? `qmpctl: line 1: ArgumentError: ${desc}\n` : "",
      });
    }
  });

  test("a reply is printed when it comes, not when the next line does (a slow producer, a person typing)", async () => {
    const child = Bun.spawn([QMPCTL, "shell", "-s", qemu.socket], {
      stdin: "pipe",
      stdout: "pipe",
      stderr: "pipe",
      env: { ...process.env, XDG_STATE_HOME: join(home, "state"), XDG_CACHE_HOME: join(home, "cache") },
    });
    try {
      child.stdin.write("query-name\n");
      child.stdin.flush();
      const reader = child.stdout.getReader();
      const first = await Promise.race([reader.read(), Bun.sleep(5000).then(() => undefined)]);
      expect(first && new TextDecoder().decode(first.value)).toBe('{"return":{"name":"vm1"}}\n'); // stdin still open
      child.stdin.end();
      expect(await child.exited).toBe(0);
    } finally {
      child.kill();
    }
  });

  test("a reader that leaves (| head -1) ends the run at the next write: exit 0, and the lines after are not sent", () => {
    for (const command of ["shell", "batch"]) {
      const script = '(echo query-name; sleep 1; echo query-kvm; sleep 1; echo stop; sleep 6) | "$0" "$1" -s "$2" | ' +
        'head -1; echo "status ${PIPESTATUS[1]}"';
      const started = performance.now();
      const run = Bun.spawnSync(["bash", "-c", script, QMPCTL, command, qemu.socket], {
        stdout: "pipe",
        stderr: "pipe",
      });
      expect({ command, stdout: run.stdout.toString(), stderr: run.stderr.toString() }).toEqual({
        command,
        stdout: '{"return":{"name":"vm1"}}\nstatus 0\n',
        stderr: "",
      });
      expect(performance.now() - started).toBeLessThan(5000); // not held until the input ends
    }
    const status = Bun.spawnSync([QMPCTL, "-s", qemu.socket, "exec", "query-status"]).stdout.toString();
    expect(JSON.parse(status).running).toBe(true); // stop was never sent
  });

  test("exits 0 when every line succeeded; the prompt, the banner and events stay out of stdout", async () => {
    const { code, stdout, stderr } = await shell("stop\nquery-status\ncont\n");
    expect(stdout).toBe(
      '{"return":{}}\n{"return":{"status":"paused","singlestep":false,"running":false}}\n{"return":{}}\n',
    );
    expect(stderr).toBe("");
    expect(code).toBe(0);
  });

  test("events on prints the events that come after it, as JSON lines", async () => {
    const { code, stdout } = await shell("events on\nstop\ncont\nquery-name\n");
    const lines = stdout.trim().split("\n").map((line) => JSON.parse(line));
    // An event and the reply it came with may print in either order; each kind keeps its own.
    expect(lines.filter((l) => l.event).map((l) => l.event)).toEqual(["STOP", "RESUME"]);
    expect(lines.filter((l) => !l.event)).toEqual([{ return: {} }, { return: {} }, { return: { name: "vm1" } }]);
    expect(code).toBe(0);
  });

  test("transaction( ... ) gives one result line; -p indents results", async () => {
    await qemu.control.execute("blockdev-add", { "driver": "null-co", "node-name": "pipe0" });
    const { code, stdout } = await shell(
      "transaction(\nblock-dirty-bitmap-add node=pipe0 name=p1\nblock-dirty-bitmap-add node=pipe0 name=p2 )\n",
      ["-p"],
    );
    expect(stdout).toBe('{\n  "return": {}\n}\n');
    expect(code).toBe(0);
    const nodes = await qemu.control.execute("query-named-block-nodes") as Record<string, unknown>[];
    const node = nodes.find((n) => n["node-name"] === "pipe0") as { "dirty-bitmaps": { name: string }[] };
    expect(node["dirty-bitmaps"].map((b) => b.name).sort()).toEqual(["p1", "p2"]);
  });

  test("a JSON value is taken as typed, as qmp-shell took it: KEY:=[...] and KEY=[...] with double quotes, no shell quoting", async () => {
    await qemu.control.execute("blockdev-add", { "driver": "null-co", "node-name": "pipe-json" });
    const action = (name: string) =>
      `{"type": "block-dirty-bitmap-add", "data": {"node": "pipe-json", "name": "${name}"}}`;
    const { code, stdout, stderr } = await shell(`transaction actions:=[${action("j1")}]
transaction actions=[${action("j2")}]
`);
    expect({ code, stdout, stderr }).toEqual({ code: 0, stdout: '{"return":{}}\n{"return":{}}\n', stderr: "" });
    const nodes = await qemu.control.execute("query-named-block-nodes") as Record<string, unknown>[];
    const node = nodes.find((n) => n["node-name"] === "pipe-json") as { "dirty-bitmaps": { name: string }[] };
    expect(node["dirty-bitmaps"].map((b) => b.name).sort()).toEqual(["j1", "j2"]);
    // A KEY:=JSON left open is refused as the JSON it is (as exec refuses it), not split into odd words.
    const open = await shell(`transaction actions:=[${action("j3")}\n`);
    expect(open.code).toBe(1);
    expect(open.stdout).toContain("invalid JSON at its end");
  });

  test("input that ends inside a transaction sends nothing: an error line in its place, exit 1", async () => {
    const { code, stdout, stderr } = await shell(
      "query-name\ntransaction(\nblock-dirty-bitmap-add node=pipe0 name=p9\n",
    );
    expect(stdout).toBe(
      '{"return":{"name":"vm1"}}\n' +
        '{"error":{"class":"ArgumentError","desc":"the input ended inside transaction( ... ): it was not sent"}}\n',
    );
    expect(stderr).toBe("");
    expect(code).toBe(1);
  });

  test("a transaction with a line that makes no action is not sent at all: QEMU would apply the rest", async () => {
    await qemu.control.execute("blockdev-add", { "driver": "null-co", "node-name": "pipe1" });
    const bitmaps = async () => {
      const nodes = await qemu.control.execute("query-named-block-nodes") as Record<string, unknown>[];
      const node = nodes.find((n) => n["node-name"] === "pipe1") as { "dirty-bitmaps"?: { name: string }[] };
      return (node["dirty-bitmaps"] ?? []).map((b) => b.name).sort(); // QEMU leaves out an empty list
    };
    const refused = "the transaction was not sent: 1 of its lines made no action";
    const typo = "block-dirty-bitmap-add: unknown argument 'nam' (did you mean name?)";
    const apart = await shell( // the typo on a line of its own, then ) alone
      "transaction(\nblock-dirty-bitmap-add node=pipe1 name=t1\nblock-dirty-bitmap-add node=pipe1 nam=t2\n)\n",
    );
    // One result line for the transaction, as for one that went: its ) line names the line that made no action.
    expect(apart.stdout).toBe(`{"error":{"class":"ArgumentError","desc":"${typo}; ${refused}"}}\n`);
    expect(apart.code).toBe(1);
    const together = await shell( // the typo on the line that ends it, a command after
      "transaction(\nblock-dirty-bitmap-add node=pipe1 name=t1\nblock-dirty-bitmap-add node=pipe1 nam=t2 )\nquery-name\n",
    );
    expect(together.stdout).toBe(
      `{"error":{"class":"ArgumentError","desc":"${typo}; ${refused}"}}\n{"return":{"name":"vm1"}}\n`,
    );
    expect(together.code).toBe(1);
    expect(await bitmaps()).toEqual([]);
  });

  test("a transaction with a line that is not UTF-8 is not sent either", async () => {
    await qemu.control.execute("blockdev-add", { "driver": "null-co", "node-name": "pipe2" });
    const text = (t: string) => [...new TextEncoder().encode(t)];
    const input = new Uint8Array([
      ...text("transaction(\nblock-dirty-bitmap-add node=pipe2 name=u1\nblock-dirty-bitmap-add node=pipe2 name=u"),
      0xff,
      ...text("\n)\n"),
    ]);
    const { code, stdout } = await shell(input);
    const desc = String.raw`the line is not UTF-8: 'block-dirty-bitmap-add node=pipe2 name=u\xff'`;
    const refused = `${desc}; the transaction was not sent: 1 of its lines made no action`;
    expect(stdout).toBe(`${JSON.stringify({ error: { class: "ArgumentError", desc: refused } })}\n`);
    expect(code).toBe(1);
    const nodes = await qemu.control.execute("query-named-block-nodes") as Record<string, unknown>[];
    expect(nodes.find((n) => n["node-name"] === "pipe2")?.["dirty-bitmaps"]).toBeUndefined();
  });

  test("a word after shell (qmp-shell's socket argument) is a usage error, not ignored for -s's VM", async () => {
    const { code, stdout, stderr } = await shell("query-name\n", ["/run/other-vm.qmp"]);
    expect({ code, stdout, stderr }).toEqual({
      code: 2,
      stdout: "",
      stderr: "qmpctl: shell takes no words (got '/run/other-vm.qmp'): give the socket with -s\n",
    });
  });

  test("a # that starts a word starts a comment, as in sh; one inside a word is part of it", async () => {
    const { code, stdout } = await shell("query-name # the VM's name\nqom-get path=/machine property=type#x\n");
    const lines = stdout.trim().split("\n").map((line) => JSON.parse(line));
    expect(lines[0]).toHaveProperty("return");
    expect(lines[1].error.desc).toContain("type#x");
    expect(code).toBe(1);
  });

  test("quit leaves before the lines after it; QEMU keeps running", async () => {
    const { code, stdout } = await shell("query-name\nquit\nno-such-command\n");
    expect(stdout).toBe('{"return":{"name":"vm1"}}\n');
    expect(code).toBe(0);
    expect(await qemu.control.execute("query-name")).toEqual({ name: "vm1" });
  });

  test("quit or exit with a word after it is a slip, not a way out: an error line, and the shell goes on", async () => {
    const { code, stdout } = await shell("quit now\nexit 0\nquery-name\n");
    expect(stdout.trim().split("\n").map((line) => JSON.parse(line))).toEqual([
      { error: { class: "ArgumentError", desc: "usage: quit (no words)" } },
      { error: { class: "ArgumentError", desc: "usage: exit (no words)" } },
      { return: { name: "vm1" } },
    ]);
    expect(code).toBe(1); // lines failed, as any failed line makes it
  });

  test("--hmp: each line's text as a JSON string; cpu N is local; a line that starts with # is skipped", async () => {
    const { code, stdout } = await shell("# info version\ninfo status\ncpu 3\n  #x\nhelp info\nhelp\n", ["--hmp"]);
    const lines = stdout.trim().split("\n").map((line) => JSON.parse(line));
    expect(lines[0]).toEqual({ return: "VM status: running\n" });
    expect(lines[1].error.class).toBe("GenericError"); // -machine none has no CPU 3
    expect(lines[2].return).toStartWith("info ");
    // QEMU's text as it sent it: the shell's own commands are listed at a terminal only.
    expect(lines[3].return).toContain("info [subcommand]");
    expect(lines[3].return).not.toContain("qmpctl");
    expect(lines.length).toBe(4);
    expect(code).toBe(1);
  });

  test("-H is --hmp, as in qmp-shell", async () => {
    const { code, stdout } = await shell("info status\n", ["-H"]);
    expect(stdout).toBe('{"return":"VM status: running\\n"}\n');
    expect(code).toBe(0);
  });

  test("a JSON object of arguments after the command: an error line that spells the raw QMP line to type", async () => {
    const { code, stdout } = await shell('query-name {"a": 1}\nquery-name --args {"a": 1}\n');
    const line =
      `{"error":{"class":"ArgumentError","desc":"'{\\"a\\": 1}' is not KEY=VALUE (a line that starts with { ` +
      `is sent as QMP: {\\"execute\\": \\"query-name\\", \\"arguments\\": {\\"a\\": 1}})"}}\n`;
    expect(stdout).toBe(line + line); // not the CLI's --args, which the shell has not
    expect(code).toBe(1);
  });

  test("a line that starts with KEY=VALUE (the rest of a line cut in two) is an error line, not sent as a command", async () => {
    const { code, stdout } = await shell("set_link name=x \\\nup=off\nquery-name\n");
    expect(stdout.split("\n")[1]).toBe(
      `{"error":{"class":"ArgumentError","desc":"'up=off' is KEY=VALUE, not a command: a line starts with its ` +
        `command (CMD KEY=VALUE ...)"}}`,
    );
    expect(stdout.split("\n")[2]).toBe('{"return":{"name":"vm1"}}');
    expect(code).toBe(1);
  });

  test(") outside a transaction, and a JSON array, are error lines, not sent to QEMU as commands", async () => {
    const { code, stdout } = await shell(")\n[1]\nquery-name\n");
    expect(stdout).toBe(
      '{"error":{"class":"ArgumentError","desc":"no transaction is open: ) ends one that transaction( began"}}\n' +
        '{"error":{"class":"ArgumentError","desc":"a raw QMP line is one JSON object ({...}), not an array"}}\n' +
        '{"return":{"name":"vm1"}}\n',
    );
    expect(code).toBe(1);
  });
});

test("piped, the shell sends only the lines' commands (no query-name for a prompt it does not show)", async () => {
  const sent: unknown[] = [];
  const server = fakeServer(async (connection) => {
    await connection.handshake();
    for (;;) {
      const request = await connection.nextRequest();
      sent.push(request.execute);
      connection.reply(request, {});
    }
  });
  try {
    const result = await qmpctl(["shell", "-s", server.path], { stdin: "query-status\nstop\n" });
    expect(result).toMatchObject({ code: 0, stdout: '{"return":{}}\n{"return":{}}\n', stderr: "" });
    expect(sent).toEqual(["query-status", "stop"]);
  } finally {
    server.stop();
  }
});

describe("stdin that cannot be read", () => {
  /** qmpctl ARGS with stdin redirected by `redirect` (sh syntax; $TMPDIR is the test's home). */
  const withStdin = (redirect: string, args: string[]) => {
    const result = Bun.spawnSync(["sh", "-c", `"$0" "$@" ${redirect}`, QMPCTL, ...args], {
      env: { ...process.env, TMPDIR: home },
      stderr: "pipe",
      stdout: "pipe",
    });
    return { code: result.exitCode, stdout: result.stdout.toString(), stderr: result.stderr.toString() };
  };
  const unreadable = [
    { what: "a directory", redirect: '< "$TMPDIR"', reason: "a directory (EISDIR)" },
    { what: "closed", redirect: "<&-", reason: "closed (EBADF)" }, // not read as empty input
  ];
  for (const { what, redirect, reason } of unreadable) {
    const refused = { code: 2, stdout: "", stderr: `qmpctl: cannot read stdin: ${reason}\n` };
    for (const command of [["shell"], ["shell", "--hmp"], ["batch", "-"]]) {
      test(`${command.join(" ")} with stdin ${what}: exit 2 saying so (not an internal error)`, () => {
        expect(withStdin(redirect, ["-s", qemu.socket, ...command])).toEqual(refused);
      });
    }

    if (what === "closed") {
      test("batch /dev/stdin with stdin closed: exit 2 saying so, not empty input", () => {
        expect(withStdin(redirect, ["-s", qemu.socket, "batch", "/dev/stdin"])).toEqual({
          ...refused,
          stderr: `qmpctl: cannot read /dev/stdin: ${reason}\n`,
        });
      });
    }

    test(`batch on two sockets with stdin ${what}: one error before connecting, exit 2`, () => {
      const absent = join(home, "absent.sock"); // read before connecting: not a connection error
      expect(withStdin(redirect, ["-s", qemu.socket, "-s", absent, "batch"])).toEqual(refused);
    });
  }
});

describe("QEMU's error object, whole", () => {
  for (const command of [["shell"], ["batch"]]) {
    test(`${command[0]}: the error line keeps every member QEMU sent (an old QEMU's data, a uint64 exact)`, async () => {
      const error = '{"class":"GenericError","desc":"no such thing","data":{"size":18446744073709551615}}';
      const server = fakeServer(async (connection) => {
        await connection.handshake();
        const request = await connection.nextRequest();
        const id = request.id === undefined ? "" : `,"id":${JSON.stringify(request.id)}`; // piped lines have none
        connection.send(`{"error":${error}${id}}\r\n`);
      });
      try {
        const { code, stdout } = await qmpctl([command[0], "-s", server.path], { stdin: "query-thing\n" });
        expect(stdout).toBe(`{"error":${error}}\n`);
        expect(code).toBe(1);
      } finally {
        server.stop();
      }
    });
  }
});

describe("qmpctl shell with piped stdin, when the connection is lost", () => {
  test("prints what ran before, says so and exits 3", async () => {
    const server = fakeServer(async (connection) => {
      await connection.handshake();
      connection.reply(await connection.nextRequest(), { status: "running", running: true });
      await connection.nextRequest();
      connection.close();
    });
    try {
      const { code, stdout, stderr } = await qmpctl(["shell", "-s", server.path], {
        stdin: "query-status\nstop\nquery-status\n",
      });
      expect(stdout).toBe('{"return":{"status":"running","running":true}}\n');
      expect(stderr).toBe(`qmpctl: ${server.path} closed the connection before the reply to stop\n`);
      expect(code).toBe(3);
    } finally {
      server.stop();
    }
  });
});

describe("qmpctl shell with piped stdin, after QEMU quits", () => {
  test("QEMU answered quit and closed while the next line is awaited: exit 0, as when the input ends with it", async () => {
    const doomed = await startQemu();
    const script = `{ printf '{"execute": "quit"}\\n'; sleep 2; } | "$0" -s "$1" shell`;
    const result = await qmpctlInShell(script, doomed.socket);
    await doomed.stop();
    expect(result).toEqual({ code: 0, stdout: '{"return":{}}\n', stderr: "" });
  });

  test("a quit QEMU refused, then the connection lost while the next line is awaited: exit 3, as any loss", async () => {
    const server = fakeServer(async (connection) => {
      await connection.handshake();
      const quit = await connection.nextRequest();
      connection.sendJson({ error: { class: "GenericError", desc: "Parameter 'bogus' is unexpected" }, id: quit.id });
      await Bun.sleep(300);
      connection.close(); // QEMU died for another reason
    });
    try {
      const script = `{ printf '{"execute": "quit", "arguments": {"bogus": 1}}\n'; sleep 2; } | "$0" -s "$1" shell`;
      expect(await qmpctlInShell(script, server.path)).toEqual({
        code: 3,
        stdout: '{"error":{"class":"GenericError","desc":"Parameter \'bogus\' is unexpected"}}\n',
        stderr: `qmpctl: connection lost: ${server.path} closed the connection\n`,
      });
    } finally {
      server.stop();
    }
  });
});
