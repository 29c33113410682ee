/**
 * `qmpctl shell` on a real pseudo-terminal (tmux) against a real QEMU named
 * vm1: what a person at the terminal sees.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { QMPCTL } from "./helpers/cli.ts";
import { startQemu, type TestQemu, waitForMonitorFree } from "./helpers/qemu.ts";
import { enterLine, useShellHome, withShell } from "./helpers/shell.ts";
import { startTerminal, type TerminalSession } from "./helpers/terminal.ts";

let qemu: TestQemu;
const home = useShellHome();
const PROMPT = "(vm1)"; // "(vm1) " on the screen, which drops blanks at the ends of rows

beforeAll(async () => {
  qemu = await startQemu({ extraArgs: ["-name", "vm1"] });
});
afterAll(() => qemu?.stop());

const ENV = home.env;

/** A shell on `qemu.socket`, its prompt shown; closed (and QEMU's monitor freed) by `use`. */
function use(args: string[], body: (t: TerminalSession) => Promise<void>, columns?: number): Promise<void> {
  return withShell(qemu.socket, PROMPT, args, { env: ENV(), columns }, body);
}

/** Type a line at the prompt (the last row), press Enter, and return that row and the `rows` (at least) below it. */
const enter = (terminal: TerminalSession, line: string, rows = 1) => enterLine(terminal, PROMPT, line, rows);

describe("qmpctl shell on a terminal", () => {
  test("shows the VM's name as its prompt and a banner, and prints a command's return value as JSON", async () => {
    await use([], async (terminal) => {
      const screen = await terminal.screen();
      expect(screen.slice(0, -1).join("")).toMatch( // the banner, which may wrap
        /^Connected to QEMU \d+\.\d+\.\d+ at .*qmp\.sock \(QMP\); 'help' lists local commands\.$/,
      );
      expect(await terminal.cursor()).toEqual({ x: "(vm1) ".length, y: screen.length - 1 });
      const status = JSON.stringify(await qemu.control.execute("query-status"));
      expect(await enter(terminal, "query-status")).toEqual(["(vm1) query-status", status]);
    });
  });

  test("TAB completes a command name: to the common prefix, then lists the candidates, then the one left", async () => {
    await use([], async (terminal) => {
      await terminal.type("query-sta");
      await terminal.press("Tab");
      await terminal.waitForLastLine("(vm1) query-stat"); // query-stats, query-stats-schemas, query-status
      await terminal.press("Tab");
      const screen = await terminal.waitFor("the candidates", (s) => s.length >= 3 && s.at(-1) === "(vm1) query-stat");
      expect(screen.at(-2)!.split(/\s+/)).toEqual(["query-stats", "query-stats-schemas", "query-status"]);
      await terminal.press("Tab"); // again, as a bash habit: the bell, not the same list twice
      await Bun.sleep(300);
      const after = await terminal.screen();
      expect(after.filter((line) => line.startsWith("query-stats "))).toHaveLength(1);
      await terminal.type("u");
      await terminal.press("Tab");
      await terminal.waitForLastLine("(vm1) query-status");
      expect((await terminal.cursor()).x).toBe("(vm1) query-status ".length);
      await terminal.press("Enter");
      await terminal.waitFor("the status", (s) => s.at(-2)?.startsWith('{"status":') === true);
      await terminal.type("events of"); // the shell's own words complete too
      await terminal.press("Tab");
      await terminal.waitForLastLine("(vm1) events off");
      await terminal.press("Enter");
      await terminal.waitFor("events off", (s) => s.at(-2) === "events off");
    });
  });

  test("TAB on an empty line asks before listing every command, as readline does: n lists none, y lists them", async () => {
    await use([], async (terminal) => {
      const question = /^Display all (\d+) possibilities\? \(y or n\)$/;
      await terminal.press("Tab");
      let screen = await terminal.waitFor("the question", (s) => question.test(s.at(-1)!));
      expect(screen.at(-2)).toBe(PROMPT); // the line as typed stays above it
      const count = Number(screen.at(-1)!.match(question)![1]);
      expect(count).toBeGreaterThan(100);
      await terminal.type("x"); // not an answer: the bell, and the question stays
      await Bun.sleep(200);
      expect(question.test((await terminal.screen()).at(-1)!)).toBe(true);
      await qemu.control.execute("stop"); // an event while asked: printed above the question, which stays
      try {
        screen = await terminal.waitFor("the STOP event", (s) => s.some((row) => row.includes('"event":"STOP"')));
        expect(JSON.parse(screen.at(-2)!)).toMatchObject({ event: "STOP" });
        expect(screen.at(-1)).toMatch(question);
        expect(await terminal.cursor()).toEqual({ x: screen.at(-1)!.length, y: screen.length - 1 });
      } finally {
        await qemu.control.execute("cont");
      }
      await terminal.waitFor("the RESUME event", (s) => s.at(-2)?.includes('"event":"RESUME"') === true);
      await terminal.type("n");
      screen = await terminal.waitForLastLine(PROMPT);
      expect(screen.at(-2)).toMatch(question);
      await terminal.type("query-k");
      await terminal.press("Home");
      await terminal.press("Tab"); // before the cursor nothing: every command again; space answers yes
      await terminal.waitFor("the question again", (s) => question.test(s.at(-1)!));
      await terminal.type(" ");
      screen = await terminal.waitFor("the list", (s) => s.at(-1) === "(vm1) query-k" && s.length > 10);
      const listed = screen.slice(screen.findLastIndex((line) => question.test(line)) + 1, -1).join(" ").split(/\s+/);
      expect(listed).toContain("query-status");
      expect(listed).toHaveLength(count);
      expect((await terminal.cursor()).x).toBe("(vm1) ".length); // where it was: at the line's start
    }, 300);
  });

  test("TAB completes argument names, enum values and union members from the schema; values are typed by it", async () => {
    await use([], async (terminal) => {
      await terminal.type("blockdev-add no");
      await terminal.press("Tab");
      await terminal.waitForLastLine("(vm1) blockdev-add node-name=");
      await terminal.type("tab0 driver=null-c");
      await terminal.press("Tab");
      await terminal.waitForLastLine("(vm1) blockdev-add node-name=tab0 driver=null-co");
      await terminal.type("si"); // a member of the null-co branch, known once driver= is given
      await terminal.press("Tab");
      await terminal.waitForLastLine("(vm1) blockdev-add node-name=tab0 driver=null-co size=");
      // Typed by the schema: "4096" is an int, "123" a string (qmp-shell sent the number 123 and failed).
      expect(await enter(terminal, "4096 read-only=on")).toEqual([
        "(vm1) blockdev-add node-name=tab0 driver=null-co size=4096 read-only=on",
        "{}",
      ]);
      expect(await enter(terminal, "block-dirty-bitmap-add node=tab0 name=123")).toEqual([
        "(vm1) block-dirty-bitmap-add node=tab0 name=123",
        "{}",
      ]);
      const nodes = await qemu.control.execute("query-named-block-nodes") as Record<string, unknown>[];
      expect(nodes.find((n) => n["node-name"] === "tab0")).toMatchObject({
        ro: true,
        image: { "virtual-size": 4096 },
        "dirty-bitmaps": [{ name: "123" }],
      });
      expect(await enter(terminal, "blockdev-add driver=null-co node-name=tab1 sise=1")).toEqual([
        "(vm1) blockdev-add driver=null-co node-name=tab1 sise=1",
        expect.stringMatching(/^ArgumentError: .*'sise'.*size/),
      ]);
    });
  });

  test("an event appears above a half-typed line, which stays as it was, cursor included", async () => {
    await use([], async (terminal) => {
      await terminal.type("query-na");
      await terminal.waitForLastLine("(vm1) query-na");
      await qemu.control.execute("stop");
      try {
        const screen = await terminal.waitFor("the STOP event", (s) => s.some((row) => row.includes('"event":"STOP"')));
        expect(screen.at(-1)).toBe("(vm1) query-na");
        expect(JSON.parse(screen.at(-2)!)).toMatchObject({ event: "STOP", timestamp: { seconds: expect.any(Number) } });
        const cursor = await terminal.cursor();
        expect(cursor).toEqual({ x: "(vm1) query-na".length, y: screen.length - 1 });
        // The line goes on where it was left.
        expect(await enter(terminal, "me")).toEqual(["(vm1) query-name", '{"name":"vm1"}']);
      } finally {
        await qemu.control.execute("cont");
      }
    });
  });

  test("a line that wraps on a narrow terminal stays whole when an event comes, the cursor in its first row", async () => {
    await use([], async (terminal) => {
      const line = 'human-monitor-command command-line="info status"'; // 6 + 48 characters: two rows of 30
      await terminal.type(line);
      await terminal.press(...Array(40).fill("Left")); // back into the first row
      await terminal.waitFor("the cursor in the first row", (s) => s.at(-2) === `(vm1) ${line}`.slice(0, 30));
      await qemu.control.execute("stop");
      try {
        const screen = await terminal.waitFor("STOP", (s) => s.join("").includes('"event":"STOP"}')); // wrapped too
        expect(screen.slice(-2)).toEqual([`(vm1) ${line}`.slice(0, 30), `(vm1) ${line}`.slice(30)]);
        expect(await terminal.cursor()).toEqual({ x: 6 + line.length - 40, y: screen.length - 2 });
        await terminal.press("End");
        await terminal.press("Enter");
        await terminal.waitFor("the paused status", (s) => s.at(-2) === '"VM status: paused\\r\\n"');
        // A line that fills its row exactly: the cursor waits at the start of the next row.
        await terminal.type("query-named-block-nodes ");
        await qemu.control.execute("cont");
        const after = await terminal.waitFor("RESUME", (s) => s.join("").includes('"event":"RESUME"}'));
        expect(after.at(-1)).toBe("(vm1) query-named-block-nodes");
        expect(await terminal.cursor()).toEqual({ x: 0, y: after.length });
        await terminal.type("flat=true");
        await terminal.waitFor(
          "the line going on",
          (s) => s.slice(-2).join("|") === "(vm1) query-named-block-nodes|flat=true",
        );
      } finally {
        await qemu.control.execute("cont");
      }
    }, 30);
  });

  test("a line that fills its row exactly: its result comes on the next row, no blank row between", async () => {
    await use([], async (terminal) => {
      await terminal.type('{"execute":"query-name"}'); // 6 + 24 characters: the whole row of 30
      await terminal.press("Enter");
      const screen = await terminal.waitFor("the result", (s) => s.includes('{"name":"vm1"}'));
      const at = screen.indexOf('(vm1) {"execute":"query-name"}');
      expect(screen.slice(at, at + 3)).toEqual(['(vm1) {"execute":"query-name"}', '{"name":"vm1"}', "(vm1)"]);
    }, 30);
  });

  test("events off mutes events; events on shows them again", async () => {
    await use([], async (terminal) => {
      expect(await enter(terminal, "events off")).toEqual(["(vm1) events off", "events off"]);
      await qemu.control.execute("stop");
      await qemu.control.execute("cont");
      expect(await enter(terminal, "events on")).toEqual(["(vm1) events on", "events on"]);
      await qemu.control.execute("stop");
      await qemu.control.execute("cont");
      const screen = await terminal.waitFor("RESUME", (s) => s.some((row) => row.includes('"event":"RESUME"')));
      expect(screen.filter((row) => row.includes('"event":')).map((row) => JSON.parse(row).event)).toEqual([
        "STOP",
        "RESUME",
      ]);
    });
  });

  test("QEMU's errors and malformed lines print as CLASS: description, and the shell goes on", async () => {
    await use([], async (terminal) => {
      expect(await enter(terminal, "no-such-command")).toEqual([
        "(vm1) no-such-command",
        "CommandNotFound: The command no-such-command has not been found",
      ]);
      expect(await enter(terminal, "query-nam")).toEqual([ // the closest names, as exec gives them
        "(vm1) query-nam",
        "CommandNotFound: The command query-nam has not been found (did you mean query-name?)",
      ]);
      expect(await enter(terminal, "query-name oops")).toEqual([
        "(vm1) query-name oops",
        "ArgumentError: 'oops' is not KEY=VALUE",
      ]);
      expect(await enter(terminal, '{"execute": "query-name"}')).toEqual([
        '(vm1) {"execute": "query-name"}',
        '{"name":"vm1"}',
      ]);
    });
  });

  test("-p indents results and -v shows each command sent", async () => {
    await use(["-p", "-v"], async (terminal) => {
      expect(await enter(terminal, "query-name", 4)).toEqual([
        "(vm1) query-name",
        '> {"execute":"query-name"}',
        "{",
        '  "name": "vm1"',
        "}",
      ]);
    });
  });

  test("--raw prints each whole response, as piped lines print it: a raw line's id kept, QEMU's error as sent", async () => {
    await use(["--raw"], async (terminal) => {
      expect(await enter(terminal, "query-name")).toEqual(["(vm1) query-name", '{"return":{"name":"vm1"}}']);
      expect(await enter(terminal, '{"execute": "query-name", "id": 7}')).toEqual([
        '(vm1) {"execute": "query-name", "id": 7}',
        '{"return":{"name":"vm1"},"id":7}',
      ]);
      expect(await enter(terminal, "query-nam")).toEqual([
        "(vm1) query-nam",
        '{"error":{"class":"CommandNotFound","desc":"The command query-nam has not been found"}}',
      ]);
    });
  });

  test("transaction( ... ) sends the lines between as the actions of one transaction", async () => {
    await qemu.control.execute("blockdev-add", { "driver": "null-co", "node-name": "tx0" });
    const bitmaps = async () => {
      const nodes = await qemu.control.execute("query-named-block-nodes") as Record<string, unknown>[];
      const node = nodes.find((n) => n["node-name"] === "tx0") as { "dirty-bitmaps"?: { name: string }[] };
      return (node["dirty-bitmaps"] ?? []).map((b) => b.name).sort();
    };
    await use([], async (terminal) => {
      await terminal.type("transaction(");
      await terminal.press("Enter");
      await terminal.waitForLastLine("TRANS>");
      await terminal.type("block-dirty-bitmap-a"); // action types complete at TRANS>
      await terminal.press("Tab");
      await terminal.waitForLastLine("TRANS> block-dirty-bitmap-add");
      await terminal.press("C-u");
      for (const name of ["b1", "b2"]) {
        await terminal.type(`block-dirty-bitmap-add node=tx0 name=${name}`);
        await terminal.press("Enter");
        await terminal.waitForLastLine("TRANS>");
      }
      expect(await bitmaps()).toEqual([]); // nothing is sent before ")"
      expect(await enter(terminal, ")")).toEqual(["TRANS> )", "{}"]);
      expect(await bitmaps()).toEqual(["b1", "b2"]);

      // One transaction: when its second action fails, its first is undone too.
      for (
        const line of [
          "transaction(",
          "block-dirty-bitmap-add node=tx0 name=b3",
          "block-dirty-bitmap-add node=tx0 name=b1",
        ]
      ) {
        await terminal.type(line);
        await terminal.press("Enter");
        await terminal.waitForLastLine("TRANS>");
      }
      expect(await enter(terminal, ")")).toEqual(["TRANS> )", "GenericError: Bitmap already exists: b1"]);
      expect(await bitmaps()).toEqual(["b1", "b2"]);
    });
  });

  test("Ctrl-C clears the line; at an empty TRANS> prompt it drops the transaction", async () => {
    await use([], async (terminal) => {
      await terminal.type("query-st");
      await terminal.press("C-c");
      let screen = await terminal.waitForLastLine(PROMPT);
      expect(screen.at(-2)).toBe("(vm1) query-st^C");
      expect((await terminal.cursor()).x).toBe("(vm1) ".length);
      await terminal.type("transaction(");
      await terminal.press("Enter");
      await terminal.waitForLastLine("TRANS>");
      await terminal.press("C-c");
      screen = await terminal.waitForLastLine(PROMPT);
      expect(screen.slice(-3)).toEqual(["TRANS> ^C", "transaction dropped", PROMPT]);
    });
  });

  test("quit at TRANS> leaves, saying the transaction was not sent; help there shows the help", async () => {
    await use([], async (terminal) => {
      for (const [line, shown] of [["transaction(", "TRANS>"], ["help", "TRANS>"]]) {
        await terminal.type(line);
        await terminal.press("Enter");
        await terminal.waitForLastLine(shown);
      }
      expect((await terminal.screen()).some((row) => row.startsWith("  quit, exit, Ctrl-D"))).toBe(true);
      await terminal.type("quit");
      await terminal.press("Enter");
      expect(await terminal.exitStatus()).toBe(0);
      expect((await terminal.screen()).at(-1)).toBe("the transaction was not sent");
    });
  });

  test("at TRANS>, an unknown action type or a nested transaction( is refused at once, with the closest names", async () => {
    await use([], async (terminal) => {
      await terminal.type("transaction(");
      await terminal.press("Enter");
      await terminal.waitForLastLine("TRANS>");
      const refused = " (so the transaction will not be sent)";
      const enterAction = (line: string) => enterLine(terminal, "TRANS>", line);
      expect(await enterAction("bogus-cmd x=1")).toEqual([
        "TRANS> bogus-cmd x=1",
        `ArgumentError: unknown transaction action 'bogus-cmd'${refused}`,
      ]);
      expect(await enterAction("block-dirty-bitmap-ad node=n0 name=b9")).toEqual([
        "TRANS> block-dirty-bitmap-ad node=n0 name=b9",
        `ArgumentError: unknown transaction action 'block-dirty-bitmap-ad' (did you mean block-dirty-bitmap-add?)${refused}`,
      ]);
      expect(await enterAction("transaction(")).toEqual([
        "TRANS> transaction(",
        `ArgumentError: a transaction is open: end it with ) before another${refused}`,
      ]);
      expect(await enter(terminal, ")")).toEqual([
        "TRANS> )",
        "ArgumentError: unknown transaction action 'bogus-cmd'; the transaction was not sent: 3 of its lines made no " +
        "action",
      ]);
    }, 160);
  });

  test("help CMD shows the arguments CMD takes; help with a word that is no command, or two, says so", async () => {
    await use([], async (terminal) => {
      const describe = (command: string) => `(qmpctl describe ${command}: its types in full)`;
      expect(await enter(terminal, "help query-status", 2)).toEqual([
        "(vm1) help query-status",
        "query-status (no arguments)",
        describe("query-status"),
      ]);
      expect(await enter(terminal, "help set_link", 2)).toEqual([
        "(vm1) help set_link",
        "set_link name=str up=bool",
        describe("set_link"),
      ]);
      expect(await enter(terminal, "help query-stauts")).toEqual([
        "(vm1) help query-stauts",
        "ArgumentError: unknown command 'query-stauts' (did you mean query-stats or query-status?)",
      ]);
      expect(await enter(terminal, "help x=1 y=2")).toEqual(["(vm1) help x=1 y=2", "ArgumentError: usage: help [CMD]"]);
      await terminal.type("help query-sta"); // CMD completes
      await terminal.press("Tab");
      await terminal.waitForLastLine("(vm1) help query-stat");
    });
  });

  test('{"execute": "quit"}: QEMU quits, and the shell ends with 0 saying so, not as a lost connection', async () => {
    const own = await startQemu();
    const terminal = await startTerminal([QMPCTL, "shell", "-s", own.socket], { env: ENV() });
    try {
      await terminal.waitForLastLine("(QEMU)");
      await terminal.type('{"execute": "quit"}');
      await terminal.press("Enter");
      expect(await terminal.exitStatus()).toBe(0);
      const screen = await terminal.screen();
      expect(screen.at(-1)).toBe("QEMU quit");
      // Its reply (after the SHUTDOWN event), then the end: no prompt drawn for a line that could not run.
      expect(screen.slice(screen.lastIndexOf("{}"))).toEqual(["{}", "QEMU quit"]);
      expect(await own.process.exited).toBe(0);
    } finally {
      await terminal.close();
      await own.stop();
    }
  });

  test("TAB that QEMU does not answer (stopped) gives up after 3 s with a note; Ctrl-C gives up at once", async () => {
    await use([], async (terminal) => {
      qemu.process.kill("SIGSTOP");
      try {
        await terminal.type("query-na");
        await terminal.press("Tab");
        const screen = await terminal.waitFor(
          "the note",
          (s) => s.includes("TAB: no answer from QEMU within 3s"),
          10_000,
        );
        expect(screen.at(-1)).toBe("(vm1) query-na");
        await terminal.press("Tab");
        await Bun.sleep(200);
        await terminal.press("C-c"); // ends the TAB's wait, not the line
        await terminal.type("me");
        await terminal.waitForLastLine("(vm1) query-name");
      } finally {
        qemu.process.kill("SIGCONT");
      }
      await terminal.press("Enter");
      await terminal.waitFor("the name", (s) => s.at(-2) === '{"name":"vm1"}');
    });
  });

  test("Ctrl-C while a typed line waits for the schema (QEMU stopped): '(not sent)', and it is not sent", async () => {
    /** Enter `line` with QEMU stopped, so its typing waits; Ctrl-C; the screen once the `count`th note shows. */
    const interrupted = async (terminal: TerminalSession, line: string, count: number) => {
      qemu.process.kill("SIGSTOP");
      try {
        await terminal.type(line);
        await terminal.press("Enter");
        await Bun.sleep(300);
        await terminal.press("C-c");
        return await terminal.waitFor("the note", (s) => s.filter((l) => l.includes("^C (not sent)")).length === count);
      } finally {
        qemu.process.kill("SIGCONT");
      }
    };
    await use(["-v"], async (terminal) => { // -v shows each command the shell sends
      const screen = await interrupted(terminal, "set_link name=ctrlc up=false", 1);
      expect(screen.join("\n")).not.toContain('"execute":"set_link"');
      await Bun.sleep(300);
      expect((await terminal.screen()).join("\n")).not.toContain('"execute":"set_link"');
      // At TRANS>: the action stopped with Ctrl-C is dropped, not kept untyped and sent at ")".
      await terminal.type("transaction(");
      await terminal.press("Enter");
      await terminal.waitForLastLine("TRANS>");
      await interrupted(terminal, "block-dirty-bitmap-add node=nowhere name=ctrlc", 2);
      await terminal.type(")");
      await terminal.press("Enter");
      const sent = await terminal.waitFor(
        "the transaction",
        (s) => s.some((l) => l.includes('"execute":"transaction"')),
      );
      expect(sent.join("\n")).toContain('{"execute":"transaction","arguments":{"actions":[]}}');
    });
  });

  test("wide characters (CJK) take two columns: the cursor stays on the character it is at, a long line wraps whole", async () => {
    await use([], async (terminal) => {
      await terminal.type("echo 日本語abc");
      await terminal.waitForLastLine("(vm1) echo 日本語abc");
      expect(await terminal.cursor()).toMatchObject({ x: 6 + 5 + 6 + 3 });
      await terminal.press("Left", "Left", "Left", "Left");
      await Bun.sleep(100);
      expect(await terminal.cursor()).toMatchObject({ x: 6 + 5 + 4 }); // on 語, its first column
      await terminal.press("End", "C-u");
      // 50 wide characters on a 40-column terminal: three rows, drawn once, the cursor back on the first.
      await terminal.type("日".repeat(50));
      await terminal.press("C-a");
      const screen = await terminal.waitFor("the wrapped line", (s) => s.at(-1) === "日".repeat(13));
      expect(screen.slice(-3)).toEqual(["(vm1) " + "日".repeat(17), "日".repeat(20), "日".repeat(13)]);
      expect(screen.filter((row) => row.startsWith("(vm1)")).length).toBe(1);
      expect(await terminal.cursor()).toMatchObject({ x: 6, y: screen.length - 3 });
    }, 40);
  });

  test("a letter and the accent that combines with it move and go as one character", async () => {
    await use([], async (terminal) => {
      await terminal.type("ae\u0301b"); // é as e + U+0301
      await terminal.press("Left", "Left"); // before é, not between e and its accent
      await terminal.type("X");
      await terminal.press("Right", "BSpace"); // after é: Backspace takes e and its accent
      await terminal.waitForLastLine("(vm1) aXb");
      expect(await terminal.cursor()).toMatchObject({ x: 6 + 2 });
    });
  });

  test("pasted text is text: a TAB in it is a blank, not completion", async () => {
    await use([], async (terminal) => {
      await terminal.paste('human-monitor-command command-line="info\tstatus"');
      await terminal.waitForLastLine('(vm1) human-monitor-command command-line="info status"');
      await terminal.press("Enter");
      await terminal.waitFor("the status", (s) => s.at(-2) === '"VM status: running\\r\\n"');
    });
  });

  test("a window made wider: the line is drawn again for the new width, and the output above it stays", async () => {
    await use([], async (terminal) => {
      await enter(terminal, "query-name");
      const line = "query-status " + "x".repeat(130); // three rows at 60 columns, two at 100
      await terminal.resize(60);
      await Bun.sleep(200); // qmpctl learns the width from SIGWINCH
      await terminal.type(line);
      await terminal.waitFor("three rows", (s) => s.at(-3)?.startsWith("(vm1) query-status") === true);
      await terminal.resize(100);
      await Bun.sleep(200); // as a person's next key comes: after qmpctl has had SIGWINCH
      await terminal.press("Left"); // a key after the resize redraws the line
      const screen = await terminal.waitFor("two rows", (s) => s.at(-2)?.startsWith("(vm1) query-status") === true);
      await Bun.sleep(200); // nothing more is drawn
      expect(await terminal.screen()).toEqual(screen);
      expect(screen.slice(-3)).toEqual(['{"name":"vm1"}', ...["(vm1) " + line].join("").match(/.{1,100}/g)!]);
      expect(await terminal.cursor()).toMatchObject({ x: (6 + line.length - 1) % 100, y: screen.length - 1 });
    }, 100);
  });

  test("help lists the local commands; history survives a restart in a 0600 file; Ctrl-D and quit leave with 0", async () => {
    const terminal = await startTerminal([QMPCTL, "shell", "-s", qemu.socket], { env: ENV() });
    try {
      await terminal.waitForLastLine(PROMPT);
      const help = await enter(terminal, "help", 5);
      expect(help).toContain("  transaction(          start a transaction: each following line is one action");
      expect(help.some((row) => row.startsWith("  quit, exit, Ctrl-D"))).toBe(true);
      await enter(terminal, "query-name");
      await terminal.type("quit");
      await terminal.press("Enter");
      expect(await terminal.exitStatus()).toBe(0);
    } finally {
      await terminal.close();
      await waitForMonitorFree(qemu.socket);
    }
    const file = join(home.dir, "state", "qmpctl", "qmp_history");
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(join(home.dir, "state", "qmpctl")).mode & 0o777).toBe(0o700);
    expect(readFileSync(file, "utf8").split("\n").slice(-4)).toEqual(["help", "query-name", "quit", ""]);

    const again = await startTerminal([QMPCTL, "shell", "-s", qemu.socket], { env: ENV() });
    try {
      await again.waitForLastLine(PROMPT);
      await again.press("Up");
      await again.waitForLastLine("(vm1) quit");
      await again.press("Up");
      await again.waitForLastLine("(vm1) query-name");
      await again.press("Down", "Down");
      await again.waitForLastLine(PROMPT);
      await again.press("C-d");
      expect(await again.exitStatus()).toBe(0);
    } finally {
      await again.close();
      await waitForMonitorFree(qemu.socket);
    }
  });
});

test("typed at a terminal with stdout piped (shell | cat): stderr says there is no prompt; lines still run", async () => {
  const terminal = await startTerminal(["sh", "-c", '"$0" shell -s "$1" | cat', QMPCTL, qemu.socket], { env: ENV() });
  try {
    await terminal.waitFor("the notice", (screen) => screen.join(" ").includes("stdout is not a terminal"));
    await terminal.type("query-name\n");
    await terminal.waitFor("the result", (screen) => screen.includes('{"return":{"name":"vm1"}}'));
    await terminal.press("C-d");
    expect(await terminal.exitStatus()).toBe(0);
    expect((await terminal.screen()).join(" ")).toContain(
      "qmpctl: stdout is not a terminal: no prompt, line editing or completion;",
    );
  } finally {
    await terminal.close();
    await waitForMonitorFree(qemu.socket);
  }
});
