/**
 * The CLI's runtime-specific calls: standard streams, environment, exit and
 * signals. Under Bun these are Bun's own APIs, because `process.stdout.write`
 * costs a compiled binary ~13 ms of start-up; elsewhere (Deno, Node) they are
 * `node:process`, loaded only there.
 *
 * @module
 */

/** stdout was closed by its reader (`qmpctl events | head -1`). */
export class BrokenPipeError extends Error {
  override name = "BrokenPipeError";
}

interface Runtime {
  writeStdout(text: string): Promise<void>;
  readStdin(): Promise<string>;
  stdinIsTerminal(): boolean;
  stdoutIsTerminal(): boolean;
}

const bun = (globalThis as { Bun?: typeof Bun }).Bun;
// Deno and Node have a global `process` too (Deno 2 does); no import needed,
// and no top-level await, which would make Bun load every module asynchronously.
const nodeProcess = bun ? undefined : (globalThis as unknown as { process: typeof process }).process;

function isBrokenPipe(error: unknown): boolean {
  return (error as { code?: string })?.code === "EPIPE";
}

const runtime: Runtime = bun
  ? {
    writeStdout: (text) =>
      bun.write(bun.stdout, text).then(() => {}, (error) => {
        throw isBrokenPipe(error) ? new BrokenPipeError("stdout closed") : error;
      }),
    readStdin: () => bun.stdin.text(),
    stdinIsTerminal: () => process.stdin.isTTY === true,
    stdoutIsTerminal: () => process.stdout.isTTY === true,
  }
  : {
    writeStdout: (text) =>
      new Promise((resolve, reject) => {
        nodeProcess!.stdout.once("error", (error) =>
          reject(isBrokenPipe(error) ? new BrokenPipeError("stdout closed") : error));
        nodeProcess!.stdout.write(text, (error) =>
          error ? reject(isBrokenPipe(error) ? new BrokenPipeError("stdout closed") : error) : resolve());
      }),
    readStdin: async () => {
      const chunks: Uint8Array[] = [];
      for await (const chunk of nodeProcess!.stdin) chunks.push(chunk as Uint8Array);
      return new TextDecoder().decode(concat(chunks));
    },
    stdinIsTerminal: () => nodeProcess!.stdin.isTTY === true,
    stdoutIsTerminal: () => nodeProcess!.stdout.isTTY === true,
  };

function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.length;
  }
  return out;
}

/** Write to stdout; rejects with BrokenPipeError when the reader has gone. */
export const writeStdout = runtime.writeStdout;
/** Write one line to stderr (console.error: synchronous, and cheap at start-up). */
export function writeStderrLine(line: string): void {
  console.error(line);
}
/** All of stdin as text. */
export const readStdin = runtime.readStdin;
/** Whether stdin is a terminal (the shell then edits lines). */
export const stdinIsTerminal = runtime.stdinIsTerminal;
/** Whether stdout is a terminal. */
export const stdoutIsTerminal = runtime.stdoutIsTerminal;

/** An environment variable. */
export function env(name: string): string | undefined {
  return (bun ? process.env : nodeProcess!.env)[name];
}

/** The command-line words after the program name. */
export function argv(): string[] {
  return (bun ? process.argv : nodeProcess!.argv).slice(2);
}

/** Call `handler` on SIGINT (instead of dying). */
export function onInterrupt(handler: () => void): void {
  (bun ? process : nodeProcess!).on("SIGINT", handler);
}

/** End the process with `code`. */
export function exit(code: number): never {
  return (bun ? process : nodeProcess!).exit(code);
}
