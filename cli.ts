#!/usr/bin/env bun
/**
 * qmpctl: argv → command → exit status. This file opens no socket: it
 * parses the command line (the addresses as words: which are globs, which
 * variable gives the default), runs the command's module, and maps every
 * error to its exit status in one table (the statuses: cli/exit_status.ts).
 *
 * @module
 */
import { sleep } from "./lib/abort.ts";
import { DEFAULT_CONNECT_TIMEOUT_MS } from "./lib/client.ts";
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
import { isGlob, isSocketGlob } from "./lib/glob.ts";
import { formatDuration, parseDuration } from "./cli/duration.ts";
import { EXIT } from "./cli/exit_status.ts";
import {
  boundOutputWrites,
  BrokenPipeError,
  exit,
  OutputError,
  stdoutReaderGone,
  writeStderrLine,
  writeStdout,
} from "./cli/io/output.ts";
import { argv, argvBytes, env, envBytes, isPid1, onInterrupt } from "./cli/io/process.ts";
import { bun } from "./cli/io/runtime.ts";
import { commandHelp, generalHelp } from "./cli/help.ts";
import {
  findOption,
  type OptionSpec,
  parseArgs,
  type ParsedOptions,
  refusedNames,
  UnknownOptionError,
  UsageError,
} from "./cli/options.ts";
import {
  allOptions,
  type CommandEntry,
  commandLineStart,
  type CommandModule,
  COMMANDS,
  GLOBAL_OPTIONS,
} from "./cli/registry.ts";
import type { Targets } from "./cli/targets.ts";
import type { CommandContext } from "./cli/session.ts";
import { VERSION } from "./cli/version.ts";

/** The exit status of each error class (first match wins). */
const EXIT_STATUS: ReadonlyArray<[abstract new (...args: never[]) => Error, number]> = [
  [BrokenPipeError, EXIT.OK], // the reader closed stdout: end quietly
  [OutputError, EXIT.OUTPUT],
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

/** How long qmpctl waits for the SIGINT of a Ctrl-C that ssh (sharing the terminal) has told of already. */
const OWN_SIGINT_WAIT_MS = 250;

async function main(): Promise<number> {
  if (bun) refuseRuntimeVariables();
  const specs = allOptions();
  const { words, options } = parseArgs(await checkedArgv(), specs, commandLineStart);
  const name: string | undefined = words[0];
  const rest = words.slice(1);
  // Each cold path in a function of its own: a one-shot run pays for the code of each function it runs.
  if (options.flag("version") || options.flag("help") || name === "help") return await versionOrHelp(words, options);
  // The values before the command is looked up: one left out took the next word (`--timeout exec
  // query-status`), which a check of the command would blame instead.
  const { timeoutMs, connectTimeoutMs, waitSocketMs } = await readBounds(options);
  if (name === undefined) {
    throw new UsageError(`no command given ${swallowedCommand(options) || "(try: qmpctl --help)"}`);
  }
  const entry = commandNamed(name) ?? await unknownCommand(name, options);
  const module = await entry.load();
  // A command that waits (ga wait too), or one an option given makes wait (exec --wait-event).
  const waitsWhole = entry.waits === true || (entry.waitingWord !== undefined && entry.waitingWord === rest[0]);
  const waits = optionsMakeWait(name, entry, options, specs) || waitsWhole;
  const sockets = options.list("socket");
  for (const socket of sockets) {
    if (socket.includes("://") && isGlob(socket)) {
      throw new UsageError(
        `'${socket}': a glob is not expanded over ssh:// (give each socket with -s; a path whose name holds * or ? ` +
          "is taken as written from QMPCTL_SOCKET)",
      );
    }
  }
  if (sockets.length === 0) await checkedEnv(name === "ga" ? "QMPCTL_GA_SOCKET" : "QMPCTL_SOCKET");
  const interrupt = await interruptOnSignals(waits);
  const bound = timeoutMs > 0 ? AbortSignal.any([interrupt.signal, AbortSignal.timeout(timeoutMs)]) : interrupt.signal;
  if (timeoutMs > 0) boundOutputWrites(bound);
  // A run that waits ends within a second of its stdout's reader leaving (`wait-event X | head -1`), not at its
  // next write or its bound, holding the monitor until then; quietly, status 0 (the catch below). A command
  // that waits as a whole ends so whatever it was doing; one an option makes wait (exec --wait-event) only in
  // its wait, once its command has been answered: it gets the signal for that (CommandContext.readerGone).
  // Not a one-shot command: looking costs it start-up, and it ends soon anyway.
  const readerGone = waits && !entry.outlivesStdoutReader ? stdoutReaderGone() : undefined;
  const signal = readerGone && waitsWhole ? AbortSignal.any([bound, readerGone]) : bound;
  const context: CommandContext = {
    words: rest,
    options,
    global: {
      socket: sockets[0],
      timeoutMs,
      connectTimeoutMs,
      waitSocketMs,
      pretty: options.flag("pretty"),
      raw: options.flag("raw"),
      verbose: options.flag("verbose"),
    },
    signal,
    readerGone: waitsWhole ? undefined : readerGone,
    optionTable: { global: GLOBAL_OPTIONS, commands: COMMANDS, commandLine: commandLineStart },
  };
  try {
    const spelled = sockets.length > 1 || isSocketGlob(sockets[0] ?? "");
    const ran = spelled ? await runOnSpelledTargets(name, entry, module, context, sockets) : undefined;
    if (ran !== undefined) return ran;
    return await module.run(context);
  } catch (error) {
    throw await runFailure(error, waitsWhole ? readerGone : undefined, interrupt.signal, timeoutMs);
  }
}

/** What a run's failure ends it with. */
async function runFailure(
  error: unknown,
  readerGone: AbortSignal | undefined,
  interrupted: AbortSignal,
  timeoutMs: number,
): Promise<unknown> {
  // However a run that waits as a whole ended once the reader had left (its wait aborted, a write to the
  // pipe, a target's end): the reader chose to stop reading, so a BrokenPipeError, status 0, quietly.
  if (readerGone?.aborted) return readerGone.reason;
  if (error instanceof TimeoutError) error.message += ` (--timeout ${formatDuration(timeoutMs)})`;
  // A Ctrl-C reaches ssh too (an ssh:// address: it shares the terminal), whose end may come before the
  // SIGINT is handled: given a turn, a SIGINT that came says the end was the user's (130, quietly), not 3.
  const status = statusOf(error);
  if (status === EXIT.CONNECTION) {
    if (!interrupted.aborted) await new Promise((r) => setTimeout(r, 0));
    if (interrupted.aborted) return new AbortedError("interrupted", { cause: error });
  }
  // ssh said it got the Ctrl-C: the terminal sent qmpctl the same SIGINT, whose handling is awaited (bounded)
  // so that qmpctl dies of it (output.ts exit), and a shell loop stops, rather than going on after an exit 130.
  if (status === EXIT.INTERRUPTED && !interrupted.aborted) {
    await sleep(OWN_SIGINT_WAIT_MS, interrupted, "").catch(() => {});
  }
  return error;
}

/** --version, or the help asked for (needs none of the values a command reads). */
async function versionOrHelp(words: string[], options: ParsedOptions): Promise<number> {
  if (options.flag("version")) {
    await writeStdout(`qmpctl ${VERSION}\n`);
    return 0;
  }
  // help help: the general one
  const name = words[0] === "help" ? (words[1] === "help" ? undefined : words[1]) : words[0];
  const entry = name === undefined ? undefined : commandNamed(name) ?? await unknownCommand(name, options, true);
  await writeStdout((entry ? commandHelp(entry, (await entry.load()).help()) : generalHelp()) + "\n");
  return 0;
}

/**
 * Refuse what the Bun runtime inside the binary reads from the environment and applied before qmpctl ran
 * (a --preload has run, an inspector listens), so that nothing of a Bun developer's environment changes
 * what qmpctl does unseen. Each named in turn, not a list of them: a constant array takes a block of
 * JavaScriptCore's heap (see the README's speed notes), and find/concat/Object.hasOwn or a Set cost a
 * process's first use ~0.03-0.1 M instructions. Only under Bun: Deno ignores them, and reading one
 * without --allow-env would name a Bun variable in Deno's permission error.
 */
function refuseRuntimeVariables(): void {
  const set = env("BUN_OPTIONS")
    ? "BUN_OPTIONS"
    : env("BUN_INSPECT")
    ? "BUN_INSPECT"
    : env("BUN_INSPECT_CONNECT_TO")
    ? "BUN_INSPECT_CONNECT_TO"
    : env("BUN_INSPECT_PRELOAD")
    ? "BUN_INSPECT_PRELOAD"
    : undefined;
  if (set) throw new UsageError(`${set} is set, and the Bun runtime inside qmpctl applied it: run without it`);
}

/**
 * Refuse an option command `name` does not take, or takes but refuses in the form given; whether one given
 * makes it wait (exec --wait-event).
 * @throws {UsageError} naming the option
 */
function optionsMakeWait(
  name: string,
  entry: CommandEntry,
  options: ParsedOptions,
  specs: readonly OptionSpec[],
): boolean {
  let waits = false;
  for (const option of options.keys()) {
    const own = findOption(entry.options, "name", option);
    if (!own && !findOption(GLOBAL_OPTIONS, "name", option)) {
      const short = findOption(specs, "name", option)?.short; // -l is --long: named both ways, as typed either
      throw new UsageError(`${name} does not take ${short ? `-${short}/` : ""}--${option}`);
    }
    waits ||= own?.waits === true;
  }
  const refused = entry.refuses && refusedNames(entry.refuses).find((option) => options.has(option));
  if (refused) throw new UsageError(`${name} ${entry.refuses!.why}: --${refused} does not apply`);
  return waits;
}

/** The abort Ctrl-C (SIGINT) makes; SIGTERM and SIGHUP too where they may matter (loading that costs start-up). */
async function interruptOnSignals(waits: boolean): Promise<AbortController> {
  const interrupt = new AbortController();
  const signals = waits || isPid1() ? await import("./cli/io/signals.ts") : undefined;
  signals?.standInAsPid1(); // a container's first process: SIGTERM and SIGHUP end it all the same
  // A command that waits leaves an inherited ignored SIGINT ignored (a script's background job).
  if (!(waits && await signals!.sigintIgnoredAtStart())) {
    onInterrupt(() => interrupt.abort(new Error("interrupted")));
  }
  return interrupt;
}

/**
 * With -s repeated or a glob: run a command that fans out on each target (its exit status), or, for one
 * that takes one target, make the one socket they name its target (undefined: the caller runs it). The
 * runner of several is loaded only then.
 */
async function runOnSpelledTargets(
  name: string,
  entry: CommandEntry,
  module: CommandModule,
  context: CommandContext,
  sockets: string[],
): Promise<number | undefined> {
  // The line is one target's: several would draw over one another, so an explicit ask is refused, not ignored.
  if (entry.fanout && context.options.has("progress")) {
    throw new UsageError("--progress draws one target's line: with -s repeated or a glob, --progress-json");
  }
  const targeting = await import("./cli/targets.ts");
  const { waitSocketMs } = context.global;
  // The targets run as they become known: a glob that matches nothing yet (--wait-socket) holds up none.
  const several = entry.fanout && await targeting.startTargets(sockets, waitSocketMs, context.signal);
  if (several) return await runOnSeveral(entry, module, context, several);
  // A command of one target takes a glob that matches one socket (or one -s given twice) as that socket.
  const targets = await targeting.expandTargets(sockets, waitSocketMs, context.signal); // throws what failed
  if (targets!.length > 1) throw new UsageError(`${name} takes one target (-s gave ${targets!.length} sockets)`);
  context.global.socket = targets![0];
  return undefined;
}

/** The command `name`, if qmpctl has one of that name. */
function commandNamed(name: string): CommandEntry | undefined {
  return Object.prototype.hasOwnProperty.call(COMMANDS, name) ? COMMANDS[name] : undefined;
}

/** The usage error for a command qmpctl does not have, with what was meant, as far as it can tell. */
async function unknownCommand(name: string, options: ParsedOptions, helpAsked = false): Promise<never> {
  const swallowed = swallowedCommand(options);
  if (swallowed) throw new UsageError(`unknown command '${name}' ${swallowed}`);
  const { didYouMean } = await import("./lib/closest.ts");
  const qmpName = /^[A-Za-z][\w.-]*$/.test(name); // as QMP's names go: then it may be one
  const globHint = (await import("./cli/glob_hint.ts")).unquotedGlobHint(name); // `-s vm*.sock exec ...` unquoted
  if (globHint) throw new UsageError(`unknown command '${name}'${globHint}`);
  const qmpHint = helpAsked
    ? `; QEMU's own commands are described by: qmpctl describe ${name}`
    : `; a QMP command goes after exec: qmpctl exec ${name}`;
  // help is answered before the table is looked at; `help hlep` is not meant as help's own help.
  const names = helpAsked ? Object.keys(COMMANDS) : [...Object.keys(COMMANDS), "help"];
  const hint = didYouMean(name, names) || ` (commands: ${names.join(", ")}${qmpName ? qmpHint : ""})`;
  throw new UsageError(`unknown command '${name}'${hint}`);
}

/**
 * Said when a command's name is an option's value: the value was left out,
 * and the option took the next word (`-s exec query-status`). "" if none is.
 */
function swallowedCommand(options: ParsedOptions): string {
  for (const [option, value] of options) {
    const taken = [value].flat().find((word) => typeof word === "string" && Object.hasOwn(COMMANDS, word));
    if (taken !== undefined) return `(--${option} took '${taken}' as its value: give it one)`;
  }
  return "";
}

/**
 * The durations the global options give, in milliseconds (0: no bound), and
 * a check of --jobs (refused with one target too: a script must not break
 * only when a second VM comes).
 * @throws {UsageError} for a value that is not one
 */
async function readBounds(options: ParsedOptions) {
  const text = (option: string) => options.text(option);
  if (options.has("jobs")) (await import("./cli/fanout.ts")).readJobs(options, 0);
  return {
    timeoutMs: text("timeout") === undefined ? 0 : parseDuration(text("timeout")!, "--timeout"),
    connectTimeoutMs: text("connect-timeout") === undefined
      ? DEFAULT_CONNECT_TIMEOUT_MS
      : parseDuration(text("connect-timeout")!, "--connect-timeout"),
    // 0 is no bound, as for every duration (--timeout still bounds the whole run).
    waitSocketMs: text("wait-socket") === undefined
      ? 0
      : parseDuration(text("wait-socket")!, "--wait-socket") || Infinity,
  };
}

/** Run the command on each of several targets, as many at once as its fan-out allows. */
async function runOnSeveral(
  entry: CommandEntry,
  module: CommandModule,
  context: CommandContext,
  targets: Targets,
): Promise<number> {
  const fanout = await import("./cli/fanout.ts");
  // "all": every target at once, those a glob adds later too (one not yet listened to would miss its events).
  const jobs = entry.fanout === "all" ? Infinity : fanout.readJobs(context.options, fanout.DEFAULT_JOBS);
  return await fanout.runOnEach(context, targets, module.run, { jobs, statusOf, prepare: module.prepareTargets });
}

/**
 * The command-line words, refusing one that is not UTF-8 (the runtime would
 * have sent U+FFFD in place of its bad bytes). Only a word holding U+FFFD is
 * checked against the bytes the caller passed; where Deno will not let us
 * read them, a word holding U+FFFD is refused as such.
 * @throws {UsageError} naming the word, its bad bytes as \xHH
 */
async function checkedArgv(): Promise<string[]> {
  const words = argv();
  if (!words.join("\0").includes("\uFFFD")) return words;
  const raw = await argvBytes(words.length);
  if (raw === "not granted") {
    const i = words.findIndex((word) => word.includes("\uFFFD"));
    throw new UsageError(
      `'${words[i]}' holds U+FFFD, which may stand for bytes that are not UTF-8 (command-line word ${i + 1}): ` +
        "under Deno qmpctl cannot read the bytes passed without --allow-all (/proc/self/cmdline)",
    );
  }
  if (!raw) return words;
  const { decodeUtf8, showInvalidUtf8 } = await import("./lib/utf8.ts");
  raw.forEach((bytes, i) => {
    if (decodeUtf8(bytes) === undefined) {
      throw new UsageError(`'${showInvalidUtf8(bytes).text}' is not valid UTF-8 (command-line word ${i + 1})`);
    }
  });
  return words;
}

/**
 * Refuse environment variable `name` (an address) when its bytes are not
 * UTF-8, as a command-line word is: Bun has put U+FFFD in their place, and
 * the path it would name is another one; Deno throws InvalidData instead.
 * @throws {UsageError} naming the variable, its bad bytes as \xHH where they can be read
 */
async function checkedEnv(name: string): Promise<void> {
  let notUtf8 = false; // Deno says so; Bun's U+FFFD may stand for bytes that are not
  try {
    if (!env(name)?.includes("\uFFFD")) return;
  } catch (error) {
    if ((error as Error)?.name !== "InvalidData") throw error;
    notUtf8 = true;
  }
  const raw = await envBytes(name);
  const { decodeUtf8, showInvalidUtf8 } = await import("./lib/utf8.ts");
  if (raw instanceof Uint8Array && decodeUtf8(raw) === undefined) {
    throw new UsageError(`${name} '${showInvalidUtf8(raw).text}' is not valid UTF-8`);
  }
  // Without the bytes (Deno without --allow-all): a U+FFFD Deno decoded is one the caller passed.
  if (notUtf8) {
    throw new UsageError(
      `${name} is not valid UTF-8: under Deno qmpctl cannot read its bytes without --allow-all (/proc/self/environ)`,
    );
  }
}

/** The exit status `error` means, by the table; undefined for an error the table does not know. */
function statusOf(error: unknown): number | undefined {
  for (const [type, status] of EXIT_STATUS) if (error instanceof type) return status; // not find: see main()
}

function exitStatusOf(error: unknown): number {
  // Deno run without the permissions deno.json's task grants (what failed may have wrapped it: a connection)
  for (let cause = error; cause instanceof Error; cause = cause.cause) {
    if (cause.name !== "NotCapable") continue;
    const hint = /^Requires all access/.test(cause.message) // /dev and /proc files: --allow-all
      ? " (deno task qmpctl does not grant it; - names stdin and stdout)"
      : ": run it as `deno task qmpctl`, or with that task's permissions";
    writeStderrLine(`qmpctl: ${cause.message}${hint}`, true);
    return EXIT.USAGE;
  }
  const status = statusOf(error);
  if (status === undefined) {
    writeStderrLine(`qmpctl: internal error (a bug: please report it): ${(error as Error)?.message ?? error}`, true);
    return EXIT.INTERNAL;
  }
  if (status !== EXIT.OK && status !== EXIT.INTERRUPTED) writeStderrLine(`qmpctl: ${(error as Error).message}`, true);
  return status;
}

/**
 * An unknown option's error with the closest names among those its command takes (every command's, when
 * none came before it), or else where its options are listed, as curl and jq point to their help.
 */
async function withOptionHint(error: UnknownOptionError): Promise<UnknownOptionError> {
  const command = error.before[0] !== undefined && Object.hasOwn(COMMANDS, error.before[0])
    ? error.before[0]
    : undefined;
  const names = error.dashes === "--" ? await closestOptions(error.option, command) : []; // -x: one letter
  const last = names.pop();
  if (last) error.message += ` (did you mean ${names.length > 0 ? `${names.join(", ")} or ` : ""}${last}?)`;
  else error.message += ` (try: qmpctl ${command === undefined ? "--help" : `help ${command}`})`;
  return error;
}

/**
 * The long options closest to `option` among those `command` takes (every command's without one); closest.ts
 * is loaded only then.
 */
async function closestOptions(option: string, command: string | undefined): Promise<string[]> {
  const { closestNames } = await import("./lib/closest.ts");
  const specs = command === undefined ? allOptions() : [...GLOBAL_OPTIONS, ...COMMANDS[command].options];
  return closestNames(option, new Set(specs.map((spec) => spec.name))).map((n) => `--${n}`);
}

// Only an unknown option runs withOptionHint: a failed exec does not pay for its first run.
exit(
  await main().catch((error) =>
    error instanceof UnknownOptionError ? withOptionHint(error).then(exitStatusOf) : exitStatusOf(error)
  ),
  EXIT.TIMEOUT, // stderr did not take what was written before --timeout ran out
);
