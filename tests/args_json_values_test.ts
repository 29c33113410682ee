/**
 * JSON given as a `KEY=VALUE` word's value, and a union tag given as is,
 * checked before sending as the word forms are: against a real QEMU, a
 * QEMU without schema and `batch`.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { rmSync } from "node:fs";
import { qmpctl } from "./helpers/cli.ts";
import type { FakeServer } from "./helpers/fake_server.ts";
import { startQemu, type TestQemu } from "./helpers/qemu.ts";
import { executed, freshCacheHome, schemaServer } from "./helpers/schema_fixture.ts";

let qemu: TestQemu;
const home = freshCacheHome();
beforeAll(async () => {
  qemu = await startQemu();
});
afterAll(async () => {
  await qemu?.stop();
  rmSync(home, { recursive: true, force: true });
});

const run = (args: string[], stdin?: string) =>
  qmpctl(["-s", qemu.socket, "-v", ...args], { env: { XDG_CACHE_HOME: home }, stdin });

/** The commands qmpctl sent, from its -v log. */
function sent(stderr: string): string[] {
  return stderr.split("\n").filter((l) => l.startsWith("> ")).map((l) => JSON.parse(l.slice(2)).execute);
}

/** The last line of stderr: qmpctl's own message after the -v log. */
function lastLine(stderr: string): string {
  return stderr.trimEnd().split("\n").at(-1)!;
}

describe("a key given twice in a KEY=VALUE word's JSON: exit 2, as for KEY:=JSON, nothing sent", () => {
  test.each([
    [
      "blockdev-add driver=raw node-name=dk",
      'file={"driver":"null-co","driver":"file","filename":"/nonexist"}',
      "driver",
    ],
    ["qom-set path=/machine property=x", 'value={"a":1,"a":2}', "a"], // any
    ["qom-set path=/machine property=x", 'value=[{"a":1,"a":2}]', "a"], // inside an array
  ])("%s %s", async (line, word, key) => {
    const [command, ...words] = line.split(" ");
    for (const given of [word, word.replace("=", ":=")]) {
      const result = await run(["exec", command, ...words, given]);
      expect(result).toMatchObject({ code: 2, stdout: "" });
      expect(lastLine(result.stderr)).toBe(`qmpctl: '${given}': the key "${key}" is given twice in one object`);
      expect(sent(result.stderr)).not.toContain(command);
    }
  });

  test("a QEMU without schema (untyped values) refuses it too", async () => {
    const server: FakeServer = schemaServer({ noSchema: true });
    try {
      const result = await qmpctl(["-s", server.path, "exec", "typed", 'extra={"a":1,"a":2}'], {
        env: { XDG_CACHE_HOME: home },
      });
      expect(result).toMatchObject({
        code: 2,
        stdout: "",
        stderr: `qmpctl: 'extra={"a":1,"a":2}': the key "a" is given twice in one object\n`,
      });
      expect(executed(server)).not.toContain("typed");
    } finally {
      server.stop();
    }
  });

  test("batch: the line is an error line, not sent; the lines around it run", async () => {
    const lines = ["query-status", 'qom-set path=/machine property=x value={"a":1,"a":2}', "query-status"];
    const result = await run(["batch", "-"], lines.join("\n") + "\n");
    expect(result.code).toBe(1);
    const out = result.stdout.trimEnd().split("\n").map((l) => JSON.parse(l));
    expect(out[1]).toEqual({
      error: {
        class: "ArgumentError",
        desc: `'value={"a":1,"a":2}': the key "a" is given twice in one object`,
      },
    });
    expect(out[0]).toHaveProperty("return.status");
    expect(out[2]).toHaveProperty("return.status");
    expect(sent(result.stderr)).not.toContain("qom-set");
  });
});

test("an error no schema undoes, inside a word's JSON, refetches no schema from a warm cache", async () => {
  expect((await run(["exec", "qom-set", "path=/machine", "property=x", "value=1"])).code).toBe(1); // warm
  for (
    const words of [
      ["qom-set", "path=/machine", "property=x", 'value={"a":1,"a":2}'], // any: a key given twice
      ["blockdev-add", "driver=raw", "node-name=b", 'file={"driver":"null-co","size":99999999999999999999}'],
      ["blockdev-add", "driver=raw", "node-name=b", 'file={"driver":"null-co","size":1.5}'],
    ]
  ) {
    const result = await run(["exec", ...words]);
    expect(result.code).toBe(2);
    expect(sent(result.stderr)).toEqual(["qmp_capabilities", "query-target"]);
  }
});

test("a str argument whose text reads as JSON with a key given twice is text, sent as typed", async () => {
  const line = '{"a":1,"a":2}';
  const exec = await run(["exec", "human-monitor-command", `command-line=${line}`]);
  expect(exec.code).toBe(0); // the monitor's text: its complaint about the line
  const sentLine = exec.stderr.split("\n").find((l) => l.includes('"human-monitor-command"'));
  expect(JSON.parse(sentLine!.slice(2)).arguments).toEqual({ "command-line": line });
  const batch = await run(["batch", "-"], `human-monitor-command command-line=${line}\n`);
  expect(batch.code).toBe(0);
  expect(batch.stdout).toStartWith('{"return":');
});

test("an int inside a word's JSON out of int64/uint64: exit 2, worded as for the dotted word, nothing sent", async () => {
  const big = "99999999999999999999";
  const json = await run([
    "exec",
    "blockdev-add",
    "driver=raw",
    "node-name=b",
    `file={"driver":"null-co","size":${big}}`,
  ]);
  expect(json).toMatchObject({ code: 2, stdout: "" });
  expect(lastLine(json.stderr)).toBe(
    `qmpctl: blockdev-add: 'file={"driver":"null-co","size":${big}}': at file.size: expected int within int64/uint64`,
  );
  expect(sent(json.stderr)).not.toContain("blockdev-add");
  const words = await run([
    "exec",
    "blockdev-add",
    "driver=raw",
    "node-name=b",
    "file.driver=null-co",
    `file.size=${big}`,
  ]);
  expect(lastLine(words.stderr)).toBe(`qmpctl: blockdev-add: 'file.size=${big}': expected int within int64/uint64`);
});

test("a union tag from --args or KEY:=JSON that names no branch: the tag's error with its did-you-mean", async () => {
  const asWord = await run(["exec", "blockdev-add", "node-name=y", "size=5", "driver=null-cox"]);
  const message = lastLine(asWord.stderr);
  expect(message).toStartWith("qmpctl: blockdev-add: 'driver=null-cox': expected one of ");
  expect(message).toEndWith(" (did you mean null-co?)");
  for (const given of [["--args", '{"driver":"null-cox"}'], ['driver:="null-cox"']]) {
    const result = await run(["exec", "blockdev-add", "node-name=y", "size=5", ...given]);
    expect(result).toMatchObject({ code: 2, stdout: "" });
    expect(lastLine(result.stderr)).toBe(message);
    expect(sent(result.stderr)).not.toContain("blockdev-add");
  }
  // A tag that names a branch: a word no branch member is the mistake, as before.
  const unknown = await run(["exec", "blockdev-add", "node-name=y", "sise=5", "--args", '{"driver":"null-co"}']);
  expect(lastLine(unknown.stderr)).toBe("qmpctl: blockdev-add: unknown argument 'sise' (did you mean size?)");
});
