/** `qmpctl shell [--hmp]`: the interactive QMP (or HMP) shell, successor of qmp-shell. @module */
import { exitStatusHelp } from "./exit_status.ts";
import { UsageError } from "./options.ts";
import type { CommandContext } from "./session.ts";

export const help = (): string =>
  `Usage: qmpctl shell [-H|--hmp] [options]

An interactive shell on a QEMU monitor, the successor of QEMU's qmp-shell.
Type a QMP command with KEY=VALUE arguments, typed as in 'qmpctl exec'
(quote a value with blanks, or put \\ before each, as in sh; a JSON value,
actions:=[{"type": ...}], needs no quotes); its return value is printed as
JSON, an error as its class and description (--raw: the whole response,
as piped lines print it).
Events are printed as they arrive, above the line being typed.

  (vm1) query-status
  {"status":"running","singlestep":false,"running":true}
  (vm1) blockdev-add driver=null-co node-name=n0
  {}
  (vm1) {"execute": "query-name"}
  {"name":"vm1"}
  (vm1) transaction(
  TRANS> block-dirty-bitmap-add node=n0 name=b1
  TRANS> block-dirty-bitmap-add node=n0 name=b2
  TRANS> )
  {}

In the shell: TAB completes command names, argument names and enum values;
Up/Down walk the history (kept in $XDG_STATE_HOME/qmpctl/, default
~/.local/state/qmpctl/; a line typed with a leading blank is not kept);
Ctrl-C clears the line; Ctrl-Z stops the shell until fg; 'events on|off'
shows events or not; 'help' lists the local commands ('help CMD': the
arguments CMD takes); Ctrl-D, 'quit' or 'exit' leave (QEMU keeps running).
A line with a byte that is not UTF-8 is refused; control characters in the
line show as escapes (\\x1b, \\u202e) and are sent as typed (in a paste,
Ctrl-C, Ctrl-Z and ESC are text too).
With -v, each command sent is shown as JSON above its result (on a
terminal, not logged on stderr: that would break the line being typed).

--hmp runs each line on the human monitor (human-monitor-command) and
prints its text; 'cpu N' sets the CPU of the lines that follow; a line
that starts with # is a comment, not sent.

With stdin or stdout not a terminal, each line runs in order (blank lines and
comments skipped: a # that starts a word starts one, as in sh; with --hmp,
a line that starts with #) and each command prints one JSON line,
{"return": ...} or {"error": ...} (local commands print none); the exit
status is 1 if any command failed:

  printf 'stop\\nquery-status\\n' | qmpctl shell -s /run/vm1.qmp

${
    exitStatusHelp(["OK", "QEMU_ERROR", "USAGE", "CONNECTION", "OUTPUT", "TIMEOUT", "INTERRUPTED"], {
      OK: "left the shell",
      QEMU_ERROR: "a piped line failed",
      CONNECTION: "the connection was lost",
    })
  }`;

export async function run(context: CommandContext): Promise<number> {
  // qmp-shell took the socket as a word: here a word would be ignored while -s or QMPCTL_SOCKET picks another VM.
  if (context.words.length > 0) {
    throw new UsageError(`shell takes no words (got '${context.words[0]}'): give the socket with -s`);
  }
  const { runShell } = await import("./shell/main.ts");
  return runShell(context);
}
