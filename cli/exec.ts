/** `qmpctl exec CMD [KEY=VALUE ...] [--args JSON|-]`. @module */
import type { QmpClient } from "../lib/client.ts";
import { exitStatusHelp, formatTable } from "./exit_status.ts";
import { CommandError, NotKeyValueError } from "../lib/errors.ts";
import { OutputError } from "./io/output.ts";
import { UsageError } from "./options.ts";
import { type CommandContext, executeAndPrint, formatJson, withClient } from "./session.ts";

export const help = (): string =>
  `Usage: qmpctl exec COMMAND [KEY=VALUE ...] [--args JSON|-] [options]

Connect, negotiate, run one QMP command and print its return value as one
JSON line.

Arguments:
${
    formatTable([
      [
        "KEY=VALUE",
        `typed by QEMU's schema: a str stays text (id=123 is "123"), a bool takes true/false/on/off/yes/no, an ` +
        "int or number its digits, an enum its values, an array or object JSON, an 'any' JSON where it parses, " +
        "else text",
      ],
      ["KEY.SUB=VALUE", "a dotted key goes into an object (file.driver=file), or an array (KEY.0=a KEY.1=b)"],
      ["KEY:=JSON", "raw JSON, sent as given"],
      [
        "--args JSON",
        "the arguments as one object, sent as given (--args - reads it from stdin); KEY=VALUE words are merged " +
        "into it and win",
      ],
    ])
  }

Before anything is sent, an unknown command or argument (with the closest
names), a missing argument and a value that cannot have its type exit 2. The
schema is fetched once per QEMU build and cached under $XDG_CACHE_HOME/qmpctl
(~/.cache/qmpctl); only KEY=VALUE words need it. Without a schema (QEMU
before 2.5) a value that parses as JSON is that JSON, else text.

Examples:
  qmpctl -s /run/vm1.qmp exec query-kvm | jq .enabled
  qmpctl exec query-status --pretty
  qmpctl exec blockdev-add driver=null-co node-name=n0 size=4096 \\
    read-only=on
  qmpctl exec set_link name=123 up=false
  echo '{"device": "ide0-hd0"}' | qmpctl exec eject --args -
  qmpctl exec stop --raw        # {"return":{}} or {"error":{...}}

Waiting for the event a command causes (--wait-event NAME, repeatable, exact
or a glob; --match KEY=VALUE and --count N as for wait-event): qmpctl listens
before it sends the command, so an event that comes before the reply (STOP
before the reply to stop) is not missed. It prints the return line, then the
event lines; when the command fails it exits 1 without waiting. A command
that changes nothing sends no event (stop on a paused VM): bound the wait.
  qmpctl exec stop --wait-event STOP --timeout 10s
  qmpctl exec system_powerdown --wait-event SHUTDOWN --timeout 2m
  qmpctl exec block-job-cancel device=job0 \\
    --wait-event BLOCK_JOB_CANCELLED --match device=job0

Following the work a command starts (see 'qmpctl help job' and 'qmpctl help
migrate'): --wait-job follows the job named by the command's job-id (or
device, for the older block job commands; id for job-resume, job-complete
and the other job-* commands) until it concludes and prints its
final state after the return line; --wait-migration does the same for
migrate (and the commands that drive one on: migrate-continue,
migrate-start-postcopy, migrate-incoming, ...), printing the final
query-migrate object. qmpctl listens before the command is sent, so a job
that fails at once is still reported with its error. A progress line is
drawn on stderr when it is a terminal (--progress, --no-progress,
--progress-json).
  qmpctl exec blockdev-backup job-id=nightly device=disk0 \\
    target=backup0 sync=full --wait-job --timeout 4h
  qmpctl exec migrate uri=tcp:dst:4444 --wait-migration

${
    exitStatusHelp(["OK", "QEMU_ERROR", "USAGE", "CONNECTION", "GONE", "OUTPUT", "TIMEOUT", "INTERRUPTED"], {
      OUTPUT: "the output could not be written (the command was run: stderr says so)",
      QEMU_ERROR:
        "QEMU answered with an error (with --wait-job or --wait-migration also: the job or migration failed or was cancelled)",
      GONE: "the job was not there to follow (see job wait)",
    })
  }`;

/** The schema module, loaded only when a value needs typing or a name checking. */
const schema = () => import("../lib/schema/mod.ts");

type Follower = (
  context: CommandContext,
  client: QmpClient,
  command: string,
  args: Record<string, unknown> | undefined,
) => () => Promise<number>;

/**
 * What follows the work a command starts (--wait-job, --wait-migration), loaded; undefined without them
 * (at once: a one-shot exec pays for each function it runs, so the rest is another's).
 */
function longWorkFollower(
  context: CommandContext,
  command: string,
  waitsForEvents: boolean,
): Promise<Follower> | undefined {
  const job = context.options.has("wait-job"), migration = context.options.has("wait-migration");
  if (job || migration) return loadedFollower(context, command, waitsForEvents);
  // The options given, not a list of those that go with them: a constant array takes a block of JavaScriptCore's
  // heap on every start (see the README's speed notes).
  for (const name of context.options.keys()) {
    if (name === "progress" || name === "no-progress" || name === "progress-json") {
      throw new UsageError(`--${name} goes with --wait-job or --wait-migration`);
    }
    if (name === "dismiss") throw new UsageError(`--${name} goes with --wait-job`); // no migration is dismissed
  }
  return undefined;
}

/** longWorkFollower's with --wait-job or --wait-migration, after the checks of what goes with them. */
async function loadedFollower(context: CommandContext, command: string, waitsForEvents: boolean): Promise<Follower> {
  const job = context.options.has("wait-job"), migration = context.options.has("wait-migration");
  if (migration && context.options.has("dismiss")) throw new UsageError("--dismiss goes with --wait-job");
  if ((job && migration) || waitsForEvents) {
    throw new UsageError("--wait-job, --wait-migration and --wait-event exclude each other");
  }
  if (job) return (await import("./job.ts")).followAfterExec;
  const migrate = await import("./migrate.ts");
  migrate.checkStartsMigration(command); // before connecting: a usage error holds no monitor
  return migrate.followAfterExec;
}

export async function run(context: CommandContext): Promise<number> {
  const command: string | undefined = context.words[0], words = context.words.slice(1);
  if (!command) throw new UsageError("exec needs a command name (e.g. qmpctl exec query-status)");
  // No QMP command's name has a '=': the name left out, QEMU would be asked for a command called so.
  if (command.includes("=")) {
    throw new UsageError(
      `'${command}' is KEY=VALUE, not a command name: exec takes the command first (qmpctl exec set_link name=net0 up=off)`,
    );
  }
  // A QMP message pasted whole, as socat or qmp-shell would take it (trimStart only then: its first call costs
  // every one-shot exec ~0.015 M instructions).
  if ((command.charCodeAt(0) > 0x20 ? command : command.trimStart()).startsWith("{")) {
    throw new UsageError(
      "exec takes a command name, not a QMP message: qmpctl exec query-status (arguments as KEY=VALUE " +
        "or --args JSON); whole messages go to qmpctl batch -, one a line",
    );
  }
  // What only some runs use is loaded by those alone: a module more costs every one-shot exec start-up.
  const argsText = context.options.text("args");
  const base = argsText === undefined
    ? undefined
    : await (await import("./args_stdin.ts")).argsObject(argsText, context.signal);
  const typing = base || words.length > 0 ? await import("../lib/args.ts") : undefined;
  let args: Record<string, unknown> | undefined;
  try {
    args = typing?.untypedArguments(words, base); // malformed words: nothing sent
  } catch (error) {
    throw withHmpHint((await import("./args_stdin.ts")).withArgsHint(error), command, words);
  }
  const typed = typing && args === undefined; // words the schema types (their form checked above)
  const { options } = context;
  const events = options.has("wait-event") || options.has("match") || options.has("count")
    ? await import("./event_output.ts")
    : undefined;
  const wait = events?.readWaitEventOption(context);
  const follow = await longWorkFollower(context, command, Boolean(wait)); // loaded only with --wait-job/--wait-migration
  // The wait, not the command, ends within a second of stdout's reader leaving (quietly, status 0): the
  // command goes out and is answered all the same.
  const { readerGone } = context;
  const waiting = readerGone ? { ...context, signal: AbortSignal.any([context.signal, readerGone]) } : context;
  return await withClient(context, async (client) => {
    if (typed) { // typed and checked by QEMU's schema (cached; loaded only when needed)
      args = await (await schema()).typedArguments(client, command, words, base, { signal: context.signal });
    }
    if (wait) await events!.checkEventWait(client, wait, context.signal);
    const subscription = wait && events!.subscribe(client, wait, waiting.signal); // before the command is sent
    const following = follow?.(waiting, client, command, args); // listening before the command is sent
    await executeAndPrint(context, client, command, args, (value) => formatJson(value, context.global.pretty))
      .catch(async (error) => { // QEMU did not find the command: name the closest ones (from the schema cache)
        if (error instanceof CommandError && error.errorClass === "CommandNotFound") {
          // No QMP command has a blank: a human monitor line, quoted (checked here, off the one-shot path).
          error.message += command.trim().includes(" ")
            ? ` (a human monitor line goes with hmp: qmpctl hmp '${command}')`
            : await (await schema()).closestCommandsHint(client, command, { signal: context.signal });
        } else if (error instanceof CommandError) error.message += typing?.sentAsJsonHint(error.desc, words) ?? "";
        else if (follow && error instanceof OutputError) { // it ran: what it started goes on
          error.message += context.options.has("wait-job")
            ? "; the job it started goes on in QEMU, unfollowed (qmpctl job wait follows it)"
            : "; the migration goes on in QEMU, unfollowed (qmpctl migrate wait follows it)";
        }
        throw error;
      });
    try {
      if (wait && subscription) await events!.printAwaitedEvents(waiting, client, subscription, wait);
      return following ? await following() : 0;
    } catch (error) {
      throw readerGone?.aborted ? readerGone.reason : error; // a BrokenPipeError: status 0, quietly
    }
  }, { pipeline: true }); // the command goes out behind qmp_capabilities
}

/**
 * A word that is no KEY=VALUE after a command of the human monitor's (`exec info version`, as typed in
 * qmp-shell's HMP mode): the error says where such a line goes. Built only then (no list at start-up).
 */
function withHmpHint(error: unknown, command: string, words: readonly string[]): unknown {
  const hmpOnly = ["info", "help", "savevm", "loadvm", "delvm", "sendkey", "drive_add", "drive_del"];
  if (!(error instanceof NotKeyValueError) || !hmpOnly.includes(command)) {
    return error;
  }
  error.message += ` (${command} is an HMP command: qmpctl hmp '${[command, ...words].join(" ")}')`;
  return error;
}
