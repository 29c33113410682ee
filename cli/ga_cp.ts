/** `qmpctl ga cp SRC DST`: a file into or out of the guest (`:/path` is the guest side). @module */
import { abortable, abortableWithGrace } from "../lib/abort.ts";
import type { GuestAgent } from "../lib/agent_client.ts";
import { decodeBase64, encodeBase64 } from "../lib/base64.ts";
import { concatBytes } from "../lib/bytes.ts";
import { AbortedError, CommandError, ProtocolError, TimeoutError } from "../lib/errors.ts";
import { connectAgent } from "./ga_connect.ts";
import { localFileError } from "./file_errors.ts";
import { type ByteSink, openByteSink } from "./byte_sink.ts";
import { readChunks } from "./io/input.ts";
import { UsageError } from "./options.ts";
import { cleaningUpOnFatalSignal } from "./io/signals.ts";
import { type CommandContext, warnInPassing } from "./session.ts";

/**
 * Bytes per guest-file-read/-write: large enough that the round trips cost
 * little, small enough that one message (base64: 4/3 of it) stays far below
 * the agent's and qmpctl's message limits.
 */
const CHUNK_BYTES = 1 << 20;

/** How long closing the guest's file handle may take (it flushes what was written). */
const CLOSE_BOUND_MS = 5000;
/** How long it may take once the run's bound (--timeout, SIGINT) has passed: a stuck agent is not waited for. */
const CLOSE_GRACE_MS = 500;

export async function run(context: CommandContext): Promise<number> {
  if (context.words.length !== 2) {
    throw new UsageError("ga cp needs SRC and DST, one of them in the guest (:/path), e.g. qmpctl ga cp :/etc/hosts .");
  }
  const [source, target] = context.words;
  if (source === "" || target === "") throw new UsageError(`ga cp: ${source === "" ? "SRC" : "DST"} is empty`);
  const [guestSource, guestTarget] = [guestPath(source), guestPath(target)];
  if ((guestSource === undefined) === (guestTarget === undefined)) {
    throw new UsageError(
      `ga cp copies between here and the guest: write the guest side as :/path (got ${source} ${target})`,
    );
  }
  await cleaningUpOnFatalSignal(
    context,
    (context) =>
      guestSource !== undefined
        ? copyOut(context, guestSource, target)
        : copyIn(context, source, intoDirectory(guestTarget!, source)).catch((error) => {
          throw withDirectoryHint(error, guestTarget!, source);
        }),
  );
  return 0;
}

/** A guest path ending in / names a directory: the file keeps its local name there, as with cp(1). */
function intoDirectory(guestFile: string, localFile: string): string {
  const name = localFile.slice(localFile.lastIndexOf("/") + 1);
  if (!guestFile.endsWith("/") || name === "") return guestFile;
  if (localFile === "-") throw new UsageError(`:${guestFile} is a directory, and stdin has no name: name the file`);
  return guestFile + name;
}

/**
 * cp(1) copies into a directory DST; here only a DST ending in / says so
 * (qemu-ga cannot tell what a path is): the agent's refusal to write a
 * directory DST given without it says how.
 */
function withDirectoryHint(error: unknown, guestFile: string, localFile: string): unknown {
  if (guestFile.endsWith("/") || !(error instanceof CommandError) || !error.desc.endsWith(": Is a directory")) {
    return error;
  }
  error.message += localFile === "-"
    ? ` (name the file to write in it: :${guestFile}/NAME)`
    : ` (to copy into that directory, end DST with /: :${guestFile}/)`;
  return error;
}

function guestPath(word: string): string | undefined {
  if (!word.startsWith(":")) return undefined;
  if (word.length === 1) throw new UsageError("':' names no guest file (write :/path)");
  return word.slice(1);
}

/** What guest-file-read returns (qga/qapi-schema.json, GuestFileRead). */
interface FileRead {
  count?: number;
  "buf-b64"?: string;
  eof?: boolean;
}

/**
 * Guest → local. The local file is created only once the guest file has
 * given its first chunk: a guest path that opens but cannot be read (a
 * directory) leaves nothing behind. It is written beside the destination
 * and put in place only when the whole file has come (see openByteSink):
 * a copy that fails, times out or is interrupted leaves the destination as
 * it was.
 */
async function copyOut(context: CommandContext, guestFile: string, localFile: string): Promise<void> {
  const { signal } = context;
  const agent = await connectAgent(context);
  try {
    await withGuestFile(agent, guestFile, "r", signal, async (handle) => {
      // One read ahead: the agent reads and encodes the next chunk while this one is decoded and written.
      const read = (): Promise<FileRead> => {
        const reply = agent.execute("guest-file-read", { handle, count: CHUNK_BYTES }, { signal }) as Promise<FileRead>;
        reply.catch(() => {}); // awaited below, unless an earlier step failed first
        return reply;
      };
      let sink: ByteSink | undefined;
      try {
        for (let next: Promise<FileRead> | undefined = read(); next;) {
          const chunk: FileRead = await next;
          if (typeof chunk?.["buf-b64"] !== "string") throw new ProtocolError("guest-file-read returned no buf-b64");
          next = chunk.eof || chunk.count === 0 ? undefined : read();
          sink ??= await localSink(localFile, guestFile, signal);
          await sink.write(decodeBase64(chunk["buf-b64"], `guest-file-read of ${guestFile}`));
        }
      } catch (error) {
        await sink?.abort(); // a partial copy never replaces the destination, nor stays behind
        throw error;
      }
      await sink?.close().catch((error) => Promise.reject(replaceRefused(error)));
    });
  } finally {
    await agent.close();
  }
}

/** Local → guest. The local file is read before the guest file is created, so a bad name changes nothing there. */
async function copyIn(context: CommandContext, localFile: string, guestFile: string): Promise<void> {
  const { signal } = context;
  const chunks = inChunks(readChunks(localFile), CHUNK_BYTES);
  // A pipe or a terminal may stay open without data: every read is bounded by --timeout and SIGINT.
  const waitingFor = `data from ${localFile === "-" ? "stdin" : localFile}`;
  const nextChunk = () => abortable(chunks.next(), signal, waitingFor);
  let first: IteratorResult<Uint8Array>;
  try {
    first = await nextChunk();
  } catch (error) {
    throw localFileError(error, `cannot read ${localFile}`);
  }
  const agent = await connectAgent(context);
  let opened = false; // the agent has opened the guest file, emptying it
  try {
    await withGuestFile(agent, guestFile, "w", signal, async (handle) => {
      opened = true;
      // One write ahead: the next chunk is read and encoded while the agent writes this one.
      let previous: Promise<void> | undefined;
      for (let next = first; !next.done; next = await nextChunk()) {
        const bytes = next.value;
        const written = agent.execute("guest-file-write", { handle, "buf-b64": encodeBase64(bytes) }, { signal })
          .then((reply) => {
            const count = (reply as { count?: number })?.count;
            // qemu-ga writes the whole buffer or fails (fwrite, then ferror): a short count is a failure.
            if (count !== bytes.length) {
              throw new ProtocolError(`guest-file-write to ${guestFile} wrote ${count} of ${bytes.length} bytes`);
            }
          });
        written.catch(() => {}); // awaited below, unless an earlier step failed first
        if (previous) await previous;
        previous = written;
      }
      await previous;
    });
  } catch (error) {
    // Cut short by --timeout or a signal once guest-file-open went out (the agent opens, emptying, the file
    // whether or not its answer is awaited): said, lest it be taken for a copy (a local DST is left as it was).
    if (error instanceof TimeoutError || error instanceof AbortedError) {
      await warnInPassing(context, `stopped: ${guestFile} in the guest may be left empty or part written`);
    } else if (opened && error instanceof Error) { // a full disk, the agent gone: as said, on the error's line
      error.message += ` (${guestFile} in the guest may be left empty or part written)`;
    }
    throw error;
  } finally {
    // Not awaited: after an aborted read, return() would wait for that read, which may never end.
    chunks.return(undefined).catch(() => {});
    await agent.close();
  }
}

/** Open a guest file, run `work` with its handle, and close the handle whatever happens (errors, SIGINT, timeout). */
async function withGuestFile(
  agent: GuestAgent,
  path: string,
  mode: string,
  signal: AbortSignal,
  work: (handle: number) => Promise<void>,
): Promise<void> {
  const from = ` from ${agent.address.text}`;
  // Closing has its own bound, and outlasts the run's (--timeout, SIGINT) by a little only.
  const bounded = <T>(work: Promise<T>, what: string) =>
    abortableWithGrace(abortable(work, AbortSignal.timeout(CLOSE_BOUND_MS), what), signal, CLOSE_GRACE_MS, what);
  const close = (handle: unknown) =>
    bounded(agent.execute("guest-file-close", { handle }), `the guest agent's reply to guest-file-close${from}`);
  // The agent's errors ("failed to read file: Is a directory", "failed to close
  // handle: No space left on device") name no file, nor which side failed.
  const naming = (error: unknown) => {
    if (error instanceof CommandError) {
      error.message = `cannot ${mode === "r" ? "read" : "write"} ${path} in the guest: ${error.message}`;
    }
    return error;
  };
  // Sent without the run's signal: when SIGINT or --timeout comes before the
  // reply, the agent opens the file all the same, and its handle must be closed.
  const opening = agent.execute("guest-file-open", { path, mode });
  let handle: unknown;
  try {
    handle = await abortable(opening, signal, `the guest agent's reply to guest-file-open${from}`);
  } catch (error) {
    if (signal.aborted) {
      await bounded(opening, "").then(close).catch(() => {});
    }
    throw naming(error);
  }
  if (typeof handle !== "number") throw new ProtocolError(`guest-file-open returned ${JSON.stringify(handle)}`);
  let failed = true;
  try {
    await work(handle);
    failed = false;
  } catch (error) {
    throw naming(error);
  } finally {
    // The run's signal may have aborted already: closing gets a little longer.
    if (failed) await close(handle).catch(() => {});
    else await close(handle).catch((error) => Promise.reject(naming(error)));
  }
}

/** Open the local file to write; a directory receives the file under the guest file's name, as cp(1) does. */
async function localSink(path: string, guestFile: string, signal: AbortSignal): Promise<ByteSink> {
  try {
    return await openByteSink(path, signal);
  } catch (error) {
    const name = guestFile.slice(guestFile.lastIndexOf("/") + 1);
    if ((error as { code?: unknown }).code !== "EISDIR" || name === "") {
      throw localFileError(error, `cannot write ${path}`);
    }
    return await localSink(`${path.replace(/\/+$/, "")}/${name}`, "", signal);
  }
}

/**
 * The copy came whole, but the rename that puts it in place was refused
 * (EPERM): in a directory with the sticky bit (/tmp, mode 1777) only a
 * file's owner may replace it, and no one an immutable file. That is a DST
 * this user may not write, as one in a directory they may not write (exit
 * 2, "cannot write"), not a write that failed (74): DST is left as it was.
 */
function replaceRefused(error: unknown): unknown {
  const cause = (error as { cause?: { code?: unknown; syscall?: unknown; dest?: unknown } })?.cause;
  if (cause?.syscall !== "rename" || cause.code !== "EPERM") return error;
  const refused = localFileError(cause, `cannot write ${cause.dest}`) as Error;
  refused.message += ": replacing it was refused (another user's file in a directory with the sticky bit, " +
    "as /tmp, or an immutable one)";
  return refused;
}

/** Regroup a stream's pieces into pieces of at least `size` bytes (the last may be shorter). */
async function* inChunks(source: AsyncIterable<Uint8Array>, size: number): AsyncGenerator<Uint8Array> {
  let parts: Uint8Array[] = [];
  let held = 0;
  for await (const part of source) {
    parts.push(part);
    held += part.length;
    if (held < size) continue;
    yield concatBytes(parts, held);
    parts = [];
    held = 0;
  }
  if (held > 0) yield concatBytes(parts, held);
}
