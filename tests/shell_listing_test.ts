/**
 * TAB's list of candidates on a real pseudo-terminal (tmux) against a real
 * QEMU named vm1, as readline shows it: down the columns, and a screenful at
 * a time with `--More--` when the window is too short for it (80 × 10 here:
 * nine rows of the list, then `--More--` on the last). The expected names
 * come from QEMU's own query-commands.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { startQemu, type TestQemu } from "./helpers/qemu.ts";
import { useShellHome, withShell } from "./helpers/shell.ts";
import type { TerminalSession } from "./helpers/terminal.ts";

let qemu: TestQemu;
const home = useShellHome();
const PROMPT = "(vm1)";
const MORE = "--More--";
/** A window in which the 65 or so query-* commands take two columns of 33 rows: a screenful is 9 of them. */
const SHORT = { columns: 80, rows: 10 };

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

/** `names` laid out down `columns` columns, as the names of each row: row r holds the r-th of each column. */
function downColumns(names: readonly string[], columns: number): string[][] {
  const height = Math.ceil(names.length / columns);
  return Array.from({ length: height }, (_, row) => names.filter((_, i) => i % height === row));
}

/** Whether `screen` shows the list's `rows` from `first` on (as many as fit) above `--More--` on its last row. */
function showsPage(screen: string[], rows: string[][], first: number): boolean {
  const above = screen.slice(0, -1);
  return screen.at(-1) === MORE &&
    JSON.stringify(above.map(words)) === JSON.stringify(rows.slice(first, first + above.length));
}

/** Type `line` and TAB, and wait for the first screenful of its list: the list's rows, laid out as shown. */
async function firstScreenful(terminal: TerminalSession, line: string, names: string[]): Promise<string[][]> {
  await terminal.type(line);
  await terminal.press("Tab");
  const screen = await terminal.waitForLastLine(MORE);
  const rows = downColumns(names, words(screen[0]).length);
  expect(words(screen[0]).length).toBeGreaterThan(1); // in one column, across and down would be the same
  expect(screen).toHaveLength(SHORT.rows); // the list fills every row but the last, which --More-- takes
  expect(showsPage(screen, rows, 0)).toBe(true);
  expect(await terminal.cursor()).toEqual({ x: MORE.length, y: SHORT.rows - 1 });
  return rows;
}

describe("qmpctl shell: TAB's list of candidates", () => {
  test("runs down the columns, as readline's does: the names in order read top to bottom, then the next column", async () => {
    const names = await commandsStartingWith("query-");
    await use({ columns: 100 }, async (terminal) => {
      await terminal.type("query-");
      await terminal.press("Tab");
      const screen = await terminal.waitFor(
        "the list",
        (s) => s.at(-1) === `${PROMPT} query-` && s.some((row) => row.startsWith(`${names[0]} `)),
      );
      const list = screen.slice(screen.findIndex((row) => row.startsWith(`${names[0]} `)), -1);
      const columns = words(list[0]).length;
      expect(columns).toBeGreaterThan(1); // in one column, across and down would be the same
      expect(list.map(words)).toEqual(downColumns(names, columns));
    });
  });

  test("taller than the window: a screenful, then --More--; space shows the next, Return, Down or j one row more", async () => {
    const names = await commandsStartingWith("query-");
    await use(SHORT, async (terminal) => {
      const rows = await firstScreenful(terminal, "query-", names);
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
    const names = await commandsStartingWith("query-");
    await use(SHORT, async (terminal) => {
      let line = "query-";
      for (const key of ["q", "Q", "n", "N", "BSpace", "C-c", "Escape", "C-d"]) {
        const rows = await firstScreenful(terminal, line, names);
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
    const names = await commandsStartingWith("query-");
    await use(SHORT, async (terminal) => {
      const rows = await firstScreenful(terminal, "query-", names);
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
    await use(SHORT, async (terminal) => {
      await terminal.press("Tab");
      await terminal.waitForLastLine(`Display all ${names.length} possibilities? (y or n)`);
      await terminal.type("y");
      const screen = await terminal.waitForLastLine(MORE);
      expect(screen.slice(0, -1).map(words)).toEqual(downColumns(names, words(screen[0]).length).slice(0, 9));
      await terminal.press("C-c");
      await terminal.waitForLastLine(PROMPT);
    });
  });
});
