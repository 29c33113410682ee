/**
 * Several targets: `-s` repeated or a glob. The command runs once per
 * target, concurrently (`--jobs`), in one process; each output line carries
 * `"socket": ADDR`, and a target that fails prints one line saying how:
 * `{"socket", "error": QEMU's error}` or `{"socket", "failure": reason}`.
 * Any command that takes "a context with one address" runs this way: the
 * runner only swaps the address and the output writer.
 *
 * The exit status: 0 when every target succeeded; else 3 if any could not be
 * reached, else 124 if --timeout ran out, else 2 for a usage error on some
 * target (an event name its QEMU does not know), else 4 when the job or
 * migration to follow was not there on some target, else 1.
 *
 * @module
 */
import { formatDuration } from "../lib/duration.ts";
import { AbortedError, CommandError, TimeoutError } from "../lib/errors.ts";
import { EXIT } from "./exit_status.ts";
import { OutputError, writeStderrLine, writeStdout } from "./io/output.ts";
import { type ParsedOptions, UsageError } from "./options.ts";
import { type CommandContext, printLabelled } from "./session.ts";
import type { Targets } from "./targets.ts";

/** Targets run at once by default (commands that wait for events run every target at once). */
export const DEFAULT_JOBS = 32;

/** `--jobs N`: how many targets run at once (for the commands that take it). */
export function readJobs(options: ParsedOptions, fallback: number): number {
  const text = options.get("jobs");
  if (text === undefined) return fallback;
  if (typeof text !== "string" || !/^[1-9]\d*$/.test(text)) {
    throw new UsageError(`--jobs '${text}': how many run at once must be a whole number, 1 or more`);
  }
  return Number(text);
}

export interface FanoutOptions {
  /** How many targets run at once (Infinity: every one as soon as it is known). */
  jobs: number;
  /**
   * The exit status an error means (the CLI's one table); undefined for an
   * error that is not a target's own (a bug): it ends the whole run.
   */
  statusOf(error: unknown): number | undefined;
  /** What the command does once for all targets before any starts (batch: read its input). */
  prepare?(context: CommandContext): Promise<void>;
}

/**
 * Run `run` once per target, at most `jobs` at a time, each as soon as it
 * is known (a glob's sockets when it matches), with each output line
 * labelled; resolves to the combined exit status once every target has
 * ended and no glob is looked at any more. An output that cannot
 * be written (a closed pipe, a full disk) ends the whole run (thrown), once
 * the targets under way have stopped, each saying on stderr what it had run;
 * so does SIGINT, once every target under way has ended (each says what it
 * leaves undone). Neither starts the targets still waiting for their turn.
 */
export function runOnEach(
  context: CommandContext,
  targets: Targets,
  run: (context: CommandContext) => Promise<number>,
  options: FanoutOptions,
): Promise<number> {
  return new Fanout(context, targets, run, options).run();
}

/** One run over several targets: their output, one line at a time, and each one's exit status. */
class Fanout {
  readonly #context: CommandContext;
  readonly #targets: Targets;
  readonly #run: (context: CommandContext) => Promise<number>;
  readonly #options: FanoutOptions;
  /** The writes so far, in order. */
  #output = Promise.resolve();
  readonly #statuses: number[] = [];
  /** The SIGINT that ends the run once every target under way has ended. */
  #interrupted: unknown;
  /** A target has waited for its turn (--jobs): the reason one not tried gives. */
  #heldBack = false;
  /** Aborted when the output fails (with that error): the targets under way stop, saying what they had run. */
  readonly #outputFailed = new AbortController();

  constructor(
    context: CommandContext,
    targets: Targets,
    run: (context: CommandContext) => Promise<number>,
    options: FanoutOptions,
  ) {
    this.#context = context;
    this.#targets = targets;
    this.#run = run;
    this.#options = options;
  }

  /** Start each target when it is known and its turn has come (a glob looked at again holds up no one). */
  async run(): Promise<number> {
    await this.#prepare();
    const { addresses } = this.#targets;
    let [next, running] = [0, 0];
    let thrown: { error: unknown } | undefined; // a bug, or an output that cannot be written: the run ends
    let ended = Promise.withResolvers<void>();
    for (;;) {
      while (!thrown && next < addresses.length && running < this.#options.jobs) {
        running++;
        this.#runTarget(addresses[next++])
          .then((status) => this.#statuses.push(status), (error) => {
            thrown ??= { error };
            // A failure line that could not be written: the others stop too (one waiting for events would not).
            if (error instanceof OutputError && !this.#outputFailed.signal.aborted) this.#outputFailed.abort(error);
          })
          .finally(() => {
            running--;
            ended.resolve();
          });
      }
      this.#heldBack ||= next < addresses.length;
      // A failed output waits for the targets under way: each says on stderr what it had run (see #runTarget).
      if (thrown && (running === 0 || !(thrown.error instanceof OutputError))) {
        const notStarted = addresses.length - next;
        // (A reader that did not take the output before --timeout ended the run as well.)
        if (notStarted > 0 && (thrown.error instanceof OutputError || thrown.error instanceof TimeoutError)) {
          thrown.error.message += `; ${notStarted} more target${notStarted > 1 ? "s were" : " was"} not started`;
        }
        throw thrown.error;
      }
      if (running === 0 && next === addresses.length && this.#targets.done) break;
      await Promise.race([ended.promise, this.#targets.changed()]);
      ended = Promise.withResolvers();
    }
    await this.#targets.settled(); // no target at all (each glob failed): why
    await this.#output;
    if (this.#interrupted) throw this.#interrupted;
    return combinedStatus(this.#statuses);
  }

  /**
   * The command's work for all targets. When --timeout runs out in it (batch's input did not end in time), it
   * is said, and every target is then told it was not tried: its failure line, for a script to find.
   */
  async #prepare(): Promise<void> {
    try {
      await this.#options.prepare?.(this.#context);
    } catch (error) {
      if (!(error instanceof TimeoutError)) throw error;
      writeStderrLine(`qmpctl: ${error.message} (--timeout ${formatDuration(this.#context.global.timeoutMs)})`);
    }
  }

  /**
   * Write `text` once the writes before it are done, so that lines of different targets never interleave.
   * Once a write fails, every later one fails with it: each target gets its own error, for its own notes.
   */
  #write = (text: string): Promise<void> => {
    // Bounded by --timeout and SIGINT (a reader that stops reading must not hold the run past them); the
    // failure lines written once they have come still get their moment (see writeStdout).
    this.#output = this.#output.then(() => writeStdout(text, this.#context.signal));
    return this.#output.catch((error) => {
      if (error instanceof OutputError) throw new OutputError(error.message, { cause: error });
      throw error instanceof TimeoutError ? new TimeoutError(error.message, { cause: error }) : error;
    });
  };

  /** Run the command on `address`: its exit status, its failure said (stderr) and printed (a labelled line). */
  async #runTarget(address: string): Promise<number> {
    const context = this.#context;
    const target = { label: address, write: this.#write };
    const signal = AbortSignal.any([context.signal, this.#outputFailed.signal]);
    const own: CommandContext = { ...context, signal, global: { ...context.global, socket: address }, target };
    // stderr's line names the bound that ran out, as a single target's does (cli.ts); the JSON line is data.
    const fail = async (reason: string, members: Record<string, unknown> = { failure: reason }, bound = "") => {
      writeStderrLine(`qmpctl: ${namesTarget(reason, address) ? reason : `${address}: ${reason}`}${bound}`);
      await printLabelled(own, members);
    };
    const failed = this.#targets.failed.get(address); // its own reason, even once --timeout has run out
    const timedOut = (context.signal.reason as Error | undefined)?.name === "TimeoutError";
    if (context.signal.aborted && !timedOut) { // SIGINT before its turn (or as its glob was looked at): nothing to say
      this.#interrupted ??= new AbortedError("interrupted", { cause: context.signal.reason }); // if none under way was
      return EXIT.INTERRUPTED;
    }
    if (timedOut && !failed) { // not a connection that timed out
      const why = this.#heldBack
        ? `while it waited for its turn (--jobs ${this.#options.jobs})`
        : "before it was started";
      await fail(`not tried: --timeout ran out ${why}`);
      return EXIT.TIMEOUT;
    }
    try {
      if (failed) throw failed;
      return await this.#run(own);
    } catch (error) {
      const stoppedByOutput = error instanceof AbortedError && this.#outputFailed.signal.aborted &&
        !context.signal.aborted;
      const status = stoppedByOutput ? EXIT.OUTPUT : this.#options.statusOf(error);
      // An output that cannot be written (nowhere to print any target's line): the whole run ends. The first
      // target it failed for is the run's error; the others under way stop, and each says what it had run
      // (a state-changing command may have run on every one).
      if (status === EXIT.OUTPUT) {
        // "aborted while waiting for X" is said as "stopped when the output failed, while waiting for X".
        const { message: own } = error as Error;
        const message = `${address}: ${
          stoppedByOutput ? own.replace(/^aborted /, "stopped when the output failed, ") : own
        }`;
        if (this.#outputFailed.signal.aborted) {
          writeStderrLine(`qmpctl: ${message}`);
          return status;
        }
        (error as Error).message = message;
        this.#outputFailed.abort(error);
      }
      if (status === EXIT.INTERRUPTED) {
        this.#interrupted ??= error;
        return status;
      }
      if (status === undefined || status === EXIT.OK || status === EXIT.OUTPUT) throw error;
      const reason = (error as Error).message;
      const bound = error instanceof TimeoutError ? ` (--timeout ${formatDuration(context.global.timeoutMs)})` : "";
      await fail(reason, error instanceof CommandError ? { error: error.response.error } : undefined, bound);
      return status;
    }
  }
}

/**
 * Whether `reason` names `address` as what it is about, as a connection's errors do ("cannot connect to
 * ADDR: ...", "ADDR closed the connection ...", "no socket matches GLOB"): its line then needs no label to
 * say it again. Not the address's text anywhere (a node QEMU could not find, named as the socket is; a
 * word holding it).
 */
function namesTarget(reason: string, address: string): boolean {
  const quoted = address.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  return new RegExp(`(?:^'?|\\b(?:to|from|at|matches) )${quoted}(?=$|[:\\s,)'])`).test(reason);
}

/** 0 when all succeeded; else unreachable (3) over timed out (124) over usage (2) over not there (4) over failed (1). */
export function combinedStatus(statuses: readonly number[]): number {
  for (const status of [EXIT.CONNECTION, EXIT.TIMEOUT, EXIT.USAGE, EXIT.GONE]) {
    if (statuses.includes(status)) return status;
  }
  return statuses.some((s) => s !== EXIT.OK) ? EXIT.QEMU_ERROR : EXIT.OK;
}
