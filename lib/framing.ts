/**
 * Framing: bytes in, whole JSON messages out.
 *
 * QEMU ends each message with a newline, but a monitor started with
 * `pretty=on` spreads one message over many lines, so the stream is cut at
 * the end of each top-level JSON object rather than at newlines. A chunk's
 * whole lines are decoded as one text, and a line that parses is taken at
 * once; anything else goes through a scanner that keeps its state between
 * chunks and looks at each byte once, so a message split into many chunks
 * costs time linear in its size.
 *
 * Numbers are kept exactly as written (see exact_json.ts). Nesting is bounded
 * as QEMU bounds what it accepts (qobject/json-streamer.c, MAX_NESTING), so a
 * hostile message cannot exhaust the stack of whoever walks it later.
 *
 * @module
 */
import { concatBytes } from "./bytes.ts";
import { MessageTooLargeError, ProtocolError } from "./errors.ts";
import { changeFinder, mayChangeAt, parseExact, SHORT_TEXT } from "./exact_json.ts";
import { decodeUtf8 } from "./utf8.ts";

/** The default bound on one message: QEMU's largest are a few hundred KB. */
export const DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024;

/** How the error for input that does not begin a JSON object begins. */
export const NOT_AN_OBJECT = "expected a JSON object";

/** The deepest nesting of objects and arrays accepted, as in QEMU's own parser. */
export const MAX_NESTING = 1024;

const OPEN_BRACE = 0x7b, CLOSE_BRACE = 0x7d, OPEN_BRACKET = 0x5b, CLOSE_BRACKET = 0x5d;
const QUOTE = 0x22, BACKSLASH = 0x5c, NEWLINE = 0x0a;
const NOT_A_MESSAGE = Symbol("not a message");

/**
 * Splits a byte stream into JSON objects.
 *
 * @example
 * ```ts
 * import { JsonFramer } from "./framing.ts";
 * const framer = new JsonFramer();
 * framer.push(new TextEncoder().encode('{"QMP": {}}\r\n{"ret'));  // [{ QMP: {} }]
 * framer.push(new TextEncoder().encode('urn": {}}\n'));            // [{ return: {} }]
 * ```
 */
export class JsonFramer {
  // TypeScript's `private`, not `#private`: cheaper for a one-shot run (README, Development).
  private readonly maxBytes: number;
  private readonly maxNesting: number;
  private readonly refuse?: (text: string) => string | undefined;
  /** A line of at most this many characters cannot nest deeper than the bound (each level takes two). */
  private readonly shallowLine: number;
  /** Invalid UTF-8 becomes U+FFFD; a byte-order mark stays a character (no JSON text starts with it). */
  private readonly decoder = new TextDecoder("utf-8", { ignoreBOM: true });
  /** A message that is not UTF-8 is a ProtocolError (see the constructor). */
  private readonly strictUtf8: boolean;
  /** A '}' may close a '[' and the reverse, the message then refused whole when it ends (see the constructor). */
  private readonly anyCloser: boolean;
  /** Bytes of the message being scanned, kept from earlier chunks. */
  private held: Uint8Array[] = [];
  private heldBytes = 0;
  /** What closes each level open in the message being scanned (`}` or `]`), innermost last; empty between messages. */
  private closers: number[] = [];
  private inString = false;
  private escaped = false;
  /**
   * After `push` threw: the offset, in the chunk it was given, of the byte
   * where the fault was found (a byte no message starts with, a closer that
   * does not match, the end of a message that is no JSON): where a reader
   * that goes on after a fault, as QEMU's parser does, looks for the next line.
   */
  faultAt: number = -1;

  /**
   * A framer for one stream. The defaults read a server's messages as
   * QmpClient does; the other settings are for reading a client's as QEMU
   * would (the proxy).
   *
   * @param maxBytes the bound on one message
   * @param maxNesting the deepest nesting accepted (a peer that answers too deep a message itself, as the
   *   proxy does, takes a larger one; JSON.parse overflows its stack somewhere past ten thousand levels)
   * @param refuse a check of each message's text once it has parsed: what it returns (a reason)
   *   is thrown as a ProtocolError with that message (the proxy refuses what QEMU's parser refuses)
   * @param strictUtf8 a message that is not UTF-8 is a ProtocolError, as QEMU's parser refuses it,
   *   where by default its bad bytes become U+FFFD (the proxy takes what it sends on to QEMU strictly)
   * @param anyCloser a '}' or ']' closes whatever level is open, and a message whose kinds do not match
   *   is refused when it ends, as QEMU's parser (which counts each kind apart) reads a client's input:
   *   `{"a": [1}` leaves a '[' open, so the next line is still that message (the proxy reads so);
   *   by default such a closer is a ProtocolError at once, not a wait for a close that cannot make JSON
   */
  constructor(
    maxBytes: number = DEFAULT_MAX_MESSAGE_BYTES,
    maxNesting: number = MAX_NESTING,
    refuse?: (text: string) => string | undefined,
    strictUtf8 = false,
    anyCloser = false,
  ) {
    this.maxBytes = maxBytes;
    this.maxNesting = maxNesting;
    this.refuse = refuse;
    this.shallowLine = 2 * maxNesting;
    this.strictUtf8 = strictUtf8;
    this.anyCloser = anyCloser;
  }

  /**
   * Feed the next chunk; returns the messages it completed, in order. With
   * `deliver`, each message is handed to it as soon as it is complete, so the
   * messages before a fault in the same chunk are delivered before the throw.
   * @throws {ProtocolError} on bytes that cannot start a JSON object, are not
   *   JSON, or nest deeper than the bound
   * @throws {MessageTooLargeError} when one message exceeds the limit
   */
  push(chunk: Uint8Array, deliver?: (message: unknown) => void): unknown[] {
    const messages: unknown[] = [];
    const out = deliver ?? ((message: unknown) => messages.push(message));
    let i = this.closers.length > 0 ? this.scan(chunk, 0, 0, out) : 0;
    // The whole lines (up to the last newline) are read as text; what follows
    // them begins a message that ends in a later chunk.
    const linesEnd = chunk.lastIndexOf(NEWLINE) + 1;
    // Strictly, lines that are not all UTF-8 go to the scanner, which refuses the message holding the bad bytes.
    if (i < linesEnd && (!this.strictUtf8 || decodeUtf8(chunk.subarray(i, linesEnd)) !== undefined)) {
      i = this.lines(chunk, i, linesEnd, out);
    }
    while (i < chunk.length) {
      const byte = chunk[i];
      if (byte === 0x20 || byte === NEWLINE || byte === 0x0d || byte === 0x09) {
        i++;
        continue;
      }
      if (byte !== OPEN_BRACE) this.fault(i, new ProtocolError(`${NOT_AN_OBJECT}, got ${describeFrom(chunk, i)}`));
      this.closers = [CLOSE_BRACE];
      i = this.scan(chunk, i, i + 1, out);
    }
    return messages;
  }

  /**
   * The messages in `chunk[from, end)`, which ends with a newline. Fast path:
   * without pretty=on QEMU writes one message a line, so a whole line that
   * parses is a whole message. The part is decoded once and cut into lines
   * in the text (native search and parse, where the scanner is a loop over
   * every byte); a line that is not one whole message (pretty=on, garbage, a
   * long line) goes to the scanner from its first byte, which also bounds its
   * nesting. Returns where it stopped: `end`, or past it when a message
   * began before `end` and ended after it (or goes on in a later chunk).
   */
  private lines(chunk: Uint8Array, from: number, end: number, out: (message: unknown) => void): number {
    const text = this.decoder.decode(chunk.subarray(from, end));
    // Every character one byte (ASCII, or one invalid byte read as U+FFFD):
    // an offset in the text is the same offset in the bytes.
    const oneByteEach = text.length === end - from;
    let c = 0, b = from; // the same place in the text and in the chunk
    // A one-shot run's greeting and reply are short: no search kept for them (a function's first run costs).
    const changes = text.length > SHORT_TEXT ? changeFinder(text) : undefined;
    let changeAt = -1; // where a number may change (exact_json.ts), at or after a line's start
    while (c < text.length) {
      const code = text.charCodeAt(c);
      if (code === 0x20 || code === NEWLINE || code === 0x0d || code === 0x09) {
        c++, b++; // blanks are ASCII
        continue;
      }
      if (code !== OPEN_BRACE) this.fault(b, new ProtocolError(`${NOT_AN_OBJECT}, got ${describeFrom(chunk, b)}`));
      const lineEnd = text.indexOf("\n", c);
      const byteEnd = oneByteEach ? b + (lineEnd - c) : chunk.indexOf(NEWLINE, b);
      // A line of at most 2 * maxNesting characters cannot nest deeper (each level takes two).
      if (lineEnd - c <= this.shallowLine && byteEnd - b <= this.maxBytes) {
        if (changeAt < c) changeAt = (changes ? changes(c) : mayChangeAt(text, c)) >>> 0; // none: 2^32 - 1, past any text
        const line = text.slice(c, lineEnd);
        const message = parseLine(line, changeAt < lineEnd);
        if (message !== NOT_A_MESSAGE) {
          this.check(line, byteEnd);
          out(message);
          c = lineEnd + 1;
          b = byteEnd + 1;
          continue;
        }
      }
      this.closers = [CLOSE_BRACE];
      const next = this.scan(chunk, b, b + 1, out);
      if (this.closers.length > 0 || next > end) return next;
      // The message began and ended at ASCII bytes (`{`, `}` or `]`), so its
      // bytes decode alone to its part of the text.
      c += oneByteEach ? next - b : this.decoder.decode(chunk.subarray(b, next)).length;
      b = next;
    }
    return b;
  }

  /**
   * Scan a message from `from` on; it began at `start` in this chunk (0 when
   * it began in an earlier one). Returns where the message ended, or the
   * chunk's length after keeping its bytes when it goes on.
   */
  private scan(chunk: Uint8Array, start: number, from: number, out: (message: unknown) => void): number {
    for (let i = from; i < chunk.length; i++) {
      const byte = chunk[i];
      if (this.inString) {
        if (this.escaped) this.escaped = false;
        else if (byte === BACKSLASH) this.escaped = true;
        else if (byte === QUOTE) this.inString = false;
        continue;
      }
      if (byte === QUOTE) this.inString = true;
      else if (byte === OPEN_BRACE || byte === OPEN_BRACKET) {
        if (this.closers.push(byte === OPEN_BRACE ? CLOSE_BRACE : CLOSE_BRACKET) > this.maxNesting) {
          this.fault(i, new ProtocolError(`received a message nested deeper than ${this.maxNesting} levels`));
        }
      } else if (byte === CLOSE_BRACE || byte === CLOSE_BRACKET) {
        // `[1, 2}` can never become JSON: said now, not after waiting for a close that cannot come.
        if (this.closers.pop() !== byte && !this.anyCloser) {
          this.fault(
            i,
            new ProtocolError(`received invalid JSON: a '${String.fromCharCode(byte)}' closes what it did not open`),
          );
        }
        if (this.closers.length > 0) continue;
        this.checkSize(i + 1 - start, i);
        out(this.parse(chunk.subarray(start, i + 1), i));
        return i + 1;
      }
    }
    this.checkSize(chunk.length - start, chunk.length - 1);
    this.held.push(chunk.slice(start));
    this.heldBytes += chunk.length - start;
    return chunk.length;
  }

  /** Throw `error`, the fault found at `at` in the chunk (see faultAt). */
  private fault(at: number, error: Error): never {
    this.faultAt = at;
    throw error;
  }

  /** True when a message has begun but not ended (the stream stopped mid-message). */
  get partial(): boolean {
    return this.closers.length > 0;
  }

  /** The size bound, checked at `at` in the chunk. */
  private checkSize(bytesInChunk: number, at: number): void {
    if (this.heldBytes + bytesInChunk > this.maxBytes) {
      this.fault(at, new MessageTooLargeError(`a message exceeded the limit of ${this.maxBytes} bytes`));
    }
  }

  /** The message whose last bytes are `tail`, ending at `end` in the chunk. */
  private parse(tail: Uint8Array, end: number): unknown {
    let bytes = tail;
    if (this.held.length > 0) {
      this.held.push(tail);
      bytes = concatBytes(this.held, this.heldBytes + tail.length);
      this.held = [];
      this.heldBytes = 0;
    }
    // A message starts with `{`: no byte-order mark for the strict decoder to take off.
    const text = this.strictUtf8 ? decodeUtf8(bytes) : this.decoder.decode(bytes);
    if (text === undefined) this.fault(end, new ProtocolError("invalid UTF-8 sequence in a message"));
    let message: unknown;
    try {
      message = parseExact(text);
    } catch (error) {
      this.fault(end, new ProtocolError(`received invalid JSON: ${(error as Error).message}`, { cause: error }));
    }
    this.check(text, end);
    return message;
  }

  /** The caller's refusal of a message's text (see the constructor), at `at` in the chunk. */
  private check(text: string, at: number): void {
    const refused = this.refuse?.(text);
    if (refused !== undefined) this.fault(at, new ProtocolError(refused));
  }
}

/**
 * What came at `at` where a message should start, for the error: its
 * printable ASCII (up to 40 bytes of the line) as a JSON string, so that an
 * operator sees what the peer sent (`"hello garbage"`); a byte that is not
 * printable ASCII by its value.
 */
function describeFrom(chunk: Uint8Array, at: number): string {
  let end = at;
  while (end < chunk.length && end - at < 40 && chunk[end] >= 0x20 && chunk[end] < 0x7f) end++;
  if (end === at) return `byte 0x${chunk[at].toString(16).padStart(2, "0")}`;
  const more = end < chunk.length && chunk[end] !== NEWLINE && chunk[end] !== 0x0d ? "..." : "";
  return JSON.stringify(String.fromCharCode(...chunk.subarray(at, end))) + more;
}

/** One line parsed, or NOT_A_MESSAGE when it is not one whole JSON text. */
function parseLine(line: string, mayChange: boolean): unknown {
  try {
    return parseExact(line, mayChange);
  } catch {
    return NOT_A_MESSAGE; // the first line of a pretty=on message, or garbage: the scanner decides
  }
}
