/**
 * The shell's history file on a real pseudo-terminal: where it goes. A
 * relative XDG_STATE_HOME is ignored (the XDG spec calls it invalid).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { QMPCTL } from "./helpers/cli.ts";
import { startQemu, type TestQemu } from "./helpers/qemu.ts";
import { enterLine } from "./helpers/shell.ts";
import { startTerminal, type TerminalSession } from "./helpers/terminal.ts";

let qemu: TestQemu;
const homes: string[] = [];
const PROMPT = "(QEMU)"; // no -name: "(QEMU) ", its blank dropped from the screen

beforeAll(async () => {
  qemu = await startQemu();
});
afterAll(async () => {
  await qemu?.stop();
  for (const home of homes) rmSync(home, { recursive: true, force: true });
});

/** A fresh home, its history directory `state/qmpctl` not made yet. */
function freshHome(): { home: string; dir: string; file: (kind?: string) => string } {
  const home = mkdtempSync(join(tmpdir(), "qmpctl-history-"));
  homes.push(home);
  const dir = join(home, "state", "qmpctl");
  return { home, dir, file: (kind = "qmp") => join(dir, `${kind}_history`) };
}

/**
 * Run a shell on a wide terminal (so that a warning stays on one row) with
 * HOME=`home` and XDG_STATE_HOME=`home`/state unless `env` says otherwise,
 * let `body` use it, then leave with `quit` (exit 0). Returns the last screen.
 */
async function shell(
  home: string,
  body: (terminal: TerminalSession) => Promise<void>,
  options: { hmp?: boolean; env?: Record<string, string>; cwd?: string } = {},
): Promise<string[]> {
  const env = { HOME: home, XDG_STATE_HOME: join(home, "state"), XDG_CACHE_HOME: join(home, "cache"), ...options.env };
  const argv = [QMPCTL, "shell", ...(options.hmp ? ["--hmp"] : []), "-s", qemu.socket];
  const terminal = await startTerminal(argv, { env, cwd: options.cwd, columns: 250 });
  try {
    await terminal.waitForLastLine(PROMPT);
    await body(terminal);
    await terminal.type("quit");
    await terminal.press("Enter");
    expect(await terminal.exitStatus()).toBe(0);
    return await terminal.screen();
  } finally {
    await terminal.close();
    await waitForMonitorFree();
  }
}

/** QEMU serves one client per monitor: wait until it has seen the last shell go. */
async function waitForMonitorFree(): Promise<void> {
  const { QmpClient } = await import("../lib/mod.ts");
  const probe = await QmpClient.connect(qemu.socket, { connectTimeout: 5000 });
  await probe.close();
}

describe("the shell's history file", () => {
  test("a relative XDG_STATE_HOME is ignored: history goes to ~/.local/state/qmpctl", async () => {
    const { home } = freshHome();
    const cwd = join(home, "work");
    mkdirSync(cwd);
    await shell(home, async (terminal) => {
      await enterLine(terminal, PROMPT, "query-name");
    }, { env: { XDG_STATE_HOME: "state" }, cwd });
    expect(readFileSync(join(home, ".local", "state", "qmpctl", "qmp_history"), "utf8")).toBe("query-name\nquit\n");
    expect(existsSync(join(cwd, "state"))).toBe(false);
  });
});
