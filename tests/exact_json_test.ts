/** parseExact and sameNumber: numbers kept as written, compared exactly. */
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { ArgumentError } from "../lib/errors.ts";
import {
  changeFinder,
  isRawNumber,
  mayChangeAt,
  parseExact,
  requestJson,
  sameNumber,
  wholeDifference,
} from "../lib/exact_json.ts";

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

  test("a whole number beyond 2^53 is kept as its digits, also when its double prints the same digits", () => {
    const value = parseExact('{"a": 1796148159823963000, "b": 9007199254740992}') as Record<string, unknown>;
    expect(isRawNumber(value.a) && BigInt(value.a.rawJSON)).toBe(1796148159823963000n); // the double is ...2880
    expect(isRawNumber(value.b)).toBe(true);
    fc.assert(
      fc.property(fc.bigInt({ min: 2n ** 53n, max: 2n ** 70n }), (n) => {
        const parsed = parseExact(`[${n}]`) as unknown[];
        expect(isRawNumber(parsed[0]) ? BigInt(parsed[0].rawJSON) : BigInt(parsed[0] as number)).toBe(n);
      }),
      { numRuns: 300 },
    );
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
    const text = '{"a": 1}\n{"b": 18446744073709551615}\n{"c": 2}\n{"d": [0.5]}\n{"e": -0}\n';
    // A short text is scanned: the place is the number's first character.
    expect(mayChangeAt(text)).toBe(text.indexOf("18446744073709551615"));
    expect(mayChangeAt(text, text.indexOf('{"c"'))).toBe(text.indexOf("0.5"));
    expect(mayChangeAt(text, text.indexOf('{"e"'))).toBe(text.indexOf("-0"));
    expect(mayChangeAt(text, text.indexOf('{"e"') + 8)).toBe(-1);
    expect(mayChangeAt('{"seconds": 1764529200, "microseconds": 100000, "n": -123456789012345}')).toBe(-1);
    // A long one is searched by the patterns: the place is the number's first 16 digits, the digit
    // before its fraction or exponent, or its `-0`.
    const long = '{"pad": "' + "x".repeat(5000) + '"}\n' + text;
    const at = long.length - text.length;
    expect(mayChangeAt(long)).toBe(at + text.indexOf("18446744073709551615"));
    expect(mayChangeAt(long, at + text.indexOf('{"c"'))).toBe(at + text.indexOf("0.5"));
    const tail = text + '{"pad": "' + "x".repeat(5000) + '"}\n{"z": 2.5}\n' + text.repeat(100);
    expect(mayChangeAt(tail, text.length)).toBe(tail.indexOf("2.5"));
  });

  test("a short text: digits inside strings are no number, and a newline ends a string", () => {
    const greeting = '{"QMP": {"version": {"qemu": {"micro": 19, "minor": 2, "major": 7}, ' +
      '"package": "Debian 1:7.2+dfsg-7+deb12u18"}, "capabilities": ["oob"]}}';
    expect(mayChangeAt(greeting)).toBe(-1);
    expect(mayChangeAt('{"s": "a \\"1.5\\" b", "t": "1e5"}')).toBe(-1); // escaped quotes stay inside
    const garbage = '{"a": "unterminated\n{"b": 2.5}\n';
    expect(mayChangeAt(garbage)).toBe(garbage.indexOf("2.5"));
    expect(mayChangeAt("1e400")).toBe(0);
    expect(mayChangeAt("[1, 12345678901234567]")).toBe(4);
  });

  test("parseExact with the hint: false parses plainly, true keeps the text, absent finds out", () => {
    const text = '{"g": 0.10000000000000001}';
    expect(JSON.stringify(parseExact(text, false))).toBe('{"g":0.1}');
    expect(JSON.stringify(parseExact(text, true))).toBe('{"g":0.10000000000000001}');
    expect(JSON.stringify(parseExact(text))).toBe('{"g":0.10000000000000001}');
    expect(parseExact('{"n": 1}', true)).toEqual({ n: 1 });
  });

  test("a search that stopped far into one text does not hide a number at the start of the next", () => {
    const long = " ".repeat(5000) + '{"a": 1.5}'; // long: the patterns, which keep where they stopped
    expect(mayChangeAt(long)).toBe(5006);
    expect(JSON.stringify(parseExact('{"g": 0.10000000000000001}'))).toBe('{"g":0.10000000000000001}');
    expect(JSON.stringify(parseExact("1e400"))).toBe("1e400");
  });

  test("property: one long text searched from place after place finds what a fresh search finds", () => {
    const message = fc.dictionary(fc.string(), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 4 });
    const number = fc.constantFrom("18446744073709551615", "-0", "1.5", "2e3", "7", "1234567890123456");
    fc.assert(
      fc.property(
        fc.array(fc.tuple(message, number), { minLength: 3, maxLength: 8 }), // past the scanned tail
        fc.array(fc.nat(), { minLength: 1, maxLength: 40 }),
        (messages, places) => {
          const lines = messages.map(([m, n]) =>
            `{"pad": "${"x".repeat(3000)}", "m": ${JSON.stringify(m)}, "n": ${n}}`
          );
          const text = lines.join("\n") + "\n";
          const finder = changeFinder(text);
          // Each line parses exactly with the hint found for it (the framer's use).
          for (let at = 0, i = 0; i < lines.length; at += lines[i++].length + 1) {
            const change = finder(at);
            const hint = change >= 0 && change < at + lines[i].length;
            expect(JSON.stringify(parseExact(lines[i], hint))).toBe(JSON.stringify(parseExact(lines[i])));
          }
          const froms = places.map((p) => p % text.length);
          // In order, as the framer searches a chunk's lines; then in any order.
          for (const from of [...froms].sort((a, b) => a - b).concat(froms)) {
            expect(finder(from)).toBe(mayChangeAt(text, from));
          }
        },
      ),
      { numRuns: 200 },
    );
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

describe("parseExact keeps every number as written, scanned (short text) or searched (long)", () => {
  const digits = (min: number, max: number) =>
    fc.array(fc.constantFrom(..."0123456789"), { minLength: min, maxLength: max }).map((d) => d.join(""));
  const numberText = fc.tuple(
    fc.boolean(),
    fc.oneof(fc.constant("0"), fc.tuple(fc.constantFrom(..."123456789"), digits(0, 24)).map(([a, b]) => a + b)),
    fc.option(digits(1, 20)),
    fc.option(fc.tuple(fc.constantFrom("e", "E", "e+", "e-"), digits(1, 3))),
  ).map(([minus, whole, fraction, exponent]) =>
    `${minus ? "-" : ""}${whole}${fraction === null ? "" : "." + fraction}${exponent === null ? "" : exponent.join("")}`
  );
  // Strings that look like numbers, with quotes and backslashes, between the numbers.
  const member = fc.oneof(numberText, fc.string().map((t) => JSON.stringify(t + ' 1.5 -0 \\ " 12345678901234567')));

  test("property: JSON.stringify(parseExact(text)) gives the text back", () => {
    fc.assert(
      fc.property(fc.array(member, { minLength: 1, maxLength: 8 }), fc.boolean(), (values, long) => {
        const body = values.map((v, i) => `"k${i}":${v}`).join(",");
        const text = `{${long ? `"pad":"${"x".repeat(5000)}",` : ""}${body},"list":[${values.join(",")}]}`;
        expect(JSON.stringify(parseExact(text))).toBe(text);
      }),
      { numRuns: 500 },
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

describe("wholeDifference", () => {
  test.each([
    ["18446744073709551615", "5", "18446744073709551610"],
    ["10", "3", "7"],
    ["9007199254740993", "9007199254740992", "1"],
    ["3", "10", "-7"],
  ])("%s - %s = %s, exactly", (a, b, difference) => {
    expect(JSON.stringify(wholeDifference(parseExact(a), parseExact(b)))).toBe(difference);
  });

  test("not a whole number: undefined", () => {
    expect(wholeDifference(parseExact("1.5"), 1)).toBeUndefined();
    expect(wholeDifference("7", 1)).toBeUndefined();
  });
});

describe("requestJson", () => {
  const sent = (args: Record<string, unknown>) => requestJson("x", { execute: "x", arguments: args });

  test("every whole number past 2^53 goes out as the integer it holds, however large", () => {
    expect(sent({ n: [2 ** 60, 2 ** 64, -(2 ** 64), 1e21, Number.MAX_VALUE] })).toBe(
      `{"execute":"x","arguments":{"n":[1152921504606846976,18446744073709551616,-18446744073709551616,` +
        `1000000000000000000000,${BigInt(Number.MAX_VALUE)}]}}`,
    );
    expect(sent({ n: [0.5, 1e-7, 9007199254740991] })).toBe(
      '{"execute":"x","arguments":{"n":[0.5,1e-7,9007199254740991]}}',
    );
  });

  test("NaN and ±Infinity, which JSON.stringify sends as null, are an ArgumentError naming the value", () => {
    for (const [value, text] of [[NaN, "NaN"], [Infinity, "Infinity"], [-Infinity, "-Infinity"]] as const) {
      expect(() => sent({ rate: value })).toThrow(ArgumentError);
      expect(() => sent({ rate: value })).toThrow(
        `x: its arguments are not JSON: "rate" is ${text}, which JSON has no number for`,
      );
    }
    expect(sent({ none: null, path: "/dev/null" })).toBe(
      '{"execute":"x","arguments":{"none":null,"path":"/dev/null"}}',
    );
  });
});
