/**
 * Split a command line into words as a POSIX shell would, without running a
 * shell (POSIX.1-2017, Shell Command Language 2.2 "Quoting"): blanks (space,
 * tab, newline, carriage return) separate words, `'...'` keeps everything
 * literally, within `"..."` a `\` escapes only `$`, `` ` ``, `"`, `\` and a
 * newline (it stays before any other character), a `\` outside quotes takes
 * the next character as it is (`info\ status` is one word), a
 * backslash-newline is dropped, the quotes themselves are dropped, and a `#`
 * that starts a word starts a comment, to the end of the line. No
 * expansion of any kind: `$HOME` and `~` stay as written, because nothing
 * evaluates the line. One splitter serves `QMPCTL_SSH_COMMAND` and the
 * interactive shell's lines.
 *
 * @module
 */

/** A command line whose quoting does not close. */
export class ShellWordsError extends Error {
  override name = "ShellWordsError";
}

/** One word and where it lies in the line. */
export interface ShellWord {
  /** The word, its quotes and escapes removed. */
  text: string;
  /** Offset of its first character (or opening quote) in the line. */
  start: number;
  /** Offset just past its last character: the blank that ends it, or the line's end. */
  end: number;
}

/** A line read into words, and what it left open at its end. */
export interface ScannedLine {
  words: ShellWord[];
  /** The quote left unclosed at the end of the line, if any. */
  open?: "'" | '"';
  /** The line ends with a `\` that escapes nothing (sh -c keeps it as a character). */
  danglingBackslash: boolean;
  /** Where a comment starts (its `#`), if one does. */
  comment?: number;
}

/**
 * The words of `line`, with their places.
 *
 * With `jsonValues`, as QEMU's qmp-shell read its lines: a JSON array or
 * object that starts a word or a value (`actions:=[{"type": "x"}]`) is taken
 * as typed, its quotes and blanks kept. One left open at the end of the line
 * is read by the rules above instead, unless it is KEY:=JSON's (the rest of
 * the line is then that value, and the JSON parser says what it lacks).
 * Whether a value starts is decided on the text read so far, its quotes
 * already removed. Without `comments`, a `#` is a character like any other.
 */
export function scanShellWords(
  line: string,
  options: { jsonValues?: boolean; comments?: boolean } = {},
): ScannedLine {
  const jsonValues = options.jsonValues ?? false;
  const comments = options.comments ?? true;
  let comment: number | undefined;
  const words: ShellWord[] = [];
  let current: Omit<ShellWord, "end"> | undefined;
  let quote: "'" | '"' | undefined;
  let danglingBackslash = false;
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
    if (comments && current === undefined && quote === undefined && c === "#") { // a comment, to the line's end
      comment = i;
      break;
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
    } else {
      if (quote === undefined && c === "\\") danglingBackslash = true; // the last character: nothing follows it
      current.text += c;
    }
  }
  // Left open: KEY:=JSON's value is JSON, whose parser then says what is missing; another may be text.
  if (depth > 0 && !declared) return scanShellWords(line, { comments });
  if (current) words.push({ ...current, end: line.length });
  return { words, open: quote, danglingBackslash, comment };
}

/**
 * The words of `line`, for a command line given in a variable.
 *
 * @example
 * ```ts
 * splitShellWords(`ssh -F "./my config" -o 'ProxyJump=a b'`); // ["ssh", "-F", "./my config", "-o", "ProxyJump=a b"]
 * ```
 * @throws {ShellWordsError} for an unterminated quote or a trailing backslash
 */
export function splitShellWords(line: string): string[] {
  const { words, open, danglingBackslash } = scanShellWords(line);
  if (open) throw new ShellWordsError(`unterminated ${open} in: ${line}`);
  if (danglingBackslash) throw new ShellWordsError(`trailing \\ in: ${line}`);
  return words.map((word) => word.text);
}
