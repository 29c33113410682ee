/**
 * `KEY=VALUE` words typed by a command's argument schema, and checked before
 * anything is sent: unknown names (with the closest ones), missing mandatory
 * arguments, values that cannot be of their type.
 *
 * The words first become a tree (`argumentTree` with each text kept as a
 * `WordText`), so that the whole shape is known before typing: a flat
 * union's members depend on its tag (`driver=null-co` may come after
 * `size=4096`), and an alternate's branch, or an array, on whether dotted
 * keys go inside a value. Values from `--args` and `KEY:=JSON` are sent as
 * given; the text of a `KEY=VALUE` word for an array or object is JSON and is
 * checked against the schema.
 *
 * @module
 */
import { argumentTree, defineKey, jsonOrString, parseJson, wordJson } from "../args.ts";
import { closestNames, didYouMean } from "../closest.ts";
import { ArgumentError } from "../errors.ts";
import { numberText } from "../exact_json.ts";
import type { Schema } from "./model.ts";
import type { MemberInfo, TypeInfo } from "./digest.ts";
import { parseBool, scalar } from "./scalars.ts";
import { expected, fits, membersOf } from "./members.ts";

/**
 * Errors no newer schema could undo: a value that cannot have its scalar
 * type (`up=maybe` for a bool, `size:1.5` inside JSON), or JSON that QEMU's
 * parser refuses whatever the schema (a key given twice).
 */
const valueErrors = new WeakSet<object>();

/** Whether `error` is such an error: a cached schema that gave it needs no refetch. */
export function isValueError(error: unknown): boolean {
  return typeof error === "object" && error !== null && valueErrors.has(error);
}

/** `parse()`, its error marked as a value error (see valueErrors). */
function valueOf<T>(parse: () => T): T {
  try {
    return parse();
  } catch (error) {
    valueErrors.add(error as object);
    throw error;
  }
}

/** The text of one `KEY=VALUE` word, waiting for its type. */
class WordText {
  constructor(readonly path: readonly string[], readonly text: string) {}
  get word(): string {
    const word = `${this.path.join(".")}=${this.text}`;
    return word.length > 60 ? `${word.slice(0, 57)}...` : word;
  }
}

type Tree = Record<string, unknown>;

/**
 * Commands whose schema names only some of the arguments QEMU takes
 * (`'gen': false` in QEMU's QAPI, which introspection does not show):
 * device_add takes the device's own properties (mac, netdev, addr, drive,
 * ...) beside driver, bus and id. Their other words are sent untyped: JSON
 * where the text parses as JSON, else text.
 */
const OPEN_ARGUMENTS = ["device_add"]; // a list, not a Set: see lib/connect_ready.ts

/**
 * Type `words` (over `base`, the `--args` object) by the schema of `command`.
 *
 * @example
 * ```ts
 * import { QmpClient } from "../client.ts";
 * import { loadSchema, typeArguments } from "./mod.ts";
 * const schema = await loadSchema(await QmpClient.connect("/run/vm1.qmp"));
 * typeArguments(schema, "set_link", ["name=123", "up=off"]); // { name: "123", up: false }
 * ```
 * @throws {ArgumentError} for an unknown command or argument, a missing argument, or a bad value
 */
export function typeArguments(
  schema: Schema,
  command: string,
  words: readonly string[],
  base?: Record<string, unknown>,
): Record<string, unknown> {
  const info = schema.requireCommand(command);
  const tree = argumentTree(words, base ?? {}, (path, text) => new WordText(path, text));
  return new Typer(schema, command).node(tree, info.args, []) as Record<string, unknown>;
}

class Typer {
  constructor(readonly schema: Schema, readonly command: string) {}

  /** Type one node of the tree: a word's text, an object built from dotted words, or given JSON. */
  node(value: unknown, typeName: string, path: string[]): unknown {
    if (value instanceof WordText) return this.text(value, typeName);
    if (!hasWords(value)) return value; // from --args or KEY:=JSON: sent as given
    const tree = value as Tree;
    const type = this.schema.type(typeName);
    switch (type.kind) {
      case "object":
        return this.object(tree, type, path);
      case "array":
        return this.array(tree, type.element, path);
      case "alternate": {
        const numbered = Object.keys(tree).every((k) => /^\d+$/.test(k));
        const branch = type.members.find((m) => this.schema.type(m).kind === (numbered ? "array" : "object")) ??
          type.members.find((m) => this.schema.type(m).kind === "object");
        if (branch) return this.node(tree, branch, path);
        break;
      }
      case "builtin":
        if (type.json === "value") return untyped(tree);
        break;
      case "other":
        return untyped(tree);
    }
    const word = firstWord(tree)!;
    throw this.error(
      `'${word.word}': ${path.join(".")} is ${expected(this.schema, typeName)}, so nothing goes inside it`,
    );
  }

  object(tree: Tree, type: TypeInfo & { kind: "object" }, path: string[]): Tree {
    const members = membersOf(this.schema, type, (tag) => {
      if (!Object.hasOwn(tree, tag.name)) {
        // A misspelt tag (file.drivr=file) is what is missing: said first, before the tag's many values.
        const typo = closestNames(
          tag.name,
          Object.keys(tree).filter((k) => !type.members.some((m) => m.name === k)),
        )[0];
        throw this.error(
          `missing argument '${dotted(path, tag.name)}'` +
            (typo === undefined
              ? `: expected ${expected(this.schema, tag.type)}`
              : ` ('${dotted(path, typo)}' is no argument here: did you mean ${dotted(path, tag.name)}?)`),
        );
      }
      return this.node(tree[tag.name], tag.type, [...path, tag.name]);
    });
    // Loops, not map/find/fromEntries: each array method's first use costs a typed exec as much as a function.
    const byName = new Map<string, MemberInfo>();
    for (const m of members) byName.set(m.name, m);
    const typed: Tree = {};
    for (const key of Object.keys(tree)) {
      const member = byName.get(key), value = tree[key];
      if (member) defineKey(typed, key, this.node(value, member.type, [...path, key]));
      else if (!hasWords(value)) defineKey(typed, key, value);
      else if (path.length === 0 && OPEN_ARGUMENTS.includes(this.command)) defineKey(typed, key, untyped(value));
      else {
        this.tagGivenAsIs(tree, type, path); // its error, when it names no branch: the word may be a branch's member
        throw this.error(
          `unknown argument '${dotted(path, key)}'${didYouMean(key, byName.keys(), (name) => dotted(path, name))}`,
        );
      }
    }
    let missing: MemberInfo | undefined;
    for (const m of members) if (!missing && !m.optional && !Object.hasOwn(tree, m.name)) missing = m;
    if (missing) {
      // A key given as is (KEY:=JSON, --args) is not checked; when it is not a member, it is likely the misspelling.
      const stray = Object.keys(tree).filter((key) => !byName.has(key)).map((key) => `'${dotted(path, key)}'`);
      throw this.error(
        `missing argument '${dotted(path, missing.name)}': expected ${expected(this.schema, missing.type)}` +
          (stray.length > 0 ? ` (given as is, and not an argument here: ${stray.join(", ")})` : ""),
      );
    }
    return typed;
  }

  /**
   * Check a union's tag given as is (--args, KEY:=JSON), which selects no
   * branch unless it is one of the tag's values, as a word would be checked.
   */
  tagGivenAsIs(tree: Tree, type: TypeInfo & { kind: "object" }, path: string[]): void {
    const tag = type.members.find((m) => m.name === type.tag);
    if (!tag || !Object.hasOwn(tree, tag.name) || hasWords(tree[tag.name])) return;
    const value = tree[tag.name];
    this.text(new WordText([...path, tag.name], typeof value === "string" ? value : JSON.stringify(value)), tag.type);
  }

  array(tree: Tree, element: string, path: string[]): unknown[] {
    const keys = Object.keys(tree);
    if (!keys.every((_, i) => Object.hasOwn(tree, String(i)))) {
      const name = path.join(".");
      throw this.error(`${name} is an array: number its items ${name}.0, ${name}.1, ... without gaps`);
    }
    return keys.map((_, i) => this.node(tree[String(i)], element, [...path, String(i)]));
  }

  /** The value of a word's text for a type. */
  text(word: WordText, typeName: string): unknown {
    const type = this.schema.type(typeName);
    const text = word.text;
    switch (type.kind) {
      case "builtin": {
        const value = valueOf(() => scalar(text, type.json, word.path)); // an any's JSON with a key given twice
        if (value !== undefined) return value;
        break;
      }
      case "enum":
        if (type.values.includes(text)) return text;
        throw this.error(`'${word.word}': expected ${expected(this.schema, typeName)}${didYouMean(text, type.values)}`);
      case "array":
      case "object": {
        const json = valueOf(() => wordJson(word.path, text));
        if (json !== undefined) return this.json(json, typeName, word, [...word.path]);
        break;
      }
      case "alternate": {
        // As QEMU reads JSON, the branch follows the JSON type of the value:
        // text that is JSON of a branch's type goes there; other text is a
        // string (str or enum branch), or on/off/yes/no for a bool branch.
        const json = parseJson(text);
        const fitting = json === undefined ? undefined : type.members.find((m) => fits(this.schema, json, m));
        if (fitting) return this.json(valueOf(() => wordJson(word.path, text, json)), fitting, word, [...word.path]);
        for (const m of type.members) {
          const branch = this.schema.type(m);
          if (branch.kind === "builtin" && branch.json === "string") return text;
          if (branch.kind === "enum" && branch.values.includes(text)) return text;
          if (branch.kind === "builtin" && branch.json === "boolean" && parseBool(text) !== undefined) {
            return parseBool(text);
          }
        }
        break;
      }
      case "other":
        return valueOf(() => jsonOrString(word.path, text));
    }
    const error = this.error(`'${word.word}': expected ${expected(this.schema, typeName)}${intHint(type, text)}`);
    if (type.kind === "builtin") valueErrors.add(error);
    throw error;
  }

  /** Check JSON given in a word's text against a type. */
  json(value: unknown, typeName: string, word: WordText, path: string[]): unknown {
    const type = this.schema.type(typeName);
    const bad = () => {
      const nested = path.join(".") !== word.path.join("."); // inside the JSON: JSON's forms only
      const where = nested ? `at ${path.join(".")}: ` : "";
      const hint = intHint(type, numberText(value) ?? ""); // a JSON int out of range, as the word form says
      const error = this.error(`'${word.word}': ${where}expected ${expected(this.schema, typeName, nested)}${hint}`);
      if (type.kind === "builtin") valueErrors.add(error);
      return error;
    };
    if (!fits(this.schema, value, typeName)) throw bad();
    switch (type.kind) {
      case "enum":
        if (!type.values.includes(value as string)) throw bad();
        return value;
      case "array":
        return (value as unknown[]).map((item, i) => this.json(item, type.element, word, [...path, String(i)]));
      case "alternate": {
        const branch = type.members.find((m) => fits(this.schema, value, m))!;
        return this.json(value, branch, word, path);
      }
      case "object": {
        const object = value as Tree;
        const members = membersOf(this.schema, type, (tag) => object[tag.name]);
        const byName = new Map(members.map((m) => [m.name, m]));
        for (const [key, item] of Object.entries(object)) {
          const member = byName.get(key);
          if (!member) {
            throw this.error(
              `'${word.word}': unknown member '${dotted(path, key)}'${
                didYouMean(key, byName.keys(), (name) => dotted(path, name))
              }`,
            );
          }
          this.json(item, member.type, word, [...path, key]);
        }
        const missing = members.find((m) => !m.optional && !Object.hasOwn(object, m.name));
        if (missing) {
          throw this.error(`'${word.word}': missing member '${dotted(path, missing.name)}'`);
        }
        return value;
      }
      default:
        return value;
    }
  }

  error(message: string): ArgumentError {
    return new ArgumentError(`${this.command}: ${message}`);
  }
}

/** Whether a value holds a word's text (else it came from --args or KEY:=JSON). */
function hasWords(value: unknown): boolean {
  if (value instanceof WordText) return true;
  if (typeof value !== "object" || value === null) return false;
  for (const item of Object.values(value)) if (hasWords(item)) return true; // an array from --args too
  return false;
}

function firstWord(value: unknown): WordText | undefined {
  if (value instanceof WordText) return value;
  for (const item of Object.values(value as Tree)) {
    const word = firstWord(item);
    if (word) return word;
  }
}

/**
 * A tree under `any`: each word's text is JSON where it parses, else a
 * string; an object the words numbered 0, 1, ... is an array, as without a
 * schema (buildArguments), so one command line sends the same JSON to any QEMU.
 */
function untyped(value: unknown): unknown {
  if (value instanceof WordText) return jsonOrString(value.path, value.text);
  if (typeof value !== "object" || value === null) return value;
  if (Array.isArray(value)) return value.map(untyped);
  const tree = value as Tree, keys = Object.keys(tree);
  if (hasWords(tree) && keys.every((k, i) => k === String(i))) return keys.map((k) => untyped(tree[k]));
  return Object.fromEntries(Object.entries(tree).map(([k, v]) => [k, untyped(v)]));
}

/** Why digits are no int, said after "expected int" (digits, of a type other than int: nothing). */
function intHint(type: TypeInfo, digits: string): string {
  if (type.kind !== "builtin" || type.json !== "int" || !/^-?\d+$/.test(digits)) return "";
  return /^-?0\d/.test(digits) ? " (without leading zeros)" : " within int64/uint64";
}

function dotted(path: readonly string[], key: string): string {
  return [...path, key].join(".");
}
