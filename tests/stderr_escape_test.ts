/** Every stderr line is one line, and no server or user text reaches the terminal as a control sequence. */
import { expect, test } from "bun:test";
import { escapeControls } from "../cli/controls.ts";
import { QMPCTL, qmpctl } from "./helpers/cli.ts";
import { fakeServers } from "./helpers/fake_server.ts";

const serve = fakeServers();

test("a QEMU error desc with a newline and an ANSI escape stays on one escaped line", async () => {
  const server = serve(async (c) => {
    await c.handshake();
    const request = await c.nextRequest();
    c.sendJson({
      error: { class: "GenericError", desc: "line one\nqmpctl: forged\r\u001b[31mred\u0007\u009b2J\u007f" },
      id: request.id,
    });
  });
  const result = await qmpctl(["-s", server.path, "exec", "query-status"]);
  expect(result).toMatchObject({
    code: 1,
    stdout: "",
    stderr: "qmpctl: GenericError: line one\\nqmpctl: forged\\r\\x1b[31mred\\x07\\x9b2J\\x7f\n",
  });
});

test("a QEMU error desc cannot reorder or break the line it is shown in: bidi controls and separators escaped", async () => {
  // U+202E shows what follows right to left ("exe.txt" reads "txt.exe"); U+2028 breaks a line for some viewers.
  const desc = "file \u202etxt.exe\u202c, next\u2028line, \u2066isolated\u2069, para\u2029graph, \u200f\u061c\u200e";
  const server = serve(async (c) => {
    await c.handshake();
    const request = await c.nextRequest();
    c.sendJson({ error: { class: "GenericError", desc }, id: request.id });
  });
  const result = await qmpctl(["-s", server.path, "exec", "query-status"]);
  expect(result).toMatchObject({
    code: 1,
    stdout: "",
    stderr:
      "qmpctl: GenericError: file \\u202etxt.exe\\u202c, next\\u2028line, \\u2066isolated\\u2069, para\\u2029graph, " +
      "\\u200f\\u061c\\u200e\n",
  });
  expect(escapeControls("d\u00e9j\u00e0 vu \u05e9\u05dc\u05d5\u05dd")).toBe(
    "d\u00e9j\u00e0 vu \u05e9\u05dc\u05d5\u05dd",
  ); // letters stay
});

test("a user word with a newline and an escape is escaped in the usage error", async () => {
  const result = await qmpctl(["no\nsuch\u001b[2Jcommand"]);
  expect(result.code).toBe(2);
  expect(result.stderr).toStartWith("qmpctl: unknown command 'no\\nsuch\\x1b[2Jcommand'");
  expect(result.stderr.split("\n")).toHaveLength(2);
  expect(result.stderr).not.toContain("\u001b");
});

test("JSON on stdout writes DEL and the C1 controls as escapes too (JSON.stringify leaves them raw), --pretty too", async () => {
  // U+009B is CSI for terminals that obey C1 controls: raw, it would clear the screen.
  const name = "vm\u009b2J\u0085\u007f\u001b[2J";
  const server = serve(async (c) => {
    await c.handshake();
    for (;;) c.reply(await c.nextRequest(), { name });
  });
  for (const pretty of [[], ["--pretty"]]) {
    const result = await qmpctl(["-s", server.path, "exec", "query-name", ...pretty]);
    expect(result.code).toBe(0);
    const member = '"name":' + (pretty.length ? " " : "") + '"vm\\u009b2J\\u0085\\u007f\\u001b[2J"';
    expect(result.stdout).toBe(pretty.length ? `{\n  ${member}\n}\n` : `{${member}}\n`);
    expect(JSON.parse(result.stdout)).toEqual({ name }); // the same value
  }
});

test("completion leaves out a name from QEMU with a newline or an escape (a job id from query-jobs)", async () => {
  const server = serve(async (c) => {
    await c.handshake();
    c.reply(await c.nextRequest(), [{ id: "nightly" }, { id: "evil\nrm -rf ~" }, { id: "b\u001b[2J" }, {
      id: "c\u009b",
    }]);
  });
  const result = await qmpctl(["completions", "complete", "--", "-s", server.path, "job", "wait", ""]);
  expect(result).toMatchObject({ code: 0, stdout: "nightly\n", stderr: "" });
});

test("events on stdout write DEL and the C1 controls as escapes, in a long backlog as in a single event", async () => {
  const name = "vm\u009b2J\u007f";
  const event = (i: number) => ({
    timestamp: { seconds: i, microseconds: 0 },
    event: "DEVICE_DELETED",
    data: { device: name },
  });
  const server = serve(async (c) => {
    await c.handshake();
    await Bun.sleep(100); // subscribed
    c.send(Array.from({ length: 200 }, (_, i) => JSON.stringify(event(i)) + "\r\n").join("")); // one read: one batch
    c.sendJson(event(200));
  });
  const result = await qmpctl(["-s", server.path, "events", "--count", "201"]);
  expect(result.code).toBe(0);
  const lines = result.stdout.trimEnd().split("\n");
  expect(lines).toHaveLength(201);
  for (const line of lines) expect(line).toContain('"device":"vm\\u009b2J\\u007f"');
  expect(lines.map((line) => JSON.parse(line))).toEqual(Array.from({ length: 201 }, (_, i) => event(i)));
});

test.each([
  ["plain text", "DeviceNotFound: Device 'x' not found", "DeviceNotFound: Device 'x' not found"],
  ["C0, DEL and C1", "a\u001b[31mb\u007fc\u0085d\u009fe\tf", "a\\x1b[31mb\\x7fc\\x85d\\x9fe\\tf"],
  ["DEL alone", "a\u007fb", "a\\x7fb"],
  ["a C1 control alone", "a\u0080b\u009f", "a\\x80b\\x9f"],
  ["the edges of the ranges kept", "\u0020\u007e\u00a0", "\u0020\u007e\u00a0"],
  ["a long line, the control at its end", "x".repeat(5000) + "\r", "x".repeat(5000) + "\\r"],
  ["a long line without one", "y".repeat(5000), "y".repeat(5000)],
])("escapeControls: %s", (_, text, escaped) => {
  expect(escapeControls(text)).toBe(escaped);
});

test("under TERM=dumb, an error line that stderr's reader never takes leaves the exit status as it is", () => {
  // stderr: a pipe whose reader has gone (>(true) exited during the pause).
  const run = Bun.spawnSync(
    ["bash", "-c", 'exec 2> >(true); sleep 0.3; "$0" -s /nonexistent.qmp exec query-status; echo "status $?"', QMPCTL],
    { env: { ...process.env, TERM: "dumb" } },
  );
  expect(run.stdout.toString()).toBe("status 3\n");
});

test("on a terminal with TERM=dumb an error line carries no colour codes (Bun's console.error colours it red)", () => {
  // script(1) gives the program a real terminal on stdout and stderr and copies what it writes.
  const onTerminal = (term: string) =>
    Bun.spawnSync(["script", "-qec", `'${QMPCTL}' -s /nonexistent.qmp exec query-status`, "/dev/null"], {
      env: { ...process.env, TERM: term, NO_COLOR: undefined },
    });
  const dumb = onTerminal("dumb");
  expect(dumb.exitCode).toBe(3);
  expect(dumb.stdout.toString()).toBe(
    "qmpctl: cannot connect to /nonexistent.qmp: no such socket (ENOENT)\r\n",
  );
});

test("FORCE_COLOR (a CI runner's) leaves stderr's lines plain in a pipe: each starts with 'qmpctl:'", async () => {
  for (const value of ["1", "", "true", "3"]) {
    const result = await qmpctl(["-s", "/nonexistent.qmp", "exec", "query-status"], {
      env: { FORCE_COLOR: value, NO_COLOR: undefined },
    });
    expect({ value, code: result.code, stderr: result.stderr }).toEqual({
      value,
      code: 3,
      stderr: "qmpctl: cannot connect to /nonexistent.qmp: no such socket (ENOENT)\n",
    });
  }
});
