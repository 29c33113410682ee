/** The digest, describe, signatures, completion of arguments and closest names, without a server. */
import { describe, expect, test } from "bun:test";
import { closestNames } from "../lib/closest.ts";
import { ArgumentError, ProtocolError } from "../lib/errors.ts";
import { Schema } from "../lib/schema/model.ts";
import { completeArgumentWord } from "../lib/schema/complete.ts";
import { describe as describeName, signature } from "../lib/schema/describe.ts";
import { commandPart, digestSchema, isDigest } from "../lib/schema/digest.ts";
import { SMALL_SCHEMA } from "./helpers/schema_fixture.ts";

const digest = digestSchema(SMALL_SCHEMA);
const schema = new Schema(digest);

describe("digestSchema and isDigest", () => {
  test("commands, events and types by name; optional members and features kept", () => {
    expect(schema.commandNames()).toEqual(["add-thing", "query-status", "set_link", "typed"]);
    expect(schema.eventNames()).toEqual(["BLOCK_JOB_COMPLETED", "SHUTDOWN", "STOP"]);
    expect(digest.commands.typed).toEqual({ args: "2", returns: "any", features: ["unstable"] });
    expect(digest.types["10"]).toEqual({
      kind: "enum",
      values: ["alpha", "beta", "gamma"],
      features: { gamma: ["deprecated"] },
    });
    expect(isDigest(digest)).toBe(true);
  });

  test("a digest that refers to an undefined type, or has a bad shape, is rejected", () => {
    const broken = structuredClone(digest);
    delete broken.types["5"];
    expect(isDigest(broken)).toBe(false);
    expect(isDigest({ ...digest, types: { ...digest.types, "3": { kind: "enum", values: "fast" } } })).toBe(false);
    expect(isDigest({ commands: [], events: {}, types: {} })).toBe(false);
    expect(() => digestSchema({ not: "a schema" })).toThrow(ProtocolError);
  });

  test("commandPart holds one command and the types it reaches, and nothing else", () => {
    const part = commandPart(digest, "set_link");
    expect(Object.keys(part.commands)).toEqual(["set_link"]);
    expect(Object.keys(part.types).sort()).toEqual(["0", "1", "bool", "str"]);
    expect(isDigest(part)).toBe(true);
  });
});

describe("describe", () => {
  test("a command: arguments, return and features, with optional members marked", () => {
    expect(describeName(schema, "set_link")).toEqual({
      command: "set_link",
      arguments: { name: "str", up: "bool" },
      returns: {},
    });
    const typed = describeName(schema, "typed") as { arguments: Record<string, unknown>; features: string[] };
    expect(typed.features).toEqual(["unstable"]);
    expect(typed.arguments).toMatchObject({
      id: "str",
      "mode?": { enum: ["fast", "slow", "off"] },
      "ref?": { alternate: [{ driver: "str", "path?": "str" }, "str"] },
      "mixed?": { alternate: ["int", "bool", { array: "int" }] },
      "list?": { array: "str" },
      "extra?": "any",
      "child?": { name: "str", "child?": "(recursive)" },
      "old? [deprecated]": "str",
    });
  });

  test("a flat union: base members, then the members each branch adds", () => {
    expect(describeName(schema, "add-thing").arguments).toEqual({
      driver: { enum: ["alpha", "beta", "gamma"], features: { gamma: ["deprecated"] } },
      "node?": "str",
      "driver=alpha": { "size?": "int", "ro?": "bool" },
      "driver=beta": { path: "str" },
    });
  });

  test("an event, and an unknown name with the closest ones", () => {
    expect(describeName(schema, "SHUTDOWN")).toEqual({ event: "SHUTDOWN", data: { guest: "bool" } });
    expect(() => describeName(schema, "SHUTDWN")).toThrow(
      new ArgumentError("'SHUTDWN' is neither a command nor an event (did you mean SHUTDOWN?)"),
    );
  });

  test("signature: a command's arguments on one line", () => {
    expect(signature(schema, "set_link")).toBe("name=str up=bool");
    expect(signature(schema, "add-thing")).toBe("driver=alpha|beta|gamma [node=str] [...members of the driver branch]");
    expect(signature(schema, "query-status")).toBe("");
  });
});

describe("completeArgumentWord", () => {
  test.each([
    ["set_link", [], "", ["name=", "up="]],
    ["set_link", ["name=x"], "", ["up="]],
    ["set_link", [], "up=", ["up=false", "up=true"]],
    ["set_link", [], "up=o", ["up=off", "up=on"]], // every word a bool takes, once one is begun
    ["set_link", [], "up=Y", ["up=yes"]],
    ["typed", [], "re", ["ref.", "ref=", "refs.", "refs="]],
    ["typed", ["list.0=a"], "list.", ["list.1="]],
    ["typed", [], "refs.", ["refs.0."]],
    ["typed", [], "ref.", ["ref.driver=", "ref.path="]],
    ["typed", [], "mode=s", ["mode=slow"]],
    ["typed", [], "child.child.n", ["child.child.name="]],
    ["add-thing", [], "", ["driver=", "node="]],
    ["add-thing", [], "driver=", ["driver=alpha", "driver=beta", "driver=gamma"]],
    ["add-thing", ["driver=alpha"], "", ["node=", "ro=", "size="]],
    ["add-thing", ['driver:="alpha"'], "", ["node=", "ro=", "size="]], // the tag as KEY:=JSON
    ["no-such-command", [], "", []],
  ])("%s %p %p", (command, previous, current, expected) => {
    expect(completeArgumentWord(schema, command, previous, current)).toEqual(expected);
  });
});

describe("closestNames", () => {
  test("the nearest names by edits, transpositions and containment", () => {
    const known = ["query-status", "query-kvm", "stop", "SHUTDOWN", "set_link"];
    expect(closestNames("query-stauts", known)).toEqual(["query-status"]);
    expect(closestNames("kvm", known)).toEqual(["query-kvm"]);
    expect(closestNames("shutdwn", known)).toEqual(["SHUTDOWN"]);
    expect(closestNames("zzzz", known)).toEqual([]);
  });
});
