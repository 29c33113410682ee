/** `--args JSON` and `--args -` (the object's text from stdin), for exec and ga. @module */
import { isBlank, parseArgumentsJson } from "../lib/args.ts";
import { ArgumentError, NotKeyValueError, QmpError } from "../lib/errors.ts";
import { MAX_TOKEN_SIZE } from "../lib/parser_limits.ts";
import { decodeUtf8, showInvalidUtf8 } from "../lib/utf8.ts";
import { unquotedGlobHint } from "./glob_hint.ts";
import { readStdinBytes } from "./io/input.ts";

/**
 * The arguments object `--args` gives: its own text, or with `-` stdin's.
 * @throws {ArgumentError} for text that is no JSON object, or stdin as readArgsFromStdin says
 */
export async function argsObject(argsText: string, signal: AbortSignal): Promise<Record<string, unknown>> {
  return argsText === "-"
    ? parseArgumentsJson(await readArgsFromStdin(signal), "--args -")
    : parseArgumentsJson(argsText, "--args");
}

/**
 * A word that is no KEY=VALUE but a JSON object (`exec blockdev-add '{...}'`): the error says where it goes;
 * or a socket (`exec query-status -s vm*.sock` unquoted: the shell's second socket is left as a word).
 */
export function withArgsHint(error: unknown): unknown {
  if (!(error instanceof NotKeyValueError)) return error;
  if (error.word.trimStart().startsWith("{")) error.message += " (a JSON object of arguments goes with --args)";
  else error.message += unquotedGlobHint(error.word);
  return error;
}

/**
 * The `--args -` text: stdin's bytes, which must be UTF-8 (no other encoding
 * is guessed from a byte-order mark).
 * @throws {ArgumentError} when stdin cannot be read (a directory, closed), is empty, is not UTF-8, or
 * holds more than MAX_TOKEN_SIZE bytes: a bound on memory (< /dev/zero), at QEMU's own bound on the
 * tokens of one command, which the command's own text is checked against when it is sent
 */
async function readArgsFromStdin(signal: AbortSignal): Promise<string> {
  const bytes = await readStdinBytes(MAX_TOKEN_SIZE, signal).catch(async (error) => {
    if (error instanceof QmpError) throw error; // SIGINT or --timeout
    const { fileErrorWords } = await import("./file_errors.ts"); // only here: not loaded by every exec
    throw new ArgumentError(`--args -: cannot read stdin: ${fileErrorWords(error) ?? (error as Error).message}`);
  });
  if (bytes === undefined) {
    throw new ArgumentError(
      `--args -: stdin holds more than ${MAX_TOKEN_SIZE >> 20} MiB, what qmpctl reads for one command`,
    );
  }
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
