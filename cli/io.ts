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

let stdinText: Promise<string> | undefined;

/**
 * All of stdin as text, read once (every target of a fan-out gets the same
 * text); `signal` (SIGINT, --timeout) ends the wait for a stdin that stays open.
 */
export function readStdin(signal?: AbortSignal): Promise<string> {
  return abortable(stdinText ??= readAllStdin(), signal, "stdin to end");
}

async function readAllStdin(): Promise<string> {
  if (bun) return bun.stdin.text();
  const chunks: Uint8Array[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Uint8Array);
  return new TextDecoder().decode(await new Blob(chunks as BlobPart[]).arrayBuffer());
}

/** A line longer than the bound, skipped up to its newline: how long it was (in characters). */
export class LineTooLong {
  constructor(readonly bytes: number) {}
}

/**
 * The lines of a file, or of stdin without `path` (or with "-"), as they
 * arrive: CRLF made LF, the last line without its newline too. Memory stays
 * bounded: a line longer than `maxLineBytes` is not kept but yields a
 * `LineTooLong` in its place.
 */
export async function* readLines(path: string | undefined, maxLineBytes: number): AsyncGenerator<string | LineTooLong> {
  const decoder = new TextDecoder();
  let buffer = "";
  let skipping = 0; // > 0: inside an over-long line, this many characters dropped so far
  for await (const chunk of await byteStream(path)) {
    buffer += decoder.decode(chunk, { stream: true });
    let start = 0, newline;
    while ((newline = buffer.indexOf("\n", start)) >= 0) {
      if (skipping > 0 || newline - start > maxLineBytes) {
        yield new LineTooLong(skipping + newline - start);
        skipping = 0;
      } else yield buffer.slice(start, newline).replace(/\r$/, "");
      start = newline + 1;
    }
    buffer = buffer.slice(start);
    if (buffer.length > maxLineBytes || skipping > 0) {
      skipping += buffer.length;
      buffer = "";
    }
  }
  buffer += decoder.decode();
  if (skipping > 0) yield new LineTooLong(skipping + buffer.length);
  else if (buffer !== "") yield buffer;
}

/** The bytes of a file, or of stdin: Bun's own streams under Bun, node:fs elsewhere. */
async function byteStream(path: string | undefined): Promise<AsyncIterable<Uint8Array>> {
  const stdin = path === undefined || path === "-";
  if (bun) {
    if (!stdin && !(await bun.file(path!).exists())) throw Object.assign(new Error("no such file"), { code: "ENOENT" });
    return (stdin ? bun.stdin.stream() : bun.file(path!).stream()) as unknown as AsyncIterable<Uint8Array>;
  }
  if (stdin) return process.stdin as AsyncIterable<Uint8Array>;
  const { createReadStream } = await import("node:fs");
  return createReadStream(path!) as AsyncIterable<Uint8Array>;
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

/**
 * The paths that match `pattern` (`*`, `?`, `[...]` within one path
 * component, as the shell's glob), sorted; hidden names only when the
 * component itself starts with a dot. `node:fs` is loaded here, so the
 * single-address path never pays for it.
 */
export async function globPaths(pattern: string): Promise<string[]> {
  const { readdir } = await import("node:fs/promises");
  const absolute = pattern.startsWith("/");
  const parts = pattern.split("/").filter((part, i) => part !== "" || i === 0);
  let found = [absolute ? "/" : ""];
  for (const [i, part] of parts.entries()) {
    if (i === 0 && absolute) continue;
    const last = i === parts.length - 1;
    const next: string[] = [];
    for (const base of found) {
      if (!/[*?[]/.test(part)) {
        next.push(base + part + (last ? "" : "/"));
        continue;
      }
      const matches = globMatcher(part);
      const names = await readdir(base === "" ? "." : base).catch(() => [] as string[]);
      for (const name of names.sort()) {
        if (matches(name) && (!name.startsWith(".") || part.startsWith("."))) {
          next.push(base + name + (last ? "" : "/"));
        }
      }
    }
    found = next;
  }
  const { stat } = await import("node:fs/promises");
  const exists = await Promise.all(found.map((path) => stat(path).then(() => true, () => false)));
  return found.filter((_, i) => exists[i]).sort();
}

/** A test of one path component against a glob component. */
function globMatcher(glob: string): (name: string) => boolean {
  let source = "";
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === "*") source += "[^/]*";
    else if (c === "?") source += "[^/]";
    else if (c === "[" && glob.indexOf("]", i + 2) > 0) {
      const end = glob.indexOf("]", i + 2);
      const body = glob.slice(i + 1, end).replace(/^!/, "^").replaceAll("\\", "\\\\");
      source += `[${body}]`;
      i = end;
    } else source += c.replace(/[.+^${}()|\\\]]/g, "\\$&");
  }
  const regex = new RegExp(`^${source}$`);
  return (name) => regex.test(name);
}
