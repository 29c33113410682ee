/**
 * QEMU's bounds on one message (qobject/json-streamer.c, util/unicode.c),
 * checked on each command QmpClient sends and on a client's parsed message
 * before the proxy forwards it. Past a bound QEMU's parser resets
 * mid-message and takes each token left as a message of its own, so
 * commands hidden in a client's arguments would run with ids of the
 * client's choosing, and the id-less errors could make QEMU abort (QEMU 7.2
 * with oob, QMP_REQ_QUEUE_LEN_MAX); for QmpClient an error without an id
 * ends the session, every other call with it.
 *
 * The message is measured in one walk over the parsed value, counted as
 * QEMU's lexer counts the compact text `JSON.stringify` makes of it, so the
 * text is made only once, to send it.
 *
 * @module
 */
import { isRawNumber } from "./exact_json.ts";
import { keyGivenTwice } from "./json_keys.ts";
import { MAX_NESTING } from "./framing.ts";

export const MAX_TOKEN_COUNT = 2 ** 21;
export const MAX_TOKEN_SIZE = 64 * 1024 * 1024;

/** What QEMU's parser counts in the compact JSON text of a value. */
export interface JsonMeasure {
  /** The deepest nesting of objects and arrays (0 for a scalar), counted up to `MAX_NESTING` + 2; tokens and bytes are those above that depth. */
  depth: number;
  /** Tokens: each `{ } [ ] : ,`, key and scalar. */
  tokens: number;
  /** UTF-8 bytes of the text (QEMU adds up its tokens' lengths; the compact text has nothing between them). */
  bytes: number;
  /**
   * The first lone surrogate in a key or string (its code unit), which the text escapes and QEMU refuses;
   * undefined when there is none. (U+0000, escaped too, QEMU takes: it keeps it as modified UTF-8.)
   */
  loneSurrogate?: number;
  /** Whether a key or string holds a noncharacter (U+FDD0-U+FDEF, U+xFFFE, U+xFFFF), which QEMU refuses too. */
  noncharacter: boolean;
}

/**
 * Measure `value` (a JSON value, as `parseExact` returns it: numbers kept
 * as written are counted as their text) as `JSON.stringify(value)` would
 * print it, without printing it.
 * @example
 * ```ts
 * measureJson({ execute: "stop", id: 1 }); // { depth: 1, tokens: 9, bytes: 25, noncharacter: false }
 * ```
 */
export function measureJson(value: unknown): JsonMeasure {
  const counter: Counter = { tokens: 0, bytes: 0, noncharacter: false };
  const depth = walk(value, counter, MAX_NESTING + 1);
  return { depth, ...counter };
}

interface Counter {
  tokens: number;
  bytes: number;
  loneSurrogate?: number;
  noncharacter: boolean;
}

/**
 * Add `value`'s tokens and bytes to `counter`; its depth. Only `room`
 * levels are walked: deeper than that QEMU refuses the message whatever
 * it holds, and a walk 30 000 levels deep would run out of stack.
 */
function walk(value: unknown, counter: Counter, room: number): number {
  switch (typeof value) {
    case "string":
      counter.tokens++;
      counter.bytes += stringBytes(value, counter);
      return 0;
    case "number":
      counter.tokens++;
      counter.bytes += numberLength(value);
      return 0;
    case "boolean":
      counter.tokens++;
      counter.bytes += value ? 4 : 5;
      return 0;
    case "bigint": // sent as its digits (requestJson)
      counter.tokens++;
      counter.bytes += String(value).length;
      return 0;
  }
  counter.tokens++;
  if (value === null) {
    counter.bytes += 4;
    return 0;
  }
  if (isRawNumber(value)) {
    counter.bytes += value.rawJSON.length;
    return 0;
  }
  if (room === 0) return 1; // deeper than QEMU parses: not counted further
  let deepest = 0;
  if (Array.isArray(value)) {
    // brackets, and a comma between items
    counter.tokens += value.length > 0 ? value.length : 1;
    counter.bytes += value.length > 0 ? value.length + 1 : 2;
    for (const item of value) deepest = Math.max(deepest, walk(item, counter, room - 1));
    return deepest + 1;
  }
  const keys = Object.keys(value as object);
  // braces, and each key with its colon and the comma before the next
  counter.tokens += keys.length > 0 ? 3 * keys.length : 1;
  counter.bytes += keys.length > 0 ? 2 * keys.length + 1 : 2;
  for (const key of keys) {
    counter.bytes += stringBytes(key, counter);
    deepest = Math.max(deepest, walk((value as Record<string, unknown>)[key], counter, room - 1));
  }
  return deepest + 1;
}

/** UTF-8 bytes of `s` as JSON.stringify prints it, quotes included; a lone surrogate or noncharacter is noted in `counter`. */
function stringBytes(s: string, counter: Counter): number {
  let bytes = s.length + 2;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) {
      // As JSON.stringify prints U+0000 to U+001F: \b \t \n \f \r in 2 bytes, the others as \u00XX in 6. Tests, not
      // a table: JavaScriptCore keeps each constant array in a heap block of its size class, one more per start-up.
      if (c < 0x20) bytes += c === 8 || c === 9 || c === 10 || c === 12 || c === 13 ? 1 : 5;
      else if (c === 0x22 || c === 0x5c) bytes++; // \" and \\
    } else if (c < 0x800) bytes++;
    else if (c < 0xd800 || c > 0xdfff) {
      bytes += 2;
      if ((c >= 0xfdd0 && c <= 0xfdef) || c >= 0xfffe) counter.noncharacter = true;
    } else if (c < 0xdc00 && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      bytes += 2; // a pair: 4 bytes for 2 units
      // U+xFFFE and U+xFFFF of the other planes: the high unit's last 6 bits and the low unit's last 10 are all ones but the lowest.
      if ((c & 0x3f) === 0x3f && (s.charCodeAt(i + 1) & 0x3fe) === 0x3fe) counter.noncharacter = true;
      i++;
    } else {
      bytes += 5; // \udXXX
      counter.loneSurrogate ??= c;
    }
  }
  return bytes;
}

/** The length of a number as JSON.stringify prints it (`null` when not finite); an integer's without printing it. */
function numberLength(n: number): number {
  if (!Number.isFinite(n)) return 4;
  if (!Number.isInteger(n) || n >= 1e21 || n <= -1e21) return String(n).length; // a fraction, or an exponent
  const magnitude = Math.abs(n);
  let digits = 1;
  for (let power = 10; digits <= 20 && magnitude >= power; power *= 10) digits++; // 1e1 to 1e20: each exact
  return n < 0 ? digits + 1 : digits;
}

/**
 * Whether the compact JSON text of a message surely passes QEMU's parser,
 * told from the text alone (a one-shot command's, at no cost to speak of):
 * too short to nest past the bound or reach the token bounds, with no `\u`
 * escape (JSON.stringify writes lone surrogates so) and no
 * noncharacter (U+FDD0 up, or the low half of a pair for U+xFFFE/U+xFFFF).
 * When not sure, `refusedByQemuParser` decides.
 */
export function surelyParsed(json: string): boolean {
  if (json.length > 2 * MAX_NESTING || json.indexOf("\\u") >= 0) return false;
  for (let i = 0; i < json.length; i++) {
    const c = json.charCodeAt(i);
    if (c >= 0xdffe && (c <= 0xdfff || c >= 0xfdd0)) return false;
  }
  return true;
}

/**
 * One token at least as long as the proxy's ids (8 characters, quoted: 10
 * bytes): measured with it, a message is never refused for the id the proxy
 * puts in its place.
 */
const LONGEST_PROXY_ID = Number.MAX_SAFE_INTEGER;

/** QEMU's words for a message nested deeper than MAX_NESTING. */
export const NESTING_REFUSAL = "JSON nesting depth limit exceeded";

/**
 * Why QEMU's JSON parser would reject `message`, which JSON allows; undefined
 * when it would not. QEMU answers such input with errors that carry no id
 * (one per stray token after too deep a nesting), which could not be given
 * back to this client; the proxy refuses it instead, with the client's id.
 * It is measured as the proxy sends it, the client's id replaced by one of
 * the proxy's; nesting also counts the client's id, as QEMU would.
 */
export function refusedByQemuParser(message: Record<string, unknown>): string | undefined {
  const sent = measureJson({ ...message, id: LONGEST_PROXY_ID });
  const depth = "id" in message ? Math.max(sent.depth, 1 + measureJson(message.id).depth) : sent.depth;
  if (depth > MAX_NESTING) return NESTING_REFUSAL;
  if (sent.loneSurrogate !== undefined) { // as QEMU says it
    return `JSON parse error, \\u${sent.loneSurrogate.toString(16)} is not a valid Unicode character`;
  }
  if (sent.noncharacter) return "JSON parse error, invalid UTF-8 sequence in string"; // as QEMU says it
  if (sent.tokens >= MAX_TOKEN_COUNT) {
    return `JSON token count limit exceeded: ${sent.tokens} tokens, QEMU parses fewer than ${MAX_TOKEN_COUNT} in one message`;
  }
  if (sent.bytes >= MAX_TOKEN_SIZE) {
    return `JSON token size limit exceeded: ${sent.bytes} bytes, QEMU parses fewer than ${MAX_TOKEN_SIZE} in one message`;
  }
  return undefined;
}

/**
 * "duplicate key" when an object in the JSON text `text` (valid JSON) names
 * a key twice, else undefined. QEMU's parser refuses such a message whole
 * (an id-less error); `JSON.parse` keeps the last value, so a client could
 * send `{"execute": "query-name", "execute": "quit"}` through the proxy and
 * have it run.
 */
export function duplicateKey(text: string): string | undefined {
  return keyGivenTwice(text) === undefined ? undefined : "duplicate key";
}
