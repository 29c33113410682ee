/**
 * What the line being typed holds beyond plain text, on a real
 * pseudo-terminal (tmux) against a real QEMU named vm1: bytes that are not
 * UTF-8 (refused, as the piped shell refuses them), and control characters
 * (shown as escapes, the cursor placed by what is shown, sent as typed).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { startQemu, type TestQemu } from "./helpers/qemu.ts";
import { enterLine, useShellHome, withShell } from "./helpers/shell.ts";
import type { TerminalSession } from "./helpers/terminal.ts";

let qemu: TestQemu;
const home = useShellHome();
const PROMPT = "(vm1)";

beforeAll(async () => {
  qemu = await startQemu({ extraArgs: ["-name", "vm1"] });
});
afterAll(() => qemu?.stop());

const historyFile = () => join(home.dir, "state", "qmpctl", "qmp_history");

/** A shell with -v on `qemu.socket`, its prompt shown; closed (and QEMU's monitor freed) after `body`. */
const use = (body: (t: TerminalSession) => Promise<void>) =>
  withShell(qemu.socket, PROMPT, ["-v"], { env: home.env() }, body);

/** Wait until the cursor stands in column `x` of the last row. */
async function waitForCursorAt(terminal: TerminalSession, x: number): Promise<void> {
  const deadline = Date.now() + 4000;
  for (;;) {
    const [cursor, screen] = [await terminal.cursor(), await terminal.screen()];
    if (cursor.x === x && cursor.y === screen.length - 1) return;
    if (Date.now() > deadline) {
      throw new Error(`the cursor is at ${JSON.stringify(cursor)}, not column ${x}; the screen:\n${screen.join("\n")}`);
    }
    await Bun.sleep(25);
  }
}

describe("qmpctl shell: bytes that are not UTF-8 in a typed line", () => {
  test("are shown as \\xHH, and the line is refused as the piped shell refuses it: not sent, not kept", async () => {
    await use(async (terminal) => {
      await terminal.type("set_link up=false name=a");
      await terminal.press("-H", "ff"); // a byte no UTF-8 character starts with
      await terminal.type("b");
      await terminal.waitForLastLine("(vm1) set_link up=false name=a\\xffb");
      expect(await enter(terminal, "")).toEqual([
        "(vm1) set_link up=false name=a\\xffb",
        "ArgumentError: the line is not UTF-8: 'set_link up=false name=a\\xffb'", // no "> {...}": not sent
      ]);
      // A character cut off: its first byte (C3) before a letter, its first two (E2 82) at the end of the line.
      await terminal.type("query-name a");
      await terminal.press("-H", "c3");
      await terminal.type("b");
      await terminal.press("-H", "e2", "82");
      expect(await enter(terminal, "")).toEqual([
        "(vm1) query-name a\\xc3b\\xe2\\x82",
        "ArgumentError: the line is not UTF-8: 'query-name a\\xc3b\\xe2\\x82'",
      ]);
      expect(existsSync(historyFile()) ? readFileSync(historyFile(), "utf8") : "").not.toContain("name");
      await terminal.press("Up"); // nothing to recall (a line kept would come back, query-name typed after it)
      expect(await enter(terminal, "query-name", 2)).toEqual([
        "(vm1) query-name",
        '> {"execute":"query-name"}',
        '{"name":"vm1"}',
      ]);
    });
  });
});

describe("qmpctl shell: control characters in the line being typed", () => {
  test("a pasted C1 control is shown escaped, and the cursor is placed by what is shown", async () => {
    await use(async (terminal) => {
      await terminal.paste("abc\u0085def");
      await terminal.waitForLastLine("(vm1) abc\\x85def");
      await terminal.press("Left", "Left", "Left");
      await terminal.type("X");
      await terminal.waitForLastLine("(vm1) abc\\x85Xdef");
      await waitForCursorAt(terminal, "(vm1) abc\\x85X".length);
    });
  });

  test("8-bit CSI and a bidi override are shown escaped, and sent as typed", async () => {
    await use(async (terminal) => {
      await terminal.paste("set_link up=false name=a\u009bb\u202ec");
      await terminal.waitForLastLine("(vm1) set_link up=false name=a\\x9bb\\u202ec");
      await waitForCursorAt(terminal, "(vm1) set_link up=false name=a\\x9bb\\u202ec".length);
      expect(await enter(terminal, "", 2)).toEqual([
        "(vm1) set_link up=false name=a\\x9bb\\u202ec",
        '> {"execute":"set_link","arguments":{"up":false,"name":"a\\u009bb\\u202ec"}}', // JSON: \u009b, not \x9b
        "DeviceNotFound: Device 'a\\x9bb\\u202ec' not found",
      ]);
    });
  });

  test("in a paste, every control character is text (ESC, Ctrl-A, DEL, Ctrl-H, Ctrl-C, Ctrl-Z, BEL, NUL), not a key", async () => {
    await withShell(qemu.socket, PROMPT, ["-v"], { env: home.env(), columns: 160 }, async (terminal) => { // wide: one row
      // As typed, each would act: Alt-B, Home, Backspace, Backspace, a cleared line, a stop; BEL and NUL dropped.
      await terminal.paste("set_link up=false name=a\x1bb\x01c\x7fd\be\x03f\x1ag\x07h\x00i\x1b[Aj");
      const shown = "(vm1) set_link up=false name=a\\x1bb\\x01c\\x7fd\\x08e\\x03f\\x1ag\\x07h\\x00i\\x1b[Aj";
      await terminal.waitForLastLine(shown);
      await waitForCursorAt(terminal, shown.length);
      const json = "a\\u001bb\\u0001c\\u007fd\\be\\u0003f\\u001ag\\u0007h\\u0000i\\u001b[Aj";
      expect(await enter(terminal, "", 2)).toEqual([
        shown,
        `> {"execute":"set_link","arguments":{"up":false,"name":"${json}"}}`,
        "DeviceNotFound: Device 'a\\x1bb\\x01c\\x7fd\\x08e\\x03f\\x1ag\\x07h\\x00i\\x1b[Aj' not found",
      ]);
      // Keys again after the paste; its lines still run one by one, each as entered.
      await terminal.type("x");
      await terminal.press("C-a");
      await terminal.type("query-name ");
      await terminal.waitForLastLine("(vm1) query-name x");
      await terminal.press("C-e", "C-u");
      await terminal.paste("query-name\rquery-name\x7f\n");
      await terminal.waitFor(
        "both lines run",
        (s) => s.at(-1) === PROMPT && s.at(-2)?.startsWith("CommandNotFound") === true,
      );
      expect((await terminal.screen()).slice(-7, -1)).toEqual([
        "(vm1) query-name",
        '> {"execute":"query-name"}',
        '{"name":"vm1"}',
        "(vm1) query-name\\x7f",
        '> {"execute":"query-name\\u007f"}',
        "CommandNotFound: The command query-name\\x7f has not been found (did you mean query-name?)",
      ]);
    });
  });

  test("-v shows a DEL sent as JSON does (\\u007f), as other control characters", async () => {
    mkdirSync(join(home.dir, "state", "qmpctl"), { recursive: true, mode: 0o700 });
    writeFileSync(historyFile(), "set_link up=false name=a\x7fb\x1bc\n", { mode: 0o600 });
    await use(async (terminal) => {
      await terminal.press("Up");
      expect(await enter(terminal, "", 2)).toEqual([
        "(vm1) set_link up=false name=a\\x7fb\\x1bc",
        '> {"execute":"set_link","arguments":{"up":false,"name":"a\\u007fb\\u001bc"}}',
        "DeviceNotFound: Device 'a\\x7fb\\x1bc' not found",
      ]);
    });
  });

  test("a history line holding an escape sequence is shown escaped on Up, the cursor at its end", async () => {
    mkdirSync(join(home.dir, "state", "qmpctl"), { recursive: true, mode: 0o700 });
    writeFileSync(historyFile(), "query-name \x1b[31mred\n", { mode: 0o600 });
    await use(async (terminal) => {
      await terminal.press("Up");
      await terminal.waitForLastLine("(vm1) query-name \\x1b[31mred");
      await waitForCursorAt(terminal, "(vm1) query-name \\x1b[31mred".length);
    });
  });
});

/** Press Enter after what was typed (`line`, maybe empty), and return the rows from the line to its output's end. */
function enter(terminal: TerminalSession, line: string, rows = 1): Promise<string[]> {
  return enterLine(terminal, PROMPT, line, rows);
}
