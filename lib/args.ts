/**
 * Command arguments from the command line: `KEY=VALUE` words and `--args`
 * JSON, merged into one arguments object.
 *
 * A dotted key builds nested objects (`file.driver=file`), or arrays where
 * the keys inside are the indexes 0, 1, ... (`children.0=a children.1=b`).
 * `KEY:=JSON` takes raw JSON. Any other value goes through a `ValueTyper`;
 * the default one (used without a schema) reads a value that parses as JSON
 * as that JSON, and anything else as a string.
 *
 * @module
 */
import { ArgumentError, NotKeyValueError } from "./errors.ts";
import { parseExact } from "./exact_json.ts";
import { MAX_NESTING } from "./framing.ts";
import { keyGivenTwice } from "./json_keys.ts";
import { measureJson } from "./parser_limits.ts";

/** A word as a message quotes it: cut short, so that a line stays readable (a 60 KB `KEY:=JSON`). */
function shown(word: string): string {
  if (word.length <= 80) return word;
  const end = (word.charCodeAt(79) & 0xfc00) === 0xd800 ? 79 : 80; // not between a surrogate pair's halves
  return `${word.slice(0, end)}...`;
}

/** Turns the text of a `KEY=VALUE` word into the value to send, given its key path. */
export type ValueTyper = (path: readonly string[], text: string) => unknown;

/**
 * Without a schema: JSON where the text parses as JSON, else the text as a string.
 * @throws {ArgumentError} as wordJson
 */
export const jsonOrString: ValueTyper = (path, text): unknown => {
  const value = wordJson(path, text);
  return value === undefined ? text : value;
};

/** The JSON value of `text` (numbers kept as written: exact_json.ts), or undefined when it is not JSON. */
export function parseJson(text: string): unknown {
  try {
    return parseExact(text);
  } catch {
    return undefined;
  }
}

/**
 * The JSON value of the text of the `KEY=VALUE` word at `path` (`value`, when
 * the caller has parsed it already), or undefined when it is not JSON.
 * @throws {ArgumentError} for JSON that QEMU's parser refuses (a key given twice), as for `KEY:=JSON`
 */
export function wordJson(path: readonly string[], text: string, value: unknown = parseJson(text)): unknown {
  return value === undefined ? undefined : checkedJson(text, value, `'${shown(`${path.join(".")}=${text}`)}'`);
}

/** One word split into its key path and value. */
export interface KeyValueWord {
  /** The whole word, as given (messages quote it). */
  word: string;
  /** The key, split at its dots: `file.driver` is `["file", "driver"]`. */
  path: string[];
  /** The text after `=` (or `:=`). */
  text: string;
  /** True for `KEY:=JSON`. */
  raw: boolean;
}

/**
 * Split `KEY=VALUE` / `KEY:=JSON` words, checking their form.
 * @throws {ArgumentError} naming the word
 */
export function splitKeyValueWords(words: readonly string[]): KeyValueWord[] {
  const split: KeyValueWord[] = [];
  for (const word of words) {
    const eq = word.indexOf("=");
    if (eq < 0) throw new NotKeyValueError(word, `'${shown(word)}' is not KEY=VALUE`);
    const raw = eq > 0 && word[eq - 1] === ":";
    const key = word.slice(0, raw ? eq - 1 : eq);
    if (key === "") throw new ArgumentError(`'${shown(word)}' has an empty key`);
    const path = key.split(".");
    if (path.includes("")) throw new ArgumentError(`'${shown(word)}' has an empty part in its key`);
    if (path.length > MAX_NESTING) { // and a walk of so many levels would run out of stack
      throw new ArgumentError(`'${shown(word)}': QEMU's parser would refuse it: JSON nesting depth limit exceeded`);
    }
    split.push({ word, path, text: word.slice(eq + 1), raw });
  }
  return split;
}

/**
 * Whether some word's value needs typing by the schema: any `KEY=VALUE`
 * (`KEY:=JSON` is raw JSON). Words are assumed well formed.
 */
export function wordsNeedTyping(words: readonly string[]): boolean {
  for (const w of splitKeyValueWords(words)) if (!w.raw) return true;
  return false;
}

/**
 * Build an arguments object from `KEY=VALUE` words over `base` (the `--args`
 * object), a word winning over the same key in `base`. Without a schema to
 * say which, an object the words make is an array when its keys are the
 * indexes 0, 1, ... (as QEMU's own `-blockdev` key=value syntax reads them).
 *
 * @example
 * ```ts
 * import { buildArguments } from "./args.ts";
 * buildArguments(["file.driver=file", "read-only=true", "size:=4096", "ids.0=a", "ids.1=b"]);
 * // { file: { driver: "file" }, "read-only": true, size: 4096, ids: ["a", "b"] }
 * ```
 * @throws {ArgumentError} for a malformed word, a key given twice, or a key both a value and an object
 */
export function buildArguments(words: readonly string[], base: Record<string, unknown> = {}): Record<string, unknown> {
  const made: [parent: Record<string, unknown>, key: string][] = [];
  const result = argumentTree(words, base, jsonOrString, made);
  for (const [parent, key] of made.reverse()) { // the innermost first
    const node = parent[key] as Record<string, unknown>;
    const keys = Object.keys(node); // integer keys come first, ascending
    if (keys.every((k, i) => k === String(i))) defineKey(parent, key, keys.map((k) => node[k]));
  }
  return result;
}

/**
 * The arguments object of words no schema needs to type (`KEY:=JSON` only,
 * or none), as buildArguments makes it; undefined when one does, the words'
 * form checked (a malformed word, a key given twice, a key both a value and
 * an object) without reading their values, which are the schema's to type:
 * a `str` argument's text is text even when it reads as JSON.
 * @throws {ArgumentError} for a malformed word, and as buildArguments for untyped words
 */
export function untypedArguments(
  words: readonly string[],
  base: Record<string, unknown> = {},
): Record<string, unknown> | undefined {
  if (!wordsNeedTyping(words)) return buildArguments(words, base);
  argumentTree(words, base, (_path, text) => text);
  return undefined;
}

/**
 * The tree the words make over `base`, each value typed by `typeValue`:
 * objects only (a schema then says which are arrays). `made` collects the
 * objects the words made, as [parent, key].
 * @throws {ArgumentError} as buildArguments
 */
export function argumentTree(
  words: readonly string[],
  base: Record<string, unknown>,
  typeValue: ValueTyper,
  made: [Record<string, unknown>, string][] = [],
): Record<string, unknown> {
  const result = parseExact(JSON.stringify(base)) as Record<string, unknown>; // a deep copy that keeps raw numbers
  // Maps, not scans, so that many words cost linear time.
  const seen = new Map<string, string>(); // full key -> the word that set it
  const parents = new Map<string, string>(); // key with keys inside it -> the first word that put one there
  for (const { word, path, text, raw } of splitKeyValueWords(words)) {
    let prefix = "";
    for (let i = 0; i < path.length; i++) {
      prefix = i === 0 ? path[0] : `${prefix}.${path[i]}`;
      const earlier = seen.get(prefix);
      if (earlier === undefined) continue;
      throw new ArgumentError(
        i === path.length - 1
          ? `'${shown(word)}' sets ${prefix} again (after '${shown(earlier)}')`
          : `'${shown(word)}' goes inside ${prefix}, which '${shown(earlier)}' set to a value`,
      );
    }
    const full = prefix;
    const inside = parents.get(full);
    if (inside !== undefined) {
      throw new ArgumentError(`'${shown(word)}' sets ${full} to a value, but '${shown(inside)}' put keys inside it`);
    }
    seen.set(full, word);
    prefix = "";
    for (let i = 0; i < path.length - 1; i++) {
      prefix = i === 0 ? path[0] : `${prefix}.${path[i]}`;
      if (!parents.has(prefix)) parents.set(prefix, word);
    }
    const value = raw ? parseJsonValue(text, `'${shown(word)}'`) : typeValue(path, text);
    setPath(result, path, value, word, made);
  }
  return result;
}

/**
 * For QEMU's "Invalid parameter type for 'P', expected: string": a hint when
 * a `KEY=VALUE` word's text went out as JSON (a number, true, null), as a
 * member typed `any` (qom-set's value) takes it, where QEMU wanted text: the
 * word written to send a string. The word is the one whose key ends in P,
 * else the only such word; "" when there is none.
 */
export function sentAsJsonHint(desc: string, words: readonly string[]): string {
  const parameter = /^Invalid parameter type for '([^']*)', expected: string$/.exec(desc)?.[1];
  if (parameter === undefined) return "";
  const json = splitKeyValueWords(words).filter((w) => {
    const value = w.raw ? undefined : parseJson(w.text);
    return value !== undefined && typeof value !== "string";
  });
  const word = json.find((w) => w.path.at(-1) === parameter) ?? (json.length === 1 ? json[0] : undefined);
  if (!word) return "";
  const key = word.path.join(".");
  const asString = JSON.stringify(word.text).replaceAll("'", `'\\''`); // in a shell's single quotes
  return ` (${key}=${word.text} went out as JSON, not as text: ${key}:='${asString}' sends the string)`;
}

/** Whether `text` is nothing but JSON's blanks (space, tab, line feed, carriage return), or empty. */
export function isBlank(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c !== 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) return false;
  }
  return true;
}

/**
 * Parse an arguments object's text (`source` names it in messages: `--args`).
 * @throws {ArgumentError} saying where the JSON broke, or that it is not an object
 */
export function parseArgumentsJson(text: string, source: string): Record<string, unknown> {
  if (isBlank(text)) {
    throw new ArgumentError(`${source} holds no JSON, only blanks or nothing (an object is needed: {} for none)`);
  }
  const value = parseJsonValue(text, source);
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new ArgumentError(
      `${source} must be a JSON object, not ${Array.isArray(value) ? "an array" : JSON.stringify(value)}`,
    );
  }
  return value as Record<string, unknown>;
}

function parseJsonValue(text: string, source: string): unknown {
  let value: unknown;
  try {
    value = parseExact(text); // numbers sent as written
  } catch (error) {
    const [place, trailing, keyAt] = jsonErrorPlace(text);
    // Bun's words begin "JSON Parse error: ", which "invalid JSON" has said already.
    const reason = trailing
      ? "more follows the JSON value (one value is expected)"
      : (error as Error).message.replace(/^JSON Parse error: /, "") + quotingHint(text, keyAt);
    throw new ArgumentError(`${source}: invalid JSON${place}: ${reason}`);
  }
  return checkedJson(text, value, source);
}

/**
 * `value`, parsed from `text`, unless QEMU's parser would refuse that text.
 * @throws {ArgumentError} naming `source`
 */
function checkedJson(text: string, value: unknown, source: string): unknown {
  // Refused here, before anything is sent: deeper values also run out of stack where they are copied.
  if (text.length > 2 * MAX_NESTING && measureJson(value).depth > MAX_NESTING) {
    throw new ArgumentError(`${source}: QEMU's parser would refuse it: JSON nesting depth limit exceeded`);
  }
  const twice = keyGivenTwice(text); // JSON.parse kept the last value: it would go out as if given once
  if (twice !== undefined) throw new ArgumentError(`${source}: the key "${twice}" is given twice in one object`);
  return value;
}

/**
 * Where `text` stops being JSON, as " at line L, column C" (not every
 * engine's JSON.parse says where), whether a whole value came before, and
 * that place again when an object's key was expected there.
 */
function jsonErrorPlace(text: string): [place: string, trailing: boolean, keyAt?: number] {
  const [at, trailing, atKey] = jsonErrorOffset(text) ?? [];
  if (at === undefined) return ["", false];
  const keyAt = atKey ? at : undefined;
  if (at >= text.length) return [" at its end", false, keyAt];
  const before = text.slice(0, at);
  return [` at line ${before.split("\n").length}, column ${at - before.lastIndexOf("\n")}`, trailing === true, keyAt];
}

/**
 * For JSON written as JavaScript (`{path: "/machine"}`), which the engine's
 * words ("Expected '}'") do not point at: JSON quotes its keys. `keyAt`:
 * where a key was expected and the text stopped being JSON.
 */
function quotingHint(text: string, keyAt: number | undefined): string {
  return keyAt !== undefined && /[A-Za-z_$]/.test(text[keyAt] ?? "")
    ? ` (JSON quotes its keys: {"${/^[\w$-]*/.exec(text.slice(keyAt))![0]}": ...})`
    : "";
}

const SPACE = /[ \t\n\r]*/y;
// A string (characters from U+0020 on but " and \, or escapes), a number, true, false or null.
const SCALAR =
  /"(?:[ !#-\[\]-\uffff]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"|-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null/y;

/**
 * The offset of the first character that cannot continue a JSON text,
 * whether it follows a whole value, and whether an object's key was
 * expected there; undefined when none is found.
 */
function jsonErrorOffset(text: string): [at: number, trailing: boolean, atKey: boolean] | undefined {
  let i = 0;
  let atKey = false;
  const skip = (re: RegExp) => {
    re.lastIndex = i;
    const matched = re.test(text);
    if (matched) i = re.lastIndex;
    return matched;
  };
  const fail = (): never => {
    throw i;
  };
  const value = (): void => {
    skip(SPACE);
    const open = text[i];
    if (open !== "{" && open !== "[") return void (skip(SCALAR) || fail());
    const close = open === "{" ? "}" : "]";
    i++;
    skip(SPACE);
    if (text[i] === close) return void i++;
    for (;;) {
      if (open === "{") {
        skip(SPACE);
        atKey = true;
        if (text[i] !== '"' || !skip(SCALAR)) fail();
        atKey = false;
        skip(SPACE);
        if (text[i] !== ":") fail();
        i++;
      }
      value();
      skip(SPACE);
      const next = text[i];
      if (next !== close && next !== ",") fail();
      i++;
      if (next === close) return;
    }
  };
  try {
    value();
    skip(SPACE);
    return i < text.length ? [i, true, false] : undefined;
  } catch (at) {
    return typeof at === "number" ? [at, false, atKey] : undefined; // a RangeError from very deep nesting: no place
  }
}

/** Whether a dotted key's part is an array index (`0`, `12`; not `01` or `-1`). */
export function isArrayIndex(key: string): boolean {
  return /^(0|[1-9]\d*)$/.test(key);
}

/**
 * Set `path` in `target` as own properties, so a key like `__proto__` is a
 * key, never the prototype. An array from --args takes numbered keys into
 * its items (children.0=x replaces its first, keeping the rest; the next
 * index appends); an index past that would leave a gap, sent as null.
 * The objects made on the way are added to `made`.
 * @throws {ArgumentError} for such an index
 */
function setPath(
  target: Record<string, unknown>,
  path: readonly string[],
  value: unknown,
  word: string,
  made: [Record<string, unknown>, string][],
): void {
  let node = target;
  for (const [i, key] of path.entries()) {
    if (Array.isArray(node) && Number(key) > node.length) {
      const name = path.slice(0, i).join(".");
      throw new ArgumentError(
        `'${
          shown(word)
        }': ${name} is an array of ${node.length} items: number its items ${name}.0, ${name}.1, ... without gaps`,
      );
    }
    if (i === path.length - 1) break;
    const next = Object.hasOwn(node, key) ? node[key] : undefined;
    const intoArray = Array.isArray(next) && isArrayIndex(path[i + 1]);
    if (typeof next !== "object" || next === null || (Array.isArray(next) && !intoArray)) {
      defineKey(node, key, {});
      made.push([node, key]);
    }
    node = node[key] as Record<string, unknown>;
  }
  defineKey(node, path[path.length - 1], value);
}

/** Set `key` as the object's own, `__proto__` too (an assignment would set its prototype), as Object.fromEntries does. */
export function defineKey(node: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(node, key, { value, writable: true, enumerable: true, configurable: true });
}
