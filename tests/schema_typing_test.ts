/** Typing and checking KEY=VALUE words by a schema, without a server. */
import { describe, expect, test } from "bun:test";
import { splitKeyValueWords } from "../lib/args.ts";
import type { QmpClient } from "../lib/client.ts";
import { ArgumentError, ProtocolError } from "../lib/errors.ts";
import { Schema } from "../lib/schema/model.ts";
import { digestSchema } from "../lib/schema/digest.ts";
import { typeArguments } from "../lib/schema/typing.ts";
import { SchemaView } from "../lib/schema/view.ts";
import { SMALL_SCHEMA } from "./helpers/schema_fixture.ts";

const schema = new Schema(digestSchema(SMALL_SCHEMA));
const typed = (words: string[], base?: Record<string, unknown>) =>
  typeArguments(schema, "typed", ["id=x", ...words], base);
const sent = (command: string, words: string[]) => JSON.stringify(typeArguments(schema, command, words));

function errorOf(fn: () => unknown): ArgumentError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(ArgumentError);
    return error as ArgumentError;
  }
  throw new Error("no error thrown");
}

describe("typeArguments: scalars", () => {
  test("a str argument keeps its text: id=123 is the string 123", () => {
    expect(sent("set_link", ["name=123", "up=false"])).toBe('{"name":"123","up":false}');
    expect(typeArguments(schema, "typed", ["id=true"])).toEqual({ id: "true" });
  });

  test.each([
    ["on", true],
    ["yes", true],
    ["true", true],
    ["off", false],
    ["no", false],
    ["false", false],
    ["OFF", false],
    ["Yes", true],
  ])(
    "bool accepts %p (in any case)",
    (text, value) => expect(typed([`flag=${text}`]).flag).toBe(value),
  );

  test("ints in JSON syntax and within int64/uint64, exactly beyond 2^53", () => {
    expect(typed(["count=-5"]).count).toBe(-5);
    expect(JSON.stringify(typed(["count=-0"]))).toBe('{"id":"x","count":-0}'); // as written, as QEMU reads it
    expect(JSON.stringify(typed(["count=18446744073709551615"]))).toBe('{"id":"x","count":18446744073709551615}');
    expect(errorOf(() => typed(["count=18446744073709551616"])).message).toBe(
      "typed: 'count=18446744073709551616': expected int within int64/uint64",
    );
    expect(errorOf(() => typed(["count=0010"])).message).toBe(
      "typed: 'count=0010': expected int (without leading zeros)",
    );
    expect(errorOf(() => typed(["count=1.5"])).message).toBe("typed: 'count=1.5': expected int");
  });

  test("numbers in JSON syntax, sent as written (no double rounds them)", () => {
    expect(typed(["ratio=1.5"]).ratio).toBe(1.5);
    for (const digits of ["-9007199254740993", "1.0000000000000000000001", "-0", "1.5e3", "1.5E+400"]) {
      expect(JSON.stringify(typed([`ratio=${digits}`]))).toBe(`{"id":"x","ratio":${digits}}`);
    }
    for (const text of ["fast", ".5", "1.", "NaN", "+1", "01"]) {
      expect(errorOf(() => typed([`ratio=${text}`])).message).toBe(`typed: 'ratio=${text}': expected number`);
    }
  });

  test("a bad bool names the accepted spellings", () => {
    expect(errorOf(() => sent("set_link", ["name=n", "up=maybe"])).message).toBe(
      "set_link: 'up=maybe': expected bool (true/false, on/off, yes/no)",
    );
  });

  test("enums take their values only (off stays a string), and a bad one lists them", () => {
    expect(typed(["mode=off"]).mode).toBe("off");
    expect(errorOf(() => typed(["mode=fsat"])).message).toBe(
      "typed: 'mode=fsat': expected one of fast, slow, off (did you mean fast?)",
    );
  });

  test("any: JSON where it parses, else a string; dotted keys nest", () => {
    expect(typed(["extra=123"]).extra).toBe(123);
    expect(typed(["extra=abc"]).extra).toBe("abc");
    expect(typed(["extra.a.b=[1]"]).extra).toEqual({ a: { b: [1] } });
    // Numbered keys under any: an array, as without a schema (the same command line, the same JSON).
    expect(typed(["extra.1=b", "extra.0=a"]).extra).toEqual(["a", "b"]);
    expect(typed(["extra.0.x=1", "extra.2=c"]).extra).toEqual({ 0: { x: 1 }, 2: "c" }); // a gap: keys
    expect(typed([], { extra: { 0: "kept" } } as Record<string, unknown>).extra).toEqual({ 0: "kept" }); // --args
  });
});

describe("typeArguments: structure", () => {
  test("alternate of object or str: the shape of the words picks the branch", () => {
    expect(typed(["ref=node0"]).ref).toBe("node0");
    expect(typed(["ref.driver=file", "ref.path=123"]).ref).toEqual({ driver: "file", path: "123" });
    expect(typed(['ref={"driver":"file"}']).ref).toEqual({ driver: "file" });
    expect(errorOf(() => typed(['ref={"path":"x"}'])).message).toBe(
      `typed: 'ref={"path":"x"}': missing member 'ref.driver'`,
    );
  });

  test("alternate of int, bool and [int]: JSON of a branch's type, or on/off for the bool", () => {
    expect(typed(["mixed=5"]).mixed).toBe(5);
    expect(typed(["mixed=on"]).mixed).toBe(true);
    expect(typed(["mixed=[1,2]"]).mixed).toEqual([1, 2]);
    expect(typed(["mixed.0=1", "mixed.1=2"]).mixed).toEqual([1, 2]);
    expect(errorOf(() => typed(["mixed=x"])).message).toBe(
      "typed: 'mixed=x': expected int, or bool (true/false, on/off, yes/no), or an array (JSON, or KEY.0=... KEY.1=...)",
    );
  });

  test("JSON in a word for an alternate or an array keeps its numbers as written (beyond 2^53 too)", () => {
    expect(JSON.stringify(typed(["mixed=18446744073709551615"]).mixed)).toBe("18446744073709551615");
    expect(JSON.stringify(typed(["mixed=[9007199254740993,-0]"]).mixed)).toBe("[9007199254740993,-0]");
    // As QEMU's parser reads it, 1.0 is a double: no int branch takes it.
    expect(errorOf(() => typed(["mixed=1.0"])).message).toStartWith("typed: 'mixed=1.0': expected int, or bool");
  });

  test("an int inside a word's JSON is within int64/uint64, said as for the word form (QEMU reads more as a double)", () => {
    expect(JSON.stringify(typed(["mixed=[18446744073709551615,-9223372036854775808]"]).mixed)).toBe(
      "[18446744073709551615,-9223372036854775808]",
    );
    for (const big of ["18446744073709551616", "-9223372036854775809", "99999999999999999999"]) {
      expect(errorOf(() => typed([`mixed=[${big}]`])).message).toBe(
        `typed: 'mixed=[${big}]': at mixed.0: expected int within int64/uint64`,
      );
      expect(errorOf(() => typed([`count=${big}`])).message).toBe(
        `typed: 'count=${big}': expected int within int64/uint64`,
      );
    }
  });

  test("a key given twice in a word's JSON is refused as for KEY:=JSON; a str keeps such text as it is", () => {
    for (const word of ['ref={"driver":"a","driver":"b"}', 'refs=[{"driver":"a","driver":"b"}]']) {
      expect(errorOf(() => typed([word])).message).toBe(`'${word}': the key "driver" is given twice in one object`);
    }
    for (const word of ['extra={"a":1,"a":2}', 'extra=[{"a":1,"a":2}]', 'extra.x={"a":1,"a":2}']) { // any
      expect(errorOf(() => typed([word])).message).toBe(`'${word}': the key "a" is given twice in one object`);
    }
    expect(typed(['list.0={"a":1,"a":2}']).list).toEqual(['{"a":1,"a":2}']);
    expect(typed(['nullable={"a":1,"a":2}']).nullable).toBe('{"a":1,"a":2}'); // JSON of no branch: the str's text
  });

  test("alternate of str and null: null is null, anything else a string", () => {
    expect(typed(["nullable=null"]).nullable).toBeNull();
    expect(typed(["nullable=123"]).nullable).toBe("123");
  });

  test("arrays from KEY.N= words or JSON, items typed", () => {
    expect(typed(["list.0=a", "list.1=123"]).list).toEqual(["a", "123"]);
    expect(typed(['list=["a","b"]']).list).toEqual(["a", "b"]);
    expect(typed(["refs.0.driver=a", "refs.1=" + JSON.stringify({ driver: "b" })]).refs).toEqual([
      { driver: "a" },
      { driver: "b" },
    ]);
    expect(errorOf(() => typed(["list=[1]"])).message).toBe("typed: 'list=[1]': at list.0: expected str");
    expect(errorOf(() => typed(['list="x"'])).message).toBe( // the word's own value: both of its forms named
      `typed: 'list="x"': expected an array (JSON, or KEY.0=... KEY.1=...)`,
    );
    expect(errorOf(() => typed(["list.1=a"])).message).toBe(
      "typed: list is an array: number its items list.0, list.1, ... without gaps",
    );
  });

  test("KEY.N= words over an array from --args go into its items: the others are kept, not dropped", () => {
    const base = { list: ["a", "b"], refs: [{ driver: "x", extra: 1 }] };
    expect(typed(["list.0=c"], base).list).toEqual(["c", "b"]);
    expect(typed(["list.2=d"], base).list).toEqual(["a", "b", "d"]);
    expect(typed(['list.1:="e"'], base).list).toEqual(["a", "e"]);
    expect(typed(["refs.0.driver=y"], base).refs).toEqual([{ driver: "y", extra: 1 }]);
    for (const word of ["list.3=z", 'list.3:="z"']) { // a gap would go out as null: KEY:=JSON, untyped, too
      expect(errorOf(() => typed([word], base)).message).toBe(
        `'${word}': list is an array of 2 items: number its items list.0, list.1, ... without gaps`,
      );
    }
  });

  test("a recursive object type walks as deep as the words go", () => {
    expect(typed(["child.name=a", "child.child.name=1"]).child).toEqual({ name: "a", child: { name: "1" } });
    expect(errorOf(() => typed(["child.child.name=b"])).message).toBe(
      "typed: missing argument 'child.name': expected str",
    );
  });

  test("flat union: the tag picks the branch whatever the order of the words", () => {
    expect(sent("add-thing", ["size=4096", "ro=on", "driver=alpha"])).toBe('{"size":4096,"ro":true,"driver":"alpha"}');
    expect(sent("add-thing", ["driver=beta", "path=123"])).toBe('{"driver":"beta","path":"123"}');
    expect(sent("add-thing", ["driver=gamma"])).toBe('{"driver":"gamma"}');
    expect(errorOf(() => sent("add-thing", ["driver=beta", "size=1"])).message).toBe(
      "add-thing: unknown argument 'size'",
    );
    expect(errorOf(() => sent("add-thing", ["size=1"])).message).toBe(
      "add-thing: missing argument 'driver': expected one of alpha, beta, gamma",
    );
    expect(errorOf(() => sent("add-thing", ["drivr=alpha", "size=1"])).message).toBe( // the tag misspelt
      "add-thing: missing argument 'driver' ('drivr' is no argument here: did you mean driver?)",
    );
  });

  test("--args and KEY:=JSON are sent as given, and count for mandatory arguments and tags", () => {
    expect(typeArguments(schema, "typed", ["count=1"], { id: 5, bogus: true })).toEqual({
      id: 5,
      bogus: true,
      count: 1,
    });
    expect(typed(['count:="many"', "whatever:=1"])).toEqual({ id: "x", count: "many", whatever: 1 });
    expect(typeArguments(schema, "add-thing", ["size=1"], { driver: "alpha" })).toEqual({ driver: "alpha", size: 1 });
  });

  test("a tag given as is that names no branch: its error, as for the word, not the branch member's", () => {
    const message = "add-thing: 'driver=alpa': expected one of alpha, beta, gamma (did you mean alpha?)";
    expect(errorOf(() => typeArguments(schema, "add-thing", ["size=1"], { driver: "alpa" })).message).toBe(message);
    expect(errorOf(() => typeArguments(schema, "add-thing", ['driver:="alpa"', "size=1"])).message).toBe(message);
    expect(errorOf(() => typeArguments(schema, "add-thing", ["driver=alpa", "size=1"])).message).toBe(message);
    for (const driver of ["beta", "gamma"]) { // a branch without size, or none at all: size is what is wrong
      expect(errorOf(() => typeArguments(schema, "add-thing", ["size=1"], { driver })).message).toBe(
        "add-thing: unknown argument 'size'",
      );
    }
    expect(typeArguments(schema, "add-thing", ["node=n"], { driver: "alpa" })).toEqual({ driver: "alpa", node: "n" });
  });
});

describe("typeArguments: errors name the problem and the closest names", () => {
  test.each([
    ["set_lnk", ["name=x"], "unknown command 'set_lnk' (did you mean set_link?)"],
    ["typed", ["idd=1"], "typed: unknown argument 'idd' (did you mean id?)"],
    ["typed", ["id=1", "ref.drive=x"], "typed: unknown argument 'ref.drive' (did you mean ref.driver?)"],
    ["typed", ["count=1"], "typed: missing argument 'id': expected str"],
    ["set_link", ["name=x"], "set_link: missing argument 'up': expected bool (true/false, on/off, yes/no)"],
    ["typed", ["id.x=1"], "typed: 'id.x=1': id is str, so nothing goes inside it"],
  ])("%s %p", (command, words, message) => {
    expect(errorOf(() => typeArguments(schema, command, words)).message).toBe(message);
  });
});

describe("Schema.checkEventData (a --match no named event can meet)", () => {
  /** Event THING: a union whose branches both have `x`, an int in one and a str in the other. */
  const unionSchema = new Schema(digestSchema([
    ...SMALL_SCHEMA,
    { name: "THING", "meta-type": "event", "arg-type": "90" },
    {
      name: "90",
      "meta-type": "object",
      members: [{ name: "kind", type: "91" }],
      tag: "kind",
      variants: [{ case: "a", type: "92" }, { case: "b", type: "93" }],
    },
    { name: "91", "meta-type": "enum", values: ["a", "b"], members: [{ name: "a" }, { name: "b" }] },
    { name: "92", "meta-type": "object", members: [{ name: "x", type: "int" }, { name: "info", type: "94" }] },
    { name: "94", "meta-type": "object", members: [{ name: "status", type: "str" }] },
    { name: "93", "meta-type": "object", members: [{ name: "x", type: "str" }, { name: "list", type: "[int]" }] },
  ]));
  const check = (word: string) => () => unionSchema.checkEventData(["THING"], splitKeyValueWords([word]));

  test("a member two branches have with two types: a value either type takes is accepted", () => {
    expect(check("x=5")).not.toThrow();
    expect(check("x=text")).not.toThrow(); // the str branch's
    expect(check("x:=5")).not.toThrow(); // the int branch's
    expect(check("list.0=3")).not.toThrow(); // an array's item, by its index
  });

  test("what no branch can have is refused, saying why", () => {
    expect(check("kind=zzz")).toThrow('its kind is one of a, b, never "zzz"');
    expect(check("x.y=1")).toThrow("'x' is a whole number, with nothing inside");
    expect(check("list.first=1")).toThrow("'list' is an array: 'first' is no index into it");
    expect(check("list.0=abc")).toThrow('its list.0 is a whole number, never "abc"');
    expect(check("y=1")).toThrow("it has no 'y' in its data");
  });

  test("a whole number's member never equals a fraction; an object's or an array's never a string or a number", () => {
    expect(check("list.0=1.5")).toThrow('its list.0 is a whole number, never "1.5"');
    for (const whole of ["2.0", "2e3", "1.5e1", "0.0e-5", "-3", "1.00000000000000000000"]) {
      expect(check(`list.0=${whole}`)).not.toThrow(); // 2.0 is 2 to the matcher
    }
    expect(check("list.0=25e-1")).toThrow('never "25e-1"');
    expect(check("list.0:=18446744073709551615")).not.toThrow(); // beyond 2^53, kept exactly
    expect(check("list.0:=1.00000000000000000001")).toThrow(
      "its list.0 is a whole number, never 1.00000000000000000001",
    );
    expect(check("list=5")).toThrow('its list is an array, never "5"');
    expect(check("list:=[5]")).not.toThrow();
    expect(check("info=completed")).toThrow(
      'its info is an object, never "completed" (a member inside it, as info.status=VALUE, is matched on its own)',
    );
    expect(check('info:={"status": "x"}')).not.toThrow();
    // Compared whole: an object without a member every such object has, or with one none has, never equals.
    expect(check("info:={}")).toThrow("its info is compared whole, and {} has no 'status' (a member inside it");
    expect(check('info:={"status": "x", "stat": 1}')).toThrow(
      `its info is compared whole, and {"status": "x", "stat": 1} has 'stat', which none has (did you mean status?)`,
    );
    expect(check("info.status=completed")).not.toThrow();
  });
});

describe("SchemaView.commandNames (the shell's TAB before a command)", () => {
  /** A client whose query-commands returns `list`. */
  const answering = (list: unknown) => ({ execute: () => Promise.resolve(list) }) as unknown as QmpClient;
  const signal = new AbortController().signal;

  test("QEMU's list of commands gives their names", async () => {
    expect(await new SchemaView(answering([{ name: "stop" }, { name: "cont" }])).commandNames(signal))
      .toEqual(["stop", "cont"]);
  });

  test("an answer that is no list of commands is a ProtocolError (exit 3), not a crash", async () => {
    for (const list of [{ name: "stop" }, [1], null]) {
      await expect(new SchemaView(answering(list)).commandNames(signal)).rejects.toBeInstanceOf(ProtocolError);
    }
  });
});
