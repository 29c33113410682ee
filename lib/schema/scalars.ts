/**
 * The text of a `KEY=VALUE` word as a scalar of one of QEMU's built-in JSON
 * types (introspection's json-type).
 *
 * @module
 */
import { jsonOrString } from "../args.ts";
import { parseExact } from "../exact_json.ts";

/**
 * The value of `text`, the text of the word at `path`, for a built-in JSON
 * type, or undefined if it cannot be one.
 * @throws {ArgumentError} for JSON that QEMU refuses, where the type takes any JSON (jsonOrString)
 */
export function scalar(text: string, json: string, path: readonly string[]): unknown {
  switch (json) {
    case "string":
      return text;
    case "boolean":
      return parseBool(text);
    case "null":
      return text === "null" ? null : undefined;
    case "int":
      return parseInteger(text);
    case "number": // as written: a double would round 2^53 + 1, and make 1e400 Infinity (QEMU reads the digits)
      return /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?$/.test(text) ? parseExact(text) : undefined;
    default: // "value" (any), and json-types this version does not know
      return jsonOrString(path, text);
  }
}

/** true/on/yes or false/off/no (any case), else undefined. */
export function parseBool(text: string): boolean | undefined {
  const lower = text.toLowerCase();
  if (lower === "true" || lower === "on" || lower === "yes") return true;
  if (lower === "false" || lower === "off" || lower === "no") return false;
  return undefined;
}

/**
 * An integer in JSON's syntax, within int64 or uint64 (introspection does not
 * say which of QEMU's integer types an argument has). Beyond 2^53 a JS number
 * loses digits, and -0 is written 0, so the exact text is sent with JSON.rawJSON.
 */
function parseInteger(text: string): unknown {
  if (!/^-?(0|[1-9]\d*)$/.test(text) || !withinIntRange(text)) return undefined;
  const value = Number(text);
  if (Number.isSafeInteger(value) && text !== "-0") return value;
  const rawJSON = (JSON as { rawJSON?: (text: string) => unknown }).rawJSON;
  return rawJSON ? rawJSON(text) : text === "-0" ? 0 : undefined; // without rawJSON (older runtimes): 0
}

/** Whether an integer's digits (`-?\d+`) are within int64 or uint64: QEMU's parser reads others as a double. */
export function withinIntRange(digits: string): boolean {
  const big = BigInt(digits);
  return big >= -9223372036854775808n && big <= 18446744073709551615n; // -(2^63), 2^64 - 1
}
