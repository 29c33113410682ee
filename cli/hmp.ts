/** `qmpctl hmp 'COMMAND LINE'`: the human monitor through human-monitor-command. @module */
import { exitStatusHelp } from "./exit_status.ts";
import { hmpArguments, hmpText, parseCpuIndex } from "../lib/hmp.ts";
import { UsageError } from "./options.ts";
import { type CommandContext, executeAndPrint, givenAddress, withClient } from "./session.ts";

export const help = (): string =>
  `Usage: qmpctl hmp 'COMMAND LINE' [--cpu N] [options]

Run a human monitor (HMP) command line through QMP's human-monitor-command
and print its text as the monitor printed it (CRLF made LF, nothing added;
on a terminal, control characters other than line feeds and tabs are shown
escaped, \\x1b, so that the text cannot drive the terminal).
The human monitor has no error status: its complaints are part of the text,
and the exit status is 0 whenever QEMU returned text. A line typed as words
takes the single-dash words after its first one as its own flags (qmpctl hmp
info block -v), where qmpctl's long options (--cpu, --timeout) still count,
and is joined with one space between words, as ssh joins a command (a -s
there with no -s before the command is refused, but dump-guest-memory's): the
shell's quotes are gone by then, so a value with blanks needs the monitor's
own quotes (qmpctl hmp 'qom-set /machine append "a b"'). A line quoted as one
word with its blanks is whole (qmpctl hmp 'info block' -s vm2.sock): a word
after it, not an option, is refused.

Examples:
  qmpctl hmp 'info status'
  qmpctl hmp info qtree
  qmpctl hmp 'info registers' --cpu 1

${
    exitStatusHelp(["OK", "QEMU_ERROR", "USAGE", "CONNECTION", "OUTPUT", "TIMEOUT", "INTERRUPTED"], {
      OK: "QEMU returned text",
      QEMU_ERROR: "QEMU refused the line itself (human-monitor-command failed: a --cpu it has not)",
      OUTPUT: "the output could not be written (the line was run: stderr says so)",
    })
  }`;

/** `line` as a POSIX shell reads it back: single-quoted. */
const shellQuoted = (line: string) => `'${line.replaceAll("'", `'\\''`)}'`;

export async function run(context: CommandContext): Promise<number> {
  const commandLine = context.words.join(" ");
  if (commandLine.trim() === "") throw new UsageError("hmp needs a command line (e.g. qmpctl hmp 'info status')");
  // A line quoted as one word with its blanks is whole (registry.ts, commandLineStart): a word after it is not
  // joined to it unseen, as a line typed as words is.
  const [first, after] = context.words;
  if (after !== undefined && /[ \t\r\n]/.test(first)) {
    throw new UsageError(
      `'${first}' is a whole HMP line (quoted as one word): '${after}' after it is no part of it; ` +
        `to send it too, quote it with the line: qmpctl hmp ${shellQuoted(commandLine)}`,
    );
  }
  const cpuText = context.options.text("cpu");
  const cpu = cpuText === undefined ? undefined : parseCpuIndex(cpuText);
  if (cpuText !== undefined && cpu === undefined) throw new UsageError(`--cpu '${cpuText}' is not a CPU index`);
  const args = hmpArguments(commandLine, cpu);
  // `hmp info status -s vm.qmp` with no -s before it: the -s went into the line, as its help says, and the
  // line would run on $QMPCTL_SOCKET's VM, or nowhere. Refused, saying so (a -s for QEMU goes in the quotes),
  // but for the one HMP command with a -s flag of its own (dump-guest-memory's kdump-snappy).
  const ownFlag = context.words[0] === "dump-guest-memory";
  const flag = ownFlag ? -1 : context.words.findIndex((word, i) => i > 0 && word.startsWith("-s")); // -s X, -sX
  if (flag > 0 && context.global.socket === undefined) {
    const line = context.words.slice(0, flag).join(" ");
    const variable = givenAddress(context, "QMPCTL_SOCKET");
    const given = context.words[flag];
    const lead = variable === undefined
      ? `no address: the ${given}`
      : `the line would run on $QMPCTL_SOCKET's ${variable}: its ${given}`;
    throw new UsageError(
      `${lead} after '${line}' is part of the HMP line (its words take single-dash flags): ` +
        `quote the line: qmpctl hmp ${shellQuoted(line)} -s ADDR (a -s for QEMU goes inside the quotes)`,
    );
  }
  return await withClient(context, async (client) => {
    const text = (value: unknown) => hmpText(value, client.address.text);
    await executeAndPrint(context, client, "human-monitor-command", args, text, "text");
    return 0;
  }, { pipeline: true }); // the command goes out behind qmp_capabilities
}
