/**
 * TAB's list of candidates, shown as readline shows it by default: a list of
 * 100 or more is asked for first (`Display all 220 possibilities? (y or n)`,
 * completion-query-items), the names run down the columns, and a list taller
 * than the window is shown a screenful at a time with `--More--` below it
 * (page-completions): space (or y) the next screenful, Return one more row,
 * q stops. Both questions are asked in the prompt's place, so that events
 * print above them.
 *
 * @module
 */
import { formatColumns } from "./completion.ts";
import type { Key } from "./keys.ts";
import type { Screen } from "./screen.ts";

/** Candidates from which TAB asks before listing them (readline's completion-query-items). */
const LIST_QUERY_ITEMS = 100;

/** readline's pager prompt, on the row below a screenful. */
const MORE = "--More--";

/**
 * Asks `question` in the prompt's place until `answer` takes a key (undefined:
 * no answer, and the bell rings) and returns its answer; the question stays
 * drawn, for the caller to leave or replace.
 */
export type Ask = <T>(question: string, answer: (key: Key) => T | undefined) => Promise<T>;

/** What a list is shown with. */
export interface ListingTerminal {
  screen: Screen;
  /**
   * The terminal's size, read from it again for each screenful (not as the last SIGWINCH left it: the key that
   * asks for the screenful may come before a resize's signal is handled): a resize while paging sizes the next one.
   */
  size: () => { columns: number; rows: number };
  ask: Ask;
}

/**
 * List `candidates` where the prompt is (it is drawn again below the list by
 * the caller): whether the whole list was shown, not declined at the question
 * nor stopped at `--More--`.
 */
export async function listCandidates(candidates: readonly string[], terminal: ListingTerminal): Promise<boolean> {
  const { screen, ask } = terminal;
  if (candidates.length >= LIST_QUERY_ITEMS) {
    screen.leave(); // the line stays as typed above the question, and the question above the list
    const wanted = await ask(`Display all ${candidates.length} possibilities? (y or n)`, yesOrNo);
    screen.leave();
    if (!wanted) return false;
  }
  // Laid out once for the width at the start, as readline does: rows already shown cannot be laid out again.
  return await showPages(formatColumns(candidates, terminal.size().columns), terminal);
}

/** Show `rows` a screenful at a time, asking `--More--` between: whether they were all shown. */
async function showPages(rows: readonly string[], terminal: ListingTerminal): Promise<boolean> {
  const { screen, ask, size } = terminal;
  let shown = 0;
  let next = pageHeight(size().rows);
  for (;;) {
    // A row wider than the window (a name longer than it is wide) takes as many of its rows as it wraps onto.
    const { columns } = size();
    const page: string[] = [];
    for (let used = 0; shown < rows.length; shown++) {
      const height = Math.max(1, Math.ceil(rows[shown].length / columns)); // names are ASCII: a column each
      if (page.length > 0 && used + height > next) break;
      page.push(rows[shown]);
      used += height;
    }
    screen.hide(); // the prompt, or --More--: the rows take its place
    screen.print(page.join("\n"));
    if (shown >= rows.length) return true;
    const step = await ask(MORE, pagerStep);
    if (step === "stop") return false;
    next = step === "line" ? 1 : pageHeight(size().rows);
  }
}

/** The rows of a screenful: all but the last, where `--More--` stands (readline's). */
function pageHeight(rows: number): number {
  return Math.max(1, rows - 1);
}

/** The character that answers: a text key's first (a paste or quick typing brings several), else none. */
function typed(key: Key): string {
  return key.name === "text" ? key.text[0] : "";
}

/** readline's y-or-n: y or space is yes; n, Backspace (its DEL), Ctrl-C or Ctrl-D is no; other keys, no answer. */
function yesOrNo(key: Key): boolean | undefined {
  const text = typed(key);
  if (text === "y" || text === "Y" || text === " ") return true;
  if (text === "n" || text === "N" || ["backspace", "interrupt", "eof"].includes(key.name)) return false;
  return undefined;
}

/**
 * readline's answers to `--More--`: its y-or-n keys (yes: the next screenful;
 * no: stop), Return one more row, q stops; and, as in less, Down or j one
 * more row and Esc stops (readline would ring the bell).
 */
function pagerStep(key: Key): "page" | "line" | "stop" | undefined {
  const yes = yesOrNo(key);
  if (yes !== undefined) return yes ? "page" : "stop";
  const text = typed(key);
  if (key.name === "enter" || key.name === "down" || text === "j") return "line";
  if (text === "q" || text === "Q" || key.name === "escape") return "stop";
  return undefined;
}
