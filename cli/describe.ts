/** `qmpctl describe NAME`: a command or event, its arguments and types. @module */
import { exitStatusHelp } from "./exit_status.ts";
import { isGlob } from "../lib/glob.ts";
import { describe, withSchema } from "../lib/schema/mod.ts";
import { UsageError } from "./options.ts";
import { type CommandContext, printJson, withClient } from "./session.ts";

export const help = (): string =>
  `Usage: qmpctl describe NAME [options]

Describe a QMP command or event of this QEMU as JSON: a command's arguments
and return type, an event's data, and their features (deprecated, unstable).

Types are written out: "str", "int", "number", "bool", "null", "any";
{"enum": [values]}; {"array": TYPE}; {"alternate": [TYPES]}; an object maps
its members to their types, an optional member's name ends in "?", a
member's features follow its name in brackets, and a union adds one key per
branch ("driver=null-co") with the members that branch adds. A type met again
inside itself is "(recursive)".

The schema comes from query-qmp-schema, fetched once per QEMU build (version,
package and target) and cached under $XDG_CACHE_HOME/qmpctl (default
~/.cache/qmpctl); an entry whose commands are not those QEMU's query-commands
lists (asked alongside) is fetched again. An unknown name exits 2 and names
the closest ones.

Examples:
  qmpctl describe set_link
  qmpctl describe blockdev-add --pretty | less
  qmpctl describe SHUTDOWN | jq .data

${
    exitStatusHelp(["OK", "QEMU_ERROR", "USAGE", "CONNECTION", "OUTPUT", "TIMEOUT", "INTERRUPTED"], {
      QEMU_ERROR: "QEMU refused query-qmp-schema (before QEMU 2.5)",
      USAGE: "usage (also a NAME QEMU does not know)",
    })
  }`;

export async function run(context: CommandContext): Promise<number> {
  if (context.words.length !== 1) throw new UsageError("describe takes one NAME (a command or an event)");
  const [name] = context.words;
  if (isGlob(name)) { // before connecting: no schema needed to tell
    throw new UsageError(
      `describe takes one name, not a glob ('${name}'): qmpctl commands '${name}' --long lists the commands ` +
        `it matches with their arguments, and qmpctl commands --events '${name}' --long the events`,
    );
  }
  return await withClient(context, async (client) => {
    const options = { signal: context.signal, checkCommands: true };
    await printJson(context, await withSchema(client, options, (schema) => describe(schema, name)));
    return 0;
  });
}
