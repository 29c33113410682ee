/**
 * The line being typed: its characters, the cursor, and the walk through
 * history with Up/Down. Pure state; the terminal draws it.
 *
 * @module
 */
import type { Key } from "./keys.ts";

/** What a key asks of the shell beyond editing the line. */
export type EditorAction = "submit" | "complete" | "interrupt" | "eof" | "clear-screen" | undefined;

export class LineEditor {
  /** The line as characters (code points), so the cursor never splits one. */
  #chars: string[] = [];
  #cursor = 0;
  readonly #history: readonly string[];
  /** How far back Up/Down stand in history; 0 is the line being typed. */
  #back = 0;
  /** The lines as edited, by how far back they stand (0: the one being typed), until Enter or Ctrl-C, as readline keeps them. */
  #edited = new Map<number, string>();

  /** @param history earlier lines, oldest first (read, not copied: it may grow between lines) */
  constructor(history: readonly string[]) {
    this.#history = history;
  }

  get text(): string {
    return this.#chars.join("");
  }

  /** The cursor, in characters. */
  get cursor(): number {
    return this.#cursor;
  }

  /**
   * Where the character before the cursor starts, and where the one at it
   * ends: characters as a person sees them (graphemes), so that a letter and
   * the accent that combines with it move and go as one.
   */
  #previous(): number {
    return graphemeStarts(this.#chars).findLast((start) => start < this.#cursor) ?? 0;
  }

  #next(): number {
    return graphemeStarts(this.#chars).find((start) => start > this.#cursor) ?? this.#chars.length;
  }

  /** The text left of the cursor. */
  get beforeCursor(): string {
    return this.#chars.slice(0, this.#cursor).join("");
  }

  /** Start a new, empty line (after Enter or Ctrl-C). */
  reset(): void {
    this.#set("");
    this.#back = 0;
    this.#edited.clear();
  }

  /** Replace the `count` characters before the cursor with `text` (a completion). */
  replaceBeforeCursor(count: number, text: string): void {
    const inserted = [...text];
    this.#chars.splice(this.#cursor - count, count, ...inserted);
    this.#cursor += inserted.length - count;
  }

  /** Apply a key; returns what the shell must do, if anything. */
  key(key: Key): EditorAction {
    const chars = this.#chars;
    switch (key.name) {
      case "text":
        this.replaceBeforeCursor(0, key.text);
        return;
      case "enter":
        return "submit";
      case "tab":
        return "complete";
      case "interrupt":
        return "interrupt";
      case "clear-screen":
        return "clear-screen";
      case "eof":
        if (chars.length === 0) return "eof";
        chars.splice(this.#cursor, this.#next() - this.#cursor);
        return;
      case "delete":
        chars.splice(this.#cursor, this.#next() - this.#cursor);
        return;
      case "backspace": {
        const start = this.#previous();
        chars.splice(start, this.#cursor - start);
        this.#cursor = start;
        return;
      }
      case "left":
        this.#cursor = this.#previous();
        return;
      case "right":
        this.#cursor = this.#next();
        return;
      case "home":
        this.#cursor = 0;
        return;
      case "end":
        this.#cursor = chars.length;
        return;
      case "word-left":
        this.#cursor = this.#wordBack();
        return;
      case "word-right":
        this.#cursor = this.#wordForward();
        return;
      case "kill-end":
        chars.splice(this.#cursor);
        return;
      case "kill-start":
        chars.splice(0, this.#cursor);
        this.#cursor = 0;
        return;
      case "backward-kill-word":
        this.#killBack(this.#wordBack());
        return;
      case "unix-word-rubout": {
        let i = this.#cursor;
        while (i > 0 && chars[i - 1] === " ") i--;
        while (i > 0 && chars[i - 1] !== " ") i--;
        this.#killBack(i);
        return;
      }
      case "up":
        this.#walk(1);
        return;
      case "down":
        this.#walk(-1);
        return;
    }
  }

  /** Delete from `start` to the cursor, which goes there. */
  #killBack(start: number): void {
    this.#chars.splice(start, this.#cursor - start);
    this.#cursor = start;
  }

  /**
   * Readline's words (Alt-B/F/Backspace): runs of letters and digits, so
   * `set_link name=n0` holds the words `set`, `link`, `name` and `n0`.
   * Ctrl-W alone takes what lies between blanks (unix-word-rubout).
   * Backward: past what is not a word, then to the start of the word.
   */
  #wordBack(): number {
    const graphemes = graphemeStarts(this.#chars).filter((start) => start < this.#cursor);
    let i = graphemes.length;
    while (i > 0 && !this.#inWord(graphemes[i - 1])) i--;
    while (i > 0 && this.#inWord(graphemes[i - 1])) i--;
    return i < graphemes.length ? graphemes[i] : this.#cursor;
  }

  /** Forward: past what is not a word, then to the end of the word. */
  #wordForward(): number {
    const graphemes = graphemeStarts(this.#chars).filter((start) => start >= this.#cursor);
    let i = 0;
    while (i < graphemes.length && !this.#inWord(graphemes[i])) i++;
    while (i < graphemes.length && this.#inWord(graphemes[i])) i++;
    return i < graphemes.length ? graphemes[i] : this.#chars.length;
  }

  /**
   * Whether the character (grapheme) at `at` is a word's: a letter or a digit
   * of any script, as readline's test (`iswalnum` in a UTF-8 locale) has it;
   * an accent that combines with a letter goes with it.
   */
  #inWord(at: number): boolean {
    return WORD_CHARACTER.test(this.#chars[at]);
  }

  /** Go `step` lines back in history (negative: forward). */
  #walk(step: number): void {
    const back = this.#back + step;
    if (back < 0 || back > this.#history.length) return;
    this.#edited.set(this.#back, this.text);
    this.#back = back;
    this.#set(this.#edited.get(back) ?? this.#history[this.#history.length - back]);
  }

  #set(text: string): void {
    this.#chars = [...text];
    this.#cursor = this.#chars.length;
  }
}

const GRAPHEMES = new Intl.Segmenter();
const WORD_CHARACTER = /^[\p{Alphabetic}\p{Nd}]/u;

/** The offsets (in code points) at which each grapheme of `chars` starts. */
function graphemeStarts(chars: readonly string[]): number[] {
  const starts: number[] = [];
  let at = 0;
  for (const { segment } of GRAPHEMES.segment(chars.join(""))) {
    starts.push(at);
    at += [...segment].length;
  }
  return starts;
}
