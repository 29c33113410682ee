/**
 * System errors on a local file (batch's and the piped shell's input,
 * --args -, ga cp's and ga exec's files, the program proxy starts) in the words the rest of qmpctl's
 * messages use.
 *
 * @module
 */
import { QmpError } from "../lib/errors.ts";
import { UsageError } from "./options.ts";

const FILE_ERRORS: Record<string, string> = {
  ENOENT: "no such file or directory",
  EACCES: "permission denied",
  EPERM: "permission denied",
  EISDIR: "a directory",
  ENOTDIR: "a part of the path is not a directory",
  ELOOP: "too many levels of symbolic links",
  ENAMETOOLONG: "the path is too long",
  ENOSPC: "no space left on the device",
  EROFS: "a read-only file system",
  EDQUOT: "over the disk quota",
  EBADF: "closed", // stdin closed (<&-): not read as empty input
  ENOEXEC: "exec format error", // a program to start (proxy -- PROG) that is no program; the runtime says "unknown error"
};

/**
 * A system error as words and its code, "no such file or directory (ENOENT)";
 * one not in the table in the runtime's words, without its repeat of the call
 * and path ("EIO: i/o error, open 'x'"). Undefined for an error with no code.
 */
export function fileErrorWords(error: unknown): string | undefined {
  const { code, message, path } = error as { code?: unknown; message?: string; path?: unknown };
  if (typeof code !== "string") return undefined;
  // A path ending in / that names a file (s.txt/, as cp(1) is told): the whole of it is no directory.
  const wholePath = code === "ENOTDIR" && typeof path === "string" && path.endsWith("/");
  const words = wholePath ? "not a directory" : FILE_ERRORS[code] ?? /^[A-Z0-9]+: ([^,]+)/.exec(message ?? "")?.[1];
  return words ? `${words} (${code})` : code;
}

/**
 * A system error on a local file (ENOENT, EACCES, EISDIR) as a one-line
 * usage error, "cannot read x: no such file or directory (ENOENT)"; anything else as it is.
 */
export function localFileError(error: unknown, what: string): unknown {
  if (error instanceof QmpError) return error; // a timeout or SIGINT while reading
  const { code, syscall, message } = error as { code?: unknown; syscall?: unknown; message?: string };
  if (typeof code !== "string") return error;
  // The system's own errors carry the call that failed; qmpctl's refusals (cli/byte_sink.ts) their own words.
  return new UsageError(`${what}: ${syscall === undefined ? message ?? code : fileErrorWords(error)}`);
}
