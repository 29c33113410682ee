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

/** stdout refused the output for another reason (a full disk, a closed descriptor): exit 74, as sysexits' EX_IOERR. */
export class OutputError extends Error {
  override name = "OutputError";
}

const bun = (globalThis as { Bun?: typeof Bun }).Bun;

const WRITE_ERRORS: Record<string, string> = {
  ENOSPC: "no space left on the device",
  EBADF: "stdout is closed",
  EIO: "input/output error",
  EDQUOT: "disk quota exceeded",
  EFBIG: "file too large",
};

function outputErrorOf(error: unknown): Error {
  const code = (error as { code?: string })?.code;
  if (code === "EPIPE") return new BrokenPipeError("stdout closed");
  if (error instanceof OutputError) return error;
  const reason = code ? `${WRITE_ERRORS[code] ?? code} (${code})` : (error as Error)?.message ?? String(error);
  return new OutputError(`could not write the output: ${reason}`, { cause: error });
}

let stdoutChecked: Promise<void> | undefined;

/**
 * Fail when qmpctl was started with stdout closed (`qmpctl ... >&-`). Bun
 * then opens /dev/null as descriptor 1, and every write succeeds, into
 * nothing. That descriptor has close-on-exec set, which a descriptor
 * inherited through exec(2) never has: so it was not given by the caller.
 * (Linux's /proc/self/fdinfo; elsewhere nothing is checked.) Reading it
 * costs a fresh process a few ms, so only a stdout that is /dev/null is
 * looked at (Bun.resolveSync follows /proc/self/fd/1 for well under 1 ms).
 */
function checkStdoutOpen(): Promise<void> {
  if (stdoutChecked) return stdoutChecked;
  let target: string | undefined;
  try {
    target = bun!.resolveSync("./1", "/proc/self/fd");
  } catch {
    target = undefined; // no /proc: nothing to check
  }
  if (target !== "/dev/null") return stdoutChecked = Promise.resolve();
  return stdoutChecked = bun!.file("/proc/self/fdinfo/1").text().then((info) => {
    const flags = /^flags:\s*([0-7]+)/m.exec(info)?.[1];
    const O_CLOEXEC = 0o2000000;
    if (flags !== undefined && (parseInt(flags, 8) & O_CLOEXEC) !== 0) {
      throw new OutputError("could not write the output: stdout is closed (EBADF)");
    }
  }, () => {});
}

// Begun as the CLI starts, so that reading /proc overlaps with connecting to
// QEMU; the first write waits for it (and fails with it).
if (bun) checkStdoutOpen().catch(() => {});

let stdoutErrorsHandled = false;

/**
 * Write to stdout; rejects with BrokenPipeError when the reader has gone, with
 * OutputError when stdout cannot take the text (ENOSPC, EBADF), and with `signal`'s error when it aborts first. That only helps while the write
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
    return checkStdoutOpen().then(() => bun.write(bun.stdout, text)).then(
      () => {},
      (error) => Promise.reject(outputErrorOf(error)),
    );
  }
  if (!stdoutErrorsHandled) {
    // Node and Deno also emit write errors as 'error' events, which would be
    // uncaught; the write callback below reports them.
    process.stdout.on("error", () => {});
    stdoutErrorsHandled = true;
  }
  return new Promise((resolve, reject) => {
    process.stdout.write(text, (error) => error ? reject(outputErrorOf(error)) : resolve());
  });
}

/**
 * Write one line to stderr (console.error: synchronous, and cheap at
 * start-up). Control characters are written as escapes, so that text from a
 * server (a QEMU error's `desc`) or from the user can neither split the line
 * nor reach the terminal as an escape sequence.
 */
export function writeStderrLine(line: string): void {
  console.error(escapeControls(line));
}

// C0 controls, DEL and the C1 controls (U+0080..U+009F, which some terminals obey).
// deno-lint-ignore no-control-regex -- matching control characters is the point
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/g;
const NAMED: Record<string, string> = { "\n": "\\n", "\r": "\\r", "\t": "\\t" };

/** `text` with each control character written as `\n`, `\r`, `\t` or `\xHH`. */
export function escapeControls(text: string): string {
  return text.replace(CONTROL, (c) => NAMED[c] ?? `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`);
}

/** All of stdin as bytes; `signal` (SIGINT, --timeout) ends the wait for a stdin that stays open. */
export function readStdinBytes(signal?: AbortSignal): Promise<Uint8Array> {
  return abortable(readAllStdin(), signal, "stdin to end");
}

async function readAllStdin(): Promise<Uint8Array> {
  if (bun) return bun.stdin.bytes();
  const chunks: Uint8Array[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Uint8Array);
  return new Uint8Array(await new Blob(chunks as BlobPart[]).arrayBuffer());
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

/**
 * The last `count` command-line words as the bytes the caller passed, or
 * undefined where they cannot be had. The runtime has already decoded argv,
 * replacing bytes that are not UTF-8 by U+FFFD; Linux keeps the bytes in
 * /proc/self/cmdline (words ended by NUL).
 */
export async function argvBytes(count: number): Promise<Uint8Array[] | undefined> {
  let bytes: Uint8Array;
  try {
    bytes = bun
      ? await bun.file("/proc/self/cmdline").bytes()
      : new Uint8Array((await import("node:fs")).readFileSync("/proc/self/cmdline"));
  } catch {
    return undefined;
  }
  const words: Uint8Array[] = [];
  let start = 0;
  for (let i = 0; i < bytes.length; i++) {
    if (bytes[i] === 0) {
      words.push(bytes.subarray(start, i));
      start = i + 1;
    }
  }
  return words.length >= count ? words.slice(words.length - count) : undefined;
}

/** Call `handler` on SIGINT (instead of dying). */
export function onInterrupt(handler: () => void): void {
  process.on("SIGINT", handler);
}

/** End the process with `code`. */
export function exit(code: number): never {
  return process.exit(code);
}
