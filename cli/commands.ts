/** `qmpctl commands [GLOB] [--long] [--events]`: the QMP commands (or events) this QEMU offers. @module */
import { exitStatusHelp } from "./exit_status.ts";
import { didYouMean } from "../lib/closest.ts";
import { ArgumentError } from "../lib/errors.ts";
import { bracketsNoGlobHint, globMatcher, isGlob } from "../lib/glob.ts";
import { loadSchema, membersSignature, signature } from "../lib/schema/mod.ts";
import { UsageError } from "./options.ts";
import { type CommandContext, printJson, warn, withClient } from "./session.ts";

export const help = (): string =>
  `Usage: qmpctl commands [GLOB] [--long] [--events] [options]

Print the names of the QMP commands this QEMU offers, sorted, as one JSON
array; with GLOB (e.g. 'query-*'), only those that match. With --long, one
object per command: its name, its arguments on one line as they are written
after 'qmpctl exec NAME' (optional ones in brackets), and its features
(deprecated, unstable, json-cli, ...) when it has any. With --events, the
events QEMU may send instead (the names wait-event and events take; --long:
their data, as --match KEY=VALUE reaches it).

GLOB takes * and ?, and is case-sensitive. One that matches nothing prints
[] and exits 0 (an empty list is an answer: 'x-*' where QEMU has none), with
a line on stderr when names are close to it ("did you mean query-kvm?"). A
shell's [...] is no glob here: a GLOB with one exits 2, as wait-event does.

The names come from query-qmp-schema, cached per QEMU build under
$XDG_CACHE_HOME/qmpctl (see 'qmpctl help describe'), and held against
QEMU's own query-commands, asked alongside.

Examples:
  qmpctl commands 'query-*'
  qmpctl commands 'block*' --long --pretty
  qmpctl commands --long | jq -r '.[] | select(.features) | .name'
  qmpctl commands --events 'BLOCK_JOB_*' --long

${
    exitStatusHelp(["OK", "QEMU_ERROR", "USAGE", "CONNECTION", "OUTPUT", "TIMEOUT", "INTERRUPTED"], {
      QEMU_ERROR: "QEMU refused query-qmp-schema (before QEMU 2.5)",
      USAGE: "usage (also a GLOB with [...]; not one that matches nothing)",
    })
  }`;

export async function run(context: CommandContext): Promise<number> {
  if (context.words.length > 1) throw new UsageError("commands takes at most one GLOB");
  const glob = context.words[0];
  const long = context.options.flag("long"), events = context.options.flag("events");
  return await withClient(context, async (client) => {
    const scope = long ? "all" : "names";
    const schema = await loadSchema(client, { signal: context.signal, scope, checkCommands: true });
    const [known, others] = events
      ? [schema.eventNames(), schema.commandNames()]
      : [schema.commandNames(), schema.eventNames()];
    const names = glob === undefined ? known : known.filter(globMatcher(glob));
    const note = glob !== undefined && names.length === 0 ? noMatchNote(glob, events, known, others) : undefined;
    const features = (name: string) => (events ? schema.event(name) : schema.command(name))?.features;
    const details = (name: string) =>
      events ? { data: membersSignature(schema, schema.event(name)!.data) } : { args: signature(schema, name) };
    await printJson(
      context,
      long
        ? names.map((name) => ({ name, ...details(name), ...(features(name) ? { features: features(name) } : {}) }))
        : names,
    );
    if (note) warn(context, note);
    return 0;
  });
}

/**
 * What to say on stderr of a GLOB that matched none of the `known` names
 * (commands, or with `events` the events), beside the `[]` on stdout:
 * the names close to it, or that it matches the `others`; undefined when
 * nothing is close (`x-*` where QEMU has none is an answer, not a mistake).
 * @throws {ArgumentError} for a GLOB with a shell's [...], which no name
 * can match, worded as wait-event's ("unknown event 'SHUTDOW[N]' ('[...]' is
 * no glob: only * and ? are) (did you mean SHUTDOWN?)")
 */
function noMatchNote(glob: string, events: boolean, known: string[], others: string[]): string | undefined {
  const kind = events ? "event" : "command";
  const brackets = bracketsNoGlobHint(glob);
  if (brackets) {
    const what = isGlob(glob) ? `no ${kind} matches '${glob}'` : `unknown ${kind} '${glob}'`;
    throw new ArgumentError(`${what}${brackets}${didYouMean(glob.replace(/[*?]/g, ""), known)}`);
  }
  const hint = (() => {
    if (others.some(globMatcher(glob))) return ` (it matches ${events ? "commands: drop" : "events: add"} --events)`;
    // QEMU's commands are lower case and its events upper case: 'QUERY-*' meant 'query-*'
    const cased = events ? glob.toUpperCase() : glob.toLowerCase();
    if (isGlob(glob) && cased !== glob && known.some(globMatcher(cased))) return ` (did you mean '${cased}'?)`;
    return didYouMean(glob.replace(/[*?]/g, ""), known);
  })();
  return hint ? `no ${kind} matches '${glob}'${hint}` : undefined;
}
