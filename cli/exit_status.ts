/**
 * The exit statuses of qmpctl, by name: the one place they are defined and
 * described. Each help text's "Exit status:" paragraph is made here
 * (`exitStatusHelp`), and the README's table is checked against `MEANINGS`
 * by tests/exit_status_test.ts.
 *
 * @module
 */

/** Every exit status qmpctl uses. */
export const EXIT = {
  /** Done: the command returned, the awaited events arrived. */
  OK: 0,
  /** QEMU (or the guest agent, or the guest program) answered with an error. */
  QEMU_ERROR: 1,
  /** Usage: unknown command or option, no address, bad KEY=VALUE or JSON. */
  USAGE: 2,
  /** Connection: cannot connect, no greeting, connection lost, protocol broken. */
  CONNECTION: 3,
  /** The job or migration to follow is not there: it ended and was dismissed, or never started. */
  GONE: 4,
  /** A bug in qmpctl: an error no other status describes. */
  INTERNAL: 70,
  /** The output could not be written (a full disk, a closed stdout), as sysexits' EX_IOERR. */
  OUTPUT: 74,
  /** The --timeout the user set ran out (as timeout(1) does). */
  TIMEOUT: 124,
  /** Interrupted by SIGINT. */
  INTERRUPTED: 130,
} as const;

/**
 * A program qmpctl runs for the user (`ga exec`, `proxy -- qemu ...`) that
 * could not be started: the statuses env(1) and a shell (so ssh) give.
 */
export const PROGRAM = {
  /** Found, but not runnable (a directory, no execute permission). */
  NOT_RUNNABLE: 126,
  /** Not found. */
  NOT_FOUND: 127,
} as const;

/** The name of an exit status (`"TIMEOUT"`). */
export type ExitName = keyof typeof EXIT;

/** What a status means: a few words for help texts, and the whole meaning for the README. */
export interface ExitMeaning {
  short: string;
  long: string;
}

/** Every status's meaning; a new status needs one here (the type insists). */
export const MEANINGS: Record<ExitName, ExitMeaning> = {
  OK: { short: "done", long: "done (also when the reader closed stdout early: `qmpctl ... | head -1`)" },
  QEMU_ERROR: {
    short: "QEMU answered with an error",
    long: "QEMU answered with an error (class and description on stderr; with `--raw` on stdout too)",
  },
  USAGE: { short: "usage", long: "usage: unknown command or option, no address, bad `KEY=VALUE`, bad `--args` JSON" },
  CONNECTION: {
    short: "connection",
    long: "connection: cannot connect, no greeting, negotiation refused, connection lost, " +
      "message over the size limit, protocol broken",
  },
  GONE: {
    short: "the job or migration to follow is not there",
    long:
      "`job wait`, `--wait-job`, `migrate wait`: the job or migration to follow is not there (see `qmpctl help job`)",
  },
  INTERNAL: {
    short: "a bug in qmpctl (please report it)",
    long: "a bug in qmpctl: stderr says `internal error`; please report it with the command line",
  },
  OUTPUT: {
    short: "could not write the output",
    long: "the output could not be written: a full disk (ENOSPC), a stdout closed before qmpctl started " +
      "(`exec` and `hmp` have run the command by then, and say so; `batch` names the lines that ran)",
  },
  TIMEOUT: { short: "--timeout ran out", long: "the `--timeout` ran out; stderr says what was being waited for" },
  INTERRUPTED: { short: "interrupted", long: "interrupted (SIGINT)" },
};

/**
 * The exit statuses as an indented list, one a line with its whole meaning
 * (the general help, and so the man page's EXIT STATUS).
 */
export function exitStatusList(): string {
  return formatTable(
    (Object.keys(EXIT) as ExitName[]).map((name) => [String(EXIT[name]), MEANINGS[name].long.replaceAll("`", "")]),
  );
}

/**
 * A two-column table of a help text, indented 2: each term (an option, a
 * command, an argument form), then its words wrapped in a column of their
 * own, after the longest term and `gap` blanks.
 */
export function formatTable(rows: readonly (readonly [term: string, words: string])[], gap = 2): string {
  const width = Math.max(...rows.map(([term]) => term.length)) + gap;
  return rows.map(([term, words]) => `  ${term.padEnd(width)}${wrapIndented(words, width + 2)}`).join("\n");
}

/**
 * `text` wrapped for a column that starts `indent` columns in (an option's
 * or a command's words after its name): its lines after the first are
 * indented so, and none goes past the tables' width.
 */
function wrapIndented(text: string, indent: number): string {
  return wrap(text, tableWidth - indent).replaceAll("\n", `\n${" ".repeat(indent)}`);
}

/** Help texts are wrapped to this width. */
const WIDTH = 78;

/** The width the tables (commands, options, statuses) are wrapped to: the help's, or narrower. */
let tableWidth = WIDTH;

/**
 * Wrap the tables to `width` columns from now on: the man page sets them in
 * by 7 columns, where the help starts them at the terminal's edge.
 */
export function setTableWidth(width: number): void {
  tableWidth = width;
}

/**
 * The "Exit status:" paragraph of a help text: the statuses `names` in order,
 * each with its short meaning or the command's `own` words for it.
 *
 * @example
 * ```ts
 * import { exitStatusHelp } from "./exit_status.ts";
 * exitStatusHelp(["OK", "USAGE"], { OK: "the events arrived" });
 * // "Exit status: 0 the events arrived, 2 usage."
 * ```
 */
export function exitStatusHelp(names: readonly ExitName[], own: Partial<Record<ExitName, string>> = {}): string {
  // A status and its first word stay on one line (NO-BREAK SPACE while wrapping).
  const items = names.map((name) => `${EXIT[name]}\u00a0${own[name] ?? MEANINGS[name].short}`);
  return wrap(`Exit status: ${items.join(", ")}.`).replaceAll("\u00a0", " ");
}

/** `text` broken at blanks into lines of at most `WIDTH` columns. */
function wrap(text: string, width = WIDTH): string {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(" ")) {
    if (line !== "" && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line === "" ? word : `${line} ${word}`;
  }
  return [...lines, line].join("\n");
}
