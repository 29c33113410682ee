/** `qmpctl batch`: pipelined lines over one connection, against a real QEMU and a scripted server. */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BadLine, readLines } from "../cli/io/input.ts";
import { interrupt, QMPCTL, qmpctl, qmpctlInShell, startQmpctl } from "./helpers/cli.ts";
import { type FakeServer, fakeServer } from "./helpers/fake_server.ts";
import { startQemu, type TestQemu } from "./helpers/qemu.ts";

let qemu: TestQemu;
let dir: string;

beforeAll(async () => {
  qemu = await startQemu({ extraArgs: ["-name", "vm1"] });
  dir = mkdtempSync(join(tmpdir(), "qmpctl-batch-"));
});
afterAll(async () => {
  await qemu?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("qmpctl batch against QEMU", () => {
  test("1000 lines in order, failing ones in the middle: one result line each, each failure named on stderr, exit 1", async () => {
    // stop, query-status, cont, query-status, ...: each status shows the command before it ran first.
    const input: string[] = [];
    const expected: unknown[] = [];
    for (let i = 0; i < 1000; i++) {
      if (i === 501) { // in place of a query-status, so the statuses after it stay as they were
        input.push("no-such-command");
        expected.push({ error: { class: "CommandNotFound", desc: "The command no-such-command has not been found" } });
      } else if (i === 701) {
        input.push("query-status bogus=1"); // refused before sending: an error line in its place
        expected.push({ error: { class: "ArgumentError", desc: expect.stringContaining("bogus") } });
      } else if (i % 2 === 0) {
        input.push(i % 4 === 0 ? "stop" : "cont");
        expected.push({ return: {} });
      } else {
        const running = (i - 1) % 4 !== 0;
        input.push(i % 3 === 0 ? '{"execute": "query-status"}' : "query-status");
        expected.push({ return: { status: running ? "running" : "paused", singlestep: false, running } });
      }
    }
    const { code, stdout, stderr } = await qmpctl(["-s", qemu.socket, "batch"], { stdin: input.join("\n") + "\n" });
    const lines = stdout.trimEnd().split("\n").map((line) => JSON.parse(line));
    expect(lines).toEqual(expected);
    expect(stderr).toBe(
      "qmpctl: line 502: CommandNotFound: The command no-such-command has not been found\n" +
        "qmpctl: line 702: ArgumentError: query-status: unknown argument 'bogus'\n",
    );
    expect(code).toBe(1);
    await qemu.control.execute("cont");
  });

  test("a raw JSON line's own id is in its result line, as QEMU echoes it; the other lines have none", async () => {
    const { code, stdout } = await qmpctl(["-s", qemu.socket, "batch"], {
      stdin: '{"execute": "query-name", "id": "name"}\nquery-name\n{"execute": "nope", "id": {"n": 7}}\n',
    });
    expect(stdout.trimEnd().split("\n").map((line) => JSON.parse(line))).toEqual([
      { return: { name: "vm1" }, id: "name" },
      { return: { name: "vm1" } },
      { error: { class: "CommandNotFound", desc: "The command nope has not been found" }, id: { n: 7 } },
    ]);
    expect(code).toBe(1);
  });

  test("lines may repeat an id, or use one like qmpctl's own: every line returns, with its id (QEMU takes both)", async () => {
    const input = '{"execute": "query-name", "id": "setup"}\n'.repeat(300) +
      '{"execute": "query-name", "id": "qmpctl-2"}\nqom-get path=/machine property=type\n';
    const { code, stdout } = await qmpctl(["-s", qemu.socket, "batch"], { stdin: input });
    const lines = stdout.trimEnd().split("\n").map((line) => JSON.parse(line));
    expect(lines).toEqual([
      ...Array(300).fill({ return: { name: "vm1" }, id: "setup" }),
      { return: { name: "vm1" }, id: "qmpctl-2" },
      { return: "none-machine" },
    ]);
    expect(code).toBe(0);
  });

  test("each stderr line naming a failed line comes after that line's result, with 2>&1 into one pipe", () => {
    // Lines that need no schema: nothing is cached in the user's home.
    const NAME = '{"return":{"name":"vm1"}}';
    const input = "query-name\nno-such\nquery-name\nquery-status bogus\nquery-name\n";
    const run = Bun.spawnSync(["sh", "-c", '"$0" -s "$1" batch 2>&1', QMPCTL, qemu.socket], {
      stdin: new TextEncoder().encode(input),
    });
    expect(run.stdout.toString().split("\n")).toEqual([
      NAME,
      '{"error":{"class":"CommandNotFound","desc":"The command no-such has not been found"}}',
      "qmpctl: line 2: CommandNotFound: The command no-such has not been found",
      NAME,
      `{"error":{"class":"ArgumentError","desc":"'bogus' is not KEY=VALUE"}}`,
      "qmpctl: line 4: ArgumentError: 'bogus' is not KEY=VALUE",
      NAME,
      "",
    ]);
    expect(run.exitCode).toBe(1);
  });

  test("quit, exit, help and events are lines for QEMU, not the shell's words: every line gets its result", async () => {
    const own = await startQemu();
    try {
      const { code, stdout, stderr } = await qmpctl(["-s", own.socket, "batch"], {
        stdin: "query-status\nexit\nhelp\nevents\nquery-status\nquit\n",
      });
      const lines = stdout.trimEnd().split("\n").map((line) => JSON.parse(line));
      expect(lines).toEqual([
        { return: { status: "running", singlestep: false, running: true } },
        { error: { class: "CommandNotFound", desc: "The command exit has not been found" } },
        { error: { class: "CommandNotFound", desc: "The command help has not been found" } },
        { error: { class: "CommandNotFound", desc: "The command events has not been found" } },
        { return: { status: "running", singlestep: false, running: true } },
        { return: {} },
      ]);
      expect(stderr).toBe(
        ["exit", "help", "events"].map((name, i) =>
          `qmpctl: line ${i + 2}: CommandNotFound: The command ${name} has not been found\n`
        ).join(""),
      );
      expect(code).toBe(1);
      expect(await own.process.exited).toBe(0); // QEMU quit
    } finally {
      await own.stop();
    }
  });

  test("lines QEMU's parser would refuse (too deep, a lone surrogate) are refused in their place; the others run", async () => {
    const deep = `{"execute": "query-status", "arguments": {"x": ${"[".repeat(1100)}${"]".repeat(1100)}}}`;
    const surrogate = String.raw`{"execute": "qom-get", "arguments": {"path": "/machine", "property": "\ud83d"}}`;
    const { code, stdout } = await qmpctl(["-s", qemu.socket, "batch"], {
      stdin: `query-name\n${deep}\n${surrogate}\nquery-name\n`,
    });
    expect(stdout.trimEnd().split("\n").map((line) => JSON.parse(line))).toEqual([
      { return: { name: "vm1" } },
      {
        error: {
          class: "ArgumentError",
          desc: "the line: QEMU's parser would refuse it: JSON nesting depth limit exceeded",
        },
      },
      {
        error: {
          class: "ArgumentError",
          desc: String
            .raw`qom-get: QEMU's parser would refuse it: JSON parse error, \ud83d is not a valid Unicode character`,
        },
      },
      { return: { name: "vm1" } },
    ]);
    expect(code).toBe(1);
  });

  test("a \\u0000 goes to QEMU, which takes it (as modified UTF-8) and answers with it", async () => {
    const nul = String.raw`{"execute": "qom-get", "arguments": {"path": "/machine", "property": "a\u0000b"}}`;
    const { code, stdout } = await qmpctl(["-s", qemu.socket, "batch"], { stdin: `${nul}\n` });
    const { error } = JSON.parse(stdout);
    expect(error.class).toBe("GenericError");
    expect(error.desc).toEndWith(".a\u0000b' not found"); // the NUL, as QEMU sends it back
    expect(code).toBe(1);
  });

  test("FILE: comments and blanks skipped, exit 0 when all returned; a missing FILE is a usage error", async () => {
    const file = join(dir, "setup.qmp");
    writeFileSync(file, "# a comment\n\nquery-name\r\n  \nquery-name");
    const { code, stdout, stderr } = await qmpctl(["-s", qemu.socket, "batch", file]);
    expect({ code, stdout, stderr }).toEqual({
      code: 0,
      stdout: '{"return":{"name":"vm1"}}\n{"return":{"name":"vm1"}}\n',
      stderr: "",
    });
    const missing = await qmpctl(["-s", qemu.socket, "batch", join(dir, "nope.qmp")]);
    expect(missing).toMatchObject({
      code: 2,
      stdout: "",
      stderr: `qmpctl: cannot read ${join(dir, "nope.qmp")}: no such file or directory (ENOENT)\n`,
    });
    // A file named as a directory (a trailing slash) is no file to read, as cat says; it was read as the file.
    expect(await qmpctl(["-s", qemu.socket, "batch", `${file}/`])).toMatchObject({
      code: 2,
      stdout: "",
      stderr: `qmpctl: cannot read ${file}/: not a directory (ENOTDIR)\n`,
    });
    // Told before connecting: a VM that is down does not hide it.
    expect(await qmpctl(["-s", join(dir, "down.qmp"), "batch", join(dir, "nope.qmp")])).toMatchObject({
      code: 2,
      stderr: `qmpctl: cannot read ${join(dir, "nope.qmp")}: no such file or directory (ENOENT)\n`,
    });
    // A FIFO nobody writes to: --timeout ends the wait, naming the file.
    const fifo = join(dir, "fifo.qmp");
    expect(Bun.spawnSync(["mkfifo", fifo]).exitCode).toBe(0);
    expect(await qmpctl(["-s", qemu.socket, "batch", fifo, "--timeout", "300ms"])).toMatchObject({
      code: 124,
      stdout: "",
      stderr: `qmpctl: timed out waiting for the next line of ${fifo} (--timeout 300ms)\n`,
    });
    // A character device is read like a file (Bun's file streams refuse one).
    expect(await qmpctl(["-s", qemu.socket, "batch", "/dev/null"])).toMatchObject({ code: 0, stdout: "", stderr: "" });
  });

  test("a transaction QEMU refuses is named by all its lines on stderr: its error does not say which action failed", async () => {
    const file = join(dir, "transaction.qmp");
    writeFileSync(
      file,
      [
        "blockdev-add driver=null-co node-name=tx0 size=1048576",
        ...Array(11).fill("# padding"),
        "transaction(", // line 13
        "block-dirty-bitmap-add node=tx0 name=b1",
        "block-dirty-bitmap-add node=nX name=b2",
        ")", // line 16: the transaction's one result line
        "transaction( block-dirty-bitmap-add node=nX name=b3 )", // all on line 17
        "transaction(",
        "block-dirty-bitmap-add node=tx0 name=b4 bogus=1", // refused here: named by its own line, and not sent
        ")",
        "blockdev-del node-name=tx0",
      ].join("\n") + "\n",
    );
    const { code, stdout, stderr } = await qmpctl(["-s", qemu.socket, "batch", file]);
    const nX = "Cannot find device='nX' nor node-name='nX'";
    expect(stdout.trimEnd().split("\n").map((line) => JSON.parse(line))).toEqual([
      { return: {} },
      { error: { class: "GenericError", desc: nX } },
      { error: { class: "GenericError", desc: nX } },
      { // one line for the transaction: its ) line names the line that made no action
        error: {
          class: "ArgumentError",
          desc: "block-dirty-bitmap-add: unknown argument 'bogus'; the transaction was not sent: 1 of its lines " +
            "made no action",
        },
      },
      { return: {} },
    ]);
    expect(stderr).toBe(
      `qmpctl: lines 13-16 (transaction): GenericError: ${nX}\n` +
        `qmpctl: line 17 (transaction): GenericError: ${nX}\n` +
        "qmpctl: line 20: ArgumentError: block-dirty-bitmap-add: unknown argument 'bogus'; the transaction was " +
        "not sent: 1 of its lines made no action\n",
    );
    expect(code).toBe(1);
  });
});

describe("qmpctl batch reading stdin when QEMU goes away", () => {
  /**
   * Batch on its own QEMU, stdin held open: `lines` written, the `answers` to them seen (-v logs them), then
   * QEMU killed while batch waits for the next line. Its exit status, stdout and last stderr line.
   */
  async function lostAfter(lines: string[], answers: number) {
    const own = await startQemu();
    try {
      let log = "";
      const answered = Promise.withResolvers<void>();
      const running = startQmpctl(["-v", "-s", own.socket, "batch"], {
        holdStdin: true,
        onStderr: (text) => {
          log += text;
          // Each line's answer, after qmp_capabilities' (which carries qmpctl's id).
          if (log.split("\n").filter((line) => line.startsWith('< {"return"')).length > answers) {
            answered.resolve();
          }
        },
      });
      const stdin = running.child.stdin as import("bun").FileSink;
      for (const line of lines) stdin.write(`${line}\n`);
      await stdin.flush();
      await Promise.race([answered.promise, running.result]);
      own.process.kill("SIGKILL");
      const result = await running.result;
      await Promise.resolve().then(() => stdin.end()).catch(() => {}); // held open till now: more could have come
      return { code: result.code, stdout: result.stdout, last: result.stderr.trimEnd().split("\n").at(-1) };
    } finally {
      await own.stop();
    }
  }

  test("after the answered lines: exit 3, saying the input after the last line read was not run", async () => {
    const result = await lostAfter(["query-status", "# a comment", "query-name"], 2);
    expect(result).toMatchObject({
      code: 3,
      stdout: '{"return":{"status":"running","singlestep":false,"running":true}}\n{"return":{}}\n',
      last: expect.stringMatching(
        /^qmpctl: connection lost: .* closed the connection \(any input after line 3 was not run\)$/,
      ),
    });
  });

  test("before any line came: exit 3, saying no input was run", async () => {
    const result = await lostAfter([], 0);
    expect(result).toMatchObject({
      code: 3,
      stdout: "",
      last: expect.stringMatching(/^qmpctl: connection lost: .* closed the connection \(no input was run\)$/),
    });
  });
});

describe("qmpctl batch against a scripted server", () => {
  test("commands are pipelined: all are sent before any reply comes", async () => {
    const count = 50;
    const server = fakeServer(async (connection) => {
      await connection.handshake();
      const requests = [];
      for (let i = 0; i < count; i++) requests.push(await connection.nextRequest()); // a lock-step client stalls here
      for (const [i, request] of requests.entries()) connection.reply(request, { n: i });
    });
    try {
      const { code, stdout } = await qmpctl(["-s", server.path, "batch", "--timeout", "5s"], {
        stdin: "query-status\n".repeat(count),
      });
      expect(stdout).toBe(Array.from({ length: count }, (_, i) => `{"return":{"n":${i}}}\n`).join(""));
      expect(code).toBe(0);
      // Sent without ids, answered in order: less for QEMU to parse.
      expect(server.requests.slice(1)).toEqual(Array.from({ length: count }, () => ({ execute: "query-status" })));
    } finally {
      server.stop();
    }
  });

  test("a connection lost while qmpctl reads QEMU's schema to type a line: stderr says that line was not sent", async () => {
    const file = join(dir, "schema-lost.qmp");
    for (
      const [lines, said] of [
        [
          "query-status a=1\nquery-name\n",
          " before the reply to query-target; no line was sent: qmpctl was reading QEMU's schema to type line 1" +
          " (any input after line 1 was not run)",
        ],
        [ // a transaction's line is typed too (untyped when no schema comes): the loss is seen as the next line is read
          "transaction(\nblock-dirty-bitmap-add node=n0 name=b0\n)\n",
          "; no line was sent: qmpctl was reading QEMU's schema to type line 2 (any input after line 2 was not run)",
        ],
        [
          "query-name\nquery-status a=1\n",
          " before the reply to query-name; no answer to line 1; line 2 was not sent: qmpctl was reading QEMU's schema" +
          " to type it (any input after line 2 was not run)",
        ],
      ]
    ) {
      const server = fakeServer(async (connection) => {
        await connection.handshake();
        while ((await connection.nextRequest()).execute !== "query-target");
        connection.send('{"return": {"arch": '); // half a reply, then the end
        connection.close();
      });
      writeFileSync(file, lines);
      try {
        const { code, stdout, stderr } = await qmpctl(["-s", server.path, "batch", file]);
        expect({ code, stdout, stderr }).toEqual({
          code: 3,
          stdout: "",
          stderr: `qmpctl: ${server.path} closed the connection in the middle of a message${said}\n`,
        });
      } finally {
        server.stop();
      }
    }
  });

  test("a connection lost half-way: the answered lines, then which got no answer; exit 3", async () => {
    const server = fakeServer(async (connection) => {
      await connection.handshake();
      for (let i = 0; i < 10; i++) connection.reply(await connection.nextRequest(), { n: i });
      connection.close();
    });
    try {
      const { code, stdout, stderr } = await qmpctl(["-s", server.path, "batch"], {
        stdin: "# thirty\n" + "query-status\n".repeat(30),
      });
      expect(stdout).toBe(Array.from({ length: 10 }, (_, i) => `{"return":{"n":${i}}}\n`).join(""));
      expect(stderr).toBe(
        `qmpctl: ${server.path} closed the connection before the reply to query-status; no answer to lines 12-31\n`,
      );
      expect(code).toBe(3);
    } finally {
      server.stop();
    }
  });
});

test(
  "with several targets, an input that never ends is refused past its bounds (exit 2), not read into memory for ever",
  async () => {
    const refused = (bound: string) => ({
      code: 2,
      stdout: "",
      stderr: "qmpctl: with several targets batch reads its input whole before it starts, and this one holds more " +
        `than ${bound}: run it on each VM in turn (or split it)\n`,
    });
    const targets = "-s /nonexistent/a.qmp -s /nonexistent/b.qmp";
    expect(await qmpctlInShell(`yes query-status | "$0" ${targets} batch`)).toEqual(refused("1048576 lines"));
    const long = "$(head -c 100000 /dev/zero | tr '\\0' x)"; // lines of 100 kB: the 64 MiB come first
    expect(await qmpctlInShell(`yes "${long}" | "$0" ${targets} batch`)).toEqual(refused("64 MiB"));
    // 64 MiB of UTF-8, not of characters: 90 MB of comment lines in a three-byte script (30 M characters).
    // SIGPIPE as yes(1) has it: refused, qmpctl closes the pipe, and the writer ends without a traceback.
    const cjk = `python3 -c 'import signal, sys; signal.signal(signal.SIGPIPE, signal.SIG_DFL); ` +
      `sys.stdout.write(("# " + "\u4e2d" * 1000 + "\\n") * 30000)'`;
    expect(await qmpctlInShell(`${cjk} | "$0" ${targets} batch`)).toEqual(refused("64 MiB"));
    // A million short lines (11 MB) are within both: read whole, then the targets are tried (and not there).
    const million = await qmpctlInShell(`yes query-name | head -1000000 | "$0" ${targets} batch`);
    expect(million.code).toBe(3);
    expect(million.stderr).not.toContain("reads its input whole");
  },
  60_000,
);

/**
 * A server that answers the first of three lines and never the other two;
 * `sent` resolves once all three have come.
 */
function answeringOnlyTheFirst(): { server: FakeServer; sent: Promise<void> } {
  const sent = Promise.withResolvers<void>();
  const server = fakeServer(async (connection) => {
    await connection.handshake();
    connection.reply(await connection.nextRequest(), { n: 0 });
    await connection.nextRequest();
    await connection.nextRequest();
    sent.resolve(); // the second and third are never answered
    await connection.closed;
  });
  return { server, sent: sent.promise };
}

describe("qmpctl batch interrupted", () => {
  test("Ctrl-C with lines sent and not answered: exit 130, naming them (QEMU may have run them)", async () => {
    const { server, sent } = answeringOnlyTheFirst();
    try {
      const running = startQmpctl(["-s", server.path, "batch"], { stdin: "query-status\n".repeat(3) });
      const result = await interrupt(running, sent);
      expect(result).toMatchObject({
        code: 130,
        stdout: '{"return":{"n":0}}\n',
        stderr: "qmpctl: interrupted; no answer to lines 2-3, which QEMU may have run\n",
      });
    } finally {
      server.stop();
    }
  });
});

describe("qmpctl batch ended by SIGTERM or SIGHUP", () => {
  test.each([["SIGTERM", 143], ["SIGHUP", 129]] as const)(
    "%s with lines sent and not answered: exit %d, naming them as Ctrl-C does",
    async (signal, code) => {
      const { server, sent } = answeringOnlyTheFirst();
      try {
        const running = startQmpctl(["-s", server.path, "batch"], { stdin: "query-status\n".repeat(3) });
        await sent; // its handler is set before it connects
        running.child.kill(signal);
        expect(await running.result).toMatchObject({
          code,
          stdout: '{"return":{"n":0}}\n',
          stderr: "qmpctl: interrupted; no answer to lines 2-3, which QEMU may have run\n",
        });
      } finally {
        server.stop();
      }
    },
  );
});

describe("qmpctl batch interrupted on several targets", () => {
  test.each([["SIGINT", 130], ["SIGTERM", 143]] as const)(
    "%s: each target under way names its own lines without an answer, labelled; exit %d",
    async (signal, code) => {
      const scripted = [answeringOnlyTheFirst(), answeringOnlyTheFirst()];
      const servers = scripted.map(({ server }) => server), waiting = scripted.map(({ sent }) => sent);
      try {
        // -v: the first line's answer is seen to have come (logged as read) before the signal.
        const answered = new Set<string>(), bothAnswered = Promise.withResolvers<void>();
        let log = "";
        const running = startQmpctl(["-v", "-s", servers[0].path, "-s", servers[1].path, "batch"], {
          stdin: "query-status\n".repeat(3),
          onStderr: (text) => {
            log += text;
            for (const [, socket] of log.matchAll(/^(.*): < \{"return":\{"n":0\}/gm)) answered.add(socket);
            if (answered.size === 2) bothAnswered.resolve();
          },
        });
        const ready = Promise.all([...waiting, bothAnswered.promise]);
        // A Ctrl-C once qmpctl handles it; SIGTERM's handler is set before it connects.
        const result = signal === "SIGINT"
          ? await interrupt(running, ready)
          : await ready.then(() => (running.child.kill(signal), running.result));
        expect(result.code).toBe(code);
        expect(result.stderr.split("\n").filter((line) => line.startsWith("qmpctl: ")).sort()).toEqual(
          servers.map((server) =>
            `qmpctl: ${server.path}: interrupted; no answer to lines 2-3, which QEMU may have run`
          ).sort(),
        );
      } finally {
        for (const server of servers) server.stop();
      }
    },
  );
});

describe("qmpctl batch with --timeout", () => {
  test("replies that do not come in time: exit 124, naming the lines without an answer", async () => {
    const server = fakeServer(async (connection) => {
      await connection.handshake();
      connection.reply(await connection.nextRequest(), { n: 0 });
      await connection.closed; // the second command is never answered
    });
    try {
      const { code, stdout, stderr } = await qmpctl(["-s", server.path, "batch", "--timeout", "1s"], {
        stdin: "query-status\nquery-status\n",
      });
      expect(stdout).toBe('{"return":{"n":0}}\n');
      expect(stderr).toBe(
        `qmpctl: timed out waiting for the replies to the lines sent to ${server.path}; no answer to line 2 ` +
          "(--timeout 1s)\n",
      );
      expect(code).toBe(124);
    } finally {
      server.stop();
    }
  });

  test("replies owed when the input is still open: the replies are named, not the next line of input", async () => {
    const server = fakeServer(async (connection) => {
      await connection.handshake();
      connection.reply(await connection.nextRequest(), { n: 0 });
      await connection.closed; // a stalled QEMU: the second command is never answered
    });
    try {
      // The input stays open (a producer still running): qmpctl awaits both its next line and QEMU's answer.
      const run = await qmpctlInShell(
        `(printf 'query-status\\nquery-status\\n'; sleep 2) | "$0" -s "$1" batch --timeout 500ms`,
        server.path,
      );
      expect(run).toEqual({
        code: 124,
        stdout: '{"return":{"n":0}}\n',
        stderr: `qmpctl: timed out waiting for the replies to the lines sent to ${server.path}; no answer to line 2 ` +
          "(any input after line 2 was not run) (--timeout 500ms)\n",
      });
    } finally {
      server.stop();
    }
  });

  test("several targets, an input that has not ended when --timeout runs out: a failure line for each target", async () => {
    const servers = [0, 1].map(() =>
      fakeServer(async (connection) => {
        await connection.handshake();
        for (;;) connection.reply(await connection.nextRequest(), {});
      })
    );
    try {
      const [a, b] = servers.map((server) => server.path);
      const run = await qmpctlInShell(`(echo query-name; sleep 3) | "$0" -s "$1" -s "$2" batch --timeout 500ms`, a, b);
      expect(run.code).toBe(124);
      const lines = run.stdout.trimEnd().split("\n").map((line) => JSON.parse(line));
      expect(lines.sort((x, y) => (x.socket < y.socket ? -1 : 1))).toEqual( // as [a, b].sort() orders them
        [a, b].sort().map((socket) => ({ socket, failure: "not tried: --timeout ran out before it was started" })),
      );
      expect(run.stderr.split("\n")[0]).toBe("qmpctl: timed out waiting for the input to end (--timeout 500ms)");
      expect(run.stderr.trimEnd().split("\n").slice(1).sort()).toEqual(
        [a, b].sort().map((socket) => `qmpctl: ${socket}: not tried: --timeout ran out before it was started`),
      );
    } finally {
      servers.forEach((server) => server.stop());
    }
  });

  test("QEMU not answering while qmpctl reads its schema to type a line: stderr says so, not stdin", async () => {
    const server = fakeServer(async (connection) => {
      await connection.handshake();
      await connection.closed; // a stopped QEMU: neither query-name nor query-target (the schema's) is answered
    });
    try {
      const { code, stdout, stderr } = await qmpctl(["-s", server.path, "batch", "--timeout", "1s"], {
        stdin: "query-name\nset_link name=x up=off\nquery-status\n", // all there, and ended
      });
      expect({ code, stdout, stderr }).toEqual({
        code: 124,
        stdout: "",
        stderr: `qmpctl: timed out waiting for an answer from ${server.path}; no answer to line 1; line 2 was not ` +
          "sent: qmpctl was reading QEMU's schema to type it (any input after line 2 was not run) (--timeout 1s)\n",
      });
    } finally {
      server.stop();
    }
  });
});

describe("readLines", () => {
  test("yields lines as written, CRLF made LF, and an over-long line as BadLine in its place", async () => {
    const file = join(dir, "lines.txt");
    writeFileSync(file, "short\r\n" + "x".repeat(50) + "\nafter\nlast");
    const got = [];
    for await (const line of readLines(file, 10)) got.push(line);
    expect(got).toEqual(["short", new BadLine("the line is 50 bytes long, over 10"), "after", "last"]);
  });

  test("a line that is not UTF-8 is a BadLine showing its bytes; a real U+FFFD and split characters pass", async () => {
    const file = join(dir, "utf8.txt");
    const bytes = (...parts: (string | number[])[]) =>
      Buffer.concat(parts.map((p) => typeof p === "string" ? Buffer.from(p) : Buffer.from(p)));
    writeFileSync(file, bytes("data=caf", [0xe9], "\n", "ok \uFFFD é\n", "last ", [0xff]));
    const got = [];
    for await (const line of readLines(file, 100)) got.push(line);
    expect(got).toEqual([
      new BadLine("the line is not UTF-8: 'data=caf\\xe9'"),
      "ok \uFFFD é",
      new BadLine("the line is not UTF-8: 'last \\xff'"),
    ]);
  });
});
