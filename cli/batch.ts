/** `qmpctl batch [FILE|-]`: many commands pipelined over one connection. @module */
import { abortable } from "../lib/abort.ts";
import type { BadLine } from "./io/input.ts";
import { exitStatusHelp } from "./exit_status.ts";
import { dieOf, type FatalSignal, onFatalSignal } from "./io/signals.ts";
import { UsageError } from "./options.ts";
import { type CommandContext, withClient } from "./session.ts";
import { ShellContext } from "./shell/context.ts";
import { inputLines, runPiped } from "./shell/piped.ts";
import { QmpMode } from "./shell/qmp_mode.ts";

export const help = (): string =>
  `Usage: qmpctl batch [FILE|-] [options]

Run the commands of FILE (or stdin, without FILE or with -) over one
connection, pipelined: each line is sent without waiting for the replies
before it (QEMU answers in order), and one result line is printed per
command, in input order: {"return": ...} or {"error": {...}}, as the piped
shell prints them.

Lines are those of the shell: CMD KEY=VALUE ... (typed as 'qmpctl exec'
types them), a line starting with { sent as raw QMP JSON, transaction( ... )
for one transaction; blank lines and # comments are skipped. The shell's
own words (quit, exit, events, help) are sent to QEMU like any line: quit
is QEMU's quit (in the shell it leaves the shell). A line that
cannot be sent as written (bad KEY=VALUE, unknown argument) prints its error
line in its place and the rest still run. Each line that failed is also
named on stderr: qmpctl: line 3: CLASS: desc (a transaction QEMU refused by
all its lines: qmpctl: lines 5-8 (transaction): ..., as QEMU does not say
which action failed). Input of any length streams through: at most 256
commands are in flight at once.

Examples:
  printf 'stop\\nquery-status\\ncont\\n' | qmpctl batch -s /run/vm1.qmp
  qmpctl batch setup.qmp -s /run/vm1.qmp | jq -c 'select(.error)'
  # the same file on every VM
  qmpctl batch setup.qmp -s '/run/qemu/*.qmp'

A file such as setup.qmp:
  # two null block devices and a bitmap on each, then a look at them
  blockdev-add driver=null-co node-name=n0 size=1048576
  blockdev-add driver=null-co node-name=n1 size=1048576
  block-dirty-bitmap-add node=n0 name=b0
  block-dirty-bitmap-add node=n1 name=b1
  {"execute": "query-named-block-nodes", "arguments": {"flat": true}}

With several sockets each VM runs the whole input, and each line carries
"socket" (the input is read once, into memory, before any is connected: at
most 64 MiB and 1048576 lines).

${
    exitStatusHelp(["OK", "QEMU_ERROR", "USAGE", "CONNECTION", "OUTPUT", "TIMEOUT", "INTERRUPTED"], {
      OK: "every command returned",
      QEMU_ERROR: "some command failed or could not be sent (stderr names each)",
      CONNECTION: "the connection was lost (stderr names the lines that got no answer, and the input not run)",
      OUTPUT: "the output could not be written (stderr names the lines that ran)",
    })
  }`;

/**
 * With several targets, the input all of them run: read once, whole, before
 * any connects (a pipe, `<(...)` or stdin can be read only once), so that
 * input that cannot be read is one error for the whole run.
 */
let sharedInput: Promise<(string | BadLine)[]> | undefined;

/** Bounds on that input, held whole in memory: its text, and its lines (each ~64 bytes of the engine's own). */
const SHARED_INPUT_MAX_BYTES = 64 * 1024 * 1024;
const SHARED_INPUT_MAX_LINES = 1024 * 1024;

function readSharedInput(context: CommandContext): Promise<(string | BadLine)[]> {
  return sharedInput ??= abortable(readWhole(inputLines(inputFile(context))), context.signal, "the input to end");
}

async function readWhole(lines: AsyncIterable<string | BadLine>): Promise<(string | BadLine)[]> {
  const all: (string | BadLine)[] = [];
  const utf8 = new TextEncoder();
  let bytes = 0;
  for await (const line of lines) {
    bytes += (typeof line === "string" ? utf8.encode(line).length : 0) + 1;
    if (bytes > SHARED_INPUT_MAX_BYTES || all.length === SHARED_INPUT_MAX_LINES) {
      throw new UsageError(
        "with several targets batch reads its input whole before it starts, and this one holds more than " +
          `${bytes > SHARED_INPUT_MAX_BYTES ? "64 MiB" : "1048576 lines"}: run it on each VM in turn (or split it)`,
      );
    }
    all.push(line);
  }
  return all;
}

export async function prepareTargets(context: CommandContext): Promise<void> {
  await readSharedInput(context);
}

/** FILE, or undefined for stdin. */
function inputFile(context: CommandContext): string | undefined {
  if (context.words.length > 1) throw new UsageError("batch takes at most one FILE (or - for stdin)");
  return context.words[0] === "-" ? undefined : context.words[0];
}

/**
 * SIGTERM and SIGHUP, caught for every target under way at once: each ends
 * as on SIGINT, naming the lines sent and not answered, and qmpctl dies of
 * the signal once the last has (dying at the first would cut the others' lines).
 */
let fatal: FatalSignals | undefined;

interface FatalSignals {
  abort: AbortController;
  caught?: FatalSignal;
  /** The targets under way. */
  running: number;
  release: () => void;
}

export function run(context: CommandContext): Promise<number> {
  return endingOnFatalSignal(context, runBatch);
}

async function endingOnFatalSignal(
  context: CommandContext,
  work: (context: CommandContext) => Promise<number>,
): Promise<number> {
  const shared = fatal ??= catchFatalSignals();
  shared.running++;
  try {
    return await work({ ...context, signal: AbortSignal.any([context.signal, shared.abort.signal]) });
  } finally {
    if (--shared.running === 0) {
      shared.release();
      fatal = undefined;
      if (shared.caught) dieOf(shared.caught);
    }
  }
}

function catchFatalSignals(): FatalSignals {
  const shared: FatalSignals = { abort: new AbortController(), running: 0, release: () => {} };
  shared.release = onFatalSignal((signal) => {
    shared.caught ??= signal;
    shared.abort.abort(new Error(signal));
  });
  return shared;
}

async function runBatch(context: CommandContext): Promise<number> {
  const file = inputFile(context);
  const lines = context.target ? await readSharedInput(context) : undefined;
  // A FILE that cannot be read is told before connecting (a VM that is down would hide it); stdin is not
  // waited for: a slow producer's first line may come long after.
  const input = lines
    ? arrayLines(lines)
    : file === undefined
    ? inputLines(file)
    : await abortable(started(inputLines(file)), context.signal, `the next line of ${file}`);
  return await withClient(context, async (client) => {
    const shell = new ShellContext(client, false);
    shell.shellWords = false; // a line "quit" in a file of commands is QEMU's quit
    return await runPiped({
      client,
      shell,
      mode: new QmpMode(shell, "QEMU"),
      pretty: context.global.pretty,
      signal: context.signal,
      lines: input,
      source: file,
      label: context.target?.label,
      write: context.target?.write,
      nameLines: true,
    });
  });
}

async function* arrayLines(lines: (string | BadLine)[]): AsyncGenerator<string | BadLine> {
  yield* lines;
}

/** `lines` with its first item already read (its error thrown now), then the rest as they come. */
async function started<T>(lines: AsyncGenerator<T>): Promise<AsyncGenerator<T>> {
  const first = await lines.next();
  return (async function* () {
    if (first.done) return;
    yield first.value;
    yield* lines;
  })();
}
