#!/usr/bin/env bun
/**
 * qmpctl: argv → command → exit status. This file knows nothing of sockets:
 * it parses the command line, runs the command's module, and maps every
 * error to the contract's exit status in one table.
 *
 * @module
 */
import {
  AbortedError,
  AddressError,
  ArgumentError,
  CommandError,
  ConnectionError,
  DisconnectedError,
  GreetingError,
  NegotiationError,
  ProtocolError,
  TimeoutError,
} from "./lib/errors.ts";
import { formatDuration, parseDuration } from "./cli/duration.ts";
import { EXIT } from "./cli/exit_status.ts";
import { argv, BrokenPipeError, exit, onInterrupt, writeStderrLine, writeStdout } from "./cli/io.ts";
import { formatOptions, parseArgs, UsageError } from "./cli/options.ts";
import { allOptions, COMMANDS, GLOBAL_OPTIONS } from "./cli/registry.ts";
import type { CommandContext } from "./cli/session.ts";
import { VERSION } from "./cli/version.ts";

/** The contract's exit statuses, by error class (first match wins). */
const EXIT_STATUS: ReadonlyArray<[abstract new (...args: never[]) => Error, number]> = [
  [BrokenPipeError, EXIT.OK], // the reader closed stdout: end quietly
  [CommandError, EXIT.QEMU_ERROR],
  [UsageError, EXIT.USAGE],
  [AddressError, EXIT.USAGE],
  [ArgumentError, EXIT.USAGE],
  [ConnectionError, EXIT.CONNECTION],
  [GreetingError, EXIT.CONNECTION],
  [NegotiationError, EXIT.CONNECTION],
  [ProtocolError, EXIT.CONNECTION],
  [DisconnectedError, EXIT.CONNECTION],
  [TimeoutError, EXIT.TIMEOUT],
  [AbortedError, EXIT.INTERRUPTED], // the only other abort is SIGINT
];

const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;

function generalHelp(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((n) => n.length)) + 2;
  const commands = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(width)}${c.summary}`).join("\n");
  return `Usage: qmpctl [options] COMMAND [ARGS...]

A QEMU Monitor Protocol client: JSON on stdout, errors on stderr, exit codes
a script can branch on, and no wait without a bound.

Commands:
${commands}

Options (before or after the command; -- ends them):
${formatOptions(GLOBAL_OPTIONS)}

Examples:
  export QMPCTL_SOCKET=/run/vm1.qmp
  qmpctl exec query-kvm | jq .enabled
  qmpctl hmp 'info status'
  qmpctl -s '/run/qemu/*.qmp' exec query-status | jq -c '{socket, running: .return.running}'

Exit status: 0 done, 1 QEMU error, 2 usage, 3 connection, 124 timeout,
130 interrupted. 'qmpctl help COMMAND' shows a command's help.`;
}

async function main(): Promise<number> {
  const { words, options } = parseArgs(argv(), allOptions());
  if (options.has("version")) {
    await writeStdout(`qmpctl ${VERSION}\n`);
    return 0;
  }
  let [name, ...rest] = words;
  let wantsHelp = options.has("help");
  if (name === "help") [name, wantsHelp] = [rest[0], true];
  if (name === undefined) {
    if (!wantsHelp) throw new UsageError("no command given (try: qmpctl --help)");
    await writeStdout(generalHelp() + "\n");
    return 0;
  }
  const entry = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (!entry) throw new UsageError(`unknown command '${name}' (commands: ${Object.keys(COMMANDS).join(", ")})`);
  const module = await entry.load();
  if (wantsHelp) {
    const own = entry.options.length > 0 ? `\n\nOptions:\n${formatOptions(entry.options)}` : "";
    await writeStdout(`${module.help}${own}\n\nGlobal options:\n${formatOptions(GLOBAL_OPTIONS)}\n`);
    return 0;
  }
  const accepted = new Set([...GLOBAL_OPTIONS, ...entry.options].map((s) => s.name));
  for (const option of options.keys()) {
    if (!accepted.has(option)) throw new UsageError(`${name} does not take --${option}`);
  }

  const text = (option: string) => options.get(option) as string | undefined;
  const sockets = (options.get("socket") as string[] | undefined) ?? [];
  const timeoutMs = text("timeout") === undefined ? 0 : parseDuration(text("timeout")!, "--timeout");
  const connectTimeoutMs = text("connect-timeout") === undefined
    ? DEFAULT_CONNECT_TIMEOUT_MS
    : parseDuration(text("connect-timeout")!, "--connect-timeout");
  const waitSocketMs = text("wait-socket") === undefined ? 0 : parseDuration(text("wait-socket")!, "--wait-socket");
  const interrupt = new AbortController();
  onInterrupt(() => interrupt.abort(new Error("interrupted")));
  const context: CommandContext = {
    words: rest,
    options,
    global: {
      socket: sockets[0],
      timeoutMs,
      connectTimeoutMs,
      waitSocketMs,
      pretty: options.has("pretty"),
      raw: options.has("raw"),
      verbose: options.has("verbose"),
    },
    signal: timeoutMs > 0 ? AbortSignal.any([interrupt.signal, AbortSignal.timeout(timeoutMs)]) : interrupt.signal,
  };
  try {
    // Several targets (-s repeated or a glob): the runner is loaded only then.
    const several = (sockets.length > 1 || /[*?[]/.test(sockets[0] ?? "")) &&
      await (await import("./cli/fanout.ts")).expandTargets(sockets);
    if (several) {
      if (!entry.fanout) throw new UsageError(`${name} takes one target (-s given ${several.length} sockets)`);
      const fanout = await import("./cli/fanout.ts");
      const jobs = fanout.readJobs(context, entry.fanout === "all" ? several.length : fanout.DEFAULT_JOBS);
      return await fanout.runOnEach(context, several, module.run, { jobs, statusOf });
    }
    return await module.run(context);
  } catch (error) {
    if (error instanceof TimeoutError) error.message += ` (--timeout ${formatDuration(timeoutMs)})`;
    throw error;
  }
}

/** The exit status `error` means, by the table; undefined for an error the table does not know. */
function statusOf(error: unknown): number | undefined {
  return EXIT_STATUS.find(([type]) => error instanceof type)?.[1];
}

function exitStatusOf(error: unknown): number {
  const status = statusOf(error);
  if (status === undefined) {
    writeStderrLine(`qmpctl: internal error: ${(error as Error)?.message ?? error}`);
    return 70;
  }
  if (status !== EXIT.OK && status !== EXIT.INTERRUPTED) writeStderrLine(`qmpctl: ${(error as Error).message}`);
  return status;
}

exit(await main().catch(exitStatusOf));
