/**
 * The CLI's runtime-specific calls: standard streams, environment, exit and
 * signals, the terminal (raw mode, width, keys) and small text files
 * (private_dir.ts and byte_sink.ts hold the files written with care). `process` is a global in Bun, Deno 2 and Node; only stdout and
 * stdin differ: under Bun they are Bun's own APIs, because
 * `process.stdout.write` costs a compiled binary ~13 ms of start-up.
 *
 * @module
 */
import { abortable, abortableWithGrace } from "../lib/abort.ts";
import { concatBytes } from "../lib/bytes.ts";
import { globMatcher, isGlob } from "../lib/glob.ts";
import { decodeUtf8, showInvalidUtf8 } from "../lib/utf8.ts";

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
const NULL_DEVICE = 0x103; // /dev/null is character device 1:3

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
 * Whether standard descriptor `fd`, of status `stat`, was closed when qmpctl
 * started. Bun then opens /dev/null in its place. That descriptor has
 * close-on-exec set, which a descriptor inherited through exec(2) never has:
 * so it was not given by the caller. (Linux's /proc/self/fdinfo; elsewhere
 * false.) Only a /dev/null is looked at further; the status comes from
 * fstat(2) on Bun's thread pool (Bun.resolveSync of /proc/self/fd/1 held the
 * main thread ~0.45 ms; a one-shot exec is ~0.15 ms sooner this way).
 */
function openedInPlaceOfClosed(fd: number, stat: import("node:fs").Stats): Promise<boolean> {
  if (!stat.isCharacterDevice() || Number(stat.rdev) !== NULL_DEVICE) return Promise.resolve(false);
  const O_CLOEXEC = 0o2000000;
  return descriptorFlags(fd).then((flags) => (flags & O_CLOEXEC) !== 0);
}

/** The open flags of descriptor `fd` (Linux's /proc/self/fdinfo); NaN where they cannot be read. */
function descriptorFlags(fd: number): Promise<number> {
  return bun!.file(`/proc/self/fdinfo/${fd}`).text().then((info) => {
    // "pos:\t0\nflags:\t02100001\n...": the flags in octal (no regex: a process's first costs ~0.1 ms)
    const at = info.indexOf("\nflags:");
    return at < 0 ? NaN : parseInt(info.slice(at + 7), 8);
  }, () => NaN); // no /proc (NaN & FLAG is 0: no flag set)
}

/** The names of stdin as a file. */
const STDIN_PATHS = ["/dev/stdin", "/dev/fd/0", "/proc/self/fd/0"];

/**
 * Reject with an EBADF error, as reading a closed descriptor does, when
 * qmpctl was started with stdin closed (`qmpctl ... <&-`): Bun would read
 * its /dev/null as empty input.
 */
async function checkStdinOpen(): Promise<void> {
  const closed = bun ? await bun.file(0).stat().then((stat) => openedInPlaceOfClosed(0, stat), () => false) : false;
  if (closed) throw Object.assign(new Error("stdin is closed"), { code: "EBADF" });
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
          : bun.write(bun.stdout, data)
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
}

/**
 * The normal JIT policy again, for a loop that runs long (an event stream):
 * the binary starts with tier-up delayed (scripts/build.sh), which suits
 * run-once start-up code. Elsewhere nothing to do.
 */
export function normalJit(): void {
  bun?.unsafe.setJITPolicy?.(1);
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
 * NO_COLOR, read at start, stops it): under TERM=dumb, a plain write instead
 * (node:fs, loaded then only: it costs start-up).
 */
function plainStderrWrite(): ((text: string) => void) | null {
  if (plainWrite === undefined) {
    const fs = bun && dumbTerminal() ? process.getBuiltinModule("node:fs") : undefined;
    plainWrite = fs
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

/**
 * Whether character code `c` acts on a terminal or moves text unseen, C0
 * aside: DEL and the C1 controls (U+0080..U+009F, which some terminals
 * obey), the line and paragraph separators (a line break to some viewers)
 * and the bidirectional marks, embeddings, overrides and isolates (they
 * reorder what a terminal shows). Stdout's JSON escapes these (session.ts);
 * stderr, C0 too.
 */
export function isUnseenControl(c: number): boolean {
  return (c >= 0x7f && c <= 0x9f) || c === 0x61c || c === 0x200e || c === 0x200f ||
    (c >= 0x2028 && c <= 0x202e) || (c >= 0x2066 && c <= 0x2069);
}

const controlPatterns = new Map<string, RegExp>();

/**
 * A global regular expression for the characters of `isUnseenControl` and
 * the C0 ranges `c0` ("" for none), built on first use: most runs need none,
 * and building one costs start-up.
 */
export function controlPattern(c0: string): RegExp {
  let pattern = controlPatterns.get(c0);
  if (!pattern) {
    pattern = new RegExp(`[${c0}\\u007f-\\u009f\\u061c\\u200e\\u200f\\u2028-\\u202e\\u2066-\\u2069]`, "g");
    controlPatterns.set(c0, pattern);
  }
  return pattern;
}

const C0 = "\\u0000-\\u001f";
const NAMED: Record<string, string> = { "\n": "\\n", "\r": "\\r", "\t": "\\t" };

/** Whether `text` holds a control character (C0, DEL, C1, a separator or a bidirectional control). */
export function hasControl(text: string): boolean {
  const control = controlPattern(C0);
  control.lastIndex = 0; // global: test() starts from lastIndex
  return control.test(text);
}

/** `text` with each control character written as `\n`, `\r`, `\t`, `\xHH` or `\uHHHH`. */
export function escapeControls(text: string): string {
  // A short line (an error message) is searched by a loop: a process's first regex costs ~0.1 M instructions.
  let found = text.length > 4096;
  for (let i = 0; i < text.length && !found; i++) {
    const c = text.charCodeAt(i);
    found = c < 0x20 || isUnseenControl(c);
  }
  return found ? text.replace(controlPattern(C0), escapeOne) : text;
}

/**
 * Text of many lines for a terminal (the shell's results, QEMU's error
 * text, the human monitor's text): control characters escaped as
 * `escapeControls` does, but line feeds and tabs kept, so that what QEMU
 * or a guest wrote lays out as lines and never acts as an escape sequence.
 */
export function escapeControlsKeepLines(text: string): string {
  return text.replace(controlPattern("\\u0000-\\u0008\\u000b-\\u001f"), escapeOne); // C0 but line feeds and tabs
}

function escapeOne(c: string): string {
  const code = c.charCodeAt(0);
  return NAMED[c] ??
    (code > 0xff ? `\\u${code.toString(16).padStart(4, "0")}` : `\\x${code.toString(16).padStart(2, "0")}`);
}

let stdinBytes: Promise<Uint8Array> | undefined;

/** All of stdin as text (UTF-8), read once as readStdinBytes reads it. */
export async function readStdin(signal?: AbortSignal): Promise<string> {
  return new TextDecoder().decode(await readStdinBytes(signal));
}

/**
 * All of stdin as bytes, read once (every target of a fan-out gets the same
 * input); `signal` (SIGINT, --timeout) ends the wait for a stdin that stays open.
 */
export function readStdinBytes(signal?: AbortSignal): Promise<Uint8Array> {
  return abortable(stdinBytes ??= readAllStdin(), signal, "stdin to end");
}

async function readAllStdin(): Promise<Uint8Array> {
  await checkStdinOpen();
  return bun ? bun.stdin.bytes() : (await readAtMost("-", Infinity))!; // no limit: never undefined
}

/** A whole text file (Bun.file under Bun; node:fs elsewhere, imported only here). */
export async function readTextFile(path: string): Promise<string> {
  if (bun) return bun.file(path).text();
  const { readFile } = await import("node:fs/promises");
  return readFile(path, "utf8");
}

/** An input line that is not run: longer than the bound (skipped up to its newline), or not UTF-8. */
export class BadLine {
  constructor(readonly reason: string) {}
}

/**
 * The lines of a file, or of stdin without `path` (or with "-"), as they
 * arrive: CRLF made LF, the last line without its newline too. Memory stays
 * bounded: a line longer than `maxLineBytes` is not kept but yields a
 * `BadLine` in its place; so does a line that is not UTF-8 (its bad bytes
 * are not made U+FFFD and sent on, as a word's are not).
 */
export async function* readLines(path: string | undefined, maxLineBytes: number): AsyncGenerator<string | BadLine> {
  const tooLong = (bytes: number) => new BadLine(`the line is ${bytes} bytes long, over ${maxLineBytes}`);
  const lineOf = (bytes: Uint8Array) => {
    const text = decodeUtf8(bytes);
    if (text === undefined) return new BadLine(`the line is not UTF-8: '${showInvalidUtf8(bytes).text}'`);
    return text.endsWith("\r") ? text.slice(0, -1) : text;
  };
  let pending: Uint8Array[] = [];
  let pendingBytes = 0;
  let skipping = 0; // > 0: inside an over-long line, this many bytes dropped so far
  for await (const chunk of byteStream(path)) {
    let start = 0, newline;
    while ((newline = chunk.indexOf(0x0a, start)) >= 0) {
      const length = skipping + pendingBytes + newline - start;
      if (length > maxLineBytes) yield tooLong(length);
      else {
        const tail = chunk.subarray(start, newline);
        yield lineOf(pending.length === 0 ? tail : concatBytes([...pending, tail], length)); // most lines: one chunk
      }
      pending = [];
      pendingBytes = skipping = 0;
      start = newline + 1;
    }
    const rest = chunk.length - start;
    if (skipping > 0 || pendingBytes + rest > maxLineBytes) {
      skipping += pendingBytes + rest;
      pending = [];
      pendingBytes = 0;
    } else if (rest > 0) {
      pending.push(chunk.slice(start)); // a copy: the stream may reuse its buffer
      pendingBytes += rest;
    }
  }
  if (skipping > 0) yield tooLong(skipping);
  else if (pendingBytes > 0) yield lineOf(concatBytes(pending, pendingBytes));
}

/** The bytes of a file, or of stdin. */
function byteStream(path: string | undefined): AsyncIterable<Uint8Array> {
  return readChunks(path ?? "-");
}

/** Whether stdin is a terminal (the shell then edits lines). */
export function stdinIsTerminal(): boolean {
  return process.stdin.isTTY === true;
}

/** An environment variable. */
export function env(name: string): string | undefined {
  return process.env[name];
}

/** TERM=dumb: a terminal that takes no escape sequences (no colour, no cursor movement). */
export function dumbTerminal(): boolean {
  return env("TERM") === "dumb";
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
  const words = await procWords("/proc/self/cmdline");
  return words && words.length >= count ? words.slice(words.length - count) : undefined;
}

/**
 * The value of environment variable `name` as the bytes the caller passed,
 * or undefined where they cannot be had (Linux's /proc/self/environ; the
 * runtime has replaced bytes that are not UTF-8 by U+FFFD).
 */
export async function envBytes(name: string): Promise<Uint8Array | undefined> {
  const prefix = new TextEncoder().encode(`${name}=`);
  const entry = (await procWords("/proc/self/environ"))?.find((word) => prefix.every((byte, i) => word[i] === byte));
  return entry?.subarray(prefix.length);
}

/** The NUL-ended words of a /proc file, or undefined when it cannot be read. */
async function procWords(path: string): Promise<Uint8Array[] | undefined> {
  let bytes: Uint8Array;
  try {
    bytes = bun ? await bun.file(path).bytes() : new Uint8Array((await import("node:fs")).readFileSync(path));
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
  return words;
}

/**
 * Whether SIGINT was set to be ignored when qmpctl started (a shell ignores
 * it for a script's background jobs), by /proc/self/status's SigIgn mask;
 * false where that cannot be read. Asked before `onInterrupt`, which
 * replaces the disposition.
 */
export async function sigintIgnoredAtStart(): Promise<boolean> {
  try {
    const status = bun
      ? await bun.file("/proc/self/status").text()
      : await (await import("node:fs/promises")).readFile("/proc/self/status", "latin1");
    const mask = /^SigIgn:\s*([0-9a-f]+)$/m.exec(status)?.[1];
    return mask !== undefined && (parseInt(mask.slice(-1), 16) & 0x2) !== 0; // SIGINT (2) is bit 1
  } catch {
    return false;
  }
}

/** Whether a SIGINT came (a Ctrl-C): an exit 130 is then death by that signal (see `exit`). */
let interruptedBySigint = false;

/** Call `handler` on SIGINT (instead of dying). */
export function onInterrupt(handler: () => void): void {
  process.on("SIGINT", () => {
    interruptedBySigint = true;
    handler();
  });
}

/** The part of bun:ffi that `stdoutReaderGoneSignal` calls (typed here: Deno's type-check has no Bun types). */
interface BunFfi {
  dlopen(path: string, symbols: Record<string, { args: string[]; returns: string }>): {
    symbols: { poll(fds: unknown, count: number, timeoutMs: number): number };
  };
  ptr(view: ArrayBufferView): unknown;
}

const POLLERR = 0x8; // Linux and macOS alike

let readerGone: Promise<AbortSignal> | undefined;

/**
 * A signal aborted (with a BrokenPipeError) once the reader of a stdout pipe
 * has gone, looked at every second: poll(2) says POLLERR for a pipe whose
 * reading end is closed, as `tail -f` looks. A stream that waits for events
 * would otherwise learn it only at its next write, holding the monitor until
 * the next event (`qmpctl events | head -1`). Never aborted where the
 * runtime cannot look (Deno: no FFI granted) or stdout is no pipe.
 */
export function stdoutReaderGoneSignal(): Promise<AbortSignal> {
  return readerGone ??= watchStdoutReader();
}

async function watchStdoutReader(): Promise<AbortSignal> {
  const never = new AbortController().signal;
  if (!bun) return never;
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
    return never; // no libc to ask: the next write tells, as before
  }
  const pollfd = new DataView(new ArrayBuffer(8)); // struct pollfd { int fd; short events; short revents; }
  return watchedSignal(() => {
    pollfd.setInt32(0, 1, true);
    pollfd.setInt32(4, 0, true); // no events asked: POLLERR comes all the same
    const gone = poll(ptr(pollfd), 1, 0) > 0 && (pollfd.getInt16(6, true) & POLLERR) !== 0;
    return gone ? new BrokenPipeError("the reader of stdout has gone") : undefined;
  });
}

/**
 * A signal aborted once this process's parent is gone (it was given another,
 * as an orphan), looked at every second: for a process its runner may be
 * killed under without the signal passed on, and that would otherwise go on
 * waiting, holding a monitor no one else can open.
 */
export function parentGoneSignal(): AbortSignal {
  const parent = process.ppid;
  return watchedSignal(() =>
    process.ppid === parent ? undefined : new Error(`the process that ran qmpctl (pid ${parent}) is gone`)
  );
}

/**
 * A signal aborted with the reason `check` gives the first time it gives
 * one, asked every second (a timer that never keeps the process alive).
 */
function watchedSignal(check: () => Error | undefined): AbortSignal {
  const controller = new AbortController();
  const timer = setInterval(() => {
    const reason = check();
    if (reason === undefined) return;
    clearInterval(timer);
    controller.abort(reason);
  }, 1000);
  timer.unref();
  return controller.signal;
}

/** Which file `path` is (its device and inode, links followed); undefined when it is not there. */
export async function fileIdentity(path: string): Promise<string | undefined> {
  const { stat } = await import("node:fs/promises");
  return await stat(path).then((file) => `${file.dev}:${file.ino}`, () => undefined);
}

/**
 * The real path of a socket (relative: to the working directory): every link
 * resolved; for one not there (yet: --wait-socket), its directory's real path
 * and its name, a link to it followed by what it names; else the path as given.
 */
export async function realSocketPath(path: string, links = 8): Promise<string> {
  const { readlink, realpath } = await import("node:fs/promises");
  const slash = path.lastIndexOf("/");
  const dir = slash < 0 ? "." : path.slice(0, slash) || "/";
  const real = await realpath(path).catch(() => undefined);
  if (real !== undefined) return real;
  const target = links > 0 ? await readlink(path).catch(() => undefined) : undefined; // a link to what is not there yet
  if (target !== undefined) return realSocketPath(target.startsWith("/") ? target : `${dir}/${target}`, links - 1);
  return await realpath(dir).then((real) => `${real}/${path.slice(slash + 1)}`, () => path);
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
    () => exitNow(interruptedBySigint ? 130 : code),
    () => exitNow(interruptedBySigint ? 130 : deadline ? timedOut : code),
  );
}

function exitNow(code: number): never {
  // After a Ctrl-C, die of SIGINT once done (status 130 to a shell): a shell that runs qmpctl in a loop
  // stops only when its child died of the signal, and goes on after a plain exit 130.
  if (code === 130 && interruptedBySigint) {
    process.emit("exit", code); // what runs at exit runs before the signal too (an ssh:// forwarding's removal)
    process.removeAllListeners("SIGINT");
    process.kill(process.pid, "SIGINT");
  }
  return process.exit(code);
}

/** Whether stdout is a terminal (the shell then edits lines and redraws). */
export function stdoutIsTerminal(): boolean {
  return process.stdout.isTTY === true;
}

/** Call `handler` when the terminal on stdout is resized; the returned function stops it. */
export function onTerminalResize(handler: () => void): () => void {
  process.stdout.on("resize", handler);
  return () => process.stdout.off("resize", handler);
}

/** The terminal's width in columns, read now (so a resized window is seen at the next redraw); 80 when unknown. */
export function terminalColumns(): number {
  return process.stdout.columns || 80;
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

/** The signals that end a terminal session from outside: the window closed (SIGHUP), or a kill (SIGTERM). */
export type FatalSignal = "SIGHUP" | "SIGTERM";

/** Call `handler` on SIGHUP and SIGTERM instead of dying; the returned function removes it again. */
export function onFatalSignal(handler: (signal: FatalSignal) => void): () => void {
  process.on("SIGTERM", handler);
  process.on("SIGHUP", handler);
  return () => {
    process.off("SIGTERM", handler);
    process.off("SIGHUP", handler);
  };
}

/**
 * Die of `signal` as if it had not been caught, at once: every handler left
 * for it is removed first (a library's, such as the ssh transport's, which
 * stands aside while qmpctl handles the signal: with it still there the
 * signal would be caught again, later, and qmpctl would exit otherwise).
 */
export function killSelf(signal: FatalSignal): void {
  process.removeAllListeners(signal);
  process.kill(process.pid, signal);
}

/** Call `handler` on SIGTSTP (`kill -TSTP`; Ctrl-Z is a key in raw mode); the returned function removes it. */
export function onStopSignal(handler: () => void): () => void {
  process.on("SIGTSTP", handler);
  return () => process.off("SIGTSTP", handler);
}

/**
 * Stop as Ctrl-Z stops a program: SIGTSTP with its default action, sent to
 * our whole process group, as the terminal would (a `bash -c` wrapping
 * qmpctl stops too, so the shell that started the job gets the terminal
 * back); `handler`, ours for it, is set aside meanwhile. Returns once
 * continued (`fg`), or at once where the kernel ignores it: in a process
 * group no job-control shell started (`ssh -t host qmpctl shell`), which
 * nothing would ever continue (SIGSTOP would stop it for good there).
 */
export function stopSelf(handler: () => void): void {
  process.off("SIGTSTP", handler);
  try {
    process.kill(0, "SIGTSTP"); // 0: our process group
  } finally {
    process.on("SIGTSTP", handler);
  }
}

/** Write all of `bytes` to an open file (one write may take only part of them). */
export async function writeAllTo(file: import("node:fs/promises").FileHandle, bytes: Uint8Array): Promise<void> {
  for (let done = 0; done < bytes.length;) done += (await file.write(bytes, done)).bytesWritten;
}

/** Write bytes to stdout as they are (a guest program's output, a copied file). */
export function writeStdoutBytes(bytes: Uint8Array, signal?: AbortSignal): Promise<void> {
  return boundedWrite(writeAll(bytes, "stdout"), signal, "stdout");
}

/** Write bytes to stderr as they are (a guest program's error output), bounded by `signal` as writeStdout is. */
export function writeStderrBytes(bytes: Uint8Array, signal?: AbortSignal): Promise<void> {
  return boundedWrite(writeAll(bytes, "stderr"), signal, "stderr");
}

/**
 * All bytes of a file, or of stdin for `-`; undefined when there are more
 * than `limit` (reading stops there). `signal` ends the wait for a stdin that
 * stays open.
 */
export function readBytes(path: string, limit: number, signal?: AbortSignal): Promise<Uint8Array | undefined> {
  return abortable(readAtMost(path, limit), signal, `${path === "-" ? "stdin" : path} to end`);
}

async function readAtMost(path: string, limit: number): Promise<Uint8Array | undefined> {
  const chunks: Uint8Array[] = [];
  let length = 0;
  for await (const chunk of readChunks(path)) {
    length += chunk.length;
    if (length > limit) return undefined;
    chunks.push(chunk);
  }
  return new Uint8Array(await new Blob(chunks as BlobPart[]).arrayBuffer());
}

/**
 * A file's bytes, or stdin's for `-`, streamed in the pieces the runtime
 * reads (a few hundred KB): memory stays bounded whatever the size. Errors
 * (ENOENT, EISDIR, EACCES) surface at the first read.
 */
export async function* readChunks(path: string): AsyncGenerator<Uint8Array> {
  if (path === "-") {
    await checkStdinOpen();
    yield* (bun ? bun.stdin.stream() : process.stdin) as AsyncIterable<Uint8Array>;
    return;
  }
  if (STDIN_PATHS.includes(path)) await checkStdinOpen(); // they name the /dev/null Bun put in its place
  // Bun streams regular files and pipes, but reports a character device
  // (/dev/null) as missing and fails to poll it (EPERM from epoll_ctl):
  // node:fs, loaded only then, reads those, and reports a missing file.
  if (bun && await bun.file(path).exists()) {
    let started = false;
    try {
      for await (const chunk of bun.file(path).stream()) {
        started = true;
        yield chunk;
      }
      return;
    } catch (error) {
      if (started || (error as { code?: string })?.code !== "EPERM") throw error;
    }
  }
  for await (const chunk of (await import("node:fs")).createReadStream(path)) yield chunk as Uint8Array;
}

/** A child process whose stdio is the caller's own. */
export interface PassthroughChild {
  /** Its exit status; 128 + the signal's number when a signal ended it, as a shell reports it. */
  exited: Promise<number>;
  kill(signal: "SIGTERM" | "SIGINT" | "SIGKILL"): void;
}

const SIGNAL_NUMBERS: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGKILL: 9, SIGTERM: 15 };

/** The part of Deno's API that spawnPassthrough calls (typed here: Bun's type-check has no Deno types). */
interface DenoCommands {
  Command: new (
    program: string,
    options: { args: string[]; stdin: "inherit"; stdout: "inherit"; stderr: "inherit" },
  ) => {
    spawn(): { status: Promise<{ code: number; signal: string | null }>; kill(signal: string): void };
  };
}
const deno = (globalThis as { Deno?: DenoCommands }).Deno;

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
  if (deno) { // Deno's node:child_process says a child it sent SIGTERM was ended by it, though it exited 0 on it
    const child = new deno.Command(command[0], {
      args: command.slice(1),
      stdin: "inherit",
      stdout: "inherit",
      stderr: "inherit",
    }).spawn(); // throws NotFound (code ENOENT), PermissionDenied (EACCES), NotCapable
    return {
      exited: child.status.then(({ code, signal }) => signal ? bySignal(signal) : code),
      kill: (signal) => {
        try {
          child.kill(signal);
        } catch { // it has exited (Deno throws where Bun and Node do nothing): nothing to signal
        }
      },
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

/**
 * A new directory only the owner may enter (mode 0700), in the system's
 * temporary directory ($TMPDIR; /tmp for a relative one, as for ssh's).
 * @throws {Error} "cannot make a directory for WHAT in TMPDIR /x (ENOENT)", with the system's code
 */
export async function makePrivateDir(prefix: string, what: string): Promise<string> {
  const { mkdtemp } = await import("node:fs/promises");
  const { tmpdir } = await import("node:os");
  const temp = tmpdir().startsWith("/") ? tmpdir() : "/tmp";
  try {
    return await mkdtemp(`${temp}/${prefix}`);
  } catch (error) {
    const code = (error as { code?: string }).code ?? (error as Error).message;
    throw Object.assign(new Error(`cannot make a directory for ${what} in TMPDIR ${temp} (${code})`), { code });
  }
}

/** Remove a directory and what it holds (no error when it is already gone). */
export async function removeDir(path: string): Promise<void> {
  const { rm } = await import("node:fs/promises");
  await rm(path, { recursive: true, force: true });
}

/**
 * The sockets whose paths match `pattern` (`*` and `?` within one path
 * component, matched in linear time: lib/glob.ts), sorted; hidden names only
 * when the component itself starts with a dot. What is not a socket (a
 * pidfile or disk image beside them) is left out, and so is a socket whose
 * name is not UTF-8 (which the runtime's text paths cannot name): it is
 * listed in `unnamable`. `node:fs` is loaded here, so the single-address path
 * never pays for it.
 */
export async function globSockets(pattern: string): Promise<{ sockets: string[]; unnamable: string[] }> {
  const { readdir, stat } = await import("node:fs/promises");
  const absolute = pattern.startsWith("/");
  const parts = pattern.split("/").filter((part, i) => part !== "" || i === 0);
  let found = [absolute ? "/" : ""];
  const unnamable: string[] = []; // matching sockets whose names are not UTF-8 (shown with \x escapes)
  for (const [i, part] of parts.entries()) {
    if (i === 0 && absolute) continue;
    const last = i === parts.length - 1;
    const next: string[] = [];
    for (const base of found) {
      if (!isGlob(part)) {
        next.push(base + part + (last ? "" : "/"));
        continue;
      }
      const matches = globMatcher(part);
      const names = await readdir(base === "" ? "." : base, { encoding: "buffer" }).catch(() => [] as Buffer[]);
      for (const bytes of names) {
        const name = decodeUtf8(bytes);
        if (name === undefined) { // the runtime's paths are text: such a socket cannot be reached
          const shown = showInvalidUtf8(bytes).text;
          const path = Buffer.concat([Buffer.from(base), bytes]);
          if (last && matches(shown) && await stat(path).then((s) => s.isSocket(), () => false)) {
            unnamable.push(base + shown);
          }
          continue;
        }
        if (matches(name) && (!name.startsWith(".") || part.startsWith("."))) {
          next.push(base + name + (last ? "" : "/"));
        }
      }
    }
    found = next;
  }
  const sockets = await Promise.all(found.map((path) => stat(path).then((s) => s.isSocket(), () => false)));
  return { sockets: found.filter((_, i) => sockets[i]).sort(), unnamable };
}
