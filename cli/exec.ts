/** `qmpctl exec CMD [KEY=VALUE ...] [--args JSON|-]`. @module */
import { buildArguments, parseArgumentsJson } from "../lib/args.ts";
import { readStdin } from "./io.ts";
import { UsageError } from "./options.ts";
import { type CommandContext, connect, executeAndPrint, formatJson, optionValue } from "./session.ts";

export const help = `Usage: qmpctl exec COMMAND [KEY=VALUE ...] [--args JSON|-] [options]

Connect, negotiate, run one QMP command and print its return value as one
JSON line.

Arguments:
  KEY=VALUE      a value that parses as JSON is that JSON, else a string
  KEY.SUB=VALUE  a dotted key builds nested objects
  KEY:=JSON      always raw JSON
  --args JSON    the arguments as one object (--args - reads it from stdin);
                 KEY=VALUE words are merged into it and win

Examples:
  qmpctl -s /run/vm1.qmp exec query-kvm | jq .enabled
  qmpctl exec query-status --pretty
  qmpctl exec blockdev-add driver=null-co node-name=n0 size:=4096
  echo '{"device": "ide0-hd0"}' | qmpctl exec eject --args -
  qmpctl exec stop --raw        # {"return": {}} or {"error": {...}}

Exit status: 0 done, 1 QEMU answered with an error, 2 usage, 3 connection,
124 --timeout ran out, 130 interrupted.`;

export async function run(context: CommandContext): Promise<number> {
  const [command, ...words] = context.words;
  if (!command) throw new UsageError("exec needs a command name (e.g. qmpctl exec query-status)");
  const argsText = optionValue(context, "args");
  const base = argsText === undefined ? undefined : parseArgumentsJson(argsText === "-" ? await readStdin() : argsText);
  const args = base || words.length > 0 ? buildArguments(words, base) : undefined;
  const client = await connect(context);
  try {
    await executeAndPrint(context, client, command, args, (value) => formatJson(value, context.global.pretty));
    return 0;
  } finally {
    client.close();
  }
}
