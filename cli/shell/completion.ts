/**
 * TAB completion, the part both shells share: finding the word being
 * completed, and what a TAB does with the candidates (one: take it; several:
 * extend to their common prefix, or list them when there is none to add).
 *
 * @module
 */
import { hasControl } from "../controls.ts";
import { scanWords } from "./words.ts";

/** Candidates for the word that starts at `start` in the text left of the cursor. */
export interface Completion {
  start: number;
  candidates: string[];
}

export const NO_COMPLETION: Completion = { start: 0, candidates: [] };

/**
 * The words before the one being completed, and that word (empty after a
 * blank); `inComment` when the cursor is in a comment (`comments`: QMP mode's
 * lines have them, HMP's go to QEMU as typed).
 */
export function wordsBefore(
  before: string,
  comments = true,
): { words: string[]; word: string; start: number; inComment?: boolean } {
  const { words, comment } = scanWords(before, comments);
  if (comment !== undefined) {
    return { words: words.map((w) => w.text), word: "", start: before.length, inComment: true };
  }
  const last = words.at(-1);
  // A blank ended the last word (not a quoted or escaped one: `info\ st` is one word being typed).
  if (!last || last.end < before.length) return { words: words.map((w) => w.text), word: "", start: before.length };
  return { words: words.slice(0, -1).map((w) => w.text), word: last.text, start: last.start };
}

/**
 * The candidates that start with `word`, sorted, once each. A name with a
 * control character (from a QEMU that should not send one) is left out: it
 * would go into the line as typed, and to the terminal as it is.
 */
export function matching(word: string, candidates: Iterable<string>): string[] {
  return [...new Set([...candidates].filter((c) => c.startsWith(word) && !hasControl(c)))].sort();
}

/** What a TAB does with a completion of `before`. */
export type TabResult =
  | { kind: "replace"; count: number; text: string } // replace the `count` characters before the cursor
  | { kind: "list"; candidates: string[] }
  | { kind: "none" };

export function applyCompletion(before: string, completion: Completion): TabResult {
  const { start, candidates } = completion;
  if (candidates.length === 0) return { kind: "none" };
  const count = [...before.slice(start)].length;
  const { word } = wordsBefore(before); // as read: `"query-st"` and `qu\ery-st` are 8 characters typed
  if (candidates.length === 1) {
    const only = candidates[0];
    // A finished word gets a blank after it; `key=` and `key.` go on.
    return { kind: "replace", count, text: /[=.]$/.test(only) ? only : only + " " };
  }
  const prefix = commonPrefix(candidates);
  if (prefix.length > word.length) return { kind: "replace", count, text: prefix };
  return { kind: "list", candidates };
}

function commonPrefix(items: readonly string[]): string {
  let prefix = items[0];
  for (const item of items) {
    while (!item.startsWith(prefix)) prefix = prefix.slice(0, -1);
  }
  return prefix;
}

/**
 * Candidates laid out in columns for a terminal `width` wide, as readline
 * lays them out: down the columns, so that names in order are read top to
 * bottom (`a c e` above `b d`); each column as wide as the longest name and
 * two blanks. The rows, for the caller to show a screenful at a time.
 */
export function formatColumns(candidates: readonly string[], width: number): string[] {
  const longest = Math.max(...candidates.map((c) => c.length));
  const cell = longest + 2;
  const perRow = Math.max(1, Math.floor((width - longest) / cell) + 1); // the last column needs no gap
  const height = Math.ceil(candidates.length / perRow);
  const rows: string[] = [];
  for (let row = 0; row < height; row++) {
    let line = "";
    for (let column = 0; column * height + row < candidates.length; column++) {
      line += candidates[column * height + row].padEnd(cell);
    }
    rows.push(line.trimEnd());
  }
  return rows;
}
