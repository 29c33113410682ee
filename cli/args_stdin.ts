/** `--args -`: the arguments object's text from stdin, for exec and ga. @module */
import { isBlank } from "../lib/args.ts";
import { ArgumentError, QmpError } from "../lib/errors.ts";
import { decodeUtf8, showInvalidUtf8 } from "../lib/utf8.ts";
import { readStdinBytes } from "./io.ts";

/**
 * The `--args -` text: stdin's bytes, which must be UTF-8 (no other encoding
 * is guessed from a byte-order mark).
 * @throws {ArgumentError} when stdin cannot be read (a directory, closed), is empty or is not UTF-8
 */
export async function readArgsFromStdin(signal: AbortSignal): Promise<string> {
  const bytes = await readStdinBytes(signal).catch((error) => {
    if (error instanceof QmpError) throw error; // SIGINT or --timeout
    const code = (error as { code?: string })?.code;
    const reason = code === "EISDIR"
      ? "stdin is a directory"
      : code === "EBADF"
      ? "stdin is closed"
      : `cannot read stdin (${(error as Error).message})`;
    throw new ArgumentError(`--args -: ${reason}`);
  });
  const text = decodeUtf8(bytes);
  if (text !== undefined && isBlank(text)) {
    throw new ArgumentError("--args -: stdin held no JSON, only blanks or nothing (an object is needed: {} for none)");
  }
  if (text !== undefined) return text;
  const { firstBad } = showInvalidUtf8(bytes);
  throw new ArgumentError(
    `--args -: stdin is not UTF-8 (byte 0x${bytes[firstBad].toString(16).padStart(2, "0")} at offset ${firstBad})`,
  );
}
