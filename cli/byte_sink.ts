/**
 * Where a copy's bytes go (`ga cp` out of a guest): stdout, or a file put in
 * place only once whole, never written through a link. Runtime-specific
 * (node:fs, loaded inside, off the one-shot path).
 *
 * @module
 */
import { abortableWithGrace, sleep } from "../lib/abort.ts";
import { writeAllTo } from "./io/files.ts";
import { boundedWrite, OutputError, WRITE_GRACE_MS, writeErrorReason, writeStdoutBytes } from "./io/output.ts";

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
 * Write to a file, or to stdout for `-` or a FIFO or device (whose writes
 * `signal` bounds: a reader may stop reading). Each write is complete before it resolves, so
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
    throw new OutputError(`could not write ${path}: ${writeErrorReason(error)}`, { cause: error });
  };
  if (existing && !existing.isFile()) return await openInPlace(path, existing.isSymbolicLink(), failed, signal);
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
        // The new file's owner is who qmpctl runs as: no uid lookup needed.
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

/**
 * A destination that exists and is neither a regular file nor a directory
 * (a device, a FIFO), or a symbolic link. Opened without O_CREAT or O_TRUNC,
 * and checked once open, so that a link swapped for another between the
 * lstat and the open can neither create a file nor cut one short.
 */
async function openInPlace(
  path: string,
  link: boolean,
  failed: (error: unknown) => never,
  signal?: AbortSignal,
): Promise<ByteSink> {
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
  const handle = await openWhenRead(path, signal);
  const opened = await handle.stat().catch(() => undefined);
  if (!opened || opened.isFile() || opened.isDirectory()) {
    await handle.close().catch(() => {});
    throw refuse("ELOOP", "changed while it was opened (a link replaced?): not writing");
  }
  return {
    write: (bytes) => boundedWrite(writeAllTo(handle, bytes).catch(failed), signal, path),
    close: () => handle.close().catch(failed),
    // The close waits for a write under way, which a reader that stopped reading never ends: not past a grace.
    abort: () => abortableWithGrace(handle.close(), AbortSignal.abort(), WRITE_GRACE_MS, path).catch(() => {}),
  };
}

/**
 * Open `path` for writing without waiting on a FIFO that no one reads yet:
 * open(2) would wait for a reader with no bound (--timeout and Ctrl-C
 * unheard). With O_NONBLOCK it fails with ENXIO instead, and is tried again
 * every 50 ms until a reader comes or `signal` aborts; once one is there the
 * plain open returns at once, and the writes stay blocking.
 */
async function openWhenRead(path: string, signal?: AbortSignal) {
  const [fs, { constants }] = await Promise.all([import("node:fs/promises"), import("node:fs")]);
  const flags = constants.O_WRONLY | constants.O_NOCTTY;
  for (;;) {
    try {
      const probe = await fs.open(path, flags | constants.O_NONBLOCK);
      try {
        return await fs.open(path, flags);
      } finally {
        await probe.close();
      }
    } catch (error) {
      if ((error as { code?: string }).code !== "ENXIO") throw error;
    }
    await sleep(50, signal, `a reader of ${path}`);
  }
}

/**
 * A new file beside `path`, `.NAME.qmpctl-XXXXXX`, created 0600 with
 * O_CREAT|O_EXCL ("wx"): that fails on any name already there, a symbolic
 * link included, so nothing is written through a link or into another's file.
 * A system error names `path`, not the temporary name the user never gave.
 */
async function createTemporary(
  path: string,
): Promise<{ handle: import("node:fs/promises").FileHandle; temporary: string }> {
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
      const { code, message, syscall } = error as { code?: string; message?: string; syscall?: string };
      if (code === "EEXIST" && attempt < 10) continue;
      throw Object.assign(new Error(String(message ?? code).replaceAll(temporary, path)), { code, syscall });
    }
  }
}
