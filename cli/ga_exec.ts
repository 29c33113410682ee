/** `qmpctl ga exec -- PROG [ARGS...]`: a program in the guest, its output and exit status as qmpctl's. @module */
import { sleep } from "../lib/abort.ts";
import type { GuestAgent } from "../lib/agent_client.ts";
import { decodeBase64, encodeBase64 } from "../lib/base64.ts";
import {
  AbortedError,
  abortErrorFor,
  CommandError,
  ConnectionError,
  DisconnectedError,
  ProtocolError,
  TimeoutError,
} from "../lib/errors.ts";
import { numberText } from "../lib/exact_json.ts";
import { PROGRAM } from "./exit_status.ts";
import { connectAgent } from "./ga_connect.ts";
import { localFileError } from "./file_errors.ts";
import { readBytes } from "./io/input.ts";
import { BrokenPipeError, OutputError, writeStderrBytes, writeStderrLine, writeStdoutBytes } from "./io/output.ts";
import { UsageError } from "./options.ts";
import { type CommandContext, printJson } from "./session.ts";

/**
 * The longest request qemu-ga takes: its JSON parser refuses a message whose
 * tokens (all its bytes but whitespace) and one more byte exceed 64 MiB
 * (MAX_TOKEN_SIZE, qobject/json-streamer.c; 7.2 takes 67108863 bytes, answers
 * 67108864 with "JSON token size limit exceeded").
 */
const AGENT_MESSAGE_BYTES = 64 * 1024 * 1024 - 1;

/**
 * The most --stdin may hold: 48 MiB less 1 KiB. guest-exec carries it as one
 * base64 string, 4/3 of it: 48 MiB would be all of AGENT_MESSAGE_BYTES and
 * more; this leaves 1363 bytes for the rest of the request (its path, args
 * and env). A longer command line lowers it: checked by requestFits.
 */
const MAX_INPUT_BYTES = 48 * 1024 * 1024 - 1024;

/** Pauses between guest-exec-status polls: short first (most commands end at once), then backing off. */
const FIRST_POLL_MS = 2;
const LONGEST_POLL_MS = 500;

/** What guest-exec-status returns (qga/qapi-schema.json, GuestExecStatus). */
interface ExecStatus {
  exited: boolean;
  exitcode?: unknown; // an integer, 32 bits on a Windows guest
  signal?: unknown;
  "out-data"?: string;
  "err-data"?: string;
  "out-truncated"?: boolean;
  "err-truncated"?: boolean;
}

export async function run(context: CommandContext): Promise<number> {
  const args = await readRequest(context);
  const path = args.path as string;
  const agent = await connectAgent(context);
  try {
    const pid = await startProgram(agent, args, context);
    if (typeof pid !== "number") return pid.status;
    const status = await awaitEnd(agent, path, pid, context.signal);
    if (context.options.has("json")) {
      await printJson(context, status);
      return 0;
    }
    await printOutput(status, path, pid, context.signal);
    return exitStatusOf(status, path);
  } finally {
    await agent.close();
  }
}

/** guest-exec's arguments, from the words (PROG ARGS...), --env and --stdin (read here). */
async function readRequest(context: CommandContext): Promise<Record<string, unknown>> {
  const [path, ...arg] = context.words;
  if (!path) throw new UsageError("ga exec needs a program (e.g. qmpctl ga exec -- uname -a)");
  const env = context.options.get("env") as string[] | undefined;
  for (const variable of env ?? []) {
    if (!/^[^=]+=/.test(variable)) throw new UsageError(`--env '${variable}' is not NAME=VALUE`);
  }
  const stdin = context.options.text("stdin");
  const input = stdin === undefined ? undefined : await readInput(stdin, context.signal);
  const args: Record<string, unknown> = { path, arg, "capture-output": true };
  if (env) args.env = env;
  if (input !== undefined) {
    requestFits(args, input.length, stdin!);
    args["input-data"] = encodeBase64(input);
  }
  return args;
}

/**
 * Start the program: its guest pid, or the exit status env(1) gives (127, 126) when the agent could not start
 * it, said on stderr.
 */
async function startProgram(
  agent: GuestAgent,
  args: Record<string, unknown>,
  context: CommandContext,
): Promise<number | { status: number }> {
  let started: { pid?: unknown };
  try {
    started = await agent.execute("guest-exec", args, { signal: context.signal }) as { pid?: unknown };
  } catch (error) {
    // Cut short before its reply (--timeout, Ctrl-C, the agent gone): the request may have started it.
    if (context.signal.aborted || error instanceof DisconnectedError || error instanceof ConnectionError) {
      const unknown = `${args.path} may have been started in the guest (its pid did not come)`;
      if (error instanceof AbortedError) writeStderrLine(`qmpctl: interrupted: ${unknown}`);
      else if (error instanceof Error) error.message += `; ${unknown}`;
      throw error;
    }
    // With --json a script reads a status object: there is none, so the agent's error (exit 1), not 127.
    if (!(error instanceof CommandError) || error.errorClass !== "GenericError" || context.options.has("json")) {
      throw error;
    }
    // The program could not be started; the agent says why only in its text (glib's, with the system's reason).
    writeStderrLine(`qmpctl: ${args.path}: ${error.desc}`);
    return { status: error.desc.includes("No such file or directory") ? PROGRAM.NOT_FOUND : PROGRAM.NOT_RUNNABLE };
  }
  if (typeof started?.pid !== "number") {
    throw new ProtocolError(`guest-exec returned no pid: ${JSON.stringify(started)}`);
  }
  return started.pid;
}

/** Poll until the program `pid` has ended: its status. Cut short, the error says it may still be running. */
async function awaitEnd(agent: GuestAgent, path: string, pid: number, signal: AbortSignal): Promise<ExecStatus> {
  try {
    for (let pause = FIRST_POLL_MS;; pause = Math.min(pause * 2, LONGEST_POLL_MS)) {
      const status = await agent.execute("guest-exec-status", { pid }, { signal }) as ExecStatus;
      if (status.exited) return status;
      await sleep(pause, signal, "");
    }
  } catch (error) {
    const unknown = `${path} (guest pid ${pid}) may still be running in the guest`;
    if (error instanceof DisconnectedError || error instanceof ConnectionError) { // the agent went away
      throw new DisconnectedError(`${error.message}; ${unknown}`, { cause: error });
    }
    if (!signal.aborted) { // guest-exec-status refused (an agent run with -b guest-exec-status), or garbled
      if (error instanceof Error) error.message += `; ${unknown}`;
      throw error;
    }
    const stopped = abortErrorFor(`${path} (guest pid ${pid}) to end; it may still be running in the guest`)(signal);
    // qmpctl says nothing of its own on SIGINT; here the program outlives it, which the user must know.
    if (stopped instanceof AbortedError) writeStderrLine(`qmpctl: interrupted: ${unknown}`);
    throw stopped;
  }
}

/** Write the program's output and error output as qmpctl's own, and warn of what the agent cut. */
async function printOutput(status: ExecStatus, path: string, pid: number, signal: AbortSignal): Promise<void> {
  // A reader that closed stdout or stderr early ('cmd 2>&1 | head') does not hide how the program ended,
  // as with 'ssh host cmd'. Another failure says the program ran: a script must not run it again.
  const readerGone = (error: unknown) => {
    if (error instanceof BrokenPipeError) return;
    const ran = `${path} ran in the guest (guest pid ${pid}) and ended with ${ending(status)}`;
    if (error instanceof OutputError) error.message += ` (${ran})`;
    else if (error instanceof TimeoutError) error.message = `${ran}, but ${error.message}`;
    throw error;
  };
  await writeStdoutBytes(decodeBase64(status["out-data"] ?? "", "the program's output (out-data)"), signal)
    .catch(readerGone);
  await writeStderrBytes(decodeBase64(status["err-data"] ?? "", "the program's error output (err-data)"), signal)
    .catch(readerGone);
  for (const stream of ["out", "err"] as const) {
    if (status[`${stream}-truncated`]) {
      writeStderrLine(`qmpctl: warning: the guest agent cut ${path}'s std${stream} (qemu-ga keeps at most 16 MB)`);
    }
  }
}

/**
 * qmpctl's exit status for how the program ended: its status, or 128+N for
 * signal N. An exit status holds 0-255 only, and a Windows guest's status is
 * 32 bits (256, 0xC0000005): taken modulo 256 a failure could read as
 * success. Such a status (or one that is no integer) exits 1, and stderr
 * says what the guest reported.
 */
function exitStatusOf(status: ExecStatus, path: string): number {
  const { signal, exitcode = 0 } = status;
  const within = (n: unknown, low: number, high: number): n is number =>
    Number.isInteger(n) && (n as number) >= low && (n as number) <= high;
  if (signal === undefined && within(exitcode, 0, 255)) return exitcode;
  if (signal !== undefined && within(signal, 1, 127)) return 128 + signal;
  writeStderrLine(
    `qmpctl: ${path} ended with ${ending(status)}, which no exit status can carry (0-255): exit status 1`,
  );
  return 1;
}

/** How the program ended, as the agent says it: `status 0`, `signal 9`. */
function ending({ signal, exitcode = 0 }: ExecStatus): string {
  return signal === undefined ? `status ${text(exitcode)}` : `signal ${text(signal)}`;
}

/** A value the agent sent, as its JSON text (a number kept as written by its digits). */
function text(value: unknown): string {
  return numberText(value) ?? JSON.stringify(value);
}

/** The bytes for --stdin: a file, or qmpctl's own stdin for `-`. */
async function readInput(path: string, signal: AbortSignal): Promise<Uint8Array> {
  let input: Uint8Array | undefined;
  try {
    input = await readBytes(path, MAX_INPUT_BYTES, signal);
  } catch (error) {
    throw localFileError(error, `--stdin: cannot read ${path}`);
  }
  if (input) return input;
  throw new UsageError(
    `--stdin: ${path === "-" ? "stdin" : path} holds more than the agent takes in one guest-exec (48 MiB less 1 KiB: ` +
      `${MAX_INPUT_BYTES} bytes): copy it with 'ga cp' instead`,
  );
}

/**
 * Refuse (exit 2, before anything is sent) a guest-exec that qemu-ga would
 * refuse as too long: an input near MAX_INPUT_BYTES with a command line of
 * more than about 1 KiB. The agent's "JSON token size limit exceeded" would
 * read as a program that could not be started.
 */
function requestFits(args: Record<string, unknown>, inputBytes: number, path: string): void {
  // The request as the client sends it, its input aside: the id is the longest it can be (the sync's id is 31 bits).
  const rest = JSON.stringify({
    execute: "guest-exec",
    arguments: { ...args, "input-data": "" },
    id: "qmpctl-2147483647-1",
  });
  const bytes = new TextEncoder().encode(rest).length + 4 * Math.ceil(inputBytes / 3);
  if (bytes <= AGENT_MESSAGE_BYTES) return;
  throw new UsageError(
    `--stdin: ${path} and the command line make a guest-exec request of ${bytes} bytes, more than the agent ` +
      `takes in one message (${AGENT_MESSAGE_BYTES}): copy the file with 'ga cp' instead`,
  );
}
