/** `qmpctl commands [GLOB] [--long]`: the QMP commands this QEMU offers. @module */
import { exitStatusHelp } from "./exit_status.ts";
import { eventMatcher } from "../lib/events.ts";
import { loadSchema, signature } from "../lib/schema/mod.ts";
import { UsageError } from "./options.ts";
import { type CommandContext, printJson, withClient } from "./session.ts";

export const help = (): string =>
  `Usage: qmpctl commands [GLOB] [--long] [options]

Print the names of the QMP commands this QEMU offers, sorted, as one JSON
array; with GLOB (e.g. 'query-*'), only those that match. With --long, one
object per command: its name, its arguments on one line as they are written
after 'qmpctl exec NAME' (optional ones in brackets), and its features
(deprecated, unstable) when it has any.

The names come from query-qmp-schema, cached per QEMU build under
$XDG_CACHE_HOME/qmpctl (see 'qmpctl help describe').

Examples:
  qmpctl commands 'query-*'
  qmpctl commands 'block*' --long --pretty
  qmpctl commands --long | jq -r '.[] | select(.features) | .name'

${
    exitStatusHelp(["OK", "QEMU_ERROR", "USAGE", "CONNECTION", "OUTPUT", "TIMEOUT", "INTERRUPTED"], {
      QEMU_ERROR: "QEMU refused query-qmp-schema (before QEMU 2.5)",
    })
  }`;

export async function run(context: CommandContext): Promise<number> {
  if (context.words.length > 1) throw new UsageError("commands takes at most one GLOB");
  const glob = context.words[0];
  const long = context.options.flag("long");
  return await withClient(context, async (client) => {
    const schema = await loadSchema(client, { signal: context.signal, scope: long ? "all" : "names" });
    const matches = glob === undefined ? () => true : eventMatcher({ names: [glob] });
    const names = schema.commandNames().filter((name) => matches({ event: name }));
    const features = (name: string) => schema.command(name)?.features;
    await printJson(
      context,
      long
        ? names.map((name) => ({
          name,
          args: signature(schema, name),
          ...(features(name) ? { features: features(name) } : {}),
        }))
        : names,
    );
    return 0;
  });
}
