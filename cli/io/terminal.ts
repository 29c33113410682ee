/**
 * The terminal: whether each standard stream is one, its size, raw mode,
 * its keys as they come, and TERM=dumb.
 *
 * @module
 */
import { env } from "./process.ts";

/** Whether stdin is a terminal (the shell then edits lines). */
export function stdinIsTerminal(): boolean {
  return process.stdin.isTTY === true;
}

/** Whether stdout is a terminal (the shell then edits lines and redraws). */
export function stdoutIsTerminal(): boolean {
  return process.stdout.isTTY === true;
}

/** Whether stderr is a terminal (progress lines are drawn only there, unless asked for). */
export function stderrIsTerminal(): boolean {
  return process.stderr.isTTY === true;
}

/** The width of the terminal on stderr, read each time (it may be resized); $COLUMNS or 80 when unknown. */
export function stderrColumns(): number {
  const columns = (process.stderr as { columns?: number }).columns;
  if (typeof columns === "number" && columns > 0) return columns;
  const fromEnv = Number(env("COLUMNS"));
  return Number.isInteger(fromEnv) && fromEnv > 0 ? fromEnv : 80;
}

/** TERM=dumb: a terminal that takes no escape sequences (no colour, no cursor movement). */
export function dumbTerminal(): boolean {
  return env("TERM") === "dumb";
}

/**
 * Call `handler` when the terminal on stdout is resized; the returned
 * function stops it. A window resized while qmpctl was stopped (Ctrl-Z)
 * sent its SIGWINCH to the job in the foreground then, not to qmpctl: on
 * SIGCONT the size is read again, and a change calls `handler` too.
 */
export function onTerminalResize(handler: () => void): () => void {
  process.stdout.on("resize", handler);
  process.on("SIGCONT", refreshTerminalSize);
  return () => {
    process.stdout.off("resize", handler);
    process.off("SIGCONT", refreshTerminalSize);
  };
}

/**
 * Read the terminal's size again now, rather than trust the last SIGWINCH
 * (one sent while qmpctl was stopped never came): a change emits stdout's
 * `resize` (Bun's, Node's and Deno's tty streams all have `_refreshSize`).
 */
export function refreshTerminalSize(): void {
  (process.stdout as { _refreshSize?: () => void })._refreshSize?.();
}

/** The terminal's width in columns, as the last SIGWINCH (or refreshTerminalSize) left it; 80 when unknown. */
export function terminalColumns(): number {
  return process.stdout.columns || 80;
}

/** The terminal's height in rows, as the last SIGWINCH (or refreshTerminalSize) left it; 24 when unknown. */
export function terminalRows(): number {
  return process.stdout.rows || 24;
}

/**
 * Put the terminal in raw mode (keys one at a time, no echo, Ctrl-C as a
 * byte) or back. Throws when stdin is no terminal any more (after a hangup).
 */
export function setRawMode(raw: boolean): void {
  process.stdin.setRawMode(raw);
}

/** Deliver stdin's bytes to `handler` as they come; the returned function stops reading. */
export function readStdinChunks(handler: (chunk: Uint8Array) => void): () => void {
  process.stdin.on("data", handler);
  process.stdin.resume();
  return () => {
    process.stdin.off("data", handler);
    process.stdin.pause();
  };
}
