/**
 * A shell line split into words as sh splits them (POSIX.1-2017, Shell
 * Command Language 2.2 "Quoting"), nothing expanded: blanks separate them,
 * `'...'` is literal, a `\` outside quotes takes the next character as it is
 * (`info\ status` is one word; a `\` that ends the line stays, as in `sh -c`),
 * within `"..."` a `\` escapes only `$`, `` ` ``, `"`, `\` and a newline (it
 * stays before any other), a backslash-newline is dropped, and the quotes
 * themselves are dropped, so
 * `human-monitor-command command-line="info status"` is two words. A JSON
 * array or object that starts a word or a value (`actions:=[{"type": "x"}]`)
 * is taken as typed, its quotes and blanks kept, as QEMU's qmp-shell took
 * JSON values; one left open at the end of the line is read by the rules
 * above instead, unless it is KEY:=JSON's (the rest of the line is then that
 * value, and the JSON parser says what it lacks).
 *
 * @module
 */
import { ArgumentError } from "../../lib/errors.ts";

/** One word and where it lies in the line. */
export interface Word {
  text: string;
  /** Offset of its first character (or opening quote) in the line. */
  start: number;
  /** Offset just past its last character: the blank that ends it, or the line's end. */
  end: number;
}

/** The words of `line`; `open` is the quote left unclosed at its end, if any. */
export function scanWords(line: string, jsonValues = true): { words: Word[]; open?: string } {
  const words: Word[] = [];
  let current: Omit<Word, "end"> | undefined;
  let quote: string | undefined;
  let depth = 0; // of the JSON value being read: its brackets open
  let jsonString = false; // within one of its strings
  let declared = false; // that value is KEY:=JSON's: JSON, not possibly text
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (depth > 0) { // a JSON value, as typed
      current!.text += c;
      if (jsonString) {
        if (c === "\\" && i + 1 < line.length) current!.text += line[++i];
        else if (c === '"') jsonString = false;
      } else if (c === '"') jsonString = true;
      else if (c === "[" || c === "{") depth++;
      else if (c === "]" || c === "}") depth--;
      continue;
    }
    // The blanks a POSIX shell splits on (IFS): a no-break space or U+2028 in a value is part of it.
    if (quote === undefined && (c === " " || c === "\t" || c === "\n" || c === "\r")) {
      if (current) words.push({ ...current, end: i });
      current = undefined;
      continue;
    }
    if (quote !== "'" && c === "\\" && line[i + 1] === "\n") { // a backslash-newline joins the lines
      i++;
      continue;
    }
    current ??= { text: "", start: i };
    if (quote === undefined && jsonValues && (c === "[" || c === "{") && /(^|=)$/.test(current.text)) {
      declared = current.text.endsWith(":=");
      current.text += c;
      depth = 1;
    } else if (quote === undefined && (c === "'" || c === '"')) quote = c;
    else if (c === quote) quote = undefined;
    else if (quote === undefined && c === "\\" && i + 1 < line.length) current.text += line[++i];
    else if (quote === '"' && c === "\\" && i + 1 < line.length && '$`"\\'.includes(line[i + 1])) {
      current.text += line[++i];
    } else current.text += c;
  }
  // Left open: KEY:=JSON's value is JSON, whose parser then says what is missing; another may be text.
  if (depth > 0 && !declared) return scanWords(line, false);
  if (current) words.push({ ...current, end: line.length });
  return { words, open: quote };
}

/**
 * The words of a line to run.
 * @throws {ArgumentError} when a quote is left open
 */
export function splitWords(line: string): string[] {
  const { words, open } = scanWords(line);
  if (open) throw new ArgumentError(`unterminated ${open} in the line`);
  return words.map((w) => w.text);
}
