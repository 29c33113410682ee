/** `qmpctl shell --hmp` on a real pseudo-terminal against a real QEMU (pc, 2 CPUs, paused with -S). */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { statSync } from "node:fs";
import { join } from "node:path";
import { QMPCTL } from "./helpers/cli.ts";
import { startQemu, type TestQemu } from "./helpers/qemu.ts";
import { enterLine, useShellHome } from "./helpers/shell.ts";
import { startTerminal, type TerminalSession } from "./helpers/terminal.ts";

let qemu: TestQemu;
const home = useShellHome();
let terminal: TerminalSession;
const PROMPT = "(QEMU)"; // no -name: "(QEMU) ", its blank dropped from the screen

beforeAll(async () => {
  qemu = await startQemu({ machine: "pc", extraArgs: ["-smp", "2"] });
  terminal = await startTerminal([QMPCTL, "shell", "--hmp", "-s", qemu.socket], { env: home.env() });
  await terminal.waitForLastLine(PROMPT);
});
afterAll(async () => {
  await terminal?.close();
  await qemu?.stop();
});

/** Type a line at the prompt, press Enter, and return that row and the output rows below it. */
const enter = (line: string, rows = 1) => enterLine(terminal, PROMPT, line, rows);

describe("qmpctl shell --hmp on a terminal", () => {
  test("runs a human monitor command and prints its text as is", async () => {
    expect((await terminal.screen())[0]).toMatch(/^Connected to QEMU .* \(human monitor\); /);
    expect(await enter("info status")).toEqual(["(QEMU) info status", "VM status: paused (prelaunch)"]);
  });

  test("a line that starts with # is a comment: not sent, nothing printed (as piped)", async () => {
    expect(await enter("# info status", 0)).toEqual(["(QEMU) # info status"]);
    expect(await enter("  #info status", 0)).toEqual(["(QEMU)   #info status"]);
  });

  test("cpu N sets the CPU of the commands that follow; a CPU that does not exist is refused", async () => {
    const cpus = async () => (await enter("info cpus", 2)).slice(1).map((row) => row.replace(/thread_id=\d+/, "…"));
    expect(await cpus()).toEqual(["* CPU #0: …", "  CPU #1: …"]);
    expect(await enter("cpu 1", 0)).toEqual(["(QEMU) cpu 1"]);
    expect(await cpus()).toEqual(["  CPU #0: …", "* CPU #1: …"]);
    expect(await enter("cpu 7")).toEqual(["(QEMU) cpu 7", "GenericError: Parameter 'cpu-index' expects a CPU number"]);
    expect(await enter("cpu 9007199254740993")).toEqual([
      "(QEMU) cpu 9007199254740993",
      "ArgumentError: usage: cpu N (a CPU index)",
    ]);
    expect(await cpus()).toEqual(["  CPU #0: …", "* CPU #1: …"]);
    expect(await enter("cpu 0", 0)).toEqual(["(QEMU) cpu 0"]);
    expect(await cpus()).toEqual(["* CPU #0: …", "  CPU #1: …"]);
  });

  test("TAB completes command names from QEMU's help, and info topics from its info list", async () => {
    await terminal.type("info statu");
    await terminal.press("Tab");
    await terminal.waitForLastLine("(QEMU) info status");
    await terminal.press("C-u");
    await terminal.type("system_res");
    await terminal.press("Tab");
    await terminal.waitForLastLine("(QEMU) system_reset");
    await terminal.press("C-u");
    await terminal.waitForLastLine(PROMPT);
  });

  test("q, the monitor's short quit, leaves the shell with 0 as quit does, and does not quit QEMU; own history", async () => {
    await terminal.type("q");
    await terminal.press("Enter");
    expect(await terminal.exitStatus()).toBe(0);
    expect(await qemu.control.execute("query-status")).toMatchObject({ status: "prelaunch" });
    expect(statSync(join(home.dir, "state", "qmpctl", "hmp_history")).mode & 0o777).toBe(0o600);
  });
});
