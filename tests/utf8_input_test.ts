/** Words and `--args -` input that are not UTF-8 are refused (exit 2), never sent with U+FFFD in them. */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { decodeUtf8, showInvalidUtf8 } from "../lib/utf8.ts";
import { QMPCTL, qmpctl } from "./helpers/cli.ts";
import type { FakeServer } from "./helpers/fake_server.ts";
import { executed, schemaServer } from "./helpers/schema_fixture.ts";

const bytes = (...parts: (string | number[])[]): Uint8Array<ArrayBuffer> =>
  new Uint8Array(parts.flatMap((p) => typeof p === "string" ? [...new TextEncoder().encode(p)] : p));

describe("lib/utf8.ts", () => {
  test("decodeUtf8 takes UTF-8 and refuses the rest, without reading FF FE as UTF-16", () => {
    expect(decodeUtf8(bytes("é😀"))).toBe("é😀");
    expect(decodeUtf8(bytes([0xff, 0xfe], "{}"))).toBeUndefined();
    expect(decodeUtf8(bytes([0xed, 0xa0, 0x80]))).toBeUndefined(); // a lone surrogate, encoded
  });

  test("showInvalidUtf8 keeps the good characters and shows each bad byte", () => {
    expect(showInvalidUtf8(bytes("a=", [0xff], "é", [0xc3]))).toEqual({ text: "a=\\xffé\\xc3", firstBad: 2 });
  });
});

describe("through the binary", () => {
  let server: FakeServer;
  beforeAll(() => {
    server = schemaServer();
  });
  afterAll(() => server.stop());

  /** Run qmpctl with raw argv bytes (Bun.spawn takes strings, so through sh and printf). */
  async function runRaw(word: Uint8Array) {
    const octal = [...word].map((b) => `\\${b.toString(8).padStart(3, "0")}`).join("");
    const child = Bun.spawn(
      ["sh", "-c", `exec "$0" -s "$1" exec set_link up=true "$(printf '${octal}')"`, QMPCTL, server.path],
      { stdin: "ignore", stdout: "pipe", stderr: "pipe" },
    );
    const [stdout, stderr, code] = await Promise.all([
      new Response(child.stdout).text(),
      new Response(child.stderr).text(),
      child.exited,
    ]);
    return { code, stdout, stderr };
  }

  test("a KEY=VALUE word with a byte that is not UTF-8: exit 2 naming the word, nothing sent", async () => {
    const before = executed(server).length;
    expect(await runRaw(bytes("name=a", [0xff], "é"))).toEqual({
      code: 2,
      stdout: "",
      stderr: "qmpctl: 'name=a\\xffé' is not valid UTF-8 (command-line word 6)\n",
    });
    expect(executed(server).length).toBe(before);
  });

  test("a word in UTF-8 is sent as it is", async () => {
    const result = await runRaw(bytes("name=é😀"));
    expect(result).toEqual({ code: 0, stdout: '{"up":true,"name":"é😀"}\n', stderr: "" });
  });

  test("--args - starting with FF FE (UTF-16's mark): exit 2, not read as UTF-16", async () => {
    const utf16 = bytes([0xff, 0xfe], [...new TextEncoder().encode('{"name":"x","up":true}')].flatMap((b) => [b, 0]));
    const result = await qmpctl(["-s", server.path, "exec", "set_link", "--args", "-"], { stdin: utf16 });
    expect(result).toMatchObject({
      code: 2,
      stdout: "",
      stderr: "qmpctl: --args -: stdin is not UTF-8 (byte 0xff at offset 0)\n",
    });
  });

  test("--args - with a bad byte inside a string: exit 2 saying where", async () => {
    const result = await qmpctl(["-s", server.path, "exec", "set_link", "--args", "-"], {
      stdin: bytes('{"name":"a', [0xc3, 0x28], '","up":true}'),
    });
    expect(result).toMatchObject({
      code: 2,
      stdout: "",
      stderr: "qmpctl: --args -: stdin is not UTF-8 (byte 0xc3 at offset 10)\n",
    });
  });

  test("--args - with empty stdin, or --args '': exit 2 saying it holds no JSON, not a parser's EOF message", async () => {
    expect(await qmpctl(["-s", server.path, "exec", "set_link", "--args", "-"], { stdin: " \n" })).toMatchObject({
      code: 2,
      stdout: "",
      stderr: "qmpctl: --args -: stdin held no JSON, only blanks or nothing (an object is needed: {} for none)\n",
    });
    expect(await qmpctl(["-s", server.path, "exec", "set_link", "--args", ""])).toMatchObject({
      code: 2,
      stdout: "",
      stderr: "qmpctl: --args holds no JSON, only blanks or nothing (an object is needed: {} for none)\n",
    });
  });

  test("--args - < /etc (a directory): exit 2", async () => {
    const child = Bun.spawn(["sh", "-c", `exec "$0" -s "$1" exec set_link --args - < /etc`, QMPCTL, server.path], {
      stdout: "pipe",
      stderr: "pipe",
    });
    const [stderr, code] = await Promise.all([new Response(child.stderr).text(), child.exited]);
    expect({ code, stderr }).toEqual({
      code: 2,
      stderr: "qmpctl: --args -: cannot read stdin: a directory (EISDIR)\n",
    });
  });

  test("--args - with stdin closed: exit 2 saying so, not read as empty input", async () => {
    const child = Bun.spawn(["sh", "-c", `exec "$0" -s "$1" exec set_link --args - <&-`, QMPCTL, server.path], {
      stdout: "pipe",
      stderr: "pipe",
    });
    const [stderr, code] = await Promise.all([new Response(child.stderr).text(), child.exited]);
    expect({ code, stderr }).toEqual({ code: 2, stderr: "qmpctl: --args -: cannot read stdin: closed (EBADF)\n" });
  });
});
