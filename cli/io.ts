/**
 * The CLI's runtime-specific calls: standard streams, environment, exit and
 * signals, the terminal (raw mode, width, keys) and small text files. `process` is a global in Bun, Deno 2 and Node; only stdout and
 * stdin differ: under Bun they are Bun's own APIs, because
 * `process.stdout.write` costs a compiled binary ~13 ms of start-up.
 *
 * @module
 */
import { abortable } from "../lib/abort.ts";
import { globMatcher, isGlob } from "../lib/glob.ts";

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
 * looked at (Bun.resolveSync follows /proc/self/fd/1, in 1-3 ms).
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

/**
 * Run the stdout check while waiting for the server (to accept and greet):
 * it is synchronous work (1-3 ms) that would otherwise delay the first
 * write. It runs after what this turn of the event loop queued (a
 * connection being opened). The first write waits for it either way (and
 * fails with it).
 */
export function prepareStdout(): void {
  if (bun) setImmediate(() => checkStdoutOpen().catch(() => {}));
}

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

/** Write text or bytes to stdout or stderr, in order, rejecting with BrokenPipeError or OutputError. */
function writeAll(data: string | Uint8Array, stream: "stdout" | "stderr" = "stdout"): Promise<void> {
  // Bun.write of "" truncates a regular file: `qmpctl ... >> log` would lose the log.
  if (data.length === 0) return Promise.resolve();
  if (bun) {
    const ready = stream === "stdout" ? checkStdoutOpen() : Promise.resolve();
    return ready.then(() => bun.write(bun[stream], data)).then(
      () => {},
      (error) => Promise.reject(outputErrorOf(error)),
    );
  }
  if (!stdoutErrorsHandled) {
    // Node and Deno also emit write errors as 'error' events, which would be
    // uncaught; the write callback below reports them.
    process.stdout.on("error", () => {});
    process.stderr.on("error", () => {});
    stdoutErrorsHandled = true;
  }
  return new Promise((resolve, reject) => {
    process[stream].write(data, (error) => error ? reject(outputErrorOf(error)) : resolve());
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

/**
 * Write one line to stderr (console.error: synchronous, and cheap at
 * start-up). Control characters are written as escapes, so that text from a
 * server (a QEMU error's `desc`) or from the user can neither split the line
 * nor reach the terminal as an escape sequence.
 */
export function writeStderrLine(line: string): void {
  console.error(escapeControls(line));
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

// C0 controls, DEL and the C1 controls (U+0080..U+009F, which some terminals obey).
// deno-lint-ignore no-control-regex -- matching control characters is the point
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/g;
const NAMED: Record<string, string> = { "\n": "\\n", "\r": "\\r", "\t": "\\t" };

/** `text` with each control character written as `\n`, `\r`, `\t` or `\xHH`. */
export function escapeControls(text: string): string {
  return text.replace(CONTROL, (c) => NAMED[c] ?? `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`);
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
  return bun ? bun.stdin.bytes() : (await readAtMost("-", Infinity))!; // no limit: never undefined
}

/** A whole text file (Bun.file under Bun; node:fs elsewhere, imported only here). */
export async function readTextFile(path: string): Promise<string> {
  if (bun) return bun.file(path).text();
  const { readFile } = await import("node:fs/promises");
  return readFile(path, "utf8");
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
  for await (const chunk of byteStream(path)) {
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

/** Whether stdout is a terminal (the shell then edits lines and redraws). */
export function stdoutIsTerminal(): boolean {
  return process.stdout.isTTY === true;
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

/** Die of `signal` as if it had not been caught (its handlers must be removed first). */
export function killSelf(signal: FatalSignal): void {
  process.kill(process.pid, signal);
}

/**
 * A directory of this user's that no one else may write to, held open, and
 * the private files in it: what a secret-bearing file (the shell's history)
 * needs when the path comes from an environment another user may have set
 * (root run with a user's HOME through `sudo -E` or `su -m`).
 */
export interface PrivateDir {
  /**
   * The last `maxBytes` of the file `name` as text, starting at a whole line
   * when cut (`cut` true); undefined when there is no such file. The file is
   * checked and tightened as `append` does it.
   */
  readTail(name: string, maxBytes: number): Promise<{ text: string; cut: boolean } | undefined>;
  /** Append `text` to the file `name`, created 0600 if missing; one write, so lines of two shells do not mix. */
  append(name: string, text: string): Promise<void>;
  /** Put `text` in place of the file `name`: written to a new temporary file (O_EXCL, 0600) renamed over it. */
  replace(name: string, text: string): Promise<void>;
}

/**
 * Open the directory `path` as a PrivateDir, creating it (0700, and its
 * parents) when missing. It must be a directory of the effective user, not
 * reached through a symlink at its last component; a looser mode is tightened
 * to 0700 through the open descriptor (so a link swapped in meanwhile is not
 * chmod-ed). Its files are then opened through /proc/self/fd/N/NAME, which
 * resolves to the directory held open, not to whatever the path names by then:
 * the parents may belong to another user, who could rename the directory and
 * put a link in its place. Without /proc (and under Deno), the real path is
 * used, and only when no other user may change a directory on it.
 * Files must be regular, of this user, with one link (else a planted hard
 * link to another file of ours would be written), and are opened with
 * O_NOFOLLOW and O_NONBLOCK (a planted FIFO must not block the open).
 * @throws {Error} whose message is the reason, about the file: "its directory
 * is a symbolic link (not followed)", "it belongs to uid 65534, not to this
 * user (uid 0)", or the system's ("permission denied (EACCES)")
 */
export async function openPrivateDir(path: string): Promise<PrivateDir> {
  const { constants, promises: fs, closeSync, fchmodSync, fstatSync, openSync } = await import("node:fs");
  const euid = await effectiveUid().catch((error) => {
    throw new Error(`cannot tell this user's uid: ${reasonError(error, "a new file").message}`, { cause: error });
  });
  const ownerProblem = (uid: number) =>
    euid === undefined || uid === euid ? undefined : `belongs to uid ${uid}, not to this user (uid ${euid})`;
  const parent = path.slice(0, path.lastIndexOf("/"));
  const dir = await (async () => {
    if (parent) await fs.mkdir(parent, { recursive: true, mode: 0o700 });
    await fs.mkdir(path, { mode: 0o700 }).catch((error) => {
      if ((error as { code?: string }).code !== "EEXIST") throw error;
    });
    // A plain descriptor, not a FileHandle: Bun closes a FileHandle no longer
    // referenced when it is collected (and throws), and /proc/self/fd/N must
    // name this directory for as long as the process runs.
    return openSync(path, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
  })().catch(async (error) => {
    // A link opened with O_DIRECTORY | O_NOFOLLOW fails with ENOTDIR, as a file does: lstat tells which (for the message only).
    const code = (error as { code?: string }).code;
    if (code === "ENOTDIR" || code === "ELOOP") {
      const link = await fs.lstat(path).then((s) => s.isSymbolicLink(), () => false);
      const what = link ? "a symbolic link (not followed)" : "not a directory";
      throw new Error(`its directory is ${what}`, { cause: error });
    }
    throw reasonError(error, "its directory");
  });
  // Deno (without --allow-all) resolves the links in a path before it opens
  // it, O_NOFOLLOW or not: so what was opened is compared with what the path
  // itself is (lstat), before anything is changed or written.
  const notFollowed = async (path: string, what: string, opened?: { dev: number; ino: number }) => {
    const own = await fs.lstat(path).catch(() => undefined);
    if (own?.isSymbolicLink()) throw new Error(`${what} is a symbolic link (not followed)`);
    if (opened && (own?.dev !== opened.dev || own?.ino !== opened.ino)) {
      throw new Error(`${what} was replaced meanwhile`);
    }
  };
  const stat = fstatSync(dir);
  try {
    await notFollowed(path, "its directory", stat);
    const notOurs = ownerProblem(stat.uid);
    if (notOurs) throw new Error(`its directory ${notOurs}`);
    if ((stat.mode & 0o077) !== 0) fchmodSync(dir, 0o700);
  } catch (error) {
    closeSync(dir);
    throw reasonError(error, "its directory");
  }
  // The descriptor stays open for the process's life (the shell's session).
  const proc = `/proc/self/fd/${dir}`;
  const viaProc = await fs.stat(proc).then((s) => s.dev === stat.dev && s.ino === stat.ino, () => false);
  const base = viaProc ? proc : await safeRealPath(path, stat, euid).catch((error) => {
    closeSync(dir);
    throw reasonError(error, "its directory");
  });
  const at = (name: string) => `${base}/${name}`;

  /** Open the file `name` and check it; undefined when it does not exist and `flags` do not create it. */
  const openFile = async (name: string, flags: number) => {
    let file;
    try {
      file = await fs.open(at(name), flags | constants.O_NOFOLLOW | constants.O_NONBLOCK, 0o600);
    } catch (error) {
      await notFollowed(at(name), "it"); // Deno: a dangling link fails with ENOENT
      if ((error as { code?: string }).code === "ENOENT" && !(flags & constants.O_CREAT)) return undefined;
      throw reasonError(error, "it");
    }
    try {
      const stat = await file.stat();
      await notFollowed(at(name), "it", stat);
      const problem = !stat.isFile()
        ? "is not a regular file"
        : ownerProblem(stat.uid) ?? (stat.nlink !== 1 ? `has ${stat.nlink} hard links` : undefined);
      if (problem) throw new Error(`it ${problem}`);
      if ((stat.mode & 0o077) !== 0) await file.chmod(0o600);
      return { file, size: stat.size };
    } catch (error) {
      await file.close();
      throw reasonError(error, "it");
    }
  };
  const writeAllTo = async (file: import("node:fs/promises").FileHandle, text: string) => {
    const bytes = new TextEncoder().encode(text);
    for (let done = 0; done < bytes.length;) done += (await file.write(bytes, done)).bytesWritten;
  };

  return {
    async readTail(name, maxBytes) {
      const opened = await openFile(name, constants.O_RDONLY);
      if (!opened) return undefined;
      try {
        const start = Math.max(0, opened.size - maxBytes);
        const bytes = new Uint8Array(opened.size - start);
        let length = 0;
        while (length < bytes.length) {
          const { bytesRead } = await opened.file.read(bytes, length, bytes.length - length, start + length);
          if (bytesRead === 0) break; // cut short meanwhile
          length += bytesRead;
        }
        const text = new TextDecoder().decode(bytes.subarray(0, length));
        return start === 0 ? { text, cut: false } : { text: text.slice(text.indexOf("\n") + 1), cut: true };
      } finally {
        await opened.file.close();
      }
    },
    async append(name, text) {
      const flags = constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT;
      const { file } = (await openFile(name, flags))!;
      try {
        await writeAllTo(file, text);
      } catch (error) {
        throw reasonError(error, "it");
      } finally {
        await file.close();
      }
    },
    async replace(name, text) {
      const temporary = `.${name}.${crypto.randomUUID()}.tmp`;
      const flags = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL;
      const { file } = (await openFile(temporary, flags))!;
      try {
        await writeAllTo(file, text);
        await file.close();
        await fs.rename(at(temporary), at(name));
      } catch (error) {
        await file.close().catch(() => {});
        await fs.unlink(at(temporary)).catch(() => {});
        throw reasonError(error, "it");
      }
    },
  };
}

/**
 * The real path of the directory `path` (whose descriptor's stat is
 * `opened`), for when its files must be opened by path: without /proc (and
 * under Deno, which refuses /proc/self without --allow-all). Then no one but
 * root and `euid` may be able to rename or replace anything on it: each
 * directory above it must be theirs, and writable by no one else unless
 * sticky (as /tmp is). Else a user owning a parent (root run with that
 * user's HOME) could swap the directory for a link between the checks and a
 * write, as OpenSSH's StrictModes refuses such a path.
 * @throws {Error} naming the directory that is not safe
 */
async function safeRealPath(path: string, opened: { dev: number; ino: number }, euid?: number): Promise<string> {
  const { promises: fs } = await import("node:fs");
  const real = await fs.realpath(path);
  const stat = await fs.stat(real);
  if (stat.dev !== opened.dev || stat.ino !== opened.ino) throw new Error(`its directory was replaced meanwhile`);
  for (let above = real; above !== "/";) {
    above = above.slice(0, above.lastIndexOf("/")) || "/";
    const { uid, mode } = await fs.stat(above);
    if (uid !== 0 && uid !== euid) throw new Error(`${above}, above its directory, belongs to uid ${uid}`);
    if ((mode & 0o022) !== 0 && (mode & 0o1000) === 0) {
      throw new Error(`${above}, above its directory, is writable by others (mode ${(mode & 0o777).toString(8)})`);
    }
  }
  return real;
}

/**
 * This process's effective uid (undefined where there is none). Under Deno,
 * process.geteuid needs --allow-sys, which qmpctl's documented Deno run does
 * not grant (and on a terminal Deno would stop to ask for it): there the
 * owner of a file just created (O_EXCL, then removed) in the system's
 * temporary directory is read instead.
 */
async function effectiveUid(): Promise<number | undefined> {
  if (!("Deno" in globalThis)) return process.geteuid?.();
  const { constants, promises: fs } = await import("node:fs");
  const { tmpdir } = await import("node:os");
  const probe = `${tmpdir()}/.qmpctl-uid-${crypto.randomUUID()}`;
  const file = await fs.open(probe, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
  try {
    return (await file.stat()).uid;
  } finally {
    await file.close();
    await fs.unlink(probe);
  }
}

/**
 * An error whose message is a reason a person can read: ours as it is, the
 * system's as "permission denied (EACCES)" (its own message names the path
 * it was given, here a /proc/self/fd one that would only confuse), and a
 * link not followed said so, about `what` ("it", "its directory").
 */
function reasonError(error: unknown, what: string): Error {
  const code = (error as { code?: string })?.code;
  if (!code) return error as Error;
  if (code === "ELOOP") return new Error(`${what} is a symbolic link (not followed)`, { cause: error });
  const text = /^[A-Z0-9]+: ([^,]+)/.exec((error as Error).message)?.[1] ?? code;
  return new Error(`${text} (${code})`, { cause: error });
}

/** Write bytes to stdout as they are (a guest program's output, a copied file). */
export function writeStdoutBytes(bytes: Uint8Array, signal?: AbortSignal): Promise<void> {
  return abortable(writeAll(bytes, "stdout"), signal, "stdout to take the output");
}

/** Write bytes to stderr as they are (a guest program's error output). */
export function writeStderrBytes(bytes: Uint8Array): Promise<void> {
  return writeAll(bytes, "stderr");
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
    yield* (bun ? bun.stdin.stream() : process.stdin) as AsyncIterable<Uint8Array>;
    return;
  }
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

/** Where streamed bytes go: a file, or stdout. */
export interface ByteSink {
  /** Write all of `bytes`; resolves once they are handed to the system. */
  write(bytes: Uint8Array): Promise<void>;
  /** The copy is complete: put the file in place (a failure removes what was written). */
  close(): Promise<void>;
  /** The copy failed or was interrupted: remove what was written, leave the destination as it was. Never rejects. */
  abort(): Promise<void>;
}

/**
 * Write to a file, or to stdout for `-` (whose writes `signal` bounds: a
 * reader may stop reading). Each write is complete before it resolves, so
 * memory stays bounded. Bun's FileSink is not used: a write it fails
 * (ENOSPC) surfaces as an unhandled error, not as the rejection of the
 * write, so node:fs/promises serves both runtimes.
 *
 * A file is written as a new temporary file beside it, created 0600
 * (O_CREAT|O_EXCL, so never through a link someone planted there), and
 * renamed over `path` by close(): until then, and after abort(), `path` is as
 * it was. What is at `path`:
 * - nothing: the file is created, 0600 (the data may be a guest's secrets,
 *   and no source mode is known);
 * - a regular file: replaced; it keeps its permission bits when it is the
 *   caller's own, else the new file is 0600;
 * - a symbolic link: refused (code ELOOP). One that leads nowhere is refused
 *   by cp(1) too ("not writing through dangling symlink"); one that leads to
 *   a file would be written through by cp(1), or replaced by a rename, and
 *   either can surprise (a link planted in a shared directory; /dev/stdout);
 * - a device or FIFO (also through a link: /dev/null, /dev/stdout): written
 *   to as it is, since nothing is created or replaced there;
 * - a directory (also through a link): code EISDIR, for the caller to decide.
 * @throws the system's error (ENOENT, EACCES) with its `code`, or ELOOP or
 * EISDIR as above, when the file cannot be opened; OutputError when a write
 * or the close fails
 */
export async function openByteSink(path: string, signal?: AbortSignal): Promise<ByteSink> {
  if (path === "-") {
    return {
      write: (bytes) => writeStdoutBytes(bytes, signal),
      close: () => Promise.resolve(),
      abort: () => Promise.resolve(),
    };
  }
  const fs = await import("node:fs/promises");
  const existing = await fs.lstat(path).catch((error) => {
    if ((error as { code?: unknown }).code === "ENOENT") return undefined;
    throw error;
  });
  const failed = (error: unknown): never => {
    const code = (error as { code?: string })?.code;
    const reason = code ? `${WRITE_ERRORS[code] ?? code} (${code})` : (error as Error)?.message ?? String(error);
    throw new OutputError(`could not write ${path}: ${reason}`, { cause: error });
  };
  if (existing && !existing.isFile()) return await openInPlace(path, existing.isSymbolicLink(), failed);
  const { handle, temporary } = await createTemporary(path);
  let closed = false, renamed = false;
  const abort = async () => {
    if (renamed) return;
    if (!closed) await handle.close().catch(() => {});
    closed = true;
    await fs.unlink(temporary).catch(() => {});
  };
  return {
    write: (bytes) => writeAllTo(handle, bytes).catch(failed),
    async close() {
      try {
        // On disk before the rename, so that a crash leaves the old file or the new one, never an empty one.
        await handle.datasync();
        // The new file's owner is who qmpctl runs as (process.geteuid would need Deno's --allow-sys).
        // fchmod, not chmod by name: in a shared directory the name may already lead elsewhere.
        const mode = existing && existing.uid === (await handle.stat()).uid ? existing.mode & 0o777 : 0o600;
        if (mode !== 0o600) await handle.chmod(mode);
        closed = true;
        await handle.close();
        await fs.rename(temporary, path);
        renamed = true;
      } catch (error) {
        await abort();
        failed(error);
      }
    },
    abort,
  };
}

type FileHandle = import("node:fs/promises").FileHandle;

async function writeAllTo(handle: FileHandle, bytes: Uint8Array): Promise<void> {
  for (let done = 0; done < bytes.length;) done += (await handle.write(bytes, done)).bytesWritten;
}

/**
 * A destination that exists and is neither a regular file nor a directory
 * (a device, a FIFO), or a symbolic link. Opened without O_CREAT or O_TRUNC,
 * and checked once open, so that a link swapped for another between the
 * lstat and the open can neither create a file nor cut one short.
 */
async function openInPlace(path: string, link: boolean, failed: (error: unknown) => never): Promise<ByteSink> {
  const fs = await import("node:fs/promises");
  const refuse = (code: string, message: string) => Object.assign(new Error(message), { code });
  if (link) {
    const target = await fs.stat(path).catch((error) => {
      if ((error as { code?: unknown }).code !== "ENOENT") throw error;
      throw refuse("ELOOP", "not writing through a dangling symbolic link");
    });
    if (target.isDirectory()) throw refuse("EISDIR", "is a directory");
    if (target.isFile()) throw refuse("ELOOP", "is a symbolic link: name the file it leads to");
  }
  const { constants } = await import("node:fs");
  const handle = await fs.open(path, constants.O_WRONLY | constants.O_NOCTTY);
  const opened = await handle.stat().catch(() => undefined);
  if (!opened || opened.isFile() || opened.isDirectory()) {
    await handle.close().catch(() => {});
    throw refuse("ELOOP", "changed while it was opened (a link replaced?): not writing");
  }
  return {
    write: (bytes) => writeAllTo(handle, bytes).catch(failed),
    close: () => handle.close().catch(failed),
    abort: () => handle.close().catch(() => {}),
  };
}

/**
 * A new file beside `path`, `.NAME.qmpctl-XXXXXX`, created 0600 with
 * O_CREAT|O_EXCL ("wx"): that fails on any name already there, a symbolic
 * link included, so nothing is written through a link or into another's file.
 * A system error names `path`, not the temporary name the user never gave.
 */
async function createTemporary(path: string): Promise<{ handle: FileHandle; temporary: string }> {
  const { open } = await import("node:fs/promises");
  const slash = path.lastIndexOf("/");
  const directory = path.slice(0, slash + 1);
  // 50 characters are at most 200 bytes: with the rest, the name stays under NAME_MAX (255 bytes).
  const name = Array.from(path.slice(slash + 1)).slice(0, 50).join("");
  const letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  for (let attempt = 0;; attempt++) {
    const random = Array.from(crypto.getRandomValues(new Uint8Array(6)), (byte) => letters[byte % letters.length]);
    const temporary = `${directory}.${name}.qmpctl-${random.join("")}`;
    try {
      return { handle: await open(temporary, "wx", 0o600), temporary };
    } catch (error) {
      const { code, message } = error as { code?: string; message?: string };
      if (code === "EEXIST" && attempt < 10) continue;
      throw Object.assign(new Error(String(message ?? code).replaceAll(temporary, path)), { code });
    }
  }
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

/**
 * The paths that match `pattern` (`*` and `?` within one path component,
 * matched in linear time: lib/glob.ts), sorted; hidden names only when the
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
      if (!isGlob(part)) {
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
