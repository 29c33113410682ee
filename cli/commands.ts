/** `qmpctl commands [GLOB] [--long] [--events]`: the QMP commands (or events) this QEMU offers. @module */
import { exitStatusHelp } from "./exit_status.ts";
import { eventMatcher } from "../lib/events.ts";
import { loadSchema, membersSignature, signature } from "../lib/schema/mod.ts";
import { UsageError } from "./options.ts";
import { type CommandContext, printJson, withClient } from "./session.ts";

export const help = (): string =>
  `Usage: qmpctl commands [GLOB] [--long] [--events] [options]

Print the names of the QMP commands this QEMU offers, sorted, as one JSON
array; with GLOB (e.g. 'query-*'), only those that match. With --long, one
object per command: its name, its arguments on one line as they are written
after 'qmpctl exec NAME' (optional ones in brackets), and its features
(deprecated, unstable, json-cli, ...) when it has any. With --events, the
events QEMU may send instead (the names wait-event and events take; --long:
their data, as --match KEY=VALUE reaches it).

The names come from query-qmp-schema, cached per QEMU build under
$XDG_CACHE_HOME/qmpctl (see 'qmpctl help describe').

Examples:
  qmpctl commands 'query-*'
  qmpctl commands 'block*' --long --pretty
  qmpctl commands --long | jq -r '.[] | select(.features) | .name'
  qmpctl commands --events 'BLOCK_JOB_*' --long

${
    exitStatusHelp(["OK", "QEMU_ERROR", "USAGE", "CONNECTION", "OUTPUT", "TIMEOUT", "INTERRUPTED"], {
      QEMU_ERROR: "QEMU refused query-qmp-schema (before QEMU 2.5)",
    })
  }`;

export async function run(context: CommandContext): Promise<number> {
  if (context.words.length > 1) throw new UsageError("commands takes at most one GLOB");
  const glob = context.words[0];
  const long = context.options.flag("long"), events = context.options.flag("events");
  return await withClient(context, async (client) => {
    const schema = await loadSchema(client, { signal: context.signal, scope: long ? "all" : "names" });
    const matches = glob === undefined ? () => true : eventMatcher({ names: [glob] });
    const names = (events ? schema.eventNames() : schema.commandNames()).filter((name) => matches({ event: name }));
    const features = (name: string) => (events ? schema.event(name) : schema.command(name))?.features;
    const details = (name: string) =>
      events ? { data: membersSignature(schema, schema.event(name)!.data) } : { args: signature(schema, name) };
    await printJson(
      context,
      long
        ? names.map((name) => ({ name, ...details(name), ...(features(name) ? { features: features(name) } : {}) }))
        : names,
    );
    return 0;
  });
}
