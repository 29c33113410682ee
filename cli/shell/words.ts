/**
 * The shell's lines read into words: as sh splits them, and a JSON array or
 * object that starts a word or a value taken as typed, as QEMU's qmp-shell
 * took JSON values (lib/shell_words.ts says how).
 *
 * @module
 */
import { ArgumentError } from "../../lib/errors.ts";
import { type ScannedLine, scanShellWords } from "../../lib/shell_words.ts";

/** The words of a line as the shell reads it, with their places (for TAB); `comments` false for HMP's lines. */
export function scanWords(line: string, comments = true): ScannedLine {
  return scanShellWords(line, { jsonValues: true, comments });
}

/**
 * The words of a line to run. A `\` that ends the line stays, as in `sh -c`.
 * @throws {ArgumentError} when a quote is left open
 */
export function splitWords(line: string): string[] {
  const { words, open } = scanWords(line);
  if (open) throw new ArgumentError(`unterminated ${open} in the line`);
  return words.map((w) => w.text);
}
