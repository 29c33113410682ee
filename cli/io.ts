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

/**
 * The normal JIT policy again, for a loop that runs long (an event stream):
 * the binary starts with tier-up delayed (scripts/build.sh), which suits
 * run-once start-up code. Elsewhere nothing to do.
 */
export function normalJit(): void {
  bun?.unsafe.setJITPolicy?.(1);
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
