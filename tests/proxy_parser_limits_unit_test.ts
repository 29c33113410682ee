/**
 * measureJson and refusedByQemuParser (lib/parser_limits.ts): the one
 * walk over a parsed message counts what QEMU's parser would count in the
 * text JSON.stringify makes of it, and the proxy's refusals follow from it.
 */
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { parseExact } from "../lib/exact_json.ts";
import { MAX_NESTING } from "../lib/framing.ts";
import {
  duplicateKey,
  MAX_TOKEN_COUNT,
  MAX_TOKEN_SIZE,
  measureJson,
  refusedByQemuParser,
  surelyParsed,
} from "../lib/parser_limits.ts";

/** What QEMU's lexer finds in the compact JSON `text`, counted on the text itself. */
function measureText(text: string) {
  let depth = 0, deepest = 0, tokens = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    tokens++;
    if (c === '"') {
      for (i++; text[i] !== '"'; i++) if (text[i] === "\\") i++;
    } else if (c === "{" || c === "[") deepest = Math.max(deepest, ++depth);
    else if (c === "}" || c === "]") depth--;
    else if (c !== ":" && c !== ",") { while (i + 1 < text.length && !'{}[]:,"'.includes(text[i + 1])) i++; // a scalar
     }
  }
  return {
    depth: deepest,
    tokens,
    bytes: new TextEncoder().encode(text).length,
    // The first escaped lone surrogate (after an even run of backslashes), as the proxy looked for it in the text.
    loneSurrogate: ((lone) => lone ? parseInt(lone[1], 16) : undefined)(
      /(?<!\\)(?:\\\\)*\\u(d[89a-f][0-9a-f]{2})/.exec(text),
    ),
    // Noncharacters stay raw in the text: U+FDD0-U+FDEF, and U+xFFFE/U+xFFFF of every plane (as a pair beyond the BMP).
    noncharacter:
      /[\ufdd0-\ufdef\ufffe\uffff]|[\ud83f\ud87f\ud8bf\ud8ff\ud93f\ud97f\ud9bf\ud9ff\uda3f\uda7f\udabf\udaff\udb3f\udb7f\udbbf\udbff][\udffe\udfff]/
        .test(text),
  };
}

/** Any UTF-16 unit (lone surrogates included), the characters JSON escapes, and characters beyond the BMP. */
const unit = fc.oneof(
  fc.constantFrom('"', "\\", "\0", "\b", "\t", "\n", "\v", "\f", "\r", "\x1f", "\x7f", "\u2028", "\ud800", "\udfff"),
  fc.constantFrom("\ufdd0", "\ufdef", "\ufffe", "\uffff", "\ud83f\udffe", "\udbff\udfff", "\ud83f\udffd", "\ufdcf"),
  fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)),
  fc.string({ unit: "binary", minLength: 1, maxLength: 1 }),
  fc.string({ unit: "grapheme-ascii", minLength: 1, maxLength: 1 }),
);
const text = fc.string({ unit, maxLength: 12 });

/** Numbers parseExact keeps as written (a double would change them). */
const keptNumber = fc.constantFrom("18446744073709551615", "-9223372036854775809", "1e400", "1.50", "1E+2", "-0")
  .map((written) => parseExact(written));

const { value } = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    text,
    fc.double(),
    fc.integer(),
    fc.boolean(),
    fc.constant(null),
    keptNumber,
    tie("array"),
    tie("object"),
  ),
  array: fc.array(tie("value"), { maxLength: 5 }),
  object: fc.dictionary(text, tie("value"), { maxKeys: 5 }),
}));

describe("measureJson", () => {
  test("property: its counts are those of the serialized text, for any JSON value", () => {
    fc.assert(
      fc.property(value, (v) => {
        expect(measureJson(v)).toEqual(measureText(JSON.stringify(v)));
      }),
      { numRuns: 2000 },
    );
  });

  test("numbers: as JSON.stringify prints them, integers near every power of ten too", () => {
    const numbers = [
      0,
      -0,
      5e-324,
      1e21,
      -1e21,
      1e-7,
      123.456,
      NaN,
      Infinity,
      Number.MAX_VALUE,
      Number.MIN_SAFE_INTEGER,
    ];
    for (let digits = 1; digits <= 21; digits++) {
      const power = Number(`1e${digits}`);
      numbers.push(power, -power, power - 1, 1 - power, power / 10 + 1, power - power / 1e15);
    }
    for (const n of numbers) expect({ n, bytes: measureJson(n).bytes }).toEqual({ n, bytes: JSON.stringify(n).length });
  });

  test("nesting up to past QEMU's bound is counted whole; deeper is seen to be past it, without walking it all", () => {
    let deep: unknown = parseExact("1.50");
    for (let i = 0; i < MAX_NESTING + 1; i++) deep = i % 2 ? [deep] : { k: deep };
    expect(measureJson(deep)).toEqual(measureText(JSON.stringify(deep)));
    for (let i = 0; i < 200_000; i++) deep = [deep]; // a walk this deep would run out of stack
    expect(measureJson(deep).depth).toBe(MAX_NESTING + 2);
  });
});

/** A message nested `levels` deep (itself, `arguments` and arrays), a kept number innermost. */
function nested(levels: number): Record<string, unknown> {
  let inner: unknown = parseExact("18446744073709551615");
  for (let i = 2; i < levels; i++) inner = [inner];
  return { execute: "x", arguments: { a: inner } };
}

describe("refusedByQemuParser", () => {
  test("nesting: QEMU's 1024 levels pass (a kept number innermost is no level), one more is refused", () => {
    expect(refusedByQemuParser(nested(MAX_NESTING))).toBeUndefined();
    expect(refusedByQemuParser(nested(MAX_NESTING + 1))).toBe("JSON nesting depth limit exceeded");
  });

  test("the client's id: its nesting counts, its length and its characters do not (the proxy's replaces it)", () => {
    let id: unknown = 1;
    for (let i = 0; i < MAX_NESTING; i++) id = [id];
    expect(refusedByQemuParser({ execute: "x", id })).toBe("JSON nesting depth limit exceeded");
    expect(refusedByQemuParser({ execute: "x", id: "\0\ud800" })).toBeUndefined();
    expect(refusedByQemuParser({ execute: "x", id: "a".repeat(MAX_TOKEN_SIZE) })).toBeUndefined();
  });

  test("a lone surrogate, in a key or a value, is refused as QEMU refuses it, naming the first; U+0000 and a pair are not", () => {
    const refusal = (unit: string) => `JSON parse error, \\u${unit} is not a valid Unicode character`;
    expect(refusedByQemuParser({ execute: "x", arguments: { ["\udc00"]: 1 } })).toBe(refusal("dc00"));
    expect(refusedByQemuParser({ execute: "x", arguments: { s: "a\ud83d", t: "\udbff" } })).toBe(refusal("d83d"));
    expect(refusedByQemuParser({ execute: "x", arguments: { s: "a\0" } })).toBeUndefined(); // QEMU 7.2 takes it
    expect(refusedByQemuParser({ execute: "x", arguments: { s: "\\u0000 \ud83d\ude00" } })).toBeUndefined();
  });

  test("noncharacters, in the BMP or beyond it, are refused as QEMU refuses them; their neighbours are not", () => {
    const refusal = "JSON parse error, invalid UTF-8 sequence in string";
    for (const s of ["\ufdd0", "\ufdef", "\ufffe", "\uffff", "\ud83f\udffe", "\udbff\udfff"]) {
      expect(refusedByQemuParser({ execute: "x", arguments: { s: `a${s}` } })).toBe(refusal);
      expect(refusedByQemuParser({ execute: "x", arguments: { [s]: 1 } })).toBe(refusal);
    }
    for (const s of ["\ufdcf", "\ufdf0", "\ufffd", "\ud83f\udffd", "\ud83e\udfff"]) {
      expect(refusedByQemuParser({ execute: "x", arguments: { s } })).toBeUndefined();
    }
  });

  test("tokens: counted as sent, the proxy's id one; QEMU's bound passes one under, refuses at it", () => {
    // {"execute":"x","arguments":{"x":[0,…]},"id":N}: 17 tokens outside the array's items and commas
    const ofTokens = (tokens: number) => ({ execute: "x", arguments: { x: new Array((tokens - 17) / 2).fill(0) } });
    expect(refusedByQemuParser(ofTokens(MAX_TOKEN_COUNT - 1))).toBeUndefined();
    expect(refusedByQemuParser({ ...ofTokens(MAX_TOKEN_COUNT - 1), id: "client" })).toBeUndefined();
    expect(refusedByQemuParser({ ...ofTokens(MAX_TOKEN_COUNT + 1), id: "client" })).toBe(
      "JSON token count limit exceeded: 2097153 tokens, QEMU parses fewer than 2097152 in one message",
    );
  });

  test("bytes: as sent in UTF-8, the proxy's id at its longest; QEMU's bound passes one under, refuses at it", () => {
    const json = `{"execute":"x","arguments":{"s":""},"id":${Number.MAX_SAFE_INTEGER}}`;
    const ofBytes = (bytes: number) => ({ execute: "x", arguments: { s: "é" + "a".repeat(bytes - json.length - 2) } });
    expect(refusedByQemuParser(ofBytes(MAX_TOKEN_SIZE - 1))).toBeUndefined();
    expect(refusedByQemuParser({ ...ofBytes(MAX_TOKEN_SIZE), id: 1 })).toBe(
      `JSON token size limit exceeded: ${MAX_TOKEN_SIZE} bytes, QEMU parses fewer than ${MAX_TOKEN_SIZE} in one message`,
    );
  });
});

describe("surelyParsed (the client's quick look at the text it sends)", () => {
  test("property: whatever it passes, refusedByQemuParser passes too", () => {
    fc.assert(
      fc.property(fc.dictionary(text, value, { maxKeys: 4 }), (args) => {
        const message = { execute: "x", arguments: args, id: "qmpctl-1" };
        if (surelyParsed(JSON.stringify(message))) expect(refusedByQemuParser(message)).toBeUndefined();
      }),
      { numRuns: 2000 },
    );
  });

  test("a short plain command passes; an escape, a noncharacter or a long text goes to the full check", () => {
    expect(surelyParsed('{"execute":"query-status","id":"qmpctl-2"}')).toBe(true);
    expect(surelyParsed(JSON.stringify({ p: "\ud83d" }))).toBe(false);
    expect(surelyParsed(JSON.stringify({ p: "\ud83f\udffe" }))).toBe(false);
    expect(surelyParsed(JSON.stringify({ p: "\ufdd0" }))).toBe(false);
    expect(surelyParsed(JSON.stringify({ p: "😀 é" }))).toBe(true);
    expect(surelyParsed(JSON.stringify({ p: "x".repeat(3000) }))).toBe(false);
  });
});

describe("duplicateKey", () => {
  test("a key twice in one object, at any depth, escaped or not; not the same key in two objects", () => {
    const duplicates = [
      '{"a": 1, "a": 2}',
      '{"x": {"b": 1, "c": [1, {"d": 1, "d": 2}]}}',
      '{"execute": "q", "\\u0065xecute": "quit"}',
    ];
    for (const text of duplicates) expect(duplicateKey(text)).toBe("duplicate key");
    const fine = [
      '{"a": {"a": {"a": 1}}, "b": [{"a": 1}, {"a": 2}]}',
      '{"s": "a\\", \\"a\\": {", "a": "[,]"}',
      '{"k": [1, 2, "k"], "k2": {}}',
    ];
    for (const text of fine) expect(duplicateKey(text)).toBeUndefined();
  });

  test("the same answer as a parse that counts keys, on any JSON object", () => {
    fc.assert(fc.property(fc.dictionary(fc.string(), fc.jsonValue()), fc.boolean(), (value, twice) => {
      let text = JSON.stringify(value);
      const keys = Object.keys(JSON.parse(text)); // as the text has them
      if (twice && keys.length > 0) text = `${text.slice(0, -1)},${JSON.stringify(keys[0])}:0}`; // one key again
      expect(duplicateKey(text)).toBe(twice && keys.length > 0 ? "duplicate key" : undefined);
    }));
  });
});
