/**
 * Input: stdin and files, whole (bounded) or as lines and chunks as they
 * come. Under Bun its own APIs; node:fs elsewhere, and for what Bun cannot
 * read (a character device).
 *
 * @module
 */
import { abortable } from "../../lib/abort.ts";
import { concatBytes } from "../../lib/bytes.ts";
import { decodeUtf8, showInvalidUtf8 } from "../../lib/utf8.ts";
import { bun, openedInPlaceOfClosed } from "./runtime.ts";

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

let stdinBytes: Promise<Uint8Array | undefined> | undefined;

/**
 * All of stdin as bytes, read once (every target of a fan-out gets the same
 * input; the first call's `limit` holds); undefined when there are more than
 * `limit` (reading stops there: `< /dev/zero` does not fill the memory).
 * `signal` (SIGINT, --timeout) ends the wait for a stdin that stays open.
 */
export function readStdinBytes(limit: number, signal?: AbortSignal): Promise<Uint8Array | undefined> {
  return abortable(stdinBytes ??= readAtMost("-", limit), signal, "stdin to end");
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

/** Why a line is not run when it holds bytes that are not UTF-8 (`shown`: each such byte as `\xHH`). */
export function notUtf8Reason(shown: string): string {
  return `the line is not UTF-8: '${shown}'`;
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
    if (text === undefined) return new BadLine(notUtf8Reason(showInvalidUtf8(bytes).text));
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
  // node:fs, loaded only then, reads those, and reports a missing file (or
  // file.txt/, which Bun does not find either).
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
  // Opened first: Bun's createReadStream(path) drops a trailing slash (file.txt/ read as file.txt, not ENOTDIR).
  const handle = await (await import("node:fs")).promises.open(path, "r");
  for await (const chunk of handle.createReadStream()) yield chunk as Uint8Array; // closes the handle at its end
}
