/**
 * `qmpctl ansible ARGS_FILE`: the logic of the Ansible module `qmp`
 * (contrib/ansible/library/qmp, a WANT_JSON script that hands Ansible's
 * arguments file to this command). It reads the module's parameters, runs
 * the command, and prints the module's result as one JSON object, as Ansible
 * expects from a module (docs.ansible.com, "Ansible module architecture":
 * non-Python modules read a JSON arguments file and print JSON). It exits 0
 * whenever it printed a result: `failed` in the result says how it went.
 *
 * @module
 */
import { CommandError, DisconnectedError, QmpError, TimeoutError } from "../lib/errors.ts";
import { isJsonObject, numberText, parseExact } from "../lib/exact_json.ts";
import { hmpText } from "../lib/hmp.ts";
import type { EventSubscription, QmpEvent } from "../lib/events.ts";
import { isGlob } from "../lib/glob.ts";
import { formatDuration, parseDuration } from "./duration.ts";
import { formatTable } from "./exit_status.ts";
import { awaitedTimeout, checkEventWait, type EventWait, readEventWait, subscribe } from "./event_output.ts";
import { readTextFile } from "./io/input.ts";
import { stdoutReaderGone, writeStdout } from "./io/output.ts";
import { parentGoneSignal } from "./io/process.ts";
import { ParsedOptions, UsageError } from "./options.ts";
import { type CommandContext, connect, formatJson } from "./session.ts";

export const help = (): string =>
  `Usage: qmpctl ansible ARGS_FILE

Run as the Ansible module qmp (contrib/ansible/library/qmp calls this): read
the module's parameters from ARGS_FILE (JSON), run the command, print the
module's result as one JSON object.

Parameters:
${
    formatTable([
      ["socket", "the monitor address: one -s form, ssh:// too (no glob); required"],
      ["execute", "a QMP command; arguments: its arguments (a dict, or its JSON)"],
      ["hmp", "a human monitor command line"],
      [
        "wait_event",
        "an event name or glob (or a list): wait for it; with execute, listening starts before the command is " +
        "sent; match: a dict its data must hold (a dict inside: members to hold); count: how many (1)",
      ],
      ["timeout", "bound on the whole run (30s, 2m, or seconds); default none"],
      ["connect_timeout", "bound on connecting (default 10s)"],
      [
        "changed",
        "force the result's changed, yes or no (default: false for query-* commands and a bare wait_event, " +
        "true otherwise)",
      ],
      ["qmpctl", "the binary's path on the managed host (default: on PATH; ~/ is its home)"],
    ])
  }

Result: return (execute), text (hmp), events (wait_event), changed; on
failure failed: true and msg (for a QEMU error "Class: description", and
error: {class, desc}). In check mode only query-* commands without
wait_event run (waiting would hang on an event the skipped tasks never cause).
A parameter not listed here fails the task (a misspelt one would otherwise be
ignored).

Example (what Ansible does):
  echo '{"socket": "/run/vm1.qmp", "execute": "query-status"}' \\
    > /tmp/args
  qmpctl ansible /tmp/args`;

/** The module's parameters, as Ansible passes them. */
interface ModuleParams {
  socket?: unknown;
  execute?: unknown;
  arguments?: unknown;
  hmp?: unknown;
  wait_event?: unknown;
  match?: unknown;
  count?: unknown;
  timeout?: unknown;
  connect_timeout?: unknown;
  changed?: unknown;
  _ansible_check_mode?: unknown;
}

type Result = Record<string, unknown>;

export async function run(context: CommandContext): Promise<number> {
  const [file, ...extra] = context.words;
  if (!file || extra.length > 0) throw new UsageError("ansible needs one argument: the module's arguments file");
  let result: Result;
  try {
    const params = parseParams(
      await readTextFile(file).catch((error) => {
        const code = (error as { code?: string }).code;
        throw new UsageError(`cannot read the arguments file ${file}${code ? ` (${code})` : ""}`);
      }),
    );
    result = await runModule(context, params);
  } catch (error) {
    result = failure(error);
  }
  await writeStdout(formatJson(result, false)); // U+2028 and the like escaped: Ansible splits lines at them
  return 0;
}

function parseParams(text: string): ModuleParams {
  let params: unknown;
  try {
    params = parseExact(text); // Ansible writes ints exactly (Python): sent as written
  } catch {
    throw new UsageError("the arguments file is not JSON (the module needs WANT_JSON)");
  }
  if (typeof params !== "object" || params === null || Array.isArray(params)) {
    throw new UsageError("the arguments file does not hold a JSON object");
  }
  // A misspelt parameter (argument for arguments) would otherwise be dropped
  // in silence and the command run without it; Ansible's own modules refuse it.
  // Ansible adds its own _ansible_* members; qmpctl is the wrapper's.
  const unknown = Object.keys(params).find((key) => !PARAMETERS.includes(key) && !key.startsWith("_ansible_"));
  if (unknown !== undefined) {
    throw new UsageError(`unsupported parameter: ${unknown} (the module takes ${PARAMETERS.join(", ")})`);
  }
  return params as ModuleParams;
}

/** Every parameter of the module, as the help lists them, and the wrapper's `qmpctl`. */
const PARAMETERS = [
  "socket",
  "execute",
  "arguments",
  "hmp",
  "wait_event",
  "match",
  "count",
  "timeout",
  "connect_timeout",
  "changed",
  "qmpctl",
];

function failure(error: unknown): Result {
  const result: Result = { failed: true, changed: false, msg: (error as Error)?.message ?? String(error) };
  if (error instanceof CommandError) result.error = { class: error.errorClass, desc: error.desc };
  else if (!(error instanceof QmpError || error instanceof UsageError)) result.msg = `internal error: ${result.msg}`;
  return result;
}

/** A task's parameters, checked: what it runs, and where. */
interface Task {
  socket: string;
  execute?: string;
  hmp?: string;
  /** Events to wait for (none: no wait). */
  names: string[];
  args?: Record<string, unknown>;
  /** What the result says of `changed`: the task's own, else whether the command changes anything. */
  changed: boolean;
}

/** The task's parameters, checked (their names as Ansible's users write them in messages). */
function readTask(params: ModuleParams): Task {
  const socket = text(params.socket, "socket");
  if (!socket) throw new UsageError("missing required parameter: socket");
  // One task, one monitor: a glob would be taken as a path (and over ssh:// forwarded as one).
  if (isGlob(socket)) {
    throw new UsageError(`socket '${socket}' is a glob: the module takes one monitor (a task per VM)`);
  }
  const execute = text(params.execute, "execute");
  const hmp = text(params.hmp, "hmp");
  // A list, or (Ansible's KEY=VALUE form) its items joined by commas: no event name holds one.
  const names = !given(params.wait_event)
    ? []
    : (Array.isArray(params.wait_event) ? params.wait_event : text(params.wait_event, "wait_event")!.split(","))
      .map((n) => text(n, "wait_event")!.trim());
  if ((execute === undefined) === (hmp === undefined) && !(execute === undefined && names.length > 0)) {
    throw new UsageError("give one of execute or hmp (wait_event may go with execute, or alone)");
  }
  if (hmp !== undefined && names.length > 0) throw new UsageError("wait_event goes with execute, not hmp");
  if (names.includes("")) throw new UsageError("wait_event holds an empty event name");
  if (names.length === 0 && (given(params.match) || given(params.count))) {
    throw new UsageError("match and count go with wait_event");
  }
  const args = dict(params.arguments, "arguments");
  const changed = given(params.changed)
    ? boolean(params.changed, "changed")
    : execute !== undefined
    ? !execute.startsWith("query-")
    : hmp !== undefined;
  return { socket, execute, hmp, names, args, changed };
}

async function runModule(context: CommandContext, params: ModuleParams): Promise<Result> {
  const { socket, execute, hmp, names, args, changed } = readTask(params);
  // Every parameter is read before check mode skips the task: one that would fail fails the dry run too.
  const timeoutMs = duration(params.timeout, "timeout", 0);
  const options = new ParsedOptions();
  if (given(params.match)) options.set("match", matchWords(dict(params.match, "match")!));
  if (given(params.count)) options.set("count", scalar(params.count, "count"));
  const session: CommandContext = {
    ...context,
    options,
    global: {
      ...context.global,
      socket,
      timeoutMs,
      connectTimeoutMs: duration(params.connect_timeout, "connect_timeout", context.global.connectTimeoutMs),
    },
  };
  const wait = names.length > 0 ? readEventWait(session, names, 1, "count") : undefined;
  if (params._ansible_check_mode === true && !(execute?.startsWith("query-") && !wait)) {
    return { changed, skipped: true, msg: "check mode: only query-* commands without wait_event run" };
  }
  // A task's own `timeout:` kills Ansible's runner, not this process: gone with it, rather than left holding the
  // monitor. The runner's shell stays (qmpctl's parent), but no one reads the output any more.
  const bounds = [context.signal, parentGoneSignal(), stdoutReaderGone()];
  const signal = AbortSignal.any(timeoutMs > 0 ? [...bounds, AbortSignal.timeout(timeoutMs)] : bounds);
  session.signal = signal;
  // A timeout says which bound ran out, as qmpctl's own --timeout does.
  const bounded = (error: unknown) => {
    if (error instanceof TimeoutError) error.message += ` (timeout ${formatDuration(timeoutMs)})`;
    return error;
  };
  const client = await connect(session).catch((error) => Promise.reject(bounded(error)));
  try {
    // As for wait-event: a name QEMU does not know fails at once, rather than at the timeout.
    if (wait) await checkEventWait(client, wait, signal);
    const subscription = wait && subscribe(client, wait, signal); // before the command is sent
    const result: Result = { changed };
    if (execute !== undefined) {
      result.return = await client.execute(execute, args, { signal });
    } else if (hmp !== undefined) {
      const output = await client.execute("human-monitor-command", { "command-line": hmp }, { signal });
      result.text = hmpText(output, client.address.text);
    }
    if (wait && subscription) {
      const events: QmpEvent[] = [];
      try {
        await collectEvents(subscription, wait, events, client.address.text);
      } catch (error) {
        // The command has run: the task failed, and changed what the command changed (and returned); the
        // events that came are in the result too.
        const reason = error instanceof TimeoutError ? bounded(awaitedTimeout(wait, events.length)) : error;
        return { ...result, events, ...failure(reason), changed };
      } finally {
        subscription.close();
      }
      result.events = events;
    }
    return result;
  } catch (error) {
    throw bounded(error);
  } finally {
    client.close();
  }
}

/**
 * Add to `events` those awaited as they come, until `wait.count` have.
 * @throws {DisconnectedError} when `address` closed the connection before
 */
async function collectEvents(
  subscription: EventSubscription,
  wait: EventWait,
  events: QmpEvent[],
  address: string,
): Promise<void> {
  while (events.length < wait.count) {
    const batch = await subscription.nextBatch(wait.count - events.length);
    if (batch.length === 0) break;
    events.push(...batch);
  }
  if (events.length < wait.count) {
    throw new DisconnectedError(`${address} closed the connection while waiting for ${wait.what}`);
  }
}

/** Whether a parameter was given: Ansible passes one left out as null (or leaves it out). */
function given(value: unknown): boolean {
  return value !== undefined && value !== null;
}

function text(value: unknown, name: string): string | undefined {
  if (!given(value)) return undefined;
  if (typeof value !== "string") throw new UsageError(`${name} must be a string`);
  return value;
}

/**
 * A dict parameter; in Ansible's KEY=VALUE form (`-a 'arguments={...}'`) it
 * comes as its JSON text, read here with exact numbers.
 */
function dict(value: unknown, name: string): Record<string, unknown> | undefined {
  if (!given(value)) return undefined;
  let object: unknown = value;
  if (typeof value === "string") {
    try {
      object = parseExact(value);
    } catch {
      throw new UsageError(`${name} must be a dict (or its JSON)`);
    }
  }
  if (typeof object !== "object" || object === null || Array.isArray(object)) {
    throw new UsageError(`${name} must be a dict (or its JSON)`);
  }
  return object as Record<string, unknown>;
}

/** A boolean parameter, in any of the forms Ansible's own modules take (`changed=yes` in KEY=VALUE form). */
function boolean(value: unknown, name: string): boolean {
  const word = typeof value === "string" || typeof value === "number" ? String(value).toLowerCase() : "";
  if (value === true || ["y", "yes", "on", "1", "true", "t", "1.0"].includes(word)) return true;
  if (value === false || ["n", "no", "off", "0", "false", "f", "0.0"].includes(word)) return false;
  throw new UsageError(`${name} must be a boolean (yes/no, true/false), not ${JSON.stringify(value)}`);
}

function duration(value: unknown, name: string, otherwise: number): number {
  if (!given(value)) return otherwise;
  return parseDuration(scalar(value, name), name);
}

/** A string or a number parameter as text (a list or a dict is refused, not read as its String()). */
function scalar(value: unknown, name: string): string {
  const number = numberText(value);
  if (number !== undefined) return number;
  if (typeof value !== "string") {
    throw new UsageError(`${name} must be a string or a number, not ${JSON.stringify(value)}`);
  }
  return value;
}

/**
 * A `match` dict as `--match` words: a string as text (KEY=VALUE), a dict as
 * its members' words under KEY (dotted), anything else as its JSON (KEY:=JSON).
 */
function matchWords(match: Record<string, unknown>, prefix = ""): string[] {
  return Object.entries(match).flatMap(([key, value]) => {
    // A dict inside is members the data must hold, each on its own (result: {status: completed} is
    // result.status=completed), not a whole object to equal: an event's object has members the task leaves out.
    if (isJsonObject(value) && Object.keys(value).length > 0) return matchWords(value, `${prefix}${key}.`);
    return [typeof value === "string" ? `${prefix}${key}=${value}` : `${prefix}${key}:=${JSON.stringify(value)}`];
  });
}
