/**
 * TAB's list of candidates on a real pseudo-terminal (tmux) against a real
 * QEMU 7.2 named vm1, as readline shows it: down the columns, and a screenful
 * at a time with `--More--` when the window is too short for it (80 × 10
 * here: nine rows of the list, then `--More--` on the last). The expected
 * layouts are worked out by hand, not by a copy of the shell's own code: the
 * names of QEMU's query-commands, in the columns a width holds.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { startQemu, type TestQemu } from "./helpers/qemu.ts";
import { useShellHome, withShell } from "./helpers/shell.ts";
import type { TerminalSession } from "./helpers/terminal.ts";

let qemu: TestQemu;
const home = useShellHome();
const PROMPT = "(vm1)";
const MORE = "--More--";
/** A window in which QEMU 7.2's 65 query-* commands take two columns of 33 rows (see inTwoColumns): a screenful is 9. */
const SHORT = { columns: 80, rows: 10 };

/** QEMU 7.2's commands that start with query-s: ten names, the longest 28 characters. */
const QUERY_S = [
  "query-sev",
  "query-sev-attestation-report",
  "query-sev-capabilities",
  "query-sev-launch-measure",
  "query-sgx",
  "query-sgx-capabilities",
  "query-spice",
  "query-stats",
  "query-stats-schemas",
  "query-status",
];

beforeAll(async () => {
  qemu = await startQemu({ extraArgs: ["-name", "vm1"] });
});
afterAll(() => qemu?.stop());

/** A shell on `qemu.socket` in a window `columns` × `rows`, its prompt shown, for `body`. */
function use(size: { columns: number; rows?: number }, body: (t: TerminalSession) => Promise<void>): Promise<void> {
  return withShell(qemu.socket, PROMPT, [], { env: home.env(), ...size }, body);
}

/** QEMU's commands whose names start with `prefix`, sorted as TAB lists them. */
async function commandsStartingWith(prefix: string): Promise<string[]> {
  const commands = await qemu.control.execute("query-commands") as { name: string }[];
  return commands.map((command) => command.name).filter((name) => name.startsWith(prefix)).sort();
}

/** The names a row of the list shows. */
const words = (row: string): string[] => row.trim().split(/\s+/);

/** The longest of `names`. */
const longest = (names: readonly string[]): string => names.reduce((a, b) => (b.length > a.length ? b : a));

/**
 * The names of each row when `names` take two columns: the first half of them
 * down the left column, the rest down the right (one fewer when they are odd).
 * Two columns is what 80 columns hold of QEMU 7.2's query-* commands (the
 * longest, query-dump-guest-memory-capability, is 34: columns of 34 and two
 * blanks, the last without its blanks, so two take 70 and three 106) and of
 * all its commands (blockdev-snapshot-delete-internal-sync, 38: two take 78).
 */
function inTwoColumns(names: readonly string[]): string[][] {
  const left = names.slice(0, Math.ceil(names.length / 2));
  const right = names.slice(left.length);
  return left.map((name, row) => (row < right.length ? [name, right[row]] : [name]));
}

/** Whether `screen` shows the list's `rows` from `first` on (as many as fit) above `--More--` on its last row. */
function showsPage(screen: string[], rows: string[][], first: number): boolean {
  const above = screen.slice(0, -1);
  return screen.at(-1) === MORE &&
    JSON.stringify(above.map(words)) === JSON.stringify(rows.slice(first, first + above.length));
}

/** QEMU 7.2's query-* commands, sorted, as the rows of two columns 80 columns hold (inTwoColumns). */
async function queryRows(): Promise<string[][]> {
  const names = await commandsStartingWith("query-");
  expect(names).toHaveLength(65);
  expect(longest(names)).toBe("query-dump-guest-memory-capability");
  return inTwoColumns(names);
}

/** Type `line` and TAB, and wait for the first screenful of its list, laid out in `rows`. */
async function firstScreenful(terminal: TerminalSession, line: string, rows: string[][]): Promise<void> {
  await terminal.type(line);
  await terminal.press("Tab");
  const screen = await terminal.waitForLastLine(MORE);
  expect(screen).toHaveLength(SHORT.rows); // the list fills every row but the last, which --More-- takes
  expect(showsPage(screen, rows, 0)).toBe(true);
  expect(await terminal.cursor()).toEqual({ x: MORE.length, y: SHORT.rows - 1 });
}

describe("qmpctl shell: TAB's list of candidates", () => {
  test("runs down the columns, as readline's does: the names in order read top to bottom, then the next column", async () => {
    expect(await commandsStartingWith("query-s")).toEqual(QUERY_S);
    await use({ columns: 100 }, async (terminal) => {
      await terminal.type("query-s");
      await terminal.press("Tab");
      const screen = await terminal.waitFor(
        "the list",
        (s) => s.at(-1) === `${PROMPT} query-s` && s.some((row) => row.startsWith("query-sev ")),
      );
      // Columns of 28 and two blanks: three take 88 of the 100 (four 118), so ten names take four rows, and the
      // last column holds two. Across the rows, the first would have been query-sev, query-sev-attestation-report...
      expect(screen.slice(-5, -1)).toEqual([
        "query-sev                     query-sgx                     query-stats-schemas",
        "query-sev-attestation-report  query-sgx-capabilities        query-status",
        "query-sev-capabilities        query-spice",
        "query-sev-launch-measure      query-stats",
      ]);
      expect(screen.at(-6)).not.toMatch(/^query-/); // those four rows are the whole list
    });
  });

  test("taller than the window: a screenful, then --More--; space shows the next, Return, Down or j one row more", async () => {
    const rows = await queryRows();
    await use(SHORT, async (terminal) => {
      await firstScreenful(terminal, "query-", rows);
      const pageOf = (first: number) => (s: string[]) => showsPage(s, rows, first);
      await terminal.type(" ");
      await terminal.waitFor("the next screenful", pageOf(9));
      await terminal.press("Enter");
      await terminal.waitFor("one row more after Return", pageOf(10));
      await terminal.press("Down");
      await terminal.waitFor("one row more after Down", pageOf(11));
      await terminal.type("j");
      await terminal.waitFor("one row more after j", pageOf(12));
      expect(rows.length).toBeGreaterThan(12 + 9 + 1); // one more screenful, and the end
      for (let first = 21; first + 9 < rows.length; first += 9) {
        await terminal.type(" ");
        await terminal.waitFor(`the screenful from row ${first}`, pageOf(first));
      }
      await terminal.type(" "); // the last rows, and below them the prompt with the line as it was
      const screen = await terminal.waitForLastLine(`${PROMPT} query-`);
      expect(screen.slice(0, -1).map(words)).toEqual(rows.slice(-(SHORT.rows - 1)));
      expect(await terminal.cursor()).toEqual({ x: `${PROMPT} query-`.length, y: SHORT.rows - 1 });
      await terminal.type("status");
      await terminal.press("Enter");
      await terminal.waitFor("query-status's return", (s) => s.at(-2)?.startsWith('{"status":') === true);
    });
  });

  test("--More-- stops at q, Q, n, N, Backspace, Ctrl-C, Esc and Ctrl-D: the prompt with the line as it was, the shell on", async () => {
    const rows = await queryRows();
    await use(SHORT, async (terminal) => {
      let line = "query-";
      for (const key of ["q", "Q", "n", "N", "BSpace", "C-c", "Escape", "C-d"]) {
        await firstScreenful(terminal, line, rows);
        line = "";
        await terminal.press(key);
        const screen = await terminal.waitFor(`the prompt after ${key}`, (s) => s.at(-1) === `${PROMPT} query-`);
        expect(screen.slice(0, -1).map(words)).toEqual(rows.slice(0, SHORT.rows - 1)); // in --More--'s place
        expect(await terminal.cursor()).toEqual({ x: `${PROMPT} query-`.length, y: SHORT.rows - 1 });
      }
      await terminal.type("name");
      await terminal.press("Enter");
      await terminal.waitFor("query-name's return", (s) => s.at(-2) === '{"name":"vm1"}');
    });
  });

  test("an event at --More-- prints above it, which stays; after a resize the next screenful fills the new height", async () => {
    const rows = await queryRows();
    await use(SHORT, async (terminal) => {
      await firstScreenful(terminal, "query-", rows);
      await qemu.control.execute("stop");
      try {
        const screen = await terminal.waitFor("the STOP event", (s) => s.some((row) => row.includes('"event":"STOP"')));
        expect(JSON.parse(screen.at(-2)!)).toMatchObject({ event: "STOP" }); // a row of its own
        expect(screen.at(-1)).toBe(MORE);
        expect(screen.slice(0, -2).map(words)).toEqual(rows.slice(1, SHORT.rows - 1)); // the list scrolled by a row
        expect(await terminal.cursor()).toEqual({ x: MORE.length, y: SHORT.rows - 1 });
      } finally {
        await qemu.control.execute("cont");
      }
      await terminal.waitFor("the RESUME event", (s) => s.at(-2)?.includes('"event":"RESUME"') === true);
      await terminal.resize(SHORT.columns, 15);
      // Resized: tmux brings rows back from its history above. qmpctl may not have had SIGWINCH yet: the space reads the size.
      await terminal.waitFor("the taller window", (s) => s.length > SHORT.rows && s.at(-1) === MORE);
      await terminal.type(" ");
      await terminal.waitFor("a screenful of 14 rows", (s) => s.length === 15 && showsPage(s, rows, 9));
      await terminal.press("q");
      await terminal.waitForLastLine(`${PROMPT} query-`);
    });
  });

  test("TAB on an empty line asks first; y lists every command a screenful at a time", async () => {
    const local = ["events", "exit", "help", "quit", "transaction("]; // quit is QEMU's too: listed once
    const names = [...new Set([...await commandsStartingWith(""), ...local])].sort();
    expect(longest(names)).toBe("blockdev-snapshot-delete-internal-sync"); // two columns in 80 (inTwoColumns)
    await use(SHORT, async (terminal) => {
      await terminal.press("Tab");
      await terminal.waitForLastLine(`Display all ${names.length} possibilities? (y or n)`);
      await terminal.type("y");
      const screen = await terminal.waitForLastLine(MORE);
      expect(screen.slice(0, -1).map(words)).toEqual(inTwoColumns(names).slice(0, 9));
      await terminal.press("C-c");
      await terminal.waitForLastLine(PROMPT);
    });
  });

  test("in a window narrower than the names, a screenful counts the rows they wrap onto: none scrolls away", async () => {
    const names = await commandsStartingWith("query-c");
    const narrow = { columns: 20, rows: 10 };
    // One name a row (none fits two), each taking as many window rows as it wraps onto: whole names, 9 rows.
    const wrapped = names.map((name) => name.match(/.{1,20}/g)!);
    const firstPage: string[] = [];
    for (const rows of wrapped) {
      if (firstPage.length + rows.length > narrow.rows - 1) break;
      firstPage.push(...rows);
    }
    expect(wrapped.flat().length).toBeGreaterThan(narrow.rows); // taller than the window
    expect(wrapped.some((rows) => rows.length > 1)).toBe(true);
    await use(narrow, async (terminal) => {
      await terminal.type("query-c");
      await terminal.press("Tab");
      const screen = await terminal.waitForLastLine(MORE);
      expect(screen.slice(0, -1).slice(-firstPage.length)).toEqual(firstPage); // from the first name on
      await terminal.press("C-c");
      await terminal.waitForLastLine(`${PROMPT} query-c`.slice(-20));
    });
  });
});
