/**
 * JsonFramer's whole-line path: a chunk's complete lines are decoded as one
 * text and cut there, so a message that is not one line of its own (pretty=on,
 * garbage, a long or deep line) must be handed to the byte scanner at the
 * right byte, and the text must pick up again right after it.
 */
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { MessageTooLargeError, ProtocolError } from "../lib/errors.ts";
import { isRawNumber } from "../lib/exact_json.ts";
import { JsonFramer } from "../lib/framing.ts";

const encoder = new TextEncoder();
const bytes = (text: string) => encoder.encode(text);
const concat = (...parts: (string | number[])[]) =>
  new Uint8Array(parts.flatMap((part) => typeof part === "string" ? [...bytes(part)] : part));

/** Every message of `data` pushed in one chunk, and the error that ended it (if any). */
function pushAll(data: Uint8Array, framer = new JsonFramer()): { messages: unknown[]; error?: unknown } {
  const messages: unknown[] = [];
  try {
    framer.push(data, (message) => messages.push(message));
  } catch (error) {
    return { messages, error };
  }
  return { messages };
}

/** Every message of `data` cut in two at `cut`. */
function pushCut(data: Uint8Array, cut: number): unknown[] {
  const framer = new JsonFramer();
  return [...framer.push(data.subarray(0, cut)), ...framer.push(data.subarray(cut))];
}

const PRETTY =
  '{\r\n    "return": {\r\n        "text": "ü😀 }",\r\n        "list": [\r\n            1\r\n        ]\r\n    }\r\n}';

describe("JsonFramer: whole lines read as one text", () => {
  test("a cut anywhere, inside a multi-byte character or a line, gives the same messages", () => {
    const messages = [
      { event: "A", data: { text: "é" } },
      { event: "B", data: { text: "😀€" } },
      { event: "C", data: { text: "ascii" } },
    ];
    const data = bytes(messages.map((m) => JSON.stringify(m) + "\r\n").join(""));
    for (let cut = 0; cut <= data.length; cut++) {
      expect({ cut, out: pushCut(data, cut) }).toEqual({ cut, out: messages });
    }
  });

  test("a pretty=on message between one-line messages, after non-ASCII text, in one chunk", () => {
    const data = bytes(`{"a": "é😀"}\r\n${PRETTY}\r\n{"b": "ß"}\r\n${PRETTY}\r\n{"c": 1}\r\n`);
    const pretty = { return: { text: "ü😀 }", list: [1] } };
    const expected = [{ a: "é😀" }, pretty, { b: "ß" }, pretty, { c: 1 }];
    expect(pushAll(data)).toEqual({ messages: expected });
    for (let cut = 0; cut <= data.length; cut++) {
      expect({ cut, out: pushCut(data, cut) }).toEqual({ cut, out: expected });
    }
  });

  test("two messages on one line, after non-ASCII text, are both read", () => {
    expect(pushAll(bytes('{"a": "é"}\n{"b": "😀"}{"c": "ü"}\n{"d": 4}\n'))).toEqual({
      messages: [{ a: "é" }, { b: "😀" }, { c: "ü" }, { d: 4 }],
    });
  });

  test("garbage after non-ASCII text is named by its own byte, after the messages before it", () => {
    const cases: [Uint8Array, string][] = [
      [bytes('{"a": "é😀"}\n{"b": 1}}\n'), '"}"'],
      [bytes('{"a": "é😀"}\nhello\n'), '"hello"'],
      [concat('{"a": "é"}\n', [0xc3, 0xa9], "\n"), "byte 0xc3"],
      [concat('{"a": "', [0xff], '"}\n{"b": 1}}\n'), '"}"'], // an invalid byte: one U+FFFD for one byte
      [concat('{"a": "', [0xe2, 0x82], '"}\n{"b": 1}}\n'), '"}"'], // a cut-short sequence: one U+FFFD for two bytes
    ];
    for (const [data, what] of cases) {
      const { messages, error } = pushAll(data);
      expect(error).toEqual(new ProtocolError(`expected a JSON object, got ${what}`));
      expect(messages.length).toBeGreaterThanOrEqual(1);
    }
    expect(pushAll(bytes('{"a": "é😀"}\n{"b": 1}}\n')).messages).toEqual([{ a: "é😀" }, { b: 1 }]);
  });

  test("invalid UTF-8 becomes U+FFFD on the line path and after the scanner", () => {
    const data = concat('{"a": "', [0xe2, 0x82], '"}\n{\n "b": "', [0xff], '"\n}\n{"c": "', [0xc3], 'x"}\n');
    expect(pushAll(data)).toEqual({ messages: [{ a: "\uFFFD" }, { b: "\uFFFD" }, { c: "\uFFFDx" }] });
  });

  test("a byte-order mark is not skipped: it cannot start a JSON object", () => {
    expect(pushAll(concat([0xef, 0xbb, 0xbf], '{"a": 1}\n')).error).toEqual(
      new ProtocolError("expected a JSON object, got byte 0xef"),
    );
    expect(pushAll(concat('{"a": 1}\n', [0xef, 0xbb, 0xbf], '{"b": 1}\n'))).toEqual({
      messages: [{ a: 1 }],
      error: new ProtocolError("expected a JSON object, got byte 0xef"),
    });
  });

  test("a deep line after non-ASCII text is bounded by the scanner; a long shallow one is read whole", () => {
    const deep = (levels: number) => `{"r": ${"[".repeat(levels - 1)}${"]".repeat(levels - 1)}}`;
    const before = '{"a": "é😀"}\n';
    expect(pushAll(bytes(before + deep(1024) + "\n" + '{"z": 1}\n')).messages).toHaveLength(3);
    const { messages, error } = pushAll(bytes(before + deep(1025) + "\n"));
    expect(messages).toEqual([{ a: "é😀" }]);
    expect(error).toEqual(new ProtocolError("received a message nested deeper than 1024 levels"));
    // 2000 characters but 6000 bytes: within the nesting bound whatever its bytes.
    const wide = { return: "€".repeat(1980) };
    expect(pushAll(bytes(before + JSON.stringify(wide) + "\n" + '{"z": 1}\n')).messages).toEqual([
      { a: "é😀" },
      wide,
      { z: 1 },
    ]);
  });

  test("the size bound counts bytes, not characters", () => {
    const line = '{"r": "' + "é".repeat(40) + '"}'; // 49 characters, 89 bytes
    expect(pushAll(bytes(line + "\n"), new JsonFramer(89)).messages).toHaveLength(1);
    expect(pushAll(bytes('{"a": 1}\n' + line + "\n"), new JsonFramer(88))).toEqual({
      messages: [{ a: 1 }],
      error: new MessageTooLargeError("a message exceeded the limit of 88 bytes"),
    });
  });

  test("exact numbers on some lines of a chunk; the others keep plain numbers", () => {
    const lines = [
      '{"event": "A", "data": {"n": 1}}',
      '{"event": "B", "data": {"size": 18446744073709551615, "g": 0.10000000000000001}}',
      '{"event": "C", "data": {"n": 2, "s": ":1.5"}}',
      '{"event": "D", "data": {"n": 3}}',
      '{"event": "E", "data": {"x": [1e400, -0]}}',
    ];
    const out = pushAll(bytes(lines.join("\r\n") + "\r\n")).messages as { data: Record<string, unknown> }[];
    expect(out.map((m) => JSON.stringify(m))).toEqual(
      lines.map((l) => l.replaceAll(": ", ":").replaceAll(", ", ",")),
    );
    expect(isRawNumber(out[1].data.size)).toBe(true);
    expect([out[0].data.n, out[2].data.n, out[3].data.n]).toEqual([1, 2, 3]);
  });

  test("property: one-line and pretty=on messages with any text, in any chunking", () => {
    const text = fc.string({ unit: "grapheme", maxLength: 8 });
    const value = fc.oneof(text, fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.boolean());
    const message = fc.tuple(
      fc.dictionary(text, fc.oneof(value, fc.array(value, { maxLength: 3 })), { maxKeys: 4 }),
      fc.boolean(),
    );
    fc.assert(
      fc.property(
        fc.array(message, { maxLength: 8 }),
        fc.array(fc.integer({ min: 1, max: 300 }), { minLength: 1, maxLength: 20 }),
        (messages, cuts) => {
          const data = bytes(
            messages.map(([m, pretty]) => JSON.stringify(m, null, pretty ? 4 : undefined) + "\r\n").join(""),
          );
          const framer = new JsonFramer();
          const out: unknown[] = [];
          for (let at = 0, c = 0; at < data.length; c++) {
            out.push(...framer.push(data.subarray(at, at + cuts[c % cuts.length])));
            at += cuts[c % cuts.length];
          }
          expect(out.map((m) => JSON.stringify(m))).toEqual(messages.map(([m]) => JSON.stringify(m)));
          expect(framer.partial).toBe(false);
        },
      ),
      { numRuns: 300 },
    );
  });
});
