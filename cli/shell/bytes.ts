/**
 * Terminal input as text, with the bytes that are not UTF-8 kept rather
 * than made U+FFFD: each such byte 0xHH becomes the lone surrogate U+DC00+HH,
 * as Python's `surrogateescape` does (PEP 383). UTF-8 never yields a lone
 * surrogate, so the line editor can show such a byte as `\xHH`, and the
 * shell can refuse the line, as the piped shell refuses a line that is not
 * UTF-8, instead of sending a U+FFFD the user never typed.
 *
 * @module
 */
import { notUtf8Reason } from "../io/input.ts";

/** The first surrogate that stands for a byte (U+DC80..U+DCFF stand for 0x80..0xFF). */
const ESCAPED_BYTES = 0xdc00;

const UTF8 = new TextDecoder();

/** Bytes to text as they arrive; a character split across chunks waits for its rest. */
export class EscapingDecoder {
  #pending: number[] = [];

  decode(chunk: Uint8Array): string {
    const bytes = [...this.#pending, ...chunk];
    this.#pending = [];
    let text = "";
    for (let i = 0; i < bytes.length;) {
      const length = sequenceLength(bytes, i);
      if (length === undefined) { // the start of a character whose rest has not come yet
        this.#pending = bytes.slice(i);
        break;
      }
      if (length === 0) text += String.fromCharCode(ESCAPED_BYTES + bytes[i++]);
      else {
        text += UTF8.decode(Uint8Array.from(bytes.slice(i, i + length)));
        i += length;
      }
    }
    return text;
  }
}

/**
 * The length of the UTF-8 character at `i` (RFC 3629: no overlong forms, no
 * surrogates, nothing past U+10FFFF); 0 when the byte there starts none;
 * undefined when the bytes end before it does, and may yet complete it.
 */
function sequenceLength(bytes: readonly number[], i: number): number | undefined {
  const lead = bytes[i];
  if (lead < 0x80) return 1;
  const [length, low, high] = leadByte(lead);
  for (let n = 1; n < length; n++) {
    if (i + n >= bytes.length) return undefined;
    const [min, max] = n === 1 ? [low, high] : [0x80, 0xbf];
    if (bytes[i + n] < min || bytes[i + n] > max) return 0;
  }
  return length;
}

/** For a byte that starts a character: its length, and the range of its second byte (RFC 3629's table). */
function leadByte(lead: number): [length: number, low: number, high: number] {
  if (lead >= 0xc2 && lead <= 0xdf) return [2, 0x80, 0xbf];
  if (lead === 0xe0) return [3, 0xa0, 0xbf]; // not overlong
  if (lead === 0xed) return [3, 0x80, 0x9f]; // not a surrogate
  if (lead >= 0xe1 && lead <= 0xef) return [3, 0x80, 0xbf];
  if (lead === 0xf0) return [4, 0x90, 0xbf]; // not overlong
  if (lead >= 0xf1 && lead <= 0xf3) return [4, 0x80, 0xbf];
  if (lead === 0xf4) return [4, 0x80, 0x8f]; // not past U+10FFFF
  return [0, 0, 0]; // a continuation byte, C0 or C1 (overlong), F5..FF: none starts a character
}

/** A kept byte: a lone surrogate (`u`: the second half of a pair, an emoji's, is not one). */
const ESCAPED_BYTE_PATTERN = /[\udc80-\udcff]/gu;

/** `text` with each kept byte written as `\xHH`. */
export function showEscapedBytes(text: string): string {
  return text.replace(ESCAPED_BYTE_PATTERN, (c) => `\\x${(c.charCodeAt(0) - ESCAPED_BYTES).toString(16)}`);
}

/** Why `line` cannot be run, in the piped shell's words, when it holds bytes that are not UTF-8. */
export function notUtf8(line: string): string | undefined {
  const shown = showEscapedBytes(line);
  return shown === line ? undefined : notUtf8Reason(shown);
}
