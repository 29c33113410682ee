/**
 * The CLI's runtime-specific calls: standard streams, environment, exit and
 * signals. `process` is a global in Bun, Deno 2 and Node; only stdout and
 * stdin differ: under Bun they are Bun's own APIs, because
 * `process.stdout.write` costs a compiled binary ~13 ms of start-up.
 *
 * @module
 */
import { abortable } from "../lib/abort.ts";

/** stdout was closed by its reader (`qmpctl events | head -1`). */
export class BrokenPipeError extends Error {
  override name = "BrokenPipeError";
}

const bun = (globalThis as { Bun?: typeof Bun }).Bun;

function brokenPipeOr(error: unknown): unknown {
  return (error as { code?: string })?.code === "EPIPE" ? new BrokenPipeError("stdout closed") : error;
}

let stdoutErrorsHandled = false;

/**
 * Write to stdout; rejects with BrokenPipeError when the reader has gone, and
 * with `signal`'s error when it aborts first. That only helps while the write
 * waits in the event loop (a non-blocking stdout): on a blocking pipe, Bun and
 * Deno block in write(2) until the reader takes the text, and no handler runs.
 */
export function writeStdout(text: string, signal?: AbortSignal): Promise<void> {
  return abortable(writeAll(text), signal, "stdout to take the output");
}

function writeAll(text: string): Promise<void> {
  // Bun.write of "" truncates a regular file: `qmpctl ... >> log` would lose the log.
  if (text === "") return Promise.resolve();
  if (bun) {
    return bun.write(bun.stdout, text).then(() => {}, (error) => Promise.reject(brokenPipeOr(error)));
  }
  if (!stdoutErrorsHandled) {
    // Node and Deno also emit write errors as 'error' events, which would be
    // uncaught; the write callback below reports them.
    process.stdout.on("error", () => {});
    stdoutErrorsHandled = true;
  }
  return new Promise((resolve, reject) => {
    process.stdout.write(text, (error) => error ? reject(brokenPipeOr(error)) : resolve());
  });
}

/** Write one line to stderr (console.error: synchronous, and cheap at start-up). */
export function writeStderrLine(line: string): void {
  console.error(line);
}

/** All of stdin as text; `signal` (SIGINT, --timeout) ends the wait for a stdin that stays open. */
export function readStdin(signal?: AbortSignal): Promise<string> {
  return abortable(readAllStdin(), signal, "stdin to end");
}

async function readAllStdin(): Promise<string> {
  if (bun) return bun.stdin.text();
  const chunks: Uint8Array[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Uint8Array);
  return new TextDecoder().decode(await new Blob(chunks as BlobPart[]).arrayBuffer());
}

/** Whether stdin is a terminal (the shell then edits lines). */
export function stdinIsTerminal(): boolean {
  return process.stdin.isTTY === true;
}

/** An environment variable. */
export function env(name: string): string | undefined {
  return process.env[name];
}

/** The command-line words after the program name. */
export function argv(): string[] {
  return process.argv.slice(2);
}

/** Call `handler` on SIGINT (instead of dying). */
export function onInterrupt(handler: () => void): void {
  process.on("SIGINT", handler);
}

/** End the process with `code`. */
export function exit(code: number): never {
  return process.exit(code);
}

/** Call `handler` on SIGTERM (instead of dying). */
export function onTerminate(handler: () => void): void {
  process.on("SIGTERM", handler);
}

/** A child process whose stdio is the caller's own. */
export interface PassthroughChild {
  /** Its exit status; 128 + the signal's number when a signal ended it, as a shell reports it. */
  exited: Promise<number>;
  kill(signal: "SIGTERM" | "SIGINT" | "SIGKILL"): void;
}

const SIGNAL_NUMBERS: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGKILL: 9, SIGTERM: 15 };

/**
 * Start `command` with stdin, stdout and stderr passed through.
 * @throws when the program cannot be started (not found, not executable)
 */
export async function spawnPassthrough(command: string[]): Promise<PassthroughChild> {
  const bySignal = (signal: string | null | undefined) => 128 + (SIGNAL_NUMBERS[signal ?? ""] ?? 0);
  if (bun) {
    const child = bun.spawn(command, { stdin: "inherit", stdout: "inherit", stderr: "inherit" });
    return {
      exited: child.exited.then((code) => child.signalCode ? bySignal(String(child.signalCode)) : code),
      kill: (signal) => child.kill(signal),
    };
  }
  const { spawn } = await import("node:child_process");
  const child = spawn(command[0], command.slice(1), { stdio: "inherit" });
  await new Promise<void>((resolve, reject) => {
    child.once("spawn", resolve);
    child.once("error", reject);
  });
  return {
    exited: new Promise((resolve) => child.once("exit", (code, signal) => resolve(code ?? bySignal(signal)))),
    kill: (signal) => void child.kill(signal),
  };
}

/** A new directory only the owner may enter (mode 0700), in the system's temporary directory. */
export async function makePrivateDir(prefix: string): Promise<string> {
  const { mkdtemp } = await import("node:fs/promises");
  const { tmpdir } = await import("node:os");
  return mkdtemp(`${tmpdir()}/${prefix}`);
}

/** Remove a directory and what it holds (no error when it is already gone). */
export async function removeDir(path: string): Promise<void> {
  const { rm } = await import("node:fs/promises");
  await rm(path, { recursive: true, force: true });
}
