/**
 * TAB's list of candidates on a real pseudo-terminal (tmux) against a real
 * QEMU named vm1, as readline shows it: down the columns, and a screenful at
 * a time with `--More--` when the window is too short for it. The expected
 * names come from QEMU's own query-commands.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { startQemu, type TestQemu } from "./helpers/qemu.ts";
import { useShellHome, withShell } from "./helpers/shell.ts";
import type { TerminalSession } from "./helpers/terminal.ts";

let qemu: TestQemu;
const home = useShellHome();
const PROMPT = "(vm1)";

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
});
