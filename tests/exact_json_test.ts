/** parseExact and sameNumber: numbers kept as written, compared exactly. */
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { isRawNumber, mayChangeAt, parseExact, sameNumber } from "../lib/exact_json.ts";

describe("parseExact", () => {
  test("a number a double would change prints back as written", () => {
    const text =
      '{"u64":18446744073709551615,"i64":-9223372036854775808,"huge":1e400,"tiny":5e-324,"g17":0.10000000000000001,' +
      '"negzero":-0,"trail":1.50,"exp":1E+2,"list":[12345678901234567890,2.0]}';
    expect(JSON.stringify(parseExact(text))).toBe(text);
  });

  test("ordinary numbers stay plain numbers", () => {
    const value = parseExact('{"a": 1, "b": -2.5, "c": 1e-7, "d": 9007199254740991, "s": "1.50 and -0"}');
    expect(value).toEqual({ a: 1, b: -2.5, c: 1e-7, d: 9007199254740991, s: "1.50 and -0" });
    expect(isRawNumber((value as Record<string, unknown>).d)).toBe(false);
    expect(isRawNumber((parseExact("[18446744073709551615]") as unknown[])[0])).toBe(true);
  });

  test("a number alone (a --match or KEY:=JSON value) is kept too", () => {
    expect(JSON.stringify(parseExact("18446744073709551615"))).toBe("18446744073709551615");
    expect(JSON.stringify(parseExact(" 1e400"))).toBe("1e400");
    expect(parseExact("42")).toBe(42);
  });

  test("digits inside strings are left alone (and only cost the slower parse)", () => {
    expect(parseExact('{"a": ":18446744073709551615", "b": "[1.50"}')).toEqual({
      a: ":18446744073709551615",
      b: "[1.50",
    });
  });

  test("property: compact JSON of any value prints back byte for byte", () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        const text = JSON.stringify(value);
        expect(JSON.stringify(parseExact(text))).toBe(text);
      }),
      { numRuns: 500 },
    );
  });

  test("property: any JSON number text prints back as written", () => {
    const digits = fc.stringMatching(/^(0|[1-9][0-9]{0,30})$/);
    const number = fc.tuple(
      fc.constantFrom("", "-"),
      digits,
      fc.option(fc.stringMatching(/^[0-9]{1,25}$/)),
      fc.option(fc.tuple(fc.constantFrom("e", "E"), fc.constantFrom("", "+", "-"), fc.stringMatching(/^[0-9]{1,4}$/))),
    ).map(([sign, whole, fraction, exponent]) =>
      `${sign}${whole}${fraction === null ? "" : "." + fraction}${exponent === null ? "" : exponent.join("")}`
    );
    fc.assert(
      fc.property(number, (n) => {
        expect(JSON.stringify(parseExact(`{"n": ${n}, "l": [${n}]}`))).toBe(`{"n":${n},"l":[${n}]}`);
      }),
      { numRuns: 300 },
    );
  });
});

describe("mayChangeAt: one search over many messages", () => {
  test("finds the next place a number may change, from a given offset; -1 when there is none", () => {
    const text = '{"a": 1}\n{"b": 18446744073709551615}\n{"c": 2}\n{"d": [0.5]}\n';
    const second = text.indexOf('{"b"'), fourth = text.indexOf('{"d"');
    expect(mayChangeAt(text)).toBe(text.indexOf(":", second));
    expect(mayChangeAt(text, text.indexOf('{"c"'))).toBe(text.indexOf("[", fourth));
    expect(mayChangeAt(text, fourth + 7)).toBe(-1);
    expect(mayChangeAt('{"seconds": 1764529200, "microseconds": 100000}')).toBe(-1);
  });

  test("parseExact with the hint: false parses plainly, true keeps the text, absent finds out", () => {
    const text = '{"g": 0.10000000000000001}';
    expect(JSON.stringify(parseExact(text, false))).toBe('{"g":0.1}');
    expect(JSON.stringify(parseExact(text, true))).toBe('{"g":0.10000000000000001}');
    expect(JSON.stringify(parseExact(text))).toBe('{"g":0.10000000000000001}');
    expect(parseExact('{"n": 1}', true)).toEqual({ n: 1 });
  });

  test("a search that stopped far into one text does not hide a number at the start of the next", () => {
    const long = " ".repeat(100) + '{"a": 1.5}';
    expect(mayChangeAt(long)).toBe(104);
    expect(JSON.stringify(parseExact('{"g": 0.10000000000000001}'))).toBe('{"g":0.10000000000000001}');
    expect(JSON.stringify(parseExact("1e400"))).toBe("1e400");
  });

  test("property: a message with no place found in the whole text parses exactly without the search", () => {
    const message = fc.dictionary(fc.string(), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 4 });
    fc.assert(
      fc.property(fc.array(message, { minLength: 1, maxLength: 5 }), (messages) => {
        const lines = messages.map((m) => JSON.stringify(m));
        const text = lines.join("\n") + "\n";
        let at = 0;
        for (const line of lines) {
          const change = mayChangeAt(text, at);
          const hint = change >= 0 && change < at + line.length;
          expect(JSON.stringify(parseExact(line, hint))).toBe(JSON.stringify(parseExact(line)));
          at += line.length + 1;
        }
      }),
      { numRuns: 300 },
    );
  });
});

describe("sameNumber", () => {
  test("equal values in any spelling are the same; one unit apart at 2^64 are not", () => {
    expect(sameNumber("18446744073709551615", "18446744073709551615")).toBe(true);
    expect(sameNumber("18446744073709551615", "18446744073709551616")).toBe(false);
    expect(sameNumber("18446744073709551615", "18446744073709552000")).toBe(false);
    expect(sameNumber("1.50", "1.5")).toBe(true);
    expect(sameNumber("1e2", "100")).toBe(true);
    expect(sameNumber("100.0e-2", "1")).toBe(true);
    expect(sameNumber("-0", "0")).toBe(true);
    expect(sameNumber("0.000", "0e5")).toBe(true);
    expect(sameNumber("-1", "1")).toBe(false);
    expect(sameNumber("0.10000000000000001", "0.1")).toBe(false);
    expect(sameNumber("1e400", "1e400")).toBe(true);
    expect(sameNumber("x", "x")).toBe(false);
  });
});
