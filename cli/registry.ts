/**
 * The commands and options of the command line. The option table is global
 * (a value-taking option must be known before the words can be read); each
 * command lists the options it accepts, and its module is loaded only when
 * it runs.
 *
 * @module
 */
import type { CommandContext } from "./session.ts";
import type { OptionSpec } from "./options.ts";

/** What a command module exports. */
export interface CommandModule {
  /** The command's whole help text: usage, description, examples. */
  help: string;
  /** Run the command; resolves to the exit status when it did not throw. */
  run(context: CommandContext): Promise<number>;
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
  load(): Promise<CommandModule>;
}

/** Options that every command takes. */
export const GLOBAL_OPTIONS: OptionSpec[] = [
  {
    name: "socket",
    short: "s",
    value: "ADDR",
    repeatable: true,
    help: "QMP socket: PATH, unix:PATH, HOST:PORT, [IPV6]:PORT (default $QMPCTL_SOCKET); " +
      "repeated or a glob ('/run/qemu/*.qmp'): run on each, output lines labelled with \"socket\"",
  },
  { name: "jobs", short: "j", value: "N", help: "with several sockets: how many run at once (default 32)" },
  {
    name: "wait-socket",
    value: "DURATION",
    help: "retry while the socket is missing, refuses or closes before its greeting, up to DURATION (exit 3)",
  },
  { name: "timeout", value: "DURATION", help: "bound on the whole run, like timeout(1): 500ms, 30s, 2m (exit 124)" },
  {
    name: "connect-timeout",
    value: "DURATION",
    help: "bound on connecting, the greeting and negotiation (default 10s; exit 3)",
  },
  { name: "pretty", short: "p", help: "indent JSON output" },
  { name: "raw", help: 'print the whole response ({"return":...} or {"error":...})' },
  { name: "verbose", short: "v", help: "log every message sent (>) and received (<) on stderr" },
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
  value: "NAME",
  repeatable: true,
  help: "then wait for event NAME (or a glob; repeatable: any), listening before the command is sent",
};

/** Every command, by name. */
export const COMMANDS: Record<string, CommandEntry> = {
  exec: {
    summary: "run one QMP command and print its return value",
    options: [ARGS, WAIT_EVENT, MATCH, COUNT],
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
    summary: "wait for an event (exact name or glob) and print it",
    options: [MATCH, COUNT],
    fanout: "all",
    load: () => import("./wait_event.ts"),
  },
  events: {
    summary: "print every event as NDJSON as it arrives",
    options: [MATCH, COUNT],
    fanout: "all",
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
    options: [{ name: "hmp", help: "run each line on the human monitor (human-monitor-command)" }],
    load: () => import("./shell.ts"),
  },
  commands: {
    summary: "list the QMP commands this QEMU offers (GLOB filters; --long: their arguments)",
    options: [{ name: "long", short: "l", help: "each command's arguments and features, not only its name" }],
    fanout: "jobs",
    load: () => import("./commands.ts"),
  },
  describe: {
    summary: "describe a QMP command or event: arguments, types, return, features",
    options: [],
    fanout: "jobs",
    load: () => import("./describe.ts"),
  },
  completions: {
    summary: "print a completion script: completions bash|zsh|fish",
    options: [],
    load: () => import("./completions.ts"),
  },
};

/** Every option any command takes, for the parser. */
export function allOptions(): OptionSpec[] {
  const specs = new Map(GLOBAL_OPTIONS.map((s) => [s.name, s]));
  for (const entry of Object.values(COMMANDS)) for (const s of entry.options) specs.set(s.name, s);
  return [...specs.values()];
}
