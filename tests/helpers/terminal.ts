/**
 * A program on a real pseudo-terminal, driven as a person would: tmux runs
 * it in a detached session (its own server, on a socket in a temporary
 * directory), `send-keys` types, `capture-pane` shows what is on the screen.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface TerminalOptions {
  env?: Record<string, string | undefined>;
  columns?: number;
  rows?: number;
  /** The program's working directory (default: the test runner's). */
  cwd?: string;
}

export interface TerminalSession {
  /** Type text as it is. */
  type(text: string): Promise<void>;
  /** Press keys by their tmux names: Enter, Tab, Up, C-c, C-d, ... */
  press(...keys: string[]): Promise<void>;
  /** The screen, one string per row, blanks at the ends of rows and empty rows at the bottom dropped. */
  screen(): Promise<string[]>;
  /** Paste `text` as a terminal does (bracketed, when the program asked for it); any byte, NUL too. */
  paste(text: string): Promise<void>;
  /** Resize the window to `columns` wide, and `rows` high if given (tmux reflows the lines, and the program gets SIGWINCH). */
  resize(columns: number, rows?: number): Promise<void>;
  /** Where the cursor stands (0-based). */
  cursor(): Promise<{ x: number; y: number }>;
  /** Wait until `test` holds for the screen, and return the screen; fails showing the screen after `timeoutMs`. */
  waitFor(what: string, test: (screen: string[]) => boolean, timeoutMs?: number): Promise<string[]>;
  /** Wait until the screen's last row is `line`. */
  waitForLastLine(line: string, timeoutMs?: number): Promise<string[]>;
  /** The program's exit status, once it has exited. */
  exitStatus(timeoutMs?: number): Promise<number>;
  close(): Promise<void>;
}

async function tmux(socket: string, args: string[], env?: Record<string, string>): Promise<string> {
  const child = Bun.spawn(["tmux", "-S", socket, "-f", "/dev/null", ...args], {
    stdout: "pipe",
    stderr: "pipe",
    env,
  });
  const [out, err, code] = await Promise.all([
    new Response(child.stdout).text(),
    new Response(child.stderr).text(),
    child.exited,
  ]);
  if (code !== 0) throw new Error(`tmux ${args[0]}: ${err.trim()}`);
  return out;
}

/** Run `argv` on a new terminal `columns` × `rows` (default 100 × 40). */
export async function startTerminal(argv: string[], options: TerminalOptions = {}): Promise<TerminalSession> {
  const dir = mkdtempSync(join(tmpdir(), "qmpctl-tty-"));
  const socket = join(dir, "tmux.sock");
  const statusFile = join(dir, "status");
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries({ ...process.env, TMUX: undefined, ...options.env })) {
    if (v !== undefined) env[k] = v;
  }
  // The status goes to a file, and the pane stays open so that the last screen can still be read. A Ctrl-C
  // that reaches the program (not in raw mode) reaches this shell too: trapped, it waits for the program's
  // status (the program gets the default action back at exec).
  const script = `trap true INT; "$@"; echo $? > '${statusFile}'; exec sleep 600`;
  await tmux(socket, [
    "new-session",
    "-d",
    "-x",
    String(options.columns ?? 100),
    "-y",
    String(options.rows ?? 40),
    ...(options.cwd ? ["-c", options.cwd] : []),
    "sh",
    "-c",
    script,
    "sh",
    ...argv,
  ], env);
  const run = (...args: string[]) => tmux(socket, args);

  const session: TerminalSession = {
    type: async (text) => void await run("send-keys", "-l", text),
    press: async (...keys) => void await run("send-keys", ...keys),
    async paste(text) {
      // Through a file: an argument could not hold a NUL.
      const file = join(dir, "paste");
      writeFileSync(file, text);
      await run("load-buffer", file);
      await run("paste-buffer", "-p", "-d");
    },
    resize: async (columns, rows) =>
      void await run("resize-window", "-x", String(columns), ...(rows === undefined ? [] : ["-y", String(rows)])),
    async screen() {
      const rows = (await run("capture-pane", "-p")).split("\n").map((row) => row.trimEnd());
      while (rows.length > 0 && rows.at(-1) === "") rows.pop();
      return rows;
    },
    async cursor() {
      const [x, y] = (await run("display-message", "-p", "#{cursor_x} #{cursor_y}")).trim().split(" ").map(Number);
      return { x, y };
    },
    async waitFor(what, test, timeoutMs = 4000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const screen = await session.screen();
        if (test(screen)) return screen;
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; the screen:\n${screen.join("\n")}`);
        await Bun.sleep(25);
      }
    },
    waitForLastLine: (line, timeoutMs) =>
      session.waitFor(`the last line to be ${JSON.stringify(line)}`, (s) => s.at(-1) === line, timeoutMs),
    async exitStatus(timeoutMs = 4000) {
      const deadline = Date.now() + timeoutMs;
      while (!existsSync(statusFile) || readFileSync(statusFile, "utf8") === "") {
        if (Date.now() > deadline) {
          throw new Error(`the program did not exit; the screen:\n${(await session.screen()).join("\n")}`);
        }
        await Bun.sleep(25);
      }
      return Number(readFileSync(statusFile, "utf8").trim());
    },
    async close() {
      await run("kill-server").catch(() => {});
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return session;
}
