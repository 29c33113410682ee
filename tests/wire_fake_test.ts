/**
 * What crosses the wire, through the built binary against scripted servers:
 * numbers printed exactly as the server wrote them on every output path, the
 * messages before a framing fault kept, and a hostile nesting ending as a
 * protocol error (exit 3).
 */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { qmpctl as runQmpctl } from "./helpers/cli.ts";
import { type FakeConnection, fakeServers } from "./helpers/fake_server.ts";

// These servers answer schema queries as a QEMU before 2.5 would; a cache of this file's own keeps that apart.
const home = mkdtempSync(join(tmpdir(), "qmpctl-wire-home-"));
afterAll(() => rmSync(home, { recursive: true, force: true }));
const env = { ...process.env, XDG_CACHE_HOME: join(home, "cache"), XDG_STATE_HOME: join(home, "state") };
const qmpctl = (args: string[], stdin?: string) => runQmpctl(args, { env, stdin, killAfterMs: 20_000 });

const startServer = fakeServers();
const serve = (script: (connection: FakeConnection) => Promise<void> | void): string => startServer(script).path;

/** What qmpctl asks before the command under test (the shell asks for the VM's name). */
const SCHEMA_QUERIES = new Set(["query-qmp-schema", "query-target", "query-name"]);

/** The next request other than those queries (answered CommandNotFound, as QEMU before 2.5 does). */
async function nextCommand(c: FakeConnection): Promise<Record<string, unknown>> {
  for (;;) {
    const request = await c.nextRequest();
    if (!SCHEMA_QUERIES.has(request.execute as string)) return request;
    c.sendJson({
      error: { class: "CommandNotFound", desc: `The command ${request.execute} has not been found` },
      id: request.id,
    });
  }
}

/**
 * `events NAME` and `wait-event NAME` subscribe, then ask for the schema to
 * check NAME: that query is the sign they listen.
 */
async function subscribed(c: FakeConnection): Promise<void> {
  await c.handshake();
  for (;;) {
    const request = await c.nextRequest();
    c.sendJson({ error: { class: "CommandNotFound", desc: "no" }, id: request.id });
    if (request.execute === "query-qmp-schema") return; // the last question before listening
  }
}

/** Numbers a double would change, as QEMU writes them (its separators have blanks). */
const NUMBERS = '{"u64": 18446744073709551615, "i64": -9223372036854775808, "huge": 1e400, ' +
  '"g17": 0.10000000000000001, "negzero": -0, "trail": 1.50, "plain": 42, "text": "1.50"}';
const compact = (text: string) => text.replaceAll(": ", ":").replaceAll(", ", ",");
// A request without an id (the piped shell's, answered in order) gets a reply without one, as from QEMU.
const replyText = (request: Record<string, unknown>, value: string) =>
  `{"return": ${value}${"id" in request ? `, "id": ${JSON.stringify(request.id)}` : ""}}\r\n`;
const eventText = (name: string, data: string) =>
  `{"timestamp": {"seconds": 1700000000, "microseconds": 5}, "event": "${name}", "data": ${data}}\r\n`;
const eventLine = (name: string, data: string) =>
  `{"timestamp":{"seconds":1700000000,"microseconds":5},"event":"${name}","data":${compact(data)}}\n`;

describe("numbers are printed exactly as the server wrote them", () => {
  const answering = () =>
    serve(async (c) => {
      await c.handshake();
      const request = await nextCommand(c);
      c.send(replyText(request, NUMBERS));
    });

  test("exec", async () => {
    const result = await qmpctl(["-s", answering(), "exec", "query-numbers"]);
    expect(result).toMatchObject({ code: 0, stdout: compact(NUMBERS) + "\n", stderr: "" });
  });

  test("exec --raw", async () => {
    const result = await qmpctl(["-s", answering(), "exec", "query-numbers", "--raw"]);
    expect(result).toMatchObject({ code: 0, stdout: `{"return":${compact(NUMBERS)}}\n`, stderr: "" });
  });

  test("exec --pretty", async () => {
    const result = await qmpctl(["-s", answering(), "exec", "query-numbers", "--pretty"]);
    const members = compact(NUMBERS).slice(1, -1).split(",").map((m) => "  " + m.replace(":", ": "));
    expect(result).toMatchObject({ code: 0, stdout: `{\n${members.join(",\n")}\n}\n`, stderr: "" });
  });

  test("exec --raw of an error reply", async () => {
    const path = serve(async (c) => {
      await c.handshake();
      const request = await nextCommand(c);
      c.send(`{"error": {"class": "GenericError", "desc": "no", "at": 18446744073709551615}, "id": "${request.id}"}\n`);
    });
    const result = await qmpctl(["-s", path, "exec", "x", "--raw"]);
    expect(result).toMatchObject({
      code: 1,
      stdout: '{"error":{"class":"GenericError","desc":"no","at":18446744073709551615}}\n',
    });
  });

  test("the piped shell", async () => {
    const result = await qmpctl(["-s", answering(), "shell"], "query-numbers\n");
    expect(result).toMatchObject({ code: 0, stdout: `{"return":${compact(NUMBERS)}}\n`, stderr: "" });
  });

  test("events", async () => {
    const path = serve(async (c) => {
      await subscribed(c);
      c.send(eventText("X", NUMBERS) + eventText("X", '{"n": 1e400}'));
    });
    const result = await qmpctl(["-s", path, "events", "X", "--count", "2", "--timeout", "10s"]);
    expect(result).toMatchObject({
      code: 0,
      stdout: eventLine("X", NUMBERS) + eventLine("X", '{"n": 1e400}'),
      stderr: "",
    });
  });

  test("wait-event --match compares a big integer by its digits, a decimal by its value", async () => {
    const path = serve(async (c) => {
      await subscribed(c);
      c.send(
        eventText("X", '{"size": 18446744073709551614, "r": 1.5}') + // one unit off: rounds to the same double
          eventText("X", '{"size": 18446744073709551615, "r": 2.50}') + // r differs
          eventText("X", '{"size": 18446744073709551615, "r": 1.50}'),
      );
    });
    const result = await qmpctl([
      "-s",
      path,
      "wait-event",
      "X",
      "--match",
      "size=18446744073709551615",
      "--match",
      "r=1.5",
      "--timeout",
      "10s",
    ]);
    expect(result).toMatchObject({
      code: 0,
      stdout: eventLine("X", '{"size": 18446744073709551615, "r": 1.50}'),
      stderr: "",
    });
  });

  test("exec --wait-event: the reply and the event", async () => {
    const path = serve(async (c) => {
      await c.handshake();
      const request = await nextCommand(c);
      c.send(eventText("DONE", '{"n": 18446744073709551615}') + replyText(request, '{"n": -0}'));
    });
    const result = await qmpctl(["-s", path, "exec", "go", "--wait-event", "DONE", "--timeout", "10s"]);
    expect(result).toMatchObject({
      code: 0,
      stdout: '{"n":-0}\n' + eventLine("DONE", '{"n": 18446744073709551615}'),
      stderr: "",
    });
  });

  test("hmp, where text is due and a big number came: a broken protocol, its digits said (was a crash, exit 70)", async () => {
    const path = serve(async (c) => {
      await c.handshake();
      c.send(replyText(await nextCommand(c), "18446744073709551615"));
    });
    const result = await qmpctl(["-s", path, "hmp", "info", "x"]);
    expect(result).toMatchObject({
      code: 3,
      stdout: "",
      stderr: `qmpctl: ${path}: received 18446744073709551615 as the human monitor's text\n`,
    });
  });

  test("job wait, when an event names a job by a big number: that job is not followed (was a crash, exit 70)", async () => {
    const job = (status: string) =>
      `[{"id": "j1", "type": "backup", "status": "${status}", ` +
      '"current-progress": 10, "total-progress": 10}]';
    const path = serve(async (c) => {
      await c.handshake();
      c.send(replyText(await nextCommand(c), job("running")));
      c.send(
        eventText("JOB_STATUS_CHANGE", '{"id": 18446744073709551615, "status": "concluded"}') +
          eventText("JOB_STATUS_CHANGE", '{"id": "j1", "status": "concluded"}'),
      );
      for (;;) c.send(replyText(await nextCommand(c), job("concluded")));
    });
    const result = await qmpctl(["-s", path, "job", "wait", "j1", "--timeout", "10s"]);
    expect(result).toMatchObject({ code: 0, stderr: "" });
    expect(JSON.parse(result.stdout)).toMatchObject({ id: "j1", status: "concluded" });
  });

  test("numbers are sent as written too (--args, KEY:=JSON): the -v log shows the request", async () => {
    const path = serve(async (c) => {
      await c.handshake();
      c.reply(await nextCommand(c), {});
    });
    const result = await qmpctl([
      "-s",
      path,
      "-v",
      "exec",
      "x",
      "--args",
      '{"a": 18446744073709551615, "b": 1.50}',
      "c:=1e400",
    ]);
    expect(result.code).toBe(0);
    expect(result.stderr).toContain('> {"execute":"x","arguments":{"a":18446744073709551615,"b":1.50,"c":1e400}');
  });
});

describe("a framing fault after whole messages", () => {
  test("exec: a whole reply followed by one bad byte in the same write is printed (exit 0)", async () => {
    const path = serve(async (c) => {
      await c.handshake();
      const request = await nextCommand(c);
      c.send(replyText(request, '{"status": "running"}') + "\u0000");
    });
    const result = await qmpctl(["-s", path, "exec", "query-status"]);
    expect(result).toMatchObject({ code: 0, stdout: '{"status":"running"}\n', stderr: "" });
  });

  test("events: the events before the bad byte are printed, then exit 3 naming it", async () => {
    const path = serve(async (c) => {
      await subscribed(c);
      c.send(eventText("X", '{"i": 1}') + eventText("X", '{"i": 2}') + "#");
    });
    const result = await qmpctl(["-s", path, "events", "X", "--timeout", "10s"]);
    expect(result).toMatchObject({
      code: 3,
      stdout: eventLine("X", '{"i": 1}') + eventLine("X", '{"i": 2}'),
      stderr: `qmpctl: ${path}: expected a JSON object, got "#"\n`,
    });
  });

  test("exec --wait-event: the reply and the events before the bad byte are printed, then exit 3", async () => {
    const path = serve(async (c) => {
      await c.handshake();
      const request = await nextCommand(c);
      c.send(replyText(request, "{}") + eventText("DONE", "{}") + "]");
    });
    const result = await qmpctl(["-s", path, "exec", "go", "--wait-event", "DONE", "--count", "2", "--timeout", "10s"]);
    expect(result).toMatchObject({
      code: 3,
      stdout: "{}\n" + eventLine("DONE", "{}"),
      stderr: `qmpctl: ${path}: expected a JSON object, got "]"\n`,
    });
  });
});

describe("hostile nesting", () => {
  for (const [name, format] of [["one line", ""], ["pretty=on lines", "\n"]] as const) {
    test(`a reply nested 10^5 deep (${name}) is a protocol error: exit 3, one line`, async () => {
      const levels = 100_000;
      const path = serve(async (c) => {
        await c.handshake();
        const request = await nextCommand(c);
        c.send(`{"return": ${format}${"[".repeat(levels)}${"]".repeat(levels)}, "id": "${request.id}"}\r\n`);
      });
      const result = await qmpctl(["-s", path, "exec", "query-deep"]);
      expect(result).toMatchObject({
        code: 3,
        stdout: "",
        stderr: `qmpctl: ${path}: received a message nested deeper than 1024 levels\n`,
      });
    });
  }
});
