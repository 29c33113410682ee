/**
 * The help texts: `qmpctl --help` and `qmpctl help COMMAND`. The man page
 * (scripts/manpage.ts) is made from these same texts, so the two cannot drift.
 *
 * @module
 */
import { exitStatusList, formatTable } from "./exit_status.ts";
import { formatOptions, type OptionSpec, refusedNames } from "./options.ts";
import { type CommandEntry, COMMANDS, GLOBAL_OPTIONS } from "./registry.ts";

/** `qmpctl --help`: what qmpctl is, its commands, options and the rules every command follows. */
export function generalHelp(): string {
  const commands = formatTable(Object.entries(COMMANDS).map(([name, c]) => [name, c.summary]));
  return `Usage: qmpctl [options] COMMAND [ARGS...]

A QEMU Monitor Protocol client: JSON on stdout, errors on stderr, exit codes
a script can branch on. Connecting is bounded by --connect-timeout (10s); the
rest by --timeout when given: without it, exec waits as long as QEMU takes
(some commands are slow on purpose) and events listens until the connection
ends. Ctrl-C ends any wait (exit 130).

Commands:
${commands}

Options (before or after the command; -- ends them):
${formatOptions(GLOBAL_OPTIONS)}

Addresses (-s, else $QMPCTL_SOCKET):
${
    formatTable([
      ["/run/vm1.qmp, ./vm1.qmp", "a UNIX socket path"],
      ["unix:/run/vm1.qmp[,server=on...]", "the same, as QEMU's -qmp option spells it"],
      ["HOST:PORT, tcp:HOST:PORT", "TCP"],
      ["[::1]:4444, tcp:[::1]:4444", "TCP over IPv6"],
      [
        "ssh://[USER@]HOST[:PORT]/PATH",
        "the UNIX socket PATH on HOST, through your own ssh (keys, ~/.ssh/config, ProxyJump)",
      ],
    ], 1)
  }

Durations: 500ms, 30s, 2m, 1h, 1d, or a bare number of seconds (0 or inf:
no bound).

Output: stdout carries JSON only (hmp's text aside), one compact value a line
(--pretty indents it); every problem is one 'qmpctl:' line on stderr.

Exit status:
${exitStatusList()}

Environment:
${
    formatTable([
      ["QMPCTL_SOCKET", "the address when -s is not given"],
      ["QMPCTL_GA_SOCKET", "the guest agent's address for 'ga' when -s is not given"],
      ["QMPCTL_SSH_COMMAND", "the ssh command line for ssh:// addresses (default: ssh), split as a shell would"],
      [
        "NO_COLOR",
        "when set and not empty, no colour (on a terminal, error lines are red and the progress line is coloured)",
      ],
      ["TERM", "dumb: no colour, and the progress line drawn without cursor controls"],
      [
        "FORCE_COLOR",
        "read only to undo it: the runtime would colour error lines in a pipe or file; they stay plain there",
      ],
      ["COLUMNS", "the progress line's width when stderr is no terminal"],
      [
        "TMPDIR",
        "where ssh:// and proxy -- CMD make their private directory (default /tmp; a relative one is ignored)",
      ],
      ["PATH", "where proxy -- PROGRAM is found (as exec(3) finds it), and ssh"],
      ["XDG_CACHE_HOME", "where the schema cache lives (default ~/.cache)"],
      ["XDG_STATE_HOME", "where the shell's history lives (default ~/.local/state)"],
      ["HOME", "the base of both defaults"],
      [
        "BUN_OPTIONS",
        "and BUN_INSPECT, BUN_INSPECT_CONNECT_TO, BUN_INSPECT_PRELOAD: refused (exit 2), but the Bun runtime " +
        "inside qmpctl applies them first (BUN_OPTIONS=--help prints Bun's help, exit 0)",
      ],
    ])
  }
  qmpctl reads no other variable, and no file from the directory it
  runs in (no .env, no bunfig.toml); the runtime reads its own BUN_*
  settings (BUN_JSC_* for its JavaScript engine).

Files:
${
    formatTable([
      ["$XDG_CACHE_HOME/qmpctl/", "the schema cache, per QEMU build (safe to delete)"],
      ["$XDG_STATE_HOME/qmpctl/", "the shell's history"],
    ], 3)
  }

Examples:
  export QMPCTL_SOCKET=/run/vm1.qmp
  qmpctl exec query-kvm | jq .enabled
  qmpctl hmp 'info status'
  qmpctl -s '/run/qemu/*.qmp' exec query-status |
    jq -c '{socket, running: .return.running}'

'qmpctl help COMMAND' shows a command's help.`;
}

/** A command's own text and options (the man page lists the global options once). */
export function commandOwnHelp(entry: CommandEntry, help: string): string {
  return entry.options.length > 0 ? `${help}\n\nOptions:\n${formatOptions(entry.options)}` : help;
}

/** `qmpctl help NAME`: the command's own text and options, then the global ones. */
export function commandHelp(entry: CommandEntry, help: string): string {
  return `${commandOwnHelp(entry, help)}\n\nGlobal options:\n${formatOptions(commandGlobalOptions(entry))}`;
}

/**
 * The global options `entry` takes, as its help lists them: those it refuses left out, and one it words its
 * own way (ga's -s: the guest agent's socket) a new spec; the others are GLOBAL_OPTIONS' own.
 */
export function commandGlobalOptions(entry: CommandEntry): OptionSpec[] {
  const { socketHelp, refuses } = entry;
  return GLOBAL_OPTIONS
    .filter((option) => !refusedNames(refuses).includes(option.name))
    .map((option) => option.name === "socket" && socketHelp ? { ...option, help: socketHelp } : option);
}
