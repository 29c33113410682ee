/** The qmpctl binary against a scripted fake QMP server: the faults QEMU will not produce on demand. */
import { describe, expect, test } from "bun:test";
import { QMPCTL, qmpctl } from "./helpers/cli.ts";
import { type FakeConnection, type FakeServer, fakeServers, QEMU_GREETING } from "./helpers/fake_server.ts";
import { startTerminal } from "./helpers/terminal.ts";

const serve = fakeServers();

/** Handshake, then answer the one command with `answer(request)`. */
function answering(answer: (c: FakeConnection, request: Record<string, unknown>) => Promise<void> | void) {
  return serve(async (c) => {
    await c.handshake();
    await answer(c, await c.nextRequest());
  });
}

const exec = (server: FakeServer, ...args: string[]) => qmpctl(["-s", server.path, "exec", ...args]);

describe("the greeting and negotiation", () => {
  // QEMU answers a command that was still running when its client left (cut short by --timeout or Ctrl-C) on
  // the monitor's next connection, before that client's qmp_capabilities.
  test("a reply to an earlier client's command, before qmp_capabilities is answered, is not taken for ours", async () => {
    // An earlier run, whose ids (the process's own) the next one's could be if they were alike from run to run.
    const earlierRun = answering((c, request) => c.reply(request, {}));
    expect(await exec(earlierRun, "query-status")).toMatchObject({ code: 0 });
    const earlierIds = earlierRun.requests.map((r) => r.id);
    // The earlier run's: with its ids, the id qmpctl-2 had for the command before ids were the process's own, or
    // none (batch and the piped shell send none); a result or an error.
    const earlier = [
      ...[...earlierIds, "qmpctl-2"].map((id) => ({ return: "", id })),
      { return: "" },
      { error: { class: "GenericError", desc: "dump cut short" } },
    ];
    for (const args of [["query-status"], ["human-monitor-command", "--args", '{"command-line":"info status"}']]) {
      for (const withGreeting of [true, false]) { // in the greeting's own read, or once qmp_capabilities came
        const server = serve(async (c) => {
          c.send([QEMU_GREETING, ...(withGreeting ? earlier : [])].map((m) => JSON.stringify(m) + "\r\n").join(""));
          const capabilities = await c.nextRequest();
          if (!withGreeting) { for (const message of earlier) c.sendJson(message); }
          c.reply(capabilities, {});
          for (;;) {
            const request = await c.nextRequest();
            c.reply(request, request.execute === "query-status" ? { status: "paused" } : "ours");
          }
        });
        const result = await exec(server, ...args);
        expect(result).toMatchObject({ code: 0, stderr: "" });
        expect(result.stdout).toBe(args[0] === "query-status" ? '{"status":"paused"}\n' : '"ours"\n');
        // Our ids are the earlier run's but for the process's tag: without it, its reply would carry our command's.
        const withoutTag = (ids: unknown[]) => ids.map((id) => (id as string).replace(/^qmpctl-[0-9a-z]+-/, "qmpctl-"));
        expect(withoutTag(server.requests.map((r) => r.id))).toEqual(withoutTag(earlierIds));
        expect(server.requests[1].id).not.toBe(earlierIds[1]);
      }
    }
  });

  test("a peer that answers the pipelined command before qmp_capabilities is served: the reply printed", async () => {
    const server = serve(async (c) => {
      c.sendJson(QEMU_GREETING);
      const [capabilities, command] = [await c.nextRequest(), await c.nextRequest()];
      c.reply(command, { arch: "x86_64" });
      c.reply(capabilities, {});
    });
    const result = await qmpctl(["-s", server.path, "--timeout", "5s", "exec", "query-target"]);
    expect(result).toMatchObject({ code: 0, stdout: '{"arch":"x86_64"}\n', stderr: "" });
  });

  test("no greeting: exit 3 within --connect-timeout, saying another client may hold the monitor", async () => {
    const server = serve(() => {});
    const result = await qmpctl(["-s", server.path, "--connect-timeout", "500ms", "exec", "query-status"]);
    expect(result).toMatchObject({
      code: 3,
      stdout: "",
      stderr:
        `qmpctl: no QMP greeting from ${server.path} within 500ms: another client may hold the monitor (QEMU serves one client at a time), QEMU may be stopped or hung, or it is no QMP monitor (a guest agent's socket: use qmpctl ga)\n`,
    });
    expect(result.ms).toBeLessThan(5000);
    expect(server.requests).toEqual([]);
  });

  test("a garbage greeting: exit 3 with one line naming the address and quoting what came, nothing sent", async () => {
    const server = serve((c) => c.send("220 smtp.example.org ESMTP\r\n"));
    expect(await exec(server, "query-status")).toMatchObject({
      code: 3,
      stdout: "",
      stderr: `qmpctl: ${server.path} is not a QMP server: it sent "220 smtp.example.org ESMTP"\n`,
    });
    expect(server.requests).toEqual([]);
  });

  test("a JSON greeting that is not QMP's: exit 3 naming the address", async () => {
    const server = serve((c) => c.sendJson({ hello: 1 }));
    const result = await exec(server, "query-status");
    expect(result).toMatchObject({
      code: 3,
      stdout: "",
      stderr: `qmpctl: ${server.path} did not send a QMP greeting: {"hello":1}\n`,
    });
  });

  test("a QMP greeting without its version: exit 3, saying that is what is missing", async () => {
    const server = serve((c) => c.sendJson({ QMP: {} }));
    expect(await exec(server, "query-status")).toMatchObject({
      code: 3,
      stdout: "",
      stderr: `qmpctl: ${server.path} sent a QMP greeting without its version: {"QMP":{}}\n`,
    });
  });

  // v0.1's (`"qemu": "0.12.50"`), and an older server's plain string
  for (const version of [{ qemu: "0.12.50", package: "" }, "0.12.5"]) {
    test(`an old greeting works (version ${JSON.stringify(version)}), and oob is not asked for`, async () => {
      const server = serve(async (c) => {
        await c.handshake({ QMP: { version, capabilities: [] } });
        c.reply(await c.nextRequest(), { status: "running", running: true });
      });
      expect(await exec(server, "query-status")).toMatchObject({
        code: 0,
        stdout: '{"status":"running","running":true}\n',
        stderr: "",
      });
      expect(server.requests[0]).toEqual({ execute: "qmp_capabilities", id: expect.anything() });
    });
  }

  test("a greeting cut short: exit 3 within --connect-timeout, saying how much came (no busy-monitor hint)", async () => {
    const server = serve((c) => c.send(JSON.stringify(QEMU_GREETING).slice(0, 20))); // then nothing
    const result = await qmpctl(["-s", server.path, "exec", "query-status", "--connect-timeout", "1"]);
    expect(result).toMatchObject({
      code: 3,
      stdout: "",
      stderr: `qmpctl: no whole QMP greeting from ${server.path} within 1s: it had sent 20 bytes of it\n`,
    });
    expect(result.ms).toBeLessThan(5000);
    expect(server.requests).toEqual([]);
    // --timeout (exit 124) says the same of it
    expect(await qmpctl(["-s", server.path, "exec", "query-status", "--timeout", "300ms"])).toMatchObject({
      code: 124,
      stderr:
        `qmpctl: timed out waiting for the whole QMP greeting from ${server.path}: it had sent 20 bytes of it (--timeout 300ms)\n`,
    });
  });

  test("a close after the greeting, before negotiation is answered: exit 3, saying so", async () => {
    const server = serve(async (c) => {
      c.sendJson(QEMU_GREETING);
      await c.nextRequest();
      c.close();
    });
    expect(await exec(server, "query-status")).toMatchObject({
      code: 3,
      stdout: "",
      stderr:
        `qmpctl: ${server.path} closed the connection during capabilities negotiation before the reply to qmp_capabilities\n`,
    });
  });

  test("--timeout while qmp_capabilities goes unanswered: the message names it, not the command behind it", async () => {
    const server = serve(async (c) => {
      c.sendJson(QEMU_GREETING);
      await c.closed; // never answers
    });
    expect(await exec(server, "query-status", "--timeout", "500ms")).toMatchObject({
      code: 124,
      stdout: "",
      stderr: `qmpctl: timed out waiting for the answer to qmp_capabilities from ${server.path} ` +
        "(query-status was sent behind it: QEMU may run it) (--timeout 500ms)\n",
    });
  });

  test("--timeout while QEMU does not answer the schema query: the message says qmpctl sent it, and why", async () => {
    const server = serve(async (c) => {
      await c.handshake();
      await c.closed; // answers nothing more
    });
    expect(await exec(server, "set_link", "name=x", "up=false", "--timeout", "500ms")).toMatchObject({
      code: 124,
      stdout: "",
      stderr: `qmpctl: timed out waiting for the reply to query-target from ${server.path} (sent by qmpctl to read ` +
        "QEMU's schema) (--timeout 500ms)\n",
    });
  });

  test("a close right after the greeting: exit 3 with one line naming the address", async () => {
    // Under Bun, a UNIX peer that closes before the client's connect has run
    // may be reported as ECONNRESET by Bun.connect, the greeting unread: for
    // qmpctl the server then closed before its greeting.
    const server = serve((c) => {
      c.sendJson(QEMU_GREETING);
      c.close();
    });
    const result = await exec(server, "query-status");
    expect(result).toMatchObject({ code: 3, stdout: "" });
    expect(result.stderr).toMatch(
      new RegExp(
        `^qmpctl: (${server.path} closed the connection during capabilities negotiation before the reply to qmp_capabilities|${server.path} closed the connection before its QMP greeting)\n$`,
      ),
    );
  });

  test("negotiation refused: exit 3 with QEMU's reason", async () => {
    const server = serve(async (c) => {
      c.sendJson(QEMU_GREETING);
      const request = await c.nextRequest();
      c.sendJson({
        error: { class: "CommandNotFound", desc: "Capabilities negotiation is already complete" },
        id: request.id,
      });
    });
    expect(await exec(server, "query-status")).toMatchObject({
      code: 3,
      stdout: "",
      stderr:
        `qmpctl: ${server.path} refused qmp_capabilities: CommandNotFound: Capabilities negotiation is already complete\n`,
    });
    // The command went out behind qmp_capabilities; QEMU refuses every command until negotiation succeeds.
    expect(server.requests.map((r) => r.execute)).toEqual(["qmp_capabilities", "query-status"]);
  });

  test.each([
    [["exec", "query-status"], '{"status":"running"}\n'],
    [["hmp", "info", "status"], "VM status: running\n"],
  ])(
    "%p: the command goes out behind qmp_capabilities, before its answer (one round trip fewer)",
    async (args, out) => {
      const server = serve(async (c) => {
        c.sendJson(QEMU_GREETING);
        const negotiate = await c.nextRequest();
        const request = await c.nextRequest(); // a client that waited for the answer would never send this
        c.reply(negotiate, {});
        c.reply(
          request,
          request.execute === "human-monitor-command" ? "VM status: running\r\n" : { status: "running" },
        );
      });
      const result = await qmpctl(["-s", server.path, "--timeout", "5s", ...args]);
      expect(result).toMatchObject({ code: 0, stdout: out, stderr: "" });
    },
  );

  test("hmp: a reply that is no text (QEMU's always is) breaks the protocol: exit 3, naming the address", async () => {
    for (const value of [{ a: 1 }, null, ["a\r\n", "b"]]) {
      const server = serve(async (c) => {
        await c.handshake();
        c.reply(await c.nextRequest(), value);
      });
      expect(await qmpctl(["-s", server.path, "hmp", "info status"])).toMatchObject({
        code: 3,
        stdout: "",
        stderr: `qmpctl: ${server.path}: received ${JSON.stringify(value)} as the human monitor's text\n`,
      });
    }
  });

  test("no answer to qmp_capabilities: exit 3 within --connect-timeout, although the command was sent", async () => {
    const server = serve(async (c) => {
      c.sendJson(QEMU_GREETING);
      await c.nextRequest();
    });
    const result = await qmpctl(["-s", server.path, "--connect-timeout", "500ms", "exec", "query-status"]);
    expect(result).toMatchObject({
      code: 3,
      stdout: "",
      stderr: `qmpctl: no answer to qmp_capabilities from ${server.path} within 500ms\n`,
    });
    expect(server.requests.map((r) => r.execute)).toEqual(["qmp_capabilities", "query-status"]);
  });
});

describe("replies", () => {
  test("a close in the middle of the reply: exit 3, saying the connection was lost mid-message", async () => {
    const server = answering((c) => {
      c.send('{"return": {"status": "run');
      c.close();
    });
    expect(await exec(server, "query-status")).toMatchObject({
      code: 3,
      stdout: "",
      stderr:
        `qmpctl: ${server.path} closed the connection in the middle of a message before the reply to query-status\n`,
    });
  });

  test("an error reply QMP does not allow is the peer's fault, exit 3, not QEMU's refusal (1): even with --raw", async () => {
    const replies: [Record<string, unknown>, string][] = [
      [{ error: "boom" }, 'an error that is not {"class": ..., "desc": ...}: {"error":"boom","id":'],
      [{ error: { class: "GenericError" } }, 'an error that is not {"class": ..., "desc": ...}: {"error":{'],
      [{ return: 1, error: { class: "X", desc: "y" } }, 'both return and error: {"return":1,"error":{'],
    ];
    for (const [reply, said] of replies) {
      for (const raw of [[], ["--raw"]]) {
        const server = answering((c, request) => c.sendJson({ ...reply, id: request.id }));
        const result = await exec(server, "foo", ...raw);
        expect(result).toMatchObject({ code: 3, stdout: "" });
        expect(result.stderr).toStartWith(`qmpctl: ${server.path}: received a reply with ${said}`);
      }
    }
  });

  test("a 20 MB reply is printed whole, byte for byte", async () => {
    const value = Array.from({ length: 200_000 }, (_, i) => ({ i, name: `node-${i}-é😀`, pad: "x".repeat(60) }));
    const expected = JSON.stringify(value) + "\n";
    expect(expected.length).toBeGreaterThan(20_000_000);
    const server = answering((c, request) => c.reply(request, value));
    const result = await exec(server, "query-named-block-nodes");
    expect(result.code).toBe(0);
    expect(result.stderr).toBe("");
    expect(result.stdout.length).toBe(expected.length);
    expect(result.stdout === expected).toBe(true);
  });

  test("a 2 MB hmp text is printed byte for byte, CRLF made LF, nothing added", async () => {
    const line = "0x0000000000000000-0x0000000000001000 0x0000000000001000 -rw é\r\n";
    const text = line.repeat(2_000_000 / line.length) + "\r\nlast line without newline";
    const server = answering((c, request) => c.reply(request, text));
    const result = await qmpctl(["-s", server.path, "hmp", "info mem"]);
    expect(result).toMatchObject({ code: 0, stderr: "" });
    expect(result.stdout === text.replaceAll("\r\n", "\n")).toBe(true);
    expect(server.requests[1]).toMatchObject({
      execute: "human-monitor-command",
      arguments: { "command-line": "info mem" },
    });
  });

  test("hmp text with escape sequences: as it is into a pipe, shown escaped on a terminal (not obeyed)", async () => {
    // A hostile QEMU's text: red, a window title, the clipboard (OSC 52), a clear screen; a CR alone too.
    const text = "before \x1b[31mred\x1b[0m \x1b]2;title\x07 \x1b]52;c;cHduZWQ=\x07 \x1b[2J\rafter\r\n\tnext line\r\n";
    const piped = serve(async (c) => {
      await c.handshake();
      c.reply(await c.nextRequest(), text);
    });
    expect(await qmpctl(["-s", piped.path, "hmp", "info x"])).toMatchObject({
      code: 0,
      stdout: text.replaceAll("\r\n", "\n"),
      stderr: "",
    });
    const server = serve(async (c) => {
      await c.handshake();
      c.reply(await c.nextRequest(), text);
    });
    const terminal = await startTerminal([QMPCTL, "-s", server.path, "hmp", "info x"], { columns: 120 });
    try {
      expect(await terminal.exitStatus()).toBe(0);
      expect(await terminal.screen()).toEqual([
        "before \\x1b[31mred\\x1b[0m \\x1b]2;title\\x07 \\x1b]52;c;cHduZWQ=\\x07 \\x1b[2J\\rafter",
        "        next line",
      ]);
    } finally {
      await terminal.close();
    }
  });

  test("a slow reply with --timeout: exit 124 well before the reply, stderr naming what was awaited", async () => {
    const server = answering(async (c, request) => {
      await Bun.sleep(5000);
      c.reply(request, {});
    });
    const result = await qmpctl(["-s", server.path, "--timeout", "500ms", "exec", "query-status"]);
    expect(result).toMatchObject({
      code: 124,
      stdout: "",
      stderr: `qmpctl: timed out waiting for the reply to query-status from ${server.path} (--timeout 500ms)\n`,
    });
    expect(result.ms).toBeLessThan(4000);
  });

  test("a slow reply without --timeout: qmpctl waits and succeeds", async () => {
    const server = answering(async (c, request) => {
      await Bun.sleep(1500);
      c.reply(request, { slow: true });
    });
    const result = await exec(server, "query-status");
    expect(result).toMatchObject({ code: 0, stdout: '{"slow":true}\n', stderr: "" });
    expect(result.ms).toBeGreaterThanOrEqual(1400);
  });

  test("5000 events before the reply: only the reply is printed", async () => {
    const server = answering((c, request) => {
      let text = "";
      for (let i = 0; i < 5000; i++) {
        text += JSON.stringify({ event: "BLOCK_JOB_READY", data: { i }, timestamp: { seconds: i, microseconds: 0 } });
        text += "\r\n";
      }
      c.send(text);
      c.reply(request, { done: 1 });
    });
    expect(await exec(server, "query-status")).toMatchObject({ code: 0, stdout: '{"done":1}\n', stderr: "" });
  });

  test("a reply without an id: exit 3, a protocol error", async () => {
    const server = answering((c) => c.sendJson({ return: {} }));
    expect(await exec(server, "query-status")).toMatchObject({
      code: 3,
      stdout: "",
      stderr: `qmpctl: ${server.path}: received a reply without an id: {"return":{}}\n`,
    });
  });

  for (const raw of [false, true]) {
    test(`an error without an id: exit 1, as QEMU's error, with its class and description${raw ? "; --raw prints it" : ""}`, async () => {
      const error = { class: "GenericError", desc: "JSON parse error, stray '}'" };
      const server = answering((c) => c.sendJson({ error }));
      expect(await exec(server, "query-status", ...(raw ? ["--raw"] : []))).toMatchObject({
        code: 1,
        stdout: raw ? JSON.stringify({ error }) + "\n" : "",
        stderr:
          `qmpctl: ${server.path} could not parse a request (an error without an id): GenericError: ${error.desc}\n`,
      });
    });
  }

  test("an error reply: exit 1; with --raw the whole error object on stdout, without qmpctl's id", async () => {
    const error = { class: "DeviceNotFound", desc: "Device 'nope' not found", data: {} };
    const server = serve(async (c) => {
      for (let i = 0; i < 2; i++) {
        await c.handshake();
        c.sendJson({ error, id: (await c.nextRequest()).id });
        await c.closed;
      }
    });
    expect(await exec(server, "eject", "--args", '{"device": "nope"}')).toMatchObject({
      code: 1,
      stdout: "",
      stderr: "qmpctl: DeviceNotFound: Device 'nope' not found\n",
    });
    expect(await exec(server, "eject", "--args", '{"device": "nope"}', "--raw")).toMatchObject({
      code: 1,
      stdout: JSON.stringify({ error }) + "\n",
      stderr: "qmpctl: DeviceNotFound: Device 'nope' not found\n",
    });
  });

  test("a reply with a wrong id first: it is dropped and the right one printed (qmp-spec: unknown ids are dropped)", async () => {
    const server = answering((c, request) => {
      c.sendJson({ return: "wrong", id: "someone-else" });
      c.reply(request, "right");
    });
    expect(await exec(server, "query-status")).toMatchObject({ code: 0, stdout: '"right"\n', stderr: "" });
  });

  test("--raw prints every member of a reply but the id, in QEMU's order, numbers exact", async () => {
    const server = answering((c, request) => {
      c.send(`{"return": {"a": 1}, "id": ${JSON.stringify(request.id)}, "extra": 5, "big": 18446744073709551615}\r\n`);
    });
    expect(await exec(server, "x", "--raw")).toMatchObject({
      code: 0,
      stdout: '{"return":{"a":1},"extra":5,"big":18446744073709551615}\n',
      stderr: "",
    });
  });

  test("--raw keeps members QEMU puts before the return too, in its order", async () => {
    const server = answering((c, request) => {
      c.send(`{"extra": ["x"], "id": ${JSON.stringify(request.id)}, "return": {}}\r\n`);
    });
    expect(await exec(server, "x", "--raw", "--pretty")).toMatchObject({
      code: 0,
      stdout: '{\n  "extra": [\n    "x"\n  ],\n  "return": {}\n}\n',
      stderr: "",
    });
  });

  test("one byte per write, for the greeting and every reply", async () => {
    const server = serve(async (c) => {
      await c.sendSlowly(JSON.stringify(QEMU_GREETING) + "\r\n");
      const negotiate = await c.nextRequest();
      await c.sendSlowly(JSON.stringify({ return: {}, id: negotiate.id }) + "\r\n");
      const request = await c.nextRequest();
      await c.sendSlowly(JSON.stringify({ return: { name: "vm-é😀" }, id: request.id }) + "\r\n");
    });
    expect(await exec(server, "query-name")).toMatchObject({ code: 0, stdout: '{"name":"vm-é😀"}\n', stderr: "" });
  });

  test("invalid UTF-8 in a reply is printed as U+FFFD", async () => {
    const server = answering((c, request) => {
      const encoder = new TextEncoder();
      c.send(
        new Uint8Array([
          ...encoder.encode('{"return": {"name": "a'),
          0xc3,
          0x28,
          0xff,
          ...encoder.encode(`b"}, "id": ${JSON.stringify(request.id)}}\r\n`),
        ]),
      );
    });
    expect(await exec(server, "query-name")).toMatchObject({
      code: 0,
      stdout: '{"name":"a\uFFFD(\uFFFDb"}\n',
      stderr: "",
    });
  });

  test("CRLF line ends and pretty=on replies over many lines", async () => {
    const server = answering((c, request) => {
      c.send(JSON.stringify({ return: { a: [1, "}\r\n"] }, id: request.id }, null, 4).replaceAll("\n", "\r\n"));
      c.send("\r\n");
    });
    expect(await exec(server, "x", "--pretty")).toMatchObject({
      code: 0,
      stdout: '{\n  "a": [\n    1,\n    "}\\r\\n"\n  ]\n}\n',
      stderr: "",
    });
  });

  test("a reply over the 64 MiB limit: exit 3, nothing printed", async () => {
    const server = answering((c, request) => c.reply(request, "x".repeat(64 * 1024 * 1024)));
    const result = await exec(server, "query-status");
    expect(result).toMatchObject({
      code: 3,
      stdout: "",
      stderr: `qmpctl: ${server.path}: a message exceeded the limit of 67108864 bytes\n`,
    });
  }, 20_000);

  test("-v logs every message sent and received on stderr, one line each, marked with its direction", async () => {
    const server = answering((c, request) => c.reply(request, { ok: true }));
    const result = await qmpctl(["-s", server.path, "-v", "exec", "query-status"]);
    expect(result).toMatchObject({ code: 0, stdout: '{"ok":true}\n' });
    const [negotiate, request] = server.requests;
    expect(result.stderr).toBe(
      [
        `< ${JSON.stringify(QEMU_GREETING)}`,
        `> ${JSON.stringify(negotiate)}`,
        `> ${JSON.stringify(request)}`, // sent behind qmp_capabilities, before its answer
        `< ${JSON.stringify({ return: {}, id: negotiate.id })}`,
        `< ${JSON.stringify({ return: { ok: true }, id: request.id })}`,
        "",
      ].join("\n"),
    );
  });

  test("bidirectional controls in a reply (U+202E and the like) are JSON escapes on stdout: shown in order", async () => {
    const text = "a\u202eb\u2066c\u2069d\u200fe\u061cf\u202ag";
    const short = answering((c, request) => c.reply(request, { text }));
    expect(await exec(short, "query-x")).toMatchObject({
      code: 0,
      stdout: '{"text":"a\\u202eb\\u2066c\\u2069d\\u200fe\\u061cf\\u202ag"}\n',
    });
    const long = answering((c, request) => c.reply(request, { text, pad: "x".repeat(5000) })); // the regex path
    const { stdout } = await exec(long, "query-x");
    expect(stdout).toStartWith('{"text":"a\\u202eb\\u2066c\\u2069d\\u200fe\\u061cf\\u202ag","pad":"xxx');
    expect(JSON.parse(stdout).text).toBe(text);
  });

  test("-v: DEL, C1 controls and U+2028/U+2029 in a message logged as JSON escapes, so each line is still JSON", async () => {
    const server = answering((c, request) => c.reply(request, { text: "a\u007fb\u0085c\u009b\u2028d\u2029" }));
    const args = JSON.stringify({ name: "x\u007f\u0080", up: false }); // --args is sent as given: no schema
    const result = await qmpctl(["-s", server.path, "-v", "exec", "set_link", "--args", args]);
    // The line separators are line breaks to some readers of NDJSON (Python's splitlines): escaped on stdout too.
    expect(result).toMatchObject({ code: 0, stdout: '{"text":"a\\u007fb\\u0085c\\u009b\\u2028d\\u2029"}\n' });
    const logged = result.stderr.trimEnd().split("\n").map((line) => JSON.parse(line.slice(2)));
    expect(logged[2]).toMatchObject({ execute: "set_link", arguments: { name: "x\u007f\u0080", up: false } });
    expect(logged[4]).toMatchObject({ return: { text: "a\u007fb\u0085c\u009b\u2028d\u2029" } });
    expect(result.stderr).toContain('"name":"x\\u007f\\u0080"');
  });
});

describe("arguments reach the server as built", () => {
  /** Answers every command with {}, and query-qmp-schema as a server without it (before QEMU 2.5) does. */
  function schemaless() {
    return serve(async (c) => {
      await c.handshake({
        QMP: { version: { qemu: { major: 2, minor: 4, micro: 0 }, package: "" }, capabilities: [] },
      });
      for (;;) {
        const request = await c.nextRequest();
        if (request.execute !== "query-qmp-schema") c.reply(request, {});
        else {c.sendJson({
            error: { class: "CommandNotFound", desc: "The command query-qmp-schema has not been found" },
            id: request.id,
          });}
      }
    });
  }
  const sent = (server: FakeServer) => server.requests.filter((r) => r.execute !== "query-qmp-schema").at(-1);

  test("commands and describe on a QEMU without a schema say so, not only QEMU's CommandNotFound", async () => {
    const server = schemaless();
    for (const words of [["commands"], ["describe", "set_link"]]) {
      expect(await qmpctl(["-s", server.path, ...words])).toMatchObject({
        code: 1,
        stdout: "",
        stderr: "qmpctl: CommandNotFound: The command query-qmp-schema has not been found (qmpctl asked for " +
          "QEMU's schema: QEMU 2.4.0 has none; it came in QEMU 2.5)\n",
      });
    }
  });

  test("KEY=VALUE words merged over --args; without a schema a value is JSON, else a string", async () => {
    const server = schemaless();
    const words = ["blockdev-add", "--args", '{"driver": "file", "read-only": false, "cache": {"direct": true}}'];
    const result = await exec(server, ...words, "node-name=n0", "read-only=true", "cache.no-flush=false", "size:=4096");
    expect(result).toMatchObject({ code: 0, stdout: "{}\n", stderr: "" });
    expect(sent(server)).toMatchObject({
      execute: "blockdev-add",
      arguments: {
        driver: "file",
        "read-only": true,
        cache: { direct: true, "no-flush": false },
        "node-name": "n0",
        size: 4096,
      },
    });
  });

  test("without a schema, numbered dotted keys make an array, as exec --help says (KEY.0=a KEY.1=b)", async () => {
    const server = schemaless();
    const result = await exec(server, "x-blockdev-change", "children.0=a", "children.1=b", "raw.0:=1");
    expect(result).toMatchObject({ code: 0, stdout: "{}\n", stderr: "" });
    expect(sent(server)).toEqual(expect.objectContaining({ arguments: { children: ["a", "b"], raw: [1] } }));
  });

  test("--args - reads the object from stdin, taken as typed ('0010' stays a string)", async () => {
    const server = schemaless();
    const piped = await qmpctl(["-s", server.path, "exec", "eject", "--args", "-", "force:=true"], {
      stdin: '{"id": "0010"}',
    });
    expect(piped).toMatchObject({ code: 0, stdout: "{}\n", stderr: "" });
    expect(sent(server)).toMatchObject({ execute: "eject", arguments: { id: "0010", force: true } });
  });

  test.each([
    [["exec", "x", "noequals"], "qmpctl: 'noequals' is not KEY=VALUE\n"],
    [["exec", "x", "a.=1"], "qmpctl: 'a.=1' has an empty part in its key\n"],
    [["exec", "x", "a.b=2", "a=1"], "qmpctl: 'a=1' sets a to a value, but 'a.b=2' put keys inside it\n"],
    [["exec", "x", "--args", "{}", "--args", "{}"], "qmpctl: --args given twice\n"],
    [["--connect-timeout", "1y", "exec", "x"], expect.stringMatching(/^qmpctl: --connect-timeout '1y' is not/)],
  ])("%p is a usage error and nothing is sent", async (args, stderr) => {
    const server = serve((c) => c.handshake());
    expect(await qmpctl(["-s", server.path, ...args])).toMatchObject({ code: 2, stdout: "", stderr });
    expect(server.connections).toBe(0);
    expect(server.requests).toEqual([]);
  });
});
