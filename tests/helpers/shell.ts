/** What the shell test files share: a throwaway home for history and cache, and entering a line on a terminal. */
import { afterAll, beforeAll } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { QMPCTL } from "./cli.ts";
import { waitForMonitorFree } from "./qemu.ts";
import { startTerminal, type TerminalSession } from "./terminal.ts";

/** A home directory made before this file's tests and removed after them. */
export interface ShellHome {
  /** The directory (valid once the file's tests run). */
  readonly dir: string;
  /** The environment that points history, cache and HOME into it. */
  env(): Record<string, string>;
}

/** Register a fresh home for this test file (call at its top level). */
export function useShellHome(): ShellHome {
  let dir = "";
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "qmpctl-shell-home-"));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  return {
    get dir() {
      return dir;
    },
    env: () => ({ XDG_STATE_HOME: join(dir, "state"), XDG_CACHE_HOME: join(dir, "cache"), HOME: dir }),
  };
}

/**
 * Type `line` and Enter, wait for `rows` rows of output and a new `prompt`,
 * and return the rows from the entered line to the output's end.
 */
export async function enterLine(terminal: TerminalSession, prompt: string, line: string, rows = 1): Promise<string[]> {
  const before = (await terminal.screen()).length;
  await terminal.type(line);
  await terminal.press("Enter");
  const screen = await terminal.waitFor(
    `${rows} row(s) of output after ${line} and a new prompt`,
    (s) => s.length >= before + rows + 1 && s.at(-1) === prompt,
  );
  return screen.slice(before - 1, -1);
}

/** `qmpctl shell -s socket args` on a terminal, its `prompt` shown, for `body`; then closed, and QEMU's monitor freed. */
export async function withShell(
  socket: string,
  prompt: string,
  args: string[],
  options: { env: Record<string, string>; columns?: number },
  body: (terminal: TerminalSession) => Promise<void>,
): Promise<void> {
  const terminal = await startTerminal([QMPCTL, "shell", "-s", socket, ...args], options);
  try {
    await terminal.waitForLastLine(prompt);
    await body(terminal);
  } finally {
    await terminal.close();
    await waitForMonitorFree(socket);
  }
}
