/**
 * The commands and options of the command line. The option table is global
 * (a value-taking option must be known before the words can be read); each
 * command lists the options it accepts, and its module is loaded only when
 * it runs.
 *
 * @module
 */
import type { CommandContext } from "./session.ts";
import type { CommandLineStart, OptionSpec, RefusedOptions } from "./options.ts";

/** What a command module exports. */
export interface CommandModule {
  /** The command's whole help text: usage, description, examples (built when asked for, not at each load). */
  help(): string;
  /** Run the command; resolves to the exit status when it did not throw. */
  run(context: CommandContext): Promise<number>;
  /** With several targets, what runs once before any of them (its error ends the whole run). */
  prepareTargets?(context: CommandContext): Promise<void>;
}

/** A command as the dispatcher sees it. */
export interface CommandEntry {
  summary: string;
  /** Options beyond the global ones. */
  options: OptionSpec[];
  /**
   * Whether it runs on several targets (-s repeated or a glob): "jobs", at
   * most --jobs at once; "all", every target at once (it waits for events);
   * absent: one target only.
   */
  fanout?: "jobs" | "all";
  /** Global options it refuses, and why. */
  refuses?: RefusedOptions;
  /** What -s/--socket names for it, in its help, when not a QMP monitor. */
  socketHelp?: string;
  /**
   * It runs until something happens (an event, a job's end, the proxy's
   * stop): started with SIGINT ignored (a background job of a script), it
   * leaves it ignored, as sleep(1) does (under Bun only while stdin, stdout
   * and stderr are no terminal: Bun replaces an ignored SIGINT then, see README).
   * A one-shot command does not look, unless an option given makes it wait
   * (OptionSpec.waits: exec --wait-job).
   */
  waits?: true;
  /**
   * It waits, but stdout is not where it prints what it waited for (proxy:
   * it is QEMU's, in launch mode; ga wait prints nothing, and its status 0
   * says the agent answered): a reader of stdout that leaves does not end
   * it. Any other run that waits ends within a second of that reader
   * leaving (`qmpctl events | head -1`), quietly, with status 0 (cli.ts).
   */
  outlivesStdoutReader?: true;
  /**
   * The first word that makes the command wait, as `waits` makes the whole
   * command (ga wait, but not ga exec).
   */
  waitingWord?: string;
  load(): Promise<CommandModule>;
}

/** Options that every command takes. */
export const GLOBAL_OPTIONS: OptionSpec[] = [
  {
    name: "socket",
    short: "s",
    value: "ADDR",
    repeatable: true,
    help:
      "QMP socket: PATH, unix:PATH, HOST:PORT, [IPV6]:PORT, ssh://[USER@]HOST[:PORT]/PATH (default $QMPCTL_SOCKET); " +
      "repeated or a glob ('/run/qemu/*.qmp'): run on each, output lines labelled with \"socket\"",
  },
  {
    name: "jobs",
    short: "j",
    value: "N",
    lastWins: true,
    help: "with several sockets: how many run at once (default 32; not for event waits)",
  },
  {
    name: "wait-socket",
    value: "DURATION",
    lastWins: true,
    help:
      "retry while the socket is missing, refuses or closes before its greeting, up to DURATION (exit 3; 0: no bound)",
  },
  {
    name: "timeout",
    value: "DURATION",
    lastWins: true,
    help: "bound on the whole run, like timeout(1): 500ms, 30s, 2m; 0 for none (exit 124)",
  },
  {
    name: "connect-timeout",
    value: "DURATION",
    lastWins: true,
    help: "bound on connecting, the greeting and negotiation (default 10s; 0 for none; exit 3)",
  },
  { name: "pretty", short: "p", help: "indent JSON output" },
  { name: "raw", help: 'print the whole response ({"return":...} or {"error":...})' },
  {
    name: "verbose",
    short: "v",
    help: "log every message sent (>) and received (<) on stderr; with several targets, after the socket",
  },
  { name: "help", short: "h", help: "show help (also: qmpctl help COMMAND)" },
  { name: "version", help: "print the version" },
];

const ARGS: OptionSpec = {
  name: "args",
  value: "JSON",
  help: "the arguments as one JSON object; - reads it from stdin",
};
const CPU: OptionSpec = { name: "cpu", value: "N", help: "the CPU the command line runs on (cpu-index)" };
const MATCH: OptionSpec = {
  name: "match",
  value: "KEY=VALUE",
  repeatable: true,
  help: "keep events whose data has KEY (dotted: nested) equal to VALUE; repeatable, all must hold",
};
const COUNT: OptionSpec = { name: "count", value: "N", help: "print N matching events, then exit" };
const WAIT_EVENT: OptionSpec = {
  name: "wait-event",
  waits: true,
  value: "NAME",
  repeatable: true,
  help: "then wait for event NAME (or a glob; repeatable: any), listening before the command is sent",
};

/** Refused with one target too, as a bad --jobs is: a script must not break only when a second VM comes. */
const EVERY_TARGET_AT_ONCE: RefusedOptions = {
  names: "jobs",
  why: "runs on every target at once (a target not yet listened to misses its events)",
};
const ONE_TARGET: RefusedOptions = { names: "jobs", why: "takes one target" };

// How long work shows its progress (read by cli/progress.ts). Listed in each command's options, not spread
// into them: a spread makes an array that takes a block of JavaScriptCore's heap (see the README's speed notes).
const PROGRESS: OptionSpec = {
  name: "progress",
  help: "draw the progress line on stderr even when it is not a terminal",
};
const NO_PROGRESS: OptionSpec = { name: "no-progress", help: "no progress line, even on a terminal" };
const PROGRESS_JSON: OptionSpec = {
  name: "progress-json",
  help: "progress as JSON lines on stderr instead of the line",
};
const WAIT_JOB: OptionSpec = {
  name: "wait-job",
  waits: true,
  help: "then follow the job the command starts (its job-id or device) until it concludes (see job wait)",
};
const DISMISS: OptionSpec = {
  name: "dismiss",
  help: "dismiss the followed jobs that concluded and wait to be dismissed (auto-dismiss=false)",
};
const WAIT_MIGRATION: OptionSpec = {
  name: "wait-migration",
  waits: true,
  help: "then follow the migration the command starts until it ends (see migrate wait)",
};

/** Every command, by name. */
export const COMMANDS: Record<string, CommandEntry> = {
  exec: {
    summary: "run one QMP command and print its return value",
    options: [ARGS, WAIT_EVENT, MATCH, COUNT, WAIT_JOB, DISMISS, WAIT_MIGRATION, PROGRESS, NO_PROGRESS, PROGRESS_JSON],
    fanout: "jobs",
    load: () => import("./exec.ts"),
  },
  hmp: {
    summary: "run a human monitor command line and print its text",
    options: [CPU],
    fanout: "jobs",
    load: () => import("./hmp.ts"),
  },
  "wait-event": {
    waits: true,
    summary: "wait for an event (exact name or glob) and print it",
    options: [MATCH, COUNT],
    fanout: "all",
    refuses: EVERY_TARGET_AT_ONCE,
    load: () => import("./wait_event.ts"),
  },
  events: {
    waits: true,
    summary: "print every event as NDJSON as it arrives",
    options: [MATCH, COUNT],
    fanout: "all",
    refuses: EVERY_TARGET_AT_ONCE,
    load: () => import("./events.ts"),
  },
  batch: {
    summary: "run many commands (shell lines, from FILE or stdin) pipelined over one connection",
    options: [],
    fanout: "jobs",
    load: () => import("./batch.ts"),
  },
  shell: {
    summary: "interactive QMP shell (--hmp: human monitor); runs piped lines as a script",
    options: [{ name: "hmp", short: "H", help: "run each line on the human monitor (human-monitor-command)" }],
    refuses: ONE_TARGET,
    load: () => import("./shell.ts"),
  },
  commands: {
    summary: "list the QMP commands this QEMU offers (GLOB filters; --long: their arguments; --events: the events)",
    options: [
      { name: "long", short: "l", help: "each command's arguments and features, not only its name" },
      { name: "events", help: "the events QEMU may send instead of the commands (--long: their data)" },
    ],
    fanout: "jobs",
    load: () => import("./commands.ts"),
  },
  describe: {
    summary: "describe a QMP command or event: arguments, types, return, features",
    options: [],
    fanout: "jobs",
    load: () => import("./describe.ts"),
  },
  job: {
    waits: true,
    summary: "job wait [ID ...]: follow block jobs until they conclude (exit 1 if one failed)",
    options: [DISMISS, PROGRESS, NO_PROGRESS, PROGRESS_JSON],
    fanout: "all",
    refuses: EVERY_TARGET_AT_ONCE,
    load: () => import("./job.ts"),
  },
  migrate: {
    waits: true,
    summary: "migrate wait: follow the migration until it ends (exit 1 if it failed)",
    options: [PROGRESS, NO_PROGRESS, PROGRESS_JSON],
    fanout: "all",
    refuses: EVERY_TARGET_AT_ONCE,
    load: () => import("./migrate.ts"),
  },
  ga: {
    waitingWord: "wait",
    outlivesStdoutReader: true,
    summary: "the guest agent: ga CMD, ga exec -- PROG, ga cp SRC DST, ga wait ($QMPCTL_GA_SOCKET)",
    options: [
      // The forms as cli/ga_forms.ts names them (not imported: that would make it a chunk of its own on every start).
      { name: "args", value: "JSON", help: ARGS.help, form: "AGENT-COMMAND" },
      { name: "stdin", value: "FILE", help: "ga exec: the program's input, from FILE (- for stdin)", form: "exec" },
      {
        name: "env",
        value: "NAME=VALUE",
        repeatable: true,
        help: "ga exec: the program's environment; repeatable",
        form: "exec",
      },
      { name: "json", help: "ga exec: print the final guest-exec-status object instead of the output", form: "exec" },
    ],
    socketHelp: "the guest agent's socket: PATH, unix:PATH, HOST:PORT, [IPV6]:PORT, ssh://[USER@]HOST[:PORT]/PATH " +
      "(default $QMPCTL_GA_SOCKET); one only",
    refuses: ONE_TARGET,
    load: () => import("./ga.ts"),
  },
  proxy: {
    waits: true,
    outlivesStdoutReader: true,
    summary: "share one QMP monitor among many clients on a UNIX socket (or start QEMU behind it)",
    options: [
      { name: "listen", value: "PATH", help: "the UNIX socket to serve clients on: PATH or unix:PATH" },
      { name: "listen-mode", value: "MODE", help: "its permissions, octal (default 0600)" },
      {
        name: "max-queue",
        value: "SIZE",
        help: "bytes queued for a client that does not read before it is disconnected (default 8M; at least 1)",
      },
    ],
    refuses: { names: "jobs pretty raw", why: "shares one monitor and prints no replies" },
    load: () => import("./proxy.ts"),
  },
  ansible: {
    summary: "the Ansible module qmp: read its arguments file, print its result (contrib/ansible)",
    options: [],
    // A global option would be ignored there, or half applied.
    refuses: {
      names: "socket timeout connect-timeout wait-socket jobs pretty raw",
      why: "takes its settings from ARGS_FILE (socket, timeout, ...)",
    },
    load: () => import("./ansible.ts"),
  },
  completions: {
    summary: "print a completion script: completions bash|zsh|fish",
    options: [],
    refuses: {
      names: "socket jobs wait-socket connect-timeout pretty raw verbose",
      why: "prints a script and connects to nothing",
    },
    load: () => import("./completions.ts"),
  },
};

/**
 * Every option any command takes, for the parser: the global ones, then
 * each command's, some more than once (the parser takes the last of a
 * name, so a command's spec wins over a global one, as in tableOptions).
 * Counted first and made at its full length: grown by push, the list left
 * behind storage of each size it passed through, whose size classes took
 * blocks of JavaScriptCore's heap of their own on every start (see the
 * README's speed notes: one more block there brings back JSCWarmUp).
 */
export function allOptions(): OptionSpec[] {
  let count = GLOBAL_OPTIONS.length;
  for (const name in COMMANDS) count += COMMANDS[name].options.length;
  const all = new Array<OptionSpec>(count);
  let i = 0;
  for (const spec of GLOBAL_OPTIONS) all[i++] = spec;
  for (const name in COMMANDS) for (const spec of COMMANDS[name].options) all[i++] = spec;
  return all;
}

/**
 * Where a command's words become another program's command line: ga exec's
 * PROG and every word after it (as ssh's command: `ga exec df -h` runs `df
 * -h`), and an HMP line typed as words after its first one, whose flags are
 * single-dash (`hmp info block -v`). A line quoted as one word with its
 * blanks (`hmp 'info block' -s vm2.sock`; any ASCII blank) is whole: what
 * follows it is qmpctl's, so that -s after it names the VM instead of riding
 * along in the line to the default one. And proxy's QEMU command line, from
 * its program on (`proxy --listen vm.sock qemu-system-x86_64 -m 1G`). Before
 * them, and `--` anywhere, as usual.
 */
export const commandLineStart: CommandLineStart = (words) =>
  (words[0] === "ga" && words[1] === "exec" && words.length >= 3) || (words[0] === "proxy" && words.length >= 2)
    ? "all"
    : words[0] === "hmp" && words.length >= 2 && !/[ \t\r\n]/.test(words[1])
    ? "short"
    : undefined;
