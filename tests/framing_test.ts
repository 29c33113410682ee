/** JsonFramer: bytes in any chunking, whole JSON messages out, bounded. */
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { DEFAULT_MAX_MESSAGE_BYTES, JsonFramer } from "../lib/framing.ts";
import { MessageTooLargeError, ProtocolError } from "../lib/errors.ts";

const encoder = new TextEncoder();
const bytes = (text: string) => encoder.encode(text);

/** Feed `data` cut into `size`-byte chunks; every message that came out. */
function feed(framer: JsonFramer, data: Uint8Array, size: number): unknown[] {
  const out: unknown[] = [];
  for (let i = 0; i < data.length; i += size) out.push(...framer.push(data.subarray(i, i + size)));
  return out;
}

const MESSAGES = [
  { QMP: { version: { qemu: { micro: 0, minor: 2, major: 7 }, package: "" }, capabilities: ["oob"] } },
  { return: {} },
  { return: { text: 'déjà vu 😀 — {not} [a] "nested" \\ object\r\n' }, id: "qmpctl-1" },
  { event: "STOP", data: {}, timestamp: { seconds: 1, microseconds: 2 } },
  { return: [[], [{}], { "}": "{", "\\": '"' }] },
];
const STREAM = bytes(MESSAGES.map((m) => JSON.stringify(m) + "\r\n").join(""));

describe("JsonFramer", () => {
  test("yields each whole message at every chunk size from 1 byte up", () => {
    for (const size of [1, 2, 3, 5, 7, 16, 64, 1000, STREAM.length]) {
      expect({ size, messages: feed(new JsonFramer(), STREAM, size) }).toEqual({ size, messages: MESSAGES });
    }
  });

  test("several messages in one chunk come out in order", () => {
    expect(new JsonFramer().push(STREAM)).toEqual(MESSAGES);
  });

  test("a message spread over many chunks comes out once, when its last byte arrives", () => {
    const framer = new JsonFramer();
    const data = bytes('{"return": {"a": [1, 2, 3]}, "id": 7}\n');
    for (let i = 0; i < data.length - 2; i++) expect(framer.push(data.subarray(i, i + 1))).toEqual([]);
    expect(framer.partial).toBe(true);
    expect(framer.push(data.subarray(data.length - 2))).toEqual([{ return: { a: [1, 2, 3] }, id: 7 }]);
    expect(framer.partial).toBe(false);
  });

  test("a UTF-8 character split between chunks is decoded whole", () => {
    const data = bytes('{"return": "é😀"}');
    const emoji = data.indexOf(0xf0);
    for (const cut of [emoji + 1, emoji + 2, emoji + 3, data.indexOf(0xc3) + 1]) {
      const framer = new JsonFramer();
      expect(framer.push(data.subarray(0, cut))).toEqual([]);
      expect(framer.push(data.subarray(cut))).toEqual([{ return: "é😀" }]);
    }
  });

  test("64 KiB blocks of a large message and of many small ones", () => {
    const big = { return: "x".repeat(300_000) + "é".repeat(70_000), id: 1 };
    const small = Array.from({ length: 5000 }, (_, i) => ({ event: "E", data: { i } }));
    const data = bytes([big, ...small].map((m) => JSON.stringify(m) + "\n").join(""));
    expect(feed(new JsonFramer(), data, 65536)).toEqual([big, ...small]);
  });

  test("CRLF, LF, tabs and blanks between messages are skipped", () => {
    expect(new JsonFramer().push(bytes('\r\n {"a": 1}\r\n\r\n\t{"b": 2}\n \n{"c": 3}'))).toEqual([
      { a: 1 },
      { b: 2 },
      { c: 3 },
    ]);
  });

  test("a pretty=on message over many lines is one message", () => {
    const pretty = '{\r\n    "return": {\r\n        "status": "running",\r\n        "list": [\r\n            1,\r\n' +
      '            {}\r\n        ]\r\n    },\r\n    "id": "qmpctl-2"\r\n}\r\n';
    const expected = { return: { status: "running", list: [1, {}] }, id: "qmpctl-2" };
    expect(new JsonFramer().push(bytes(pretty))).toEqual([expected]);
    expect(feed(new JsonFramer(), bytes(pretty + pretty), 1)).toEqual([expected, expected]);
  });

  test("braces, brackets, quotes and escapes inside strings do not end a message", () => {
    const message = { return: '}}]] {"x": "\\"} \\\\" \\u0041', id: "}" };
    const data = bytes(JSON.stringify(message) + "\n");
    expect(feed(new JsonFramer(), data, 1)).toEqual([message]);
    // A string ending in an escaped backslash: the quote after it closes the string.
    expect(new JsonFramer().push(bytes('{"a": "\\\\"}{"b": "\\\\\\""}'))).toEqual([{ a: "\\" }, { b: '\\"' }]);
  });

  test("invalid UTF-8 becomes U+FFFD", () => {
    const data = new Uint8Array([...bytes('{"return": "a'), 0xff, 0xc3, ...bytes('b"}\n')]);
    expect(feed(new JsonFramer(), data, 1)).toEqual([{ return: "a\uFFFD\uFFFDb" }]);
  });

  test("strictUtf8: a message that is not UTF-8 is a ProtocolError after the ones before it, whole or in pieces", () => {
    const data = new Uint8Array([...bytes('{"a": "\uFFFD é"}\n{"b": "x'), 0xe9, ...bytes('"}\n')]);
    for (const size of [1, 3, data.length]) {
      const delivered: unknown[] = [];
      const framer = new JsonFramer(undefined, undefined, undefined, true);
      const pushAll = () => {
        for (let i = 0; i < data.length; i += size) framer.push(data.subarray(i, i + size), (m) => delivered.push(m));
      };
      expect(pushAll).toThrow(new ProtocolError("invalid UTF-8 sequence in a message"));
      expect(delivered).toEqual([{ a: "\uFFFD é" }]);
    }
  });

  test("bytes that cannot start a JSON object are a ProtocolError quoting them (their printable ASCII, 40 at most)", () => {
    expect(() => new JsonFramer().push(bytes("hello garbage\r\n"))).toThrow(
      new ProtocolError('expected a JSON object, got "hello garbage"'),
    );
    expect(() => new JsonFramer().push(bytes(`say "${"x".repeat(50)}"\n`))).toThrow(
      new ProtocolError(`expected a JSON object, got ${JSON.stringify(`say "${"x".repeat(35)}`)}...`),
    );
    expect(() => new JsonFramer().push(bytes("ab\u001b[31m"))).toThrow('expected a JSON object, got "ab"...');
    expect(() => new JsonFramer().push(bytes("[1]"))).toThrow(ProtocolError);
    expect(() => new JsonFramer().push(new Uint8Array([0]))).toThrow("expected a JSON object, got byte 0x00");
  });

  test("garbage between two messages is a ProtocolError", () => {
    const framer = new JsonFramer();
    expect(framer.push(bytes('{"a": 1}\n'))).toEqual([{ a: 1 }]);
    expect(() => framer.push(bytes('oops{"b": 2}\n'))).toThrow(ProtocolError);
    expect(() => new JsonFramer().push(bytes('{"a": 1}}'))).toThrow('expected a JSON object, got "}"');
  });

  test("a balanced object that is not JSON is a ProtocolError", () => {
    let error: unknown;
    try {
      new JsonFramer().push(bytes("{return: 1}\n"));
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ProtocolError);
    expect((error as ProtocolError).code).toBe("PROTOCOL");
    expect((error as Error).message).toStartWith("received invalid JSON: ");
  });

  test("a bracket that closes what it did not open is a ProtocolError at once, in every chunking, not a wait", () => {
    const cases: [string, string][] = [
      ['{"return": [1,2,}', "}"],
      ['{"return": [1,2,}\n', "}"],
      ['{"a": {"b": [}}]}\n', "}"],
      ['{"a": "]", "b": ]', "]"],
    ];
    for (const [text, closer] of cases) {
      for (const size of [1, 3, text.length]) {
        expect(() => feed(new JsonFramer(), bytes(text), size)).toThrow(
          new ProtocolError(`received invalid JSON: a '${closer}' closes what it did not open`),
        );
      }
    }
  });

  test("faultAt says where in its chunk the fault was found; anyCloser reads closers as QEMU's parser does", () => {
    const framer = new JsonFramer();
    const chunk = bytes('{"a": 1}\n{"b": [1}\n');
    expect(() => framer.push(chunk)).toThrow(ProtocolError);
    expect(framer.faultAt).toBe(chunk.indexOf(0x7d, 10)); // the '}' that closed a '['
    const lenient = new JsonFramer(undefined, undefined, undefined, false, true);
    expect(lenient.push(bytes('{"b": [1}\n'))).toEqual([]); // a '[' left open: the message goes on
    expect(() => lenient.push(bytes("]\n"))).toThrow("received invalid JSON: ");
  });

  test("the default limit is 64 MiB", () => {
    expect(DEFAULT_MAX_MESSAGE_BYTES).toBe(64 * 1024 * 1024);
  });

  test("a message of exactly the limit passes; one byte more is MessageTooLargeError", () => {
    const message = bytes('{"return": "' + "x".repeat(88) + '"}'); // 102 bytes
    expect(message.length).toBe(102);
    expect(new JsonFramer(102).push(message)).toHaveLength(1);
    expect(feed(new JsonFramer(102), message, 1)).toHaveLength(1);
    for (const size of [1, 10, 102]) {
      let error: unknown;
      try {
        feed(new JsonFramer(101), message, size);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(MessageTooLargeError);
      expect(error).toBeInstanceOf(ProtocolError);
      expect((error as MessageTooLargeError).code).toBe("TOO_LARGE");
      expect((error as Error).message).toBe("a message exceeded the limit of 101 bytes");
    }
  });

  test("an endless message fails as soon as it passes the limit instead of buffering on", () => {
    const framer = new JsonFramer(1024 * 1024);
    const block = new Uint8Array(64 * 1024).fill(0x20); // blanks inside the object
    framer.push(bytes('{"a": '));
    let fed = 0;
    expect(() => {
      for (; fed < 1000; fed++) framer.push(block);
    }).toThrow(MessageTooLargeError);
    expect(fed).toBe(15); // the 16th block takes it past 1 MiB
  });

  test("the limit is per message: many messages below it pass", () => {
    const message = bytes('{"return": "' + "x".repeat(50) + '"}\n');
    const framer = new JsonFramer(100);
    let count = 0;
    for (let i = 0; i < 1000; i++) count += framer.push(message).length;
    expect(count).toBe(1000);
  });

  test("a 20 MB message in 1 KiB chunks costs linear time (finishes well within a generous bound)", () => {
    const text = "0123456789abcdef".repeat(20 * 1024 * 1024 / 16);
    const data = bytes(`{"return": "${text}", "id": 1}\n`);
    const started = performance.now();
    const out = feed(new JsonFramer(), data, 1024);
    const ms = performance.now() - started;
    expect(out).toHaveLength(1);
    expect((out[0] as { return: string }).return.length).toBe(text.length);
    expect(ms).toBeLessThan(15_000); // quadratic rescanning would take hours
  });

  test("property: any chunking of any messages yields exactly those messages", () => {
    const json = fc.jsonValue({ maxDepth: 4 });
    const message = fc.dictionary(fc.string(), json, { maxKeys: 5 });
    fc.assert(
      fc.property(
        fc.array(message, { maxLength: 6 }),
        fc.array(fc.integer({ min: 1, max: 40 }), { minLength: 1, maxLength: 50 }),
        fc.constantFrom("\n", "\r\n", "", " \t"),
        fc.boolean(),
        (messages, cuts, separator, pretty) => {
          const text = messages.map((m) => JSON.stringify(m, null, pretty ? 4 : undefined) + separator).join("");
          const data = bytes(text);
          const framer = new JsonFramer();
          const out: unknown[] = [];
          for (let at = 0, c = 0; at < data.length; c++) {
            const size = cuts[c % cuts.length];
            out.push(...framer.push(data.subarray(at, at + size)));
            at += size;
          }
          // Compared as the JSON they print: a whole number beyond 2^53 comes out kept as its text.
          expect(JSON.stringify(out)).toBe(JSON.stringify(messages));
          expect(framer.partial).toBe(false);
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe("JsonFramer: faults after whole messages, nesting, exact numbers", () => {
  const deep = (levels: number) => `{"return": ${"[".repeat(levels - 1)}${"]".repeat(levels - 1)}}`;

  test("the messages before a bad byte in the same chunk are delivered, then the ProtocolError", () => {
    for (const chunk of ['{"a": 1}\r\n{"b": 2}\r\nX', '{"a": 1}\r\n{\n "b": 2\n}\n\u0000', '{"a": 1}{"b": 2}}']) {
      const delivered: unknown[] = [];
      expect(() => new JsonFramer().push(bytes(chunk), (m) => delivered.push(m))).toThrow(ProtocolError);
      expect(delivered).toEqual([{ a: 1 }, { b: 2 }]);
    }
  });

  test("nesting of 1024 levels (QEMU's own bound) passes in every path; 1025 is a ProtocolError", () => {
    for (const text of [deep(1024) + "\n", deep(1024).replace("[", "\n[") + "\n"]) {
      expect(new JsonFramer().push(bytes(text))).toHaveLength(1);
      expect(feed(new JsonFramer(), bytes(text), 7)).toHaveLength(1);
    }
    for (const text of [deep(1025) + "\n", deep(1025).replace("[", "\n[") + "\n"]) {
      expect(() => new JsonFramer().push(bytes(text))).toThrow(
        new ProtocolError("received a message nested deeper than 1024 levels"),
      );
      expect(() => feed(new JsonFramer(), bytes(text), 7)).toThrow(ProtocolError);
    }
  });

  test("a message nested 10^5 deep is a ProtocolError, not a stack overflow", () => {
    const levels = 100_000;
    for (const open of ["[", '{"a":']) {
      const text = `{"return": ${open.repeat(levels)}${(open === "[" ? "]" : "}").repeat(levels)}}\n`;
      let error: unknown;
      try {
        new JsonFramer().push(bytes(text));
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(ProtocolError);
    }
  });

  test("long lines without deep nesting still parse whole", () => {
    const message = { return: { list: Array.from({ length: 2000 }, (_, i) => ({ i })) }, id: 1 };
    expect(new JsonFramer().push(bytes(JSON.stringify(message) + "\n"))).toEqual([message]);
  });

  test("numbers print back as QEMU wrote them, split or whole", () => {
    const text = '{"return": {"size": 18446744073709551615, "big": 1e400, "g": 0.10000000000000001}, "id": 1}';
    const compact = text.replaceAll(": ", ":").replaceAll(", ", ",");
    expect(JSON.stringify(new JsonFramer().push(bytes(text + "\r\n"))[0])).toBe(compact);
    expect(JSON.stringify(feed(new JsonFramer(), bytes(text + "\r\n"), 5)[0])).toBe(compact);
  });
});
