/**
 * Output: stdout and stderr, written so that a reader that stops reading
 * holds no run past its bound (`boundOutputWrites`), and the process's exit
 * once stderr's lines are out. Under Bun its own writes, because
 * `process.stdout.write` costs a compiled binary ~13 ms of start-up.
 *
 * @module
 */
import { abortableWithGrace, within } from "../../lib/abort.ts";
import { abortErrorFor } from "../../lib/errors.ts";
import { escapeControls, escapeControlsKeepLines } from "../controls.ts";
import { env, interruptedBySigint, watchedSignal } from "./process.ts";
import { bun, descriptorFlags, NULL_DEVICE, openedInPlaceOfClosed } from "./runtime.ts";
import { dumbTerminal, stdoutIsTerminal } from "./terminal.ts";

/** stdout was closed by its reader (`qmpctl events | head -1`). */
export class BrokenPipeError extends Error {
  override name = "BrokenPipeError";
}

/** stdout refused the output for another reason (a full disk, a closed descriptor): exit 74, as sysexits' EX_IOERR. */
export class OutputError extends Error {
  override name = "OutputError";
}

const WRITE_ERRORS: Record<string, string> = {
  ENOSPC: "no space left on the device",
  EBADF: "stdout is closed",
  EIO: "input/output error",
  EDQUOT: "disk quota exceeded",
  EFBIG: "file too large",
};

/** Why a write failed, in words: "no space left on the device (ENOSPC)". */
export function writeErrorReason(error: unknown): string {
  const code = (error as { code?: string })?.code;
  return code ? `${WRITE_ERRORS[code] ?? code} (${code})` : (error as Error)?.message ?? String(error);
}

function outputErrorOf(error: unknown): Error {
  // A socket's reader that left with data unread resets it (socat EXEC:, systemd's StandardOutput=socket).
  const code = (error as { code?: string })?.code;
  if (code === "EPIPE" || code === "ECONNRESET") return new BrokenPipeError("stdout closed");
  if (error instanceof OutputError) return error;
  return new OutputError(`could not write the output: ${writeErrorReason(error)}`, { cause: error });
}

/**
 * What stdout is: emptied by a reader (a pipe or socket; O_NONBLOCK set on
 * it or not), a device (a terminal, mostly), a file opened to append to
 * (`>>`), or other (a file).
 */
type StdoutKind = "reader" | "nonBlockingReader" | "device" | "appended" | "other";

let stdoutChecked: Promise<StdoutKind> | undefined;

/**
 * Fail when qmpctl was started with stdout closed (`qmpctl ... >&-`): every
 * write would succeed, into nothing (see `openedInPlaceOfClosed`). Resolves
 * to what stdout is, from the same fstat(2).
 */
function checkStdoutOpen(): Promise<StdoutKind> {
  return stdoutChecked ??= bun!.file(1).stat().then(async (stat): Promise<StdoutKind> => {
    if (await openedInPlaceOfClosed(1, stat)) {
      throw new OutputError("could not write the output: stdout is closed (EBADF)");
    }
    if (stat.isCharacterDevice()) return Number(stat.rdev) !== NULL_DEVICE ? "device" : "other";
    const O_APPEND = 0o2000, O_NONBLOCK = 0o4000;
    if (stat.isFIFO() || stat.isSocket()) {
      return (await descriptorFlags(1) & O_NONBLOCK) !== 0 ? "nonBlockingReader" : "reader";
    }
    return stat.isFile() && (await descriptorFlags(1) & O_APPEND) !== 0 ? "appended" : "other";
  }, () => "other");
}

/**
 * Start the stdout check while waiting for the server (to greet, or to
 * answer), so that the first write does not wait for it. It starts after
 * what this turn of the event loop queued (a connection being opened, a
 * request being sent). The first write waits for it either way (and fails
 * with it); once checked, nothing more is done.
 */
export function prepareStdout(): void {
  if (bun) setImmediate(() => checkStdoutOpen().catch(() => {}));
}

/**
 * Resolves once stdout is known to take output; rejects with OutputError
 * when it was closed at start. For a command that may wait long before its
 * first line (an event wait): it fails at once, not after the wait.
 */
export function stdoutWritable(): Promise<void> {
  return bun ? checkStdoutOpen().then(() => {}) : Promise.resolve();
}

let stdoutErrorsHandled = false;

/**
 * Write to stdout; rejects with BrokenPipeError when the reader has gone, with
 * OutputError when stdout cannot take the text (ENOSPC, EBADF), and with
 * `signal`'s error when the write has not ended `WRITE_GRACE_MS` after the
 * signal aborted (or after it began, if it began later). Under Bun with a
 * deadline set (`boundOutputWrites`), a write to a pipe that waits for its
 * reader waits off the main thread; otherwise, and under Deno and Node, it
 * waits in write(2), and no handler runs meanwhile.
 */
export function writeStdout(text: string, signal?: AbortSignal): Promise<void> {
  return boundedWrite(writeAll(text), signal, "stdout");
}

// How long a write may still take once its bound has run out (--timeout, SIGINT): a reader that reads takes
// it within that (a file takes it at once), so a run ends as it would have ended between two writes, and the
// lines written after the bound (a fan-out's failures) go out; a reader that has stopped reading does not
// take it, and the write fails with the bound's error.
export const WRITE_GRACE_MS = 200;

/** `written` (to `to`: stdout, stderr, a FIFO's path), bounded by `signal` as writeStdout says. */
export function boundedWrite(written: Promise<void>, signal: AbortSignal | undefined, to: string): Promise<void> {
  return signal ? abortableWithGrace(written, signal, WRITE_GRACE_MS, `${to} to take the output`) : written;
}

/**
 * Write text for people (the human monitor's) to stdout: as it is into a
 * pipe or a file, but on a terminal with its control characters escaped as
 * `escapeControlsKeepLines` does, so that text from a QEMU one does not trust
 * can neither clear the screen nor set the clipboard (OSC 52). A terminal is
 * told by the fstat(2) every first write makes (a character device other
 * than /dev/null): isatty(3) through the runtime costs a compiled binary
 * 3-10 ms.
 */
export function writeStdoutText(text: string, signal?: AbortSignal): Promise<void> {
  const onTerminal = bun ? checkStdoutOpen().then((kind) => kind === "device", () => false) : stdoutIsTerminal();
  return Promise.resolve(onTerminal).then((yes) => writeStdout(yes ? escapeControlsKeepLines(text) : text, signal));
}

/** Write text or bytes to stdout or stderr, in order, rejecting with BrokenPipeError or OutputError. */
function writeAll(data: string | Uint8Array, stream: "stdout" | "stderr" = "stdout"): Promise<void> {
  // Bun.write of "" truncates a regular file: `qmpctl ... >> log` would lose the log.
  if (data.length === 0) return Promise.resolve();
  if (bun) {
    const written = stream === "stdout"
      ? checkStdoutOpen().then((kind) =>
        kind === "reader"
          ? writeToReader(data)
          // Bun's write meeting EAGAIN writes its text again from the start; one of 1 KiB or more first
          // extends a file from offset 0 (fallocate), which `>>` then appends after, behind as many NUL
          // bytes (Bun 1.4.5). qmpctl writes these itself.
          : kind === "nonBlockingReader"
          ? inOrder(() => writeOurselves(1, data, "atomic lines"))
          : kind === "appended"
          ? inOrder(() => writeOurselves(1, data, "whole"))
          : bun!.write(bun!.stdout, data)
      )
      : stderrOffMainThread()
      ? toStderrInOrder(data)
      : bun.write(bun.stderr, data);
    return written.then(() => {}, (error) => Promise.reject(outputErrorOf(error)));
  }
  if (!stdoutErrorsHandled) {
    // Node and Deno also emit write errors as 'error' events, which would be
    // uncaught; the write callback below reports them.
    process.stdout.on("error", () => {});
    process.stderr.on("error", () => {});
    stdoutErrorsHandled = true;
  }
  return new Promise((resolve, reject) => {
    try {
      process[stream].write(data, (error) => error ? reject(outputErrorOf(error)) : resolve());
    } catch (error) { // Deno throws a failed write (ENOSPC) at once instead of passing it to the callback
      reject(outputErrorOf(error));
    }
  });
}

// The run's bound (--timeout, SIGINT) when it has a deadline.
let deadline: AbortSignal | undefined;

// What a pipe takes whole or not at all (PIPE_BUF on Linux), and what the smallest pipe holds.
const PIPE_ATOMIC_BYTES = 4096;

/**
 * A deadline (`--timeout`) bounds the run, `signal` aborting at it or at
 * SIGINT: from now on a write to stdout that may wait for its reader waits
 * off the main thread (`writeToReader`; stderr too: `stderrOffMainThread`),
 * so that the deadline, and SIGINT, still act while the reader does not
 * read. Without one, such writes wait in write(2) on the main thread:
 * loading node:fs for the thread pool costs ~7 ms, which an event drain
 * would feel, and the run was asked to wait as long as it takes.
 */
export function boundOutputWrites(signal: AbortSignal): void {
  deadline = signal;
  signal.addEventListener("abort", () => (boundRanOutAt = performance.now()), { once: true });
}

// When the run's bound ran out. A write to stdout still under way WRITE_GRACE_MS after it has been given up
// (boundedWrite): its pieces not yet written are left so, and the line saying so (behind them, when stderr
// is the same pipe) goes out to a reader that reads.
let boundRanOutAt = Infinity;

const stdoutGivenUp = () => performance.now() - boundRanOutAt >= WRITE_GRACE_MS;

// How much more may go to a pipe or socket by Bun's own write under a deadline: what an empty pipe takes at
// once however small it is (one page; Bun's write cannot have to wait for the reader). Not a pipe's usual
// 64 KiB: that is 16 pages, and a write that does not fit in the rest of the last page starts a new one:
// events written in batches filled a pipe well before 64 KiB, and the next write held the main thread.
let roomLeft = PIPE_ATOMIC_BYTES;

/**
 * Write to a blocking pipe or socket, which a reader empties. Without a
 * deadline, Bun's own write, which waits in write(2) for the reader as long
 * as it takes. With one (`boundOutputWrites`), Bun's write serves for the
 * first 4 KiB (a one-shot exec's usual reply: its cost stays as it was);
 * from then on qmpctl writes itself, in order, with node:fs: a write that
 * waits for the reader waits on Bun's thread pool, and the deadline still
 * acts.
 */
function writeToReader(data: string | Uint8Array): Promise<unknown> {
  if (!deadline) return bun!.write(bun!.stdout, data);
  if (roomLeft >= 0) {
    const bytes = typeof data === "string" && data.length * 3 > roomLeft
      ? new TextEncoder().encode(data) // its exact size: a UTF-16 unit takes up to 3 bytes
      : data;
    const size = typeof bytes === "string" ? bytes.length * 3 : bytes.length;
    if (size <= roomLeft) {
      roomLeft -= size;
      const written = bun!.write(bun!.stdout, bytes);
      lastWrite = written.catch(() => {}); // a stderr line for the same pipe goes after it (toStderrInOrder)
      return written;
    }
    roomLeft = -1; // used: every later write goes the other way, behind this one
    data = bytes;
  }
  return inOrder(() => writeOurselves(1, data, "atomic lines"));
}

let lastWrite: Promise<unknown> = Promise.resolve();

/** Run `write` once the writes queued before it have ended, as they all go to one stdout. */
function inOrder(write: () => Promise<unknown>): Promise<unknown> {
  const written = lastWrite.then(write);
  lastWrite = written.catch(() => {}); // after a failure (EPIPE) the next write fails by itself
  return written;
}

/**
 * Write all of `data` to descriptor `fd` with node:fs's asynchronous write (loaded on
 * the first call: ~7 ms at start-up, so never on a one-shot path's usual
 * way). A pipe may take part of a write, and a non-blocking one none (EAGAIN:
 * tried again after a pause that grows to 32 ms while it stays full). With
 * "atomic lines", each write(2) is at most what a pipe takes whole, cut after
 * a line feed: a run that ends while one waits (its deadline) leaves no
 * line shorter than that cut in the middle.
 */
async function writeOurselves(fd: 1 | 2, data: string | Uint8Array, pieces: "atomic lines" | "whole"): Promise<void> {
  const fs = await import("node:fs");
  let bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  for (let pauseMs = 1; bytes.length > 0 && !(fd === 1 && stdoutGivenUp());) {
    let piece = bytes;
    if (pieces === "atomic lines" && bytes.length > PIPE_ATOMIC_BYTES) {
      const lineEnd = bytes.lastIndexOf(0x0a, PIPE_ATOMIC_BYTES - 1);
      piece = bytes.subarray(0, lineEnd >= 0 ? lineEnd + 1 : PIPE_ATOMIC_BYTES);
    }
    const { promise, resolve, reject } = Promise.withResolvers<number>();
    fs.write(fd, piece, (error, written) => error ? reject(error) : resolve(written));
    const written = await promise.catch((error) => {
      if ((error as { code?: string }).code !== "EAGAIN") throw error;
      return 0;
    });
    if (written > 0) pauseMs = 1;
    else await new Promise((wake) => setTimeout(wake, pauseMs = Math.min(pauseMs * 2, 32)));
    bytes = bytes.subarray(written);
  }
  // Given up with bytes left: the write failed, as boundedWrite's own timer says too, whichever of the two
  // tells first (a success here let a run exit 0 with its output cut short).
  if (bytes.length > 0) throw abortErrorFor("stdout to take the output")(deadline!); // only stdout gives up
}

/**
 * Write one line to stderr: console.error (synchronous, and cheap at
 * start-up), or off the main thread where a reader may stop reading
 * (`stderrOffMainThread`), where lines beyond a bound are dropped unless
 * `kept` (the run's final word). Control characters are written as escapes,
 * so that text from a server (a QEMU error's `desc`) or from the user can
 * neither split the line nor reach the terminal as an escape sequence.
 */
export function writeStderrLine(line: string, kept = false): void {
  const text = escapeControls(line);
  if (stderrOffMainThread()) {
    if (kept || untakenBytes < MAX_UNTAKEN_BYTES) queueStderrLine(`${text}\n`);
    else droppedLines++;
    return;
  }
  const write = plainStderrWrite();
  if (write) write(`${text}\n`);
  else console.error(text);
}

let plainWrite: ((text: string) => void) | null | undefined;

/**
 * Bun's console.error colours a terminal's lines red whatever TERM says (only
 * NO_COLOR, read at start, stops it), and with FORCE_COLOR set (a CI
 * runner's) any stderr's, a pipe's or a log file's: under TERM=dumb, and
 * with FORCE_COLOR where stderr is no terminal, a plain write instead
 * (node:fs, loaded then only: it costs start-up), so each line starts with
 * `qmpctl:` as a script looks for it.
 */
function plainStderrWrite(): ((text: string) => void) | null {
  if (plainWrite === undefined) {
    const fs = bun && (dumbTerminal() || env("FORCE_COLOR") !== undefined)
      ? process.getBuiltinModule("node:fs")
      : undefined;
    plainWrite = fs && (dumbTerminal() || !onTerminal(fs, 2))
      ? (text) => {
        try {
          fs.writeSync(2, text);
        } catch {
          // As console.error: stderr's reader gone (EPIPE) changes neither the run nor its exit status.
        }
      }
      : null;
  }
  return plainWrite;
}

/** Whether descriptor `fd` is a terminal, by fstat(2) (a character device; /dev/null is none). */
function onTerminal(fs: typeof import("node:fs"), fd: number): boolean {
  try {
    const stat = fs.fstatSync(fd);
    return stat.isCharacterDevice() && Number(stat.rdev) !== NULL_DEVICE;
  } catch {
    return false;
  }
}

// Under a deadline, how stderr is written: "main thread" (console.error), off it on its own ("deferred"),
// or off it behind stdout's writes ("with stdout": the same pipe or socket, `2>&1`); undefined until asked.
let stderrWay: "main thread" | "deferred" | "with stdout" | undefined;

let lastStderrWrite: Promise<unknown> = Promise.resolve();

let serverLog = false;

// How much of the lines written off the main thread stderr has not taken yet (in UTF-16 units: bytes, for
// ASCII); beyond the bound lines are dropped (memory stays bounded) and counted, and the count said once it
// has taken the rest.
const MAX_UNTAKEN_BYTES = 4 * 1024 * 1024;

let untakenBytes = 0, droppedLines = 0;

function queueStderrLine(text: string): void {
  untakenBytes += text.length;
  // As console.error: stderr's reader gone (EPIPE) changes neither the run nor its exit status. The count of
  // dropped lines is queued before this write's promise settles, so that exit waits for it too.
  lastStderrWrite = toStderrInOrder(text).catch(() => {}).then(() => {
    if ((untakenBytes -= text.length) > 0 || droppedLines === 0) return;
    const dropped = droppedLines;
    droppedLines = 0;
    queueStderrLine(`qmpctl: ${dropped} lines for stderr were dropped: it did not take them\n`);
  });
}

/**
 * Resolves once the lines queued so far for stderr off the main thread are
 * written, or `limitMs` later at most (a reader that stopped reading): for a
 * line that must come before what another process writes next to it.
 */
export async function stderrWritten(limitMs: number): Promise<void> {
  await within(lastStderrWrite, limitMs);
}

/**
 * A server's log (the proxy, which runs without a deadline): its stderr is
 * written off the main thread all the same when a pipe or socket, so that a
 * reader that stops reading (a stuck log collector) stops neither the
 * serving nor SIGTERM.
 */
export function logStderrOffMainThread(): void {
  serverLog = true;
}

/**
 * Whether stderr is written off the main thread, in order (`toStderrInOrder`):
 * under a deadline (`boundOutputWrites`), or for a server's log, when it is a
 * pipe or socket. One whose reader stopped reading (`2>&1 | reader`, full of
 * the output) would otherwise hold the main thread in write(2), and the run
 * past its bound with the very line that says so; `exit` waits for these
 * writes within the bound. A file takes a write at once, and a terminal
 * keeps console.error's colour.
 */
function stderrOffMainThread(): boolean {
  if (!bun || !(deadline || serverLog)) return false;
  if (stderrWay === undefined) {
    const fs = process.getBuiltinModule("node:fs");
    stderrWay = "main thread"; // stderr closed: console.error writes nothing there either
    try {
      const stderr = fs.fstatSync(2);
      if (stderr.isFIFO() || stderr.isSocket()) {
        const stdout = fs.fstatSync(1);
        stderrWay = stdout.ino === stderr.ino && stdout.dev === stderr.dev ? "with stdout" : "deferred";
      }
    } catch {
      // as closed
    }
  }
  return stderrWay !== "main thread";
}

/**
 * Write `data` to stderr with node:fs, once the writes queued before it have
 * ended: stderr's, and stdout's too when both are one pipe or socket (the
 * lines keep the order they were written in; stdout then stops using Bun's
 * own write, which would overtake).
 */
function toStderrInOrder(data: string | Uint8Array): Promise<void> {
  const write = () => writeOurselves(2, data, "whole");
  let written: Promise<unknown>;
  if (stderrWay === "with stdout") {
    roomLeft = -1;
    written = inOrder(write);
  } else written = lastStderrWrite.then(write);
  lastStderrWrite = written.catch(() => {});
  return written.then(() => {});
}

/**
 * Write text to stderr as it is (no newline added), for a line that updates
 * in place; resolves when written, so a caller can order it before a
 * `writeStderrLine`.
 */
export function writeStderr(text: string): Promise<void> {
  return writeAll(text, "stderr");
}

/** Write bytes to stdout as they are (a guest program's output, a copied file). */
export function writeStdoutBytes(bytes: Uint8Array, signal?: AbortSignal): Promise<void> {
  return boundedWrite(writeAll(bytes, "stdout"), signal, "stdout");
}

/** Write bytes to stderr as they are (a guest program's error output), bounded by `signal` as writeStdout is. */
export function writeStderrBytes(bytes: Uint8Array, signal?: AbortSignal): Promise<void> {
  return boundedWrite(writeAll(bytes, "stderr"), signal, "stderr");
}

/** The part of bun:ffi that `stdoutReaderGone` calls (typed here: Deno's type-check has no Bun types). */
interface BunFfi {
  dlopen(path: string, symbols: Record<string, { args: string[]; returns: string }>): {
    symbols: { poll(fds: unknown, count: number, timeoutMs: number): number };
  };
  ptr(view: ArrayBufferView): unknown;
}

const POLLERR = 0x8; // Linux and macOS alike

let readerGone: AbortSignal | undefined;

/**
 * A signal aborted (with a BrokenPipeError) once the reader of a stdout pipe
 * has gone, looked at every second: poll(2) says POLLERR for a pipe whose
 * reading end is closed, as `tail -f` looks. A command that waits (for
 * events, a job, a migration) would otherwise learn it only at its next
 * write, holding the monitor until then (`qmpctl events | head -1`). It is
 * returned at once: bun:ffi and libc are loaded meanwhile, before the first
 * look. Never aborted where the runtime cannot look (Deno: no FFI granted)
 * or stdout is no pipe. Not for a one-shot command: loading them costs it.
 */
export function stdoutReaderGone(): AbortSignal {
  if (readerGone) return readerGone;
  if (!bun) return readerGone = new AbortController().signal;
  let gone: (() => boolean) | undefined; // until loaded (or where it cannot be): not gone
  stdoutPipeClosedCheck().then((check) => (gone = check), () => {});
  return readerGone = watchedSignal(() => gone?.() ? new BrokenPipeError("the reader of stdout has gone") : undefined);
}

/** Whether the reader of the stdout pipe has gone (reason of a signal built with `stdoutReaderGone`). */
export function stdoutReaderLeft(signal: AbortSignal): boolean {
  return signal.aborted && signal.reason instanceof BrokenPipeError;
}

/** A test of whether stdout's reading end is closed, by poll(2) through bun:ffi; undefined without libc. */
async function stdoutPipeClosedCheck(): Promise<(() => boolean) | undefined> {
  let poll: (fds: unknown, count: number, timeoutMs: number) => number;
  let ptr: BunFfi["ptr"];
  try {
    const specifier = "bun:ffi"; // not a literal: Deno's type-check cannot resolve it
    const ffi = await import(specifier) as BunFfi;
    const libc = ffi.dlopen(process.platform === "darwin" ? "libSystem.B.dylib" : "libc.so.6", {
      poll: { args: ["ptr", "u64", "i32"], returns: "i32" },
    });
    poll = libc.symbols.poll;
    ptr = ffi.ptr;
  } catch {
    return undefined; // no libc to ask: the next write tells, as before
  }
  const pollfd = new DataView(new ArrayBuffer(8)); // struct pollfd { int fd; short events; short revents; }
  return () => {
    pollfd.setInt32(0, 1, true);
    pollfd.setInt32(4, 0, true); // no events asked: POLLERR comes all the same
    return poll(ptr(pollfd), 1, 0) > 0 && (pollfd.getInt16(6, true) & POLLERR) !== 0;
  };
}

/**
 * End the process with `code`, once what was written to stderr off the main
 * thread is out: a reader that reads gets it all. One that stopped reading
 * holds the exit until `WRITE_GRACE_MS` past the run's bound at most, which
 * then ends with `timedOut` (124: the output was not taken in time, as for
 * stdout; a server's log: its grace, and `code`). A SIGINT during that wait
 * ends it as a Ctrl-C does. At once when nothing was written so.
 */
export function exit(code: number, timedOut = code): void {
  if (stderrWay === undefined) return exitNow(code);
  const bound = deadline ?? AbortSignal.abort(); // a server's log: its grace alone
  const drained = (async () => { // the last write, and any queued while it was awaited
    for (let last; last !== lastStderrWrite;) await (last = lastStderrWrite);
  })();
  abortableWithGrace(drained, bound, WRITE_GRACE_MS, "stderr").then(
    () => exitNow(interruptedBySigint() ? 130 : code),
    () => exitNow(interruptedBySigint() ? 130 : deadline ? timedOut : code),
  );
}

function exitNow(code: number): never {
  // After a Ctrl-C, die of SIGINT once done (status 130 to a shell): a shell that runs qmpctl in a loop
  // stops only when its child died of the signal, and goes on after a plain exit 130.
  if (code === 130 && interruptedBySigint()) {
    process.emit("exit", code); // what runs at exit runs before the signal too (an ssh:// forwarding's removal)
    process.removeAllListeners("SIGINT");
    process.kill(process.pid, "SIGINT");
  }
  return process.exit(code);
}
