/**
 * Framing: bytes in, whole JSON messages out.
 *
 * QEMU ends each message with a newline, but a monitor started with
 * `pretty=on` spreads one message over many lines, so the stream is cut at
 * the end of each top-level JSON object rather than at newlines. The scanner
 * keeps its state between chunks and looks at each byte once, so a message
 * split into many chunks costs time linear in its size.
 *
 * @module
 */
import { MessageTooLargeError, ProtocolError } from "./errors.ts";

/** The default bound on one message: QEMU's largest are a few hundred KB. */
export const DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024;

const OPEN_BRACE = 0x7b, CLOSE_BRACE = 0x7d, OPEN_BRACKET = 0x5b, CLOSE_BRACKET = 0x5d;
const QUOTE = 0x22, BACKSLASH = 0x5c;

/**
 * Splits a byte stream into JSON objects.
 *
 * @example
 * ```ts
 * const framer = new JsonFramer();
 * framer.push(new TextEncoder().encode('{"QMP": {}}\r\n{"ret'));  // [{ QMP: {} }]
 * framer.push(new TextEncoder().encode('urn": {}}\n'));            // [{ return: {} }]
 * ```
 */
export class JsonFramer {
  readonly #maxBytes: number;
  readonly #decoder = new TextDecoder(); // invalid UTF-8 becomes U+FFFD
  /** Bytes of the message being scanned, kept from earlier chunks. */
  #held: Uint8Array[] = [];
  #heldBytes = 0;
  #depth = 0;
  #inString = false;
  #escaped = false;

  constructor(maxBytes: number = DEFAULT_MAX_MESSAGE_BYTES) {
    this.#maxBytes = maxBytes;
  }

  /**
   * Feed the next chunk; returns the messages it completed, in order.
   * @throws {ProtocolError} on bytes that cannot start a JSON object or are not JSON
   * @throws {MessageTooLargeError} when one message exceeds the limit
   */
  push(chunk: Uint8Array): unknown[] {
    const messages: unknown[] = [];
    let start = this.#depth > 0 ? 0 : -1; // where the current message begins in `chunk`
    for (let i = 0; i < chunk.length; i++) {
      const byte = chunk[i];
      if (this.#depth === 0) {
        if (byte === OPEN_BRACE) {
          start = i;
          this.#depth = 1;
        } else if (byte !== 0x20 && byte !== 0x0a && byte !== 0x0d && byte !== 0x09) {
          throw new ProtocolError(`expected a JSON object, got ${describeByte(byte)}`);
        }
        continue;
      }
      if (this.#inString) {
        if (this.#escaped) this.#escaped = false;
        else if (byte === BACKSLASH) this.#escaped = true;
        else if (byte === QUOTE) this.#inString = false;
        continue;
      }
      if (byte === QUOTE) this.#inString = true;
      else if (byte === OPEN_BRACE || byte === OPEN_BRACKET) this.#depth++;
      else if ((byte === CLOSE_BRACE || byte === CLOSE_BRACKET) && --this.#depth === 0) {
        this.#checkSize(i + 1 - start);
        messages.push(this.#parse(chunk.subarray(start, i + 1)));
        start = -1;
      }
    }
    if (start >= 0) {
      this.#checkSize(chunk.length - start);
      this.#held.push(chunk.slice(start));
      this.#heldBytes += chunk.length - start;
    }
    return messages;
  }

  /** True when a message has begun but not ended (the stream stopped mid-message). */
  get partial(): boolean {
    return this.#depth > 0;
  }

  #checkSize(bytesInChunk: number): void {
    if (this.#heldBytes + bytesInChunk > this.#maxBytes) {
      throw new MessageTooLargeError(`a message exceeded the limit of ${this.#maxBytes} bytes`);
    }
  }

  #parse(tail: Uint8Array): unknown {
    let bytes = tail;
    if (this.#held.length > 0) {
      bytes = new Uint8Array(this.#heldBytes + tail.length);
      let offset = 0;
      for (const part of this.#held) {
        bytes.set(part, offset);
        offset += part.length;
      }
      bytes.set(tail, offset);
      this.#held = [];
      this.#heldBytes = 0;
    }
    const text = this.#decoder.decode(bytes);
    try {
      return JSON.parse(text);
    } catch (error) {
      throw new ProtocolError(`received invalid JSON: ${(error as Error).message}`, { cause: error });
    }
  }
}

function describeByte(byte: number): string {
  return byte >= 0x20 && byte < 0x7f
    ? `'${String.fromCharCode(byte)}'`
    : `byte 0x${byte.toString(16).padStart(2, "0")}`;
}
