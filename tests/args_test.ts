/** KEY=VALUE words and --args JSON (lib/args.ts). */
import { describe, expect, test } from "bun:test";
import {
  argumentTree,
  buildArguments,
  parseArgumentsJson,
  sentAsJsonHint,
  splitKeyValueWords,
  type ValueTyper,
} from "../lib/args.ts";
import { ArgumentError, NotKeyValueError } from "../lib/errors.ts";

function errorOf(run: () => unknown): ArgumentError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(ArgumentError);
    expect((error as ArgumentError).code).toBe("ARGUMENT");
    return error as ArgumentError;
  }
  throw new Error("no error");
}

describe("buildArguments", () => {
  test("words into an array from --args: an item replaced or appended, the others kept; a gap refused", () => {
    const base = { keys: [{ type: "qcode", data: "a" }, { type: "qcode", data: "c" }] };
    expect(buildArguments(["keys.1.data=b", 'keys.2:={"type":"number","data":30}'], base)).toEqual({
      keys: [{ type: "qcode", data: "a" }, { type: "qcode", data: "b" }, { type: "number", data: 30 }],
    });
    expect(() => buildArguments(['keys.3:={"type":"number","data":30}'], base)).toThrow(
      "keys is an array of 2 items: number its items keys.0, keys.1, ... without gaps",
    );
  });

  test("a value that parses as JSON is that JSON, else a string", () => {
    expect(
      buildArguments([
        "n=42",
        "f=1.5",
        "t=true",
        "z=null",
        'o={"a":[1]}',
        'l=[1,"x"]',
        'q="quoted"',
        "s=hello world",
        "e=",
        "lead=0010",
        "eq=a=b",
      ]),
    ).toEqual({
      n: 42,
      f: 1.5,
      t: true,
      z: null,
      o: { a: [1] },
      l: [1, "x"],
      q: "quoted",
      s: "hello world",
      e: "",
      lead: "0010", // not JSON (a leading zero), so the text as typed
      eq: "a=b", // the first = splits
    });
  });

  test("dotted keys build nested objects, siblings merge", () => {
    expect(buildArguments(["file.driver=file", "file.filename=/tmp/x", "node-name=n0", "a.b.c=1", "a.b.d=2"]))
      .toEqual({ file: { driver: "file", filename: "/tmp/x" }, "node-name": "n0", a: { b: { c: 1, d: 2 } } });
  });

  test("KEY:=JSON always takes the raw JSON", () => {
    expect(buildArguments(["size:=4096", 'opts:={"x": [true]}', 's:="0010"', "a.b:=null"])).toEqual({
      size: 4096,
      opts: { x: [true] },
      s: "0010",
      a: { b: null },
    });
  });

  test("KEY:=JSON that is not JSON is an error naming the word", () => {
    expect(errorOf(() => buildArguments(["size:=abc"])).message).toStartWith(
      "'size:=abc': invalid JSON at line 1, column 1: ",
    );
    expect(errorOf(() => buildArguments(["size:="])).message).toStartWith("'size:=': invalid JSON at its end: ");
  });

  test("a key given twice in a KEY=VALUE word's JSON is refused as for KEY:=JSON (JSON.parse would keep the last)", () => {
    const cases = [
      ['file={"driver":"null-co","driver":"file"}', "driver"],
      ['v=[{"a":1,"a":2}]', "a"], // inside an array
      ['v.x={"o":{"\\u0061":1,"a":2}}', "a"], // nested, and the same key once escaped
    ];
    for (const [word, key] of cases) {
      for (const given of [word, word.replace("=", ":=")]) {
        expect(errorOf(() => buildArguments([given])).message).toBe(
          `'${given}': the key "${key}" is given twice in one object`,
        );
      }
    }
    expect(buildArguments(['s="{\\"a\\":1,\\"a\\":2}"', "t={a:1,a:2}"])).toEqual({ // a JSON string, or no JSON: text
      s: '{"a":1,"a":2}',
      t: "{a:1,a:2}",
    });
  });

  test("words are merged over --args, a word winning over the same key", () => {
    const base = { a: 1, b: { c: 2, d: 3 }, keep: "yes", leaf: 5 };
    expect(buildArguments(["a=10", "b.c=20", "new=x", "leaf.inner=1"], base)).toEqual({
      a: 10,
      b: { c: 20, d: 3 },
      keep: "yes",
      new: "x",
      leaf: { inner: 1 },
    });
    expect(base).toEqual({ a: 1, b: { c: 2, d: 3 }, keep: "yes", leaf: 5 }); // not modified
  });

  test("no words over --args gives --args back", () => {
    expect(buildArguments([], { a: [1] })).toEqual({ a: [1] });
  });

  test("a ValueTyper sees each value's key path and text; KEY:=JSON bypasses it", () => {
    const seen: [readonly string[], string][] = [];
    const typer: ValueTyper = (path, text) => {
      seen.push([path, text]);
      return `typed:${text}`;
    };
    expect(argumentTree(["id=123", "file.ro=false", "raw:=1"], {}, typer)).toEqual({
      id: "typed:123",
      file: { ro: "typed:false" },
      raw: 1,
    });
    expect(seen).toEqual([[["id"], "123"], [["file", "ro"], "false"]]);
  });

  test("without a schema, numbered keys 0, 1, ... make an array (as QEMU's keyval does); other keys an object", () => {
    expect(buildArguments(["arr.1=b", "arr.0=a", "n.0.x=1", "n.1:=[2]"])).toEqual({
      arr: ["a", "b"],
      n: [{ x: 1 }, [2]],
    });
    expect(buildArguments(["o.0=a", "o.2=c"])).toEqual({ o: { 0: "a", 2: "c" } }); // a gap: keys, as given
    expect(buildArguments(["o.0=a", "o.01=b"])).toEqual({ o: { 0: "a", "01": "b" } });
    expect(buildArguments([], { o: { 0: "a" } })).toEqual({ o: { 0: "a" } }); // --args is sent as given
    expect(buildArguments(['j:={"0": 1}'])).toEqual({ j: { 0: 1 } });
    expect(argumentTree(["arr.0=a"], {}, (_, text) => text)).toEqual({ arr: { 0: "a" } }); // for a schema to say
  });

  test("sentAsJsonHint: the word whose text went out as JSON where QEMU wanted a string, by its key or alone", () => {
    const desc = (p: string) => `Invalid parameter type for '${p}', expected: string`;
    expect(sentAsJsonHint(desc("append"), ["path=/machine", "property=append", "value=123"])).toBe(
      ` (value=123 went out as JSON, not as text: value:='"123"' sends the string)`,
    );
    expect(sentAsJsonHint(desc("serial"), ["bootindex=1", "serial=7"])).toContain(`serial:='"7"'`); // by its key
    expect(sentAsJsonHint(desc("v"), ['v={"a":"b"}'])).toBe( // the string's quotes escaped: it is JSON
      ` (v={"a":"b"} went out as JSON, not as text: v:='"{\\"a\\":\\"b\\"}"' sends the string)`,
    );
    expect(sentAsJsonHint(desc("x"), ["a=1", "b=true"])).toBe(""); // which one: not said
    expect(sentAsJsonHint(desc("x"), ["a:=1"])).toBe(""); // given as JSON on purpose
    expect(sentAsJsonHint("Invalid parameter type for 'x', expected: integer", ["x=abc"])).toBe("");
    // A str's text that is JSON with a key given twice (sent as text): the hint looks past it, without an error.
    expect(sentAsJsonHint(desc("b"), ['a={"k":1,"k":2}', "b=5"])).toContain("b:='\"5\"'");
  });

  test("keys like __proto__ are plain keys and never touch a prototype", () => {
    const args = buildArguments(["__proto__.polluted=1", "constructor.name=x"]);
    expect(JSON.stringify(args)).toBe('{"__proto__":{"polluted":1},"constructor":{"name":"x"}}');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  test.each([
    [["noequals"], "'noequals' is not KEY=VALUE"],
    [["a=1", "--flag"], "'--flag' is not KEY=VALUE"],
    [["=1"], "'=1' has an empty key"],
    [[":=1"], "':=1' has an empty key"],
    [["a.=1"], "'a.=1' has an empty part in its key"],
    [[".a=1"], "'.a=1' has an empty part in its key"],
    [["a..b=1"], "'a..b=1' has an empty part in its key"],
    [["a=1", "a=2"], "'a=2' sets a again (after 'a=1')"],
    [["a.b=1", "a.b:=2"], "'a.b:=2' sets a.b again (after 'a.b=1')"],
    [["a=1", "a.b=2"], "'a.b=2' goes inside a, which 'a=1' set to a value"],
    [["a.b=1", "a.b.c.d=2"], "'a.b.c.d=2' goes inside a.b, which 'a.b=1' set to a value"],
    [["a.b=2", "a=1"], "'a=1' sets a to a value, but 'a.b=2' put keys inside it"],
    [["x.y.z=2", "x.y=1"], "'x.y=1' sets x.y to a value, but 'x.y.z=2' put keys inside it"],
  ])("%p is an error: %p", (words, message) => {
    expect(errorOf(() => buildArguments(words)).message).toBe(message);
  });

  test("a word without = is a NotKeyValueError that holds the word; the library names no option of the CLI's", () => {
    const error = errorOf(() => buildArguments(['{"a": 1}']));
    expect(error).toBeInstanceOf(NotKeyValueError);
    expect((error as NotKeyValueError).word).toBe('{"a": 1}');
    expect(error.message).toBe(`'{"a": 1}' is not KEY=VALUE`);
  });

  test("keys that share a prefix but not a dotted part are distinct", () => {
    expect(buildArguments(["ab=1", "a.b=2", "a.bc=3"])).toEqual({ ab: 1, a: { b: 2, bc: 3 } });
  });
});

describe("splitKeyValueWords", () => {
  test("splits each word into its key path, text and rawness", () => {
    expect(splitKeyValueWords(["a.b=1", "c:=[2]", "d:e=f"])).toEqual([
      { word: "a.b=1", path: ["a", "b"], text: "1", raw: false },
      { word: "c:=[2]", path: ["c"], text: "[2]", raw: true },
      { word: "d:e=f", path: ["d:e"], text: "f", raw: false },
    ]);
  });
});

describe("parseArgumentsJson", () => {
  test("an object is returned as is", () => {
    expect(parseArgumentsJson('{"device": "ide0-hd0", "n": [1]}', "--args")).toEqual({ device: "ide0-hd0", n: [1] });
  });

  test.each([
    ['{"path": "/", property}', "at line 1, column 15"],
    ['{"a": 1,}', "at line 1, column 9"],
    ["[1,]", "at line 1, column 4"],
    ['{"a": 1}x', "at line 1, column 9"],
    ['{"a"  1}', "at line 1, column 7"],
    ['{"a": "\\x"}', "at line 1, column 7"],
    ['{\n  "a": [1, 2\n  tru]}', "at line 3, column 3"],
    ['{"a": {"b": [1, ', "at its end"],
  ])("JSON that does not parse, %p, says where it broke: %p", (text, place) => {
    expect(errorOf(() => parseArgumentsJson(text, "--args")).message).toStartWith(`--args: invalid JSON ${place}: `);
  });

  test("text after a whole JSON value is said to follow it, not blamed on the value (the runtime's own words)", () => {
    expect(errorOf(() => parseArgumentsJson('{"name": "nic1"} x', "--args")).message).toBe(
      "--args: invalid JSON at line 1, column 18: more follows the JSON value (one value is expected)",
    );
    expect(errorOf(() => parseArgumentsJson('{"a": 1}\n{"b": 2}\n', "--args")).message).toBe(
      "--args: invalid JSON at line 2, column 1: more follows the JSON value (one value is expected)",
    );
    expect(errorOf(() => parseArgumentsJson('{"a": 1,}', "--args")).message).not.toContain("more follows");
  });

  test("keys written without quotes, as in JavaScript, are said to need them; the engine's 'JSON Parse error' prefix is not repeated", () => {
    for (const [text, key] of [["{path: '/machine'}", "path"], ['{"a": 1, node-name: 2}', "node-name"]]) {
      const { message } = errorOf(() => parseArgumentsJson(text, "--args"));
      expect(message).toEndWith(` (JSON quotes its keys: {"${key}": ...})`);
      expect(message).not.toContain("JSON Parse error");
    }
    for (const text of ['{"a": tru}', '{"a": [1, foo]}', '{"a": ["{", x]}']) { // a value, not a key
      expect(errorOf(() => parseArgumentsJson(text, "--args")).message).not.toContain("quotes its keys");
    }
  });

  test("empty or blank text is said to hold no JSON, not a parse error at its end; other Unicode blanks are JSON errors", () => {
    for (const text of ["", " \n\t\r"]) {
      expect(errorOf(() => parseArgumentsJson(text, "--args")).message).toBe(
        "--args holds no JSON, only blanks or nothing (an object is needed: {} for none)",
      );
    }
    for (const text of ["\u00a0", "\u2028"]) { // JSON's blanks are four: these are not JSON at all
      expect(errorOf(() => parseArgumentsJson(text, "--args")).message).toStartWith(
        "--args: invalid JSON at line 1, column 1: ",
      );
    }
  });

  test("the source named is the one given; KEY:=JSON names its word", () => {
    expect(errorOf(() => parseArgumentsJson("{", "stdin")).message).toStartWith("stdin: invalid JSON at its end: ");
    expect(errorOf(() => buildArguments(["a:=[1 2]"])).message).toStartWith(
      "'a:=[1 2]': invalid JSON at line 1, column 4: ",
    );
  });

  test("JSON nested too deep to locate the error still fails cleanly", () => {
    expect(errorOf(() => parseArgumentsJson("[".repeat(100_000), "--args")).message).toStartWith(
      "--args: invalid JSON",
    );
  });

  test.each([
    ["[1,2]", "--args must be a JSON object, not an array"],
    ["null", "--args must be a JSON object, not null"],
    ["42", "--args must be a JSON object, not 42"],
    ['"x"', '--args must be a JSON object, not "x"'],
  ])("%p is not an object", (text, message) => {
    expect(errorOf(() => parseArgumentsJson(text, "--args")).message).toBe(message);
  });
});

describe("buildArguments on many words", () => {
  test("40 000 words, flat and nested, take linear time (a generous 5 s bound; quadratic took minutes)", () => {
    const words = Array.from({ length: 40_000 }, (_, i) => (i % 2 ? `k${i}=${i}` : `o${i % 100}.k${i}=x`));
    const started = performance.now();
    const args = buildArguments(words);
    expect(performance.now() - started).toBeLessThan(5000);
    expect(Object.keys(args)).toHaveLength(20_000 + 50);
    expect(() => buildArguments([...words, "o2=1"])).toThrow(
      "'o2=1' sets o2 to a value, but 'o2.k2=x' put keys inside it",
    );
  }, 20_000);
});
