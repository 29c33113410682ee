/**
 * Terminal input (raw mode) to keys: control characters and the usual
 * xterm/VT escape sequences. Printable text comes through as `text` keys.
 *
 * @module
 */
import { EscapingDecoder } from "./bytes.ts";

/** A key that is not text. */
export type KeyName =
  | "enter"
  | "tab"
  | "backspace"
  | "delete"
  | "left"
  | "right"
  | "up"
  | "down"
  | "home"
  | "end"
  | "word-left"
  | "word-right"
  | "kill-end"
  | "kill-start"
  | "backward-kill-word"
  | "unix-word-rubout"
  | "clear-screen"
  | "interrupt"
  | "suspend"
  | "eof"
  | "escape";

/** A key the line editor acts on. */
export type Key = { name: "text"; text: string } | { name: KeyName };

const CONTROL: Record<string, KeyName> = {
  "\r": "enter",
  "\n": "enter",
  "\t": "tab",
  "\x7f": "backspace",
  "\b": "backspace",
  "\x01": "home",
  "\x02": "left",
  "\x03": "interrupt",
  "\x04": "eof",
  "\x05": "end",
  "\x06": "right",
  "\x0b": "kill-end",
  "\x0c": "clear-screen",
  "\x0e": "down",
  "\x10": "up",
  "\x15": "kill-start",
  "\x17": "unix-word-rubout",
  "\x1a": "suspend",
};

const ESCAPES: Record<string, KeyName> = {
  "[A": "up",
  "[B": "down",
  "[C": "right",
  "[D": "left",
  "[H": "home",
  "[F": "end",
  "OA": "up",
  "OB": "down",
  "OC": "right",
  "OD": "left",
  "OH": "home",
  "OF": "end",
  "[1~": "home",
  "[7~": "home",
  "[4~": "end",
  "[8~": "end",
  "[3~": "delete",
  "[1;5C": "word-right",
  "[1;5D": "word-left",
  "b": "word-left",
  "f": "word-right",
  "\x7f": "backward-kill-word", // Alt-Backspace
  "\b": "backward-kill-word", // the same, where Backspace sends Ctrl-H (readline binds both)
};

/**
 * How long an ESC waits for the rest of its sequence before it counts as the
 * Esc key alone (readline's `keyseq-timeout` and Node's `escapeCodeTimeout`
 * are 500 ms too): a terminal sends a sequence in one write, while a person
 * pressing Esc and then a key is slower than that.
 */
export const ESCAPE_TIMEOUT_MS = 500;

/** The end of a bracketed paste: ESC [201~. */
const PASTE_END = "[201~";

/** Turns chunks of terminal input into keys; keeps an escape sequence split across chunks. */
export class KeyParser {
  #pending = "";
  /**
   * Inside a bracketed paste (ESC [200~ ... ESC [201~): what comes is text,
   * control characters and escape sequences too (shown escaped, sent as
   * pasted), but for line ends, which enter their lines as typed ones do,
   * and a TAB, a blank there rather than completion.
   */
  #pasting = false;
  readonly #decoder = new EscapingDecoder(); // a byte that is not UTF-8 kept, for the shell to refuse its line

  /** True while an escape sequence has begun and waits for its rest. */
  get waiting(): boolean {
    return this.#pending !== "";
  }

  /**
   * Give up the escape sequence that waits (after `ESCAPE_TIMEOUT_MS`), so
   * the keys typed after it are keys of their own rather than the end of a
   * sequence: an ESC alone is the Esc key (the editor does nothing with it;
   * it stops a `--More--` listing), the start of a sequence cut short is
   * dropped. Not in a paste: what waits there may be the start of its end,
   * which the terminal always sends (a slow link may split it); given up,
   * the paste would never end, and every key after it would be text. What
   * comes next tells which it was.
   */
  abandonEscape(): Key[] {
    if (this.#pasting) return [];
    const lone = this.#pending === "\x1b";
    this.#pending = "";
    return lone ? [{ name: "escape" }] : [];
  }

  push(chunk: Uint8Array | string): Key[] {
    const input = this.#pending + (typeof chunk === "string" ? chunk : this.#decoder.decode(chunk));
    this.#pending = "";
    const keys: Key[] = [];
    let text = "";
    const flushText = () => {
      if (text) keys.push({ name: "text", text });
      text = "";
    };
    for (let i = 0; i < input.length; i++) {
      const c = input[i];
      if (c === "\x1b" && this.#pasting) {
        // Only the paste's end is a sequence here; any other ESC is a character of the text.
        const rest = input.slice(i + 1, i + 1 + PASTE_END.length);
        if (rest === PASTE_END) {
          flushText();
          this.#pasting = false;
          i += PASTE_END.length;
        } else if (PASTE_END.startsWith(rest)) { // maybe its end, cut across chunks: wait for the rest
          flushText();
          this.#pending = input.slice(i);
          break;
        } else text += c;
      } else if (c === "\x1b") {
        const length = escapeLength(input, i + 1);
        if (length === undefined) { // incomplete: wait for the rest
          this.#pending = input.slice(i);
          break;
        }
        flushText();
        const sequence = input.slice(i + 1, i + 1 + length);
        if (sequence === "[200~") this.#pasting = true;
        const name = ESCAPES[sequence];
        if (name) keys.push({ name });
        i += length;
      } else if (c === "\r" && input[i + 1] === "\n") {
        continue; // CRLF is one Enter: the LF comes next
      } else if (this.#pasting && c === "\t") {
        text += " "; // a blank between words, as it was where it was copied from
      } else if (this.#pasting && c !== "\r" && c !== "\n") {
        text += c; // a control character pasted (NUL, DEL, Ctrl-Z too) is text: shown escaped, sent as pasted
      } else if (c < " " || c === "\x7f") {
        flushText();
        const name = CONTROL[c];
        if (name) keys.push({ name });
      } else {
        text += c;
      }
    }
    flushText();
    return keys;
  }
}

/** Length of the escape sequence after ESC at `from`, or undefined when it is not complete yet. */
function escapeLength(input: string, from: number): number | undefined {
  if (from >= input.length) return undefined;
  const first = input[from];
  if (first === "O") return from + 1 < input.length ? 2 : undefined;
  if (first !== "[") return 1; // ESC + one character (Alt-b, Alt-f, ...)
  for (let i = from + 1; i < input.length; i++) {
    const code = input.charCodeAt(i);
    if (code >= 0x40 && code <= 0x7e) return i - from + 1; // CSI final byte
  }
  return undefined;
}
