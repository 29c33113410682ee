/**
 * A shell line split into words: blanks separate them, `'...'` is literal,
 * `"..."` takes backslash escapes, and the quotes themselves are dropped, so
 * `human-monitor-command command-line="info status"` is two words.
 *
 * @module
 */
import { ArgumentError } from "../../lib/errors.ts";

/** One word and where it starts in the line. */
export interface Word {
  text: string;
  /** Offset of its first character (or opening quote) in the line. */
  start: number;
}

/** The words of `line`; `open` is the quote left unclosed at its end, if any. */
export function scanWords(line: string): { words: Word[]; open?: string } {
  const words: Word[] = [];
  let current: Word | undefined;
  let quote: string | undefined;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    // The blanks a POSIX shell splits on (IFS): a no-break space or U+2028 in a value is part of it.
    if (quote === undefined && (c === " " || c === "\t" || c === "\n" || c === "\r")) {
      if (current) words.push(current);
      current = undefined;
      continue;
    }
    current ??= { text: "", start: i };
    if (quote === undefined && (c === "'" || c === '"')) quote = c;
    else if (c === quote) quote = undefined;
    else if (quote === '"' && c === "\\" && i + 1 < line.length) current.text += line[++i];
    else current.text += c;
  }
  if (current) words.push(current);
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
