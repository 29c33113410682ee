/**
 * What a command runs with: its words and options, the signal built from
 * `--timeout` and SIGINT, a connected client, and JSON output, plain for one
 * target or labelled with `"socket"` when the command runs on several.
 *
 * @module
 */
import { QmpClient } from "../lib/client.ts";
import { connectWhenReady } from "../lib/connect_ready.ts";
import { CommandError, ConnectionError, GreetingError, QmpError, TimeoutError } from "../lib/errors.ts";
import { isSocketGlob } from "../lib/glob.ts";
import type { QmpEvent } from "../lib/events.ts";
import { controlPattern, escapeControls, isUnseenControl } from "./controls.ts";
import {
  boundedWrite,
  OutputError,
  prepareStdout,
  stdoutReaderLeft,
  writeStderr,
  writeStderrLine,
  writeStdout,
  writeStdoutText,
} from "./io/output.ts";
import { env } from "./io/process.ts";
import { type OptionTable, type ParsedOptions, UsageError } from "./options.ts";

/** The global options, read and checked. */
export interface GlobalOptions {
  /** The one address this run talks to (for several targets, each run gets its own). */
  socket?: string;
  /** Bound on the whole run in ms; 0 for none. */
  timeoutMs: number;
  connectTimeoutMs: number;
  /** `--wait-socket`: keep retrying a socket that is not there yet, this long (ms); 0: fail at once. */
  waitSocketMs?: number;
  pretty: boolean;
  raw: boolean;
  verbose: boolean;
}

/** One of several targets: its address labels each output line, written through `write` (lines kept whole). */
export interface Target {
  label: string;
  write(text: string): Promise<void>;
}

/** Everything a command module gets. */
export interface CommandContext {
  /** The words after the command name. */
  words: string[];
  /** Every option given, by long name (`options.text(name)`, `.list(name)`, `.flag(name)`). */
  options: ParsedOptions;
  global: GlobalOptions;
  /**
   * Aborts on SIGINT and when `--timeout` runs out; for a command that waits as a whole, also (with a
   * BrokenPipeError) once the reader of stdout has gone (cli.ts).
   */
  signal: AbortSignal;
  /**
   * For a one-shot command an option makes wait (exec --wait-event): aborts (with a BrokenPipeError) once the
   * reader of stdout has gone, which ends its wait, not its command (that goes out and is answered all the same).
   */
  readerGone?: AbortSignal;
  /** Every command's options (what `completions` completes), passed in so no command imports the registry. */
  optionTable: OptionTable;
  /** Set when the command runs on several targets: output lines then carry `"socket"`. */
  target?: Target;
}

/** How a command's connection is made. */
export interface SessionOptions {
  /** Called with the client before it connects: events from the very start reach the subscriptions it makes. */
  subscribe?: (client: QmpClient) => void;
  /** Send commands behind qmp_capabilities without waiting for its answer (one round trip fewer). */
  pipeline?: boolean;
}

/**
 * Connect and negotiate, with `-s` or `$QMPCTL_SOCKET` (retrying while the
 * socket is not ready, with `--wait-socket`). `subscribe` is called before
 * connecting (see ConnectOptions.subscribe); with `pipeline`, commands go out
 * before negotiation is answered (see ConnectOptions.pipeline).
 */
export function connect(context: CommandContext, session: SessionOptions = {}): Promise<QmpClient> {
  const address = givenAddress(context, "QMPCTL_SOCKET");
  if (address === undefined) throw new UsageError(noAddress("address", "QMPCTL_SOCKET"));
  const options = {
    signal: context.signal,
    connectTimeout: context.global.connectTimeoutMs,
    subscribe: session.subscribe,
    pipeline: session.pipeline,
    log: wireLog(context),
  };
  const waitMs = context.global.waitSocketMs ?? 0;
  // A pipelined session's command goes out right after the greeting: its
  // stdout is checked later, while QEMU answers (executeAndPrint), where the
  // main thread waits anyway; here it would hold up the greeting.
  if (!session.pipeline) prepareStdout(); // while QEMU accepts and greets
  const connected = waitMs > 0
    ? connectWhenReady(address, { ...options, waitMs })
    : QmpClient.connect(address, options);
  return connected.catch((error) => {
    withAgentHint(error);
    if (context.global.socket !== undefined) throw error;
    // The address came from the environment: said, for a user who forgot (or never knew of) that export; and
    // for a glob there, that it was taken as written (one address: only -s expands a glob).
    // (An address refused as written too: its text, which the command line does not show, came from there.)
    if (error instanceof ConnectionError || error instanceof GreetingError || (error as QmpError).code === "ADDRESS") {
      const glob = isSocketGlob(address) && causedBy(error, "ENOENT");
      error.message += glob
        ? " (the address is $QMPCTL_SOCKET's: a glob is expanded only in -s)"
        : " (the address is $QMPCTL_SOCKET's)";
    }
    throw error;
  });
}

/**
 * `error` with, when no QMP greeting came (its `noGreeting`), the command
 * that talks to what else may be on the socket: a guest agent.
 */
export function withAgentHint(error: unknown): unknown {
  if (error instanceof QmpError && error.noGreeting) error.message += " (a guest agent's socket: use qmpctl ga)";
  return error;
}

/** Whether a system error `code` (ENOENT) is under `error`, through a retry's "still so" wrapper. */
function causedBy(error: Error, code: string): boolean {
  for (let cause: unknown = error.cause; cause; cause = (cause as { cause?: unknown }).cause) {
    if ((cause as { code?: unknown }).code === code) return true;
  }
  return false;
}

/**
 * The address -s gave, else environment variable `variable`'s; undefined
 * for none. An empty variable is no address; an empty -s is one, refused as
 * such when it is parsed ("empty address").
 */
export function givenAddress(context: CommandContext, variable: string): string | undefined {
  return context.global.socket ?? (env(variable) || undefined);
}

/**
 * Why there is no `what`: none given, or environment variable `variable`
 * set but empty (`QMPCTL_SOCKET=$VM` with $VM unset), which "set it" would not explain.
 */
export function noAddress(what: string, variable: string): string {
  return env(variable) === ""
    ? `no ${what}: ${variable} is set but empty: give -s/--socket ADDR or a value to ${variable}`
    : `no ${what}: give -s/--socket ADDR or set ${variable}`;
}

/**
 * With -v, the logger of every message sent (`> `) and received (`< `) on
 * stderr; for one of several targets, after its address.
 */
export function wireLog(context: CommandContext): ((direction: "send" | "receive", json: string) => void) | undefined {
  if (!context.global.verbose) return undefined;
  const label = context.target ? `${context.target.label}: ` : "";
  // DEL and C1 as JSON's \u escapes, as on stdout: the line stays the JSON that crossed the wire
  return (direction, json) =>
    writeStderrLine(`${label}${direction === "send" ? ">" : "<"} ${escapeJsonControls(json)}`);
}

/**
 * Connect, run `use` with the client, and close the connection however `use`
 * ends; `options` as for `connect`.
 */
export async function withClient<T>(
  context: CommandContext,
  use: (client: QmpClient) => Promise<T>,
  options: SessionOptions = {},
): Promise<T> {
  const client = await connect(context, options);
  try {
    return await use(client);
  } finally {
    client.close();
  }
}

/**
 * One JSON value as a line: compact, or indented with `--pretty`. Control
 * characters in strings are escapes (`\u001b`), so that text from QEMU or a
 * guest cannot act on a terminal; JSON.stringify writes DEL, the C1 controls
 * (U+007F..U+009F, which some terminals obey) and the line and paragraph
 * separators (U+2028, U+2029: line breaks to Python's splitlines, which
 * Ansible reads a module's output with) as they are, and the bidirectional
 * controls, so they are written as escapes here (the same JSON value).
 */
export function formatJson(value: unknown, pretty: boolean): string {
  return escapeJsonControls(jsonLine(value, pretty));
}

/** JSON.stringify's line for a value, before escapeJsonControls. */
function jsonLine(value: unknown, pretty: boolean): string {
  return JSON.stringify(value, null, pretty ? 2 : undefined) + "\n";
}

/** JSON text with the characters of `isUnseenControl` as `\u` escapes (they can stand only inside its strings). */
export function escapeJsonControls(json: string): string {
  // A short text (a one-shot reply) is searched by a loop: a process's first regex costs ~0.5 ms.
  let found = false;
  if (json.length > 4096) found = json.search(controlPattern("")) >= 0;
  else {
    for (let i = 0; i < json.length && !found; i++) {
      found = isUnseenControl(json.charCodeAt(i));
    }
  }
  return found ? json.replace(controlPattern(""), (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`) : json;
}

/** Write output text: to stdout, or through the target's writer. */
export function write(context: CommandContext, text: string): Promise<void> {
  return context.target ? context.target.write(text) : writeStdout(text, context.signal);
}

/** Print one JSON value on stdout; for one of several targets, as `{"socket": ..., "return": value}`. */
export function printJson(context: CommandContext, value: unknown): Promise<void> {
  if (context.target) return printLabelled(context, { return: value });
  return writeStdout(formatJson(value, context.global.pretty), context.signal);
}

/** A record as an output line's members: with `"socket"` first for one of several targets. */
export function labelled(context: CommandContext, record: Record<string, unknown>): Record<string, unknown> {
  if (!context.target) return record;
  // The label first, and its value ours: an event's own top-level "socket" (no QEMU event has one) cannot
  // pass it off as another target's.
  const line: Record<string, unknown> = { socket: context.target.label, ...record };
  line.socket = context.target.label;
  return line;
}

/** A line on stderr, `qmpctl: ` and, for one of several targets, its address first. */
export function warn(context: CommandContext, text: string): void {
  writeStderrLine(warning(context, text));
}

/**
 * `warn` for a run that ends on a signal or its bound: written off the main
 * thread and given only a moment, so that a stderr nobody reads (a full
 * pipe) cannot hold the run from its end. Nothing when the run ends because
 * the reader of stdout left (`job wait | head -1`): that ends it quietly.
 */
export function warnInPassing(context: CommandContext, text: string): Promise<void> {
  if (stdoutReaderLeft(context.signal)) return Promise.resolve();
  const line = `${escapeControls(warning(context, text))}\n`;
  return boundedWrite(writeStderr(line), context.signal, "stderr").catch(() => {});
}

function warning(context: CommandContext, text: string): string {
  return `qmpctl: ${context.target ? `${context.target.label}: ` : ""}${text}`;
}

/**
 * A failure that ends a target without an error thrown (the job to follow
 * is not there): said on stderr and, for one of several targets, as its
 * `{"socket": ..., "failure": ...}` line too, as the fan-out does for errors.
 */
export async function reportFailure(context: CommandContext, reason: string): Promise<void> {
  warn(context, reason);
  if (context.target) await printLabelled(context, { failure: reason });
}

/** Print `{"socket": ADDR, ...members}`: one line of one of several targets. */
export function printLabelled(context: CommandContext, members: Record<string, unknown>): Promise<void> {
  return context.target!.write(formatJson(labelled(context, members), context.global.pretty));
}

/**
 * Events as output lines: each as QEMU sent it, with `"socket"` first for one
 * of several targets. DEL and the C1 controls are escaped once over all the
 * lines (a backlog's text is searched natively, not a loop per event).
 */
export function formatEvents(context: CommandContext, events: readonly QmpEvent[]): string {
  const { pretty } = context.global;
  let lines = "";
  for (const event of events) lines += jsonLine(labelled(context, event), pretty);
  return escapeJsonControls(lines);
}

/**
 * Run one command and print `render(return)`; with `--raw`, the whole
 * response object instead, every member QEMU sent but the id, in its order,
 * an error response too (the CommandError is still
 * thrown, for exit 1). For one of several targets the line is
 * `{"socket": ..., KEY: return}` (KEY "return", or "text" for hmp without
 * `--raw`), and an error is left to the fan-out to print.
 */
export async function executeAndPrint(
  context: CommandContext,
  client: Pick<QmpClient, "execute">, // a QMP client, or the guest agent's
  command: string,
  args: Record<string, unknown> | undefined,
  render: (value: unknown) => string,
  key: "return" | "text" = "return",
  answerer = "QEMU", // who answered, for the message of an output that failed after it
): Promise<void> {
  let value: unknown;
  let response: Record<string, unknown> | undefined; // --raw: QEMU's whole response (every member but the id)
  try {
    const reply = client.execute(
      command,
      args,
      context.global.raw ? { signal: context.signal, onReply: (r) => (response = r) } : { signal: context.signal },
    );
    prepareStdout(); // while QEMU answers (a no-op when connect() did it)
    value = await reply;
  } catch (error) {
    return await printRawError(context, command, error, answerer);
  }
  const printed = context.target // --raw: QEMU's return as it is, under "return" (hmp's text too, unrendered)
    ? printLabelled(context, context.global.raw || key === "return" ? { return: value } : { text: render(value) })
    : context.global.raw // (the guest agent's client hands out no response: its return alone)
    ? printJson(context, response ?? { return: value })
    : key === "text" // the human monitor's text, for people: escaped on a terminal
    ? writeStdoutText(render(value), context.signal)
    : writeStdout(render(value), context.signal);
  return printed.catch((error) => { // a script must not take 74 or 124 for "not done" and run it again
    const ran = key === "text" ? `'${args?.["command-line"]}'` : command; // the human monitor's line as typed
    if (error instanceof OutputError) error.message += ` (${ran} was run: ${answerer} answered it)`;
    else if (error instanceof TimeoutError) {
      error.message = `${ran} was run (${answerer} answered it), but ${error.message}`;
    }
    throw error;
  });
}

/**
 * With --raw, QEMU's (or the guest agent's) error answer, `{"error": ...}`, on stdout, as a return is
 * printed; then `error` is thrown all the same (exit 1, the error said on stderr).
 */
export async function printRawError(
  context: CommandContext,
  command: string,
  error: unknown,
  answerer: string,
): Promise<never> {
  if (context.global.raw && !context.target && error instanceof CommandError) {
    await printJson(context, error.response).catch((failure) => {
      if (failure instanceof OutputError) {
        failure.message += ` (${command} was run: ${answerer} answered it with an error, ${error.message})`;
      }
      throw failure;
    });
  }
  throw error;
}
