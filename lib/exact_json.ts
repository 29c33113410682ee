/**
 * JSON numbers kept exactly as written. `JSON.parse` turns every number into
 * a double: `18446744073709551615` (a uint64 QEMU prints) becomes
 * `18446744073709552000`, `1e400` becomes Infinity (printed as null). Here a
 * number whose text a double would change is kept as `JSON.rawJSON(text)`,
 * which `JSON.stringify` prints as that text; every other number stays a
 * plain number.
 *
 * @module
 */
import { ArgumentError } from "./errors.ts";

/** A number kept exactly as written (`JSON.rawJSON`): its text is `rawJSON`; `asDouble` reads it as a double. */
export interface RawJson {
  /** The number's JSON text, as written (`18446744073709551615`, `0.45969230769230768`). */
  readonly rawJSON: string;
}

/** A number from QEMU: a plain number, or one kept exactly (a uint64 past 2^53, a double of 17 digits). */
export type JsonNumber = number | RawJson;
const json = JSON as unknown as {
  rawJSON(text: string): RawJson;
  isRawJSON(value: unknown): value is RawJson;
};

/**
 * Where a number could change. One of at most 15 digits without fraction or
 * exponent is a double exactly and prints back the same, so only longer
 * ones (a run of 16 digits), fractions and exponents (a digit before `.`,
 * `e` or `E`) and `-0` need the slower parse. Each is searched for on its
 * own: a pattern this simple skips ahead over what cannot match, where one
 * with alternatives tests every character (a backlog of events was searched
 * ~3x slower). Unanchored, they match inside strings too (a version
 * `"8.2.0"`, an address `"10.0.2.15"`, a date's `-0`), which only costs
 * that line the slower parse. Global: searched from `lastIndex`.
 */
const MAY_CHANGE = [/\d{16}/g, /\d[.eE]/g, /-0/g];

/**
 * The reviver: a number whose text differs from what the double prints is
 * kept as its text; so is a whole number beyond 2^53, whose double may print
 * as its text and still differ (1796148159823963000 is the double
 * 1796148159823962880, printed in its shortest form).
 */
function keepNumberText(_key: string, value: unknown, context?: { source?: string }): unknown {
  if (typeof value !== "number" || context?.source === undefined) return value;
  const changed = String(value) !== context.source || (Number.isInteger(value) && !Number.isSafeInteger(value));
  return changed ? json.rawJSON(context.source) : value;
}

/**
 * Texts up to this long are searched by `scanNumbers` instead of the
 * patterns: a one-shot command's greeting and reply. At start-up a
 * process's first regular expression costs ~0.5 ms and ~1 MiB of memory;
 * per byte the patterns are ~20x faster, which counts for a backlog of events.
 */
export const SHORT_TEXT = 4096;

/**
 * Where, at or after `from` (the start of a JSON text or of one of its
 * lines), `text` may hold a number a double would change (at that number or
 * inside it); -1 when nowhere. Search a text holding many JSON objects
 * once: an object inside it, starting with `{`, that holds no such place
 * parses exactly with `parseExact(object, false)`.
 * @example
 * ```ts
 * mayChangeAt('{"a": 1}\n{"b": 1.5}\n') > 9; // true: in the second object
 * mayChangeAt('{"a": 1}\n{"b": 1.5}\n', 17); // -1
 * ```
 */
export function mayChangeAt(text: string, from = 0): number {
  return text.length - from <= SHORT_TEXT ? scanNumbers(text, from) : changeFinder(text)(from);
}

/**
 * `mayChangeAt` for one long text, searched from one line start after
 * another (a chunk's lines): a pattern whose last match is still ahead is
 * not searched again, so the text is searched once in all.
 */
export function changeFinder(text: string): (from: number) => number {
  const searchedFrom = [0, 0, 0], found = [-2, -2, -2]; // per pattern; -2: not searched, -1: no match
  return (from) => {
    if (text.length - from <= SHORT_TEXT) return scanNumbers(text, from);
    let first = -1;
    for (let i = 0; i < MAY_CHANGE.length; i++) {
      if (found[i] === -2 || searchedFrom[i] > from || (found[i] >= 0 && found[i] < from)) {
        MAY_CHANGE[i].lastIndex = searchedFrom[i] = from;
        found[i] = MAY_CHANGE[i].exec(text)?.index ?? -1;
      }
      if (found[i] >= 0 && (first < 0 || found[i] < first)) first = found[i];
    }
    return first;
  };
}

/**
 * `mayChangeAt` as a loop over the characters: where a number outside
 * strings has 16 digits or more, a fraction or an exponent, or is `-0`.
 * A newline ends a string (JSON strings hold none), so a line of garbage
 * cannot hide the lines after it.
 */
function scanNumbers(text: string, from: number): number {
  let inString = false;
  for (let i = from; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // the escaped character
      else if (c === 0x22 || c === 0x0a) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x2d || (c >= 0x30 && c <= 0x39)) {
      const start = i, first = c === 0x2d ? ++i : i;
      let next = c === 0x2d ? text.charCodeAt(i) : c;
      while (next >= 0x30 && next <= 0x39) next = text.charCodeAt(++i);
      const digits = i - first;
      const negativeZero = c === 0x2d && digits === 1 && text.charCodeAt(first) === 0x30;
      if (digits >= 16 || next === 0x2e || next === 0x65 || next === 0x45 || negativeZero) return start;
      i--; // `next` is looked at by the loop
    }
  }
  return -1;
}

/**
 * Parse JSON text, keeping every number as written.
 * @param mayChange whether the text may hold a number a double would change;
 *   by default found out here. False (from `mayChangeAt`) skips that search.
 * @throws {SyntaxError} when the text is not JSON
 * @example
 * ```ts
 * JSON.stringify(parseExact('{"size": 18446744073709551615}')); // '{"size":18446744073709551615}'
 * ```
 */
export function parseExact(text: string, mayChange?: boolean): unknown {
  mayChange ??= mayChangeAt(text) >= 0;
  return mayChange ? JSON.parse(text, keepNumberText as never) : JSON.parse(text);
}

/**
 * `a - b` for two whole numbers as `parseExact` gives them (a number, or one
 * kept as its text beyond 2^53), exactly, in the same form; undefined when
 * either is not a whole number.
 * @example
 * ```ts
 * import { parseExact, wholeDifference } from "./exact_json.ts";
 * JSON.stringify(wholeDifference(parseExact("18446744073709551615"), 5)); // "18446744073709551610"
 * ```
 */
export function wholeDifference(a: unknown, b: unknown): unknown {
  const x = numberText(a), y = numberText(b);
  if (x === undefined || y === undefined || !/^-?\d+$/.test(x) || !/^-?\d+$/.test(y)) return undefined;
  const difference = BigInt(x) - BigInt(y);
  const double = Number(difference);
  return Number.isSafeInteger(double) ? double : json.rawJSON(String(difference));
}

/**
 * A number to send exactly: a BigInt, or a JSON number's text. A plain
 * number holds every integer only up to 2^53 (`18446744073709551615` typed
 * in a program is already `18446744073709551616`); this keeps the digits.
 * @example
 * ```ts
 * JSON.stringify({ size: exactNumber(18446744073709551615n) }); // '{"size":18446744073709551615}'
 * JSON.stringify({ limit: exactNumber("1e400") }); // '{"limit":1e400}'
 * ```
 * @throws {SyntaxError} when the text is not a JSON number
 */
export function exactNumber(value: bigint | string): RawJson {
  const text = typeof value === "bigint" ? value.toString() : value;
  const raw = json.rawJSON(text); // throws unless the text is one JSON primitive
  if (typeof JSON.parse(text) !== "number") throw new SyntaxError(`not a JSON number: ${text}`);
  return raw;
}

/**
 * `request` as the JSON text to send for `command`, its numbers exact: a
 * BigInt as its digits, and a plain whole number past 2^53 as the integer
 * it holds (`2 ** 60` as `1152921504606846976`, where JSON.stringify prints
 * `1152921504606847000`, which QEMU reads as another integer; `1e21` as
 * its 22 digits, not `1e+21`).
 * @throws {ArgumentError} when its arguments are not JSON (a cycle, NaN or
 *   ±Infinity, which JSON.stringify would send as null)
 */
export function requestJson(command: string, request: Record<string, unknown>): string {
  // Small, the rest in functions of their own: JSC links a function's whole bytecode at its first call, and a
  // one-shot exec sends two requests without arguments (~0.07 M instructions when all of it was here).
  try {
    // Without arguments and with a string id (qmpctl's own), nothing there is a number.
    const plain = request.arguments === undefined && typeof (request.id ?? "") === "string";
    return plain ? JSON.stringify(request) : exactText(request);
  } catch (error) {
    throw notSent(command, error);
  }
}

/** `request` as JSON with its numbers exact. */
function exactText(request: Record<string, unknown>): string {
  let text: string | undefined;
  try {
    text = JSON.stringify(request);
  } catch (error) {
    if (!(error instanceof TypeError)) throw error; // a BigInt (a cycle throws again below)
  }
  // What needs the replacer, which takes JSON.stringify off its fast path: a BigInt, a number that a
  // double may have changed (16 digits and more: past 2^53; a fraction or an exponent only costs the pass),
  // or a null that may have been NaN or ±Infinity (a "null" in a string only costs the pass).
  if (text !== undefined && mayChangeAt(text) < 0 && !text.includes("null")) return text;
  return JSON.stringify(request, exactValue);
}

/** The replacer of `exactText`: a BigInt or a whole number past 2^53 as its digits; no NaN or Infinity. */
function exactValue(key: string, value: unknown): unknown {
  if (typeof value === "bigint") return json.rawJSON(value.toString());
  if (typeof value !== "number" || Number.isSafeInteger(value)) return value;
  if (!Number.isFinite(value)) throw new TypeError(`${JSON.stringify(key)} is ${value}, which JSON has no number for`);
  return Number.isInteger(value) ? json.rawJSON(BigInt(value).toString()) : value;
}

/** Why a request could not be made into JSON, as an ArgumentError. */
function notSent(command: string, error: unknown): ArgumentError {
  // JSON.stringify recurses: a nesting some ten thousand deep (which QEMU refuses past 1024) runs out of stack.
  if (error instanceof RangeError && /stack/.test(error.message)) {
    return new ArgumentError(`${command}: QEMU's parser would refuse it: JSON nesting depth limit exceeded`);
  }
  return new ArgumentError(`${command}: its arguments are not JSON: ${(error as Error).message}`);
}

/** True for a number kept as its text by `parseExact`. */
export function isRawNumber(value: unknown): value is RawJson {
  return typeof value === "object" && value !== null && json.isRawJSON(value);
}

/** True for a JSON object from `parseExact`: not null, an array, or a number kept as its text (an object too). */
export function isJsonObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value) && !isRawNumber(value);
}

/** A number's text, for a plain number or a kept one; undefined for anything else. */
export function numberText(value: unknown): string | undefined {
  if (typeof value === "number") return String(value);
  return isRawNumber(value) ? value.rawJSON : undefined;
}

/**
 * Any value of a message as text, for a line or a key: a kept number by its
 * digits (`String()` throws on one: it is an object without a string form).
 */
export function textOf(value: unknown): string {
  return numberText(value) ?? String(value);
}

/**
 * A number as a double, for arithmetic (a progress bar, a rate): a kept
 * number (`parseExact`) is read from its text; anything else is undefined.
 * @example
 * ```ts
 * import { asDouble, parseExact } from "./exact_json.ts";
 * const { mbps } = parseExact('{"mbps": 268.43545600000001}') as { mbps: unknown };
 * asDouble(mbps); // 268.435456
 * ```
 */
export function asDouble(value: unknown): number | undefined {
  if (typeof value === "number") return value;
  return isRawNumber(value) ? Number(value.rawJSON) : undefined;
}

/**
 * Equal as numbers, exactly: `18446744073709551615` is not
 * `18446744073709551616`, `1.50` is `1.5`, `1e2` is `100`.
 */
export function sameNumber(a: string, b: string): boolean {
  const x = decimal(a), y = decimal(b);
  return x !== undefined && y !== undefined && x.sign === y.sign && x.digits === y.digits && x.exponent === y.exponent;
}

/** A number's text as sign, significant digits and exponent (zero has no sign). */
function decimal(text: string): { sign: string; digits: string; exponent: number } | undefined {
  const m = /^(-?)(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/.exec(text);
  if (!m) return undefined;
  const [, sign, whole, fraction = "", exponent = "0"] = m;
  const all = (whole + fraction).replace(/^0+/, "");
  const digits = all.replace(/0+$/, "");
  if (digits === "") return { sign: "", digits: "", exponent: 0 };
  return { sign, digits, exponent: Number(exponent) - fraction.length + (all.length - digits.length) };
}
