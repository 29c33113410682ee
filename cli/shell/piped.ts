/**
 * Lines of commands without a terminal: the piped shell and `qmpctl batch`.
 * No prompt and no line editing; each line runs in input order as it
 * arrives, and each command sent to QEMU (or refused before sending) prints
 * one JSON line, `{"return": ...}` or `{"error": {...}}`, so a script can
 * tell them apart; local commands (`events`, `cpu`) and the lines of a
 * transaction before its `)` print none. Exit 1 at the end if any line
 * failed; a lost connection is thrown (exit 3).
 *
 * Commands are pipelined: a line is sent as soon as the one before it was
 * sent, without waiting for its reply (QEMU answers a monitor's commands in
 * order), up to a window of commands in flight; results print in input
 * order. The window is one command (lock-step) while events are printed,
 * so they interleave with results as they came, and for the human monitor,
 * whose `cpu N` line must take effect before the next line is sent.
 *
 * @module
 */
import type { QmpClient } from "../../lib/client.ts";
import { AbortedError, abortErrorFor, DisconnectedError, TimeoutError } from "../../lib/errors.ts";
import { fileErrorWords } from "../file_errors.ts";
import { BadLine, readLines } from "../io/input.ts";
import { OutputError, writeStderrLine, writeStdout } from "../io/output.ts";
import { UsageError } from "../options.ts";
import { formatJson } from "../session.ts";
import { BatchedOutput } from "./batched_output.ts";
import { connectionEnd, connectionLost, QEMU_QUIT } from "./connection_end.ts";
import { type Outcome, type ShellContext, type ShellMode, wholeResponse } from "./context.ts";

/** Commands in flight at most: enough to keep QEMU busy, and memory bounded for any input. */
const PIPELINE_WINDOW = 256;
/** The longest input line kept (longer ones are an error line in their place). */
const MAX_LINE_BYTES = 16 * 1024 * 1024;

export interface PipedOptions {
  client: QmpClient;
  shell: ShellContext;
  mode: ShellMode;
  pretty: boolean;
  signal: AbortSignal;
  /** The input lines; stdin's by default. */
  lines?: AsyncIterable<string | BadLine>;
  /** Where the lines come from, for a message (a file's name); stdin by default. */
  source?: string;
  /** One of several targets: each line then starts with `"socket": label`. */
  label?: string;
  /** Where the output goes; stdout by default. */
  write?: (text: string) => Promise<void>;
  /**
   * Name input lines on stderr (batch): each that failed, as its error line
   * is printed (`qmpctl: line 3: CLASS: desc`), and on a lost connection
   * those that got no answer.
   */
  nameLines?: boolean;
}

/** The most of an error's description a batch's stderr line repeats (a bad line's own text can be 16 MiB). */
const MAX_NOTE_DESC = 1000;

/** One line in flight: its number, and its outcome once settled. */
interface InFlight {
  line: number;
  /** The line of the `transaction(` this line is in (or opens): its `)` sends them all as one command. */
  transaction?: number;
  outcome: Promise<Outcome>;
  settled?: Outcome;
}

export async function runPiped(options: PipedOptions): Promise<number> {
  const { client, shell, mode, pretty, signal, label } = options;
  // One abort for every line in flight: it closes the connection, which fails them all at once.
  shell.signalPerCommand = false;
  /** A line on stderr, for one of several targets with its address first. */
  const say = (text: string) => writeStderrLine(`qmpctl: ${label === undefined ? "" : `${label}: `}${text}`);
  const write = options.write ?? ((text: string) => writeStdout(text, signal)); // a stalled reader: bounded
  const output = new BatchedOutput(write, say);
  const print: Print = (value, note) =>
    output.print(formatJson(label === undefined ? value : { socket: label, ...value }, pretty), note);
  const events = client.events();
  void (async () => {
    for await (const event of events) if (shell.eventsOn) void print(event);
  })().catch(() => {}); // the connection's end is reported by the next command or read
  // While waiting for the next line: the connection may be lost, or SIGINT / --timeout come.
  const abortError = abortErrorFor(`the next line ${options.source ? `of ${options.source}` : "on stdin"}`);
  const stop = new RunStop(client, shell, signal, output.failure, abortError);
  const lines = new LinesInFlight(options, print);
  // The line not sent yet, and not settled, when the connection was lost: the only talk with QEMU before a line
  // is sent is the schema read to type it (query-target, query-qmp-schema).
  let typingAtClose: number | undefined;
  if (options.nameLines) void client.closed.then(() => (typingAtClose = lines.firstUnsent()));
  let number = 0;
  let inputEnded = false;
  try {
    for await (const line of racing(options.lines ?? inputLines(undefined), stop.promise)) {
      number++;
      const { entry, sent } = lines.start(number, line);
      const limit = shell.eventsOn || mode.kind === "hmp" ? 1 : PIPELINE_WINDOW;
      // Wait until this line has been sent (or has settled), so the next is sent after it.
      stop.sending = entry.line;
      await Promise.race([entry.outcome, sent]).catch(() => {});
      stop.sending = undefined;
      // A full window drains to half before more lines go, so they go together (one write, not one per reply).
      if (lines.length >= limit) await lines.drainTo(limit >> 1);
      if (entry.settled?.kind === "quit") break;
    }
    inputEnded = true;
    await lines.drainTo(0);
    if (mode.cancel()) { // its result line, in its place: the last
      const desc = "the input ended inside transaction( ... ): it was not sent";
      print(
        { error: { class: "ArgumentError", desc } },
        options.nameLines ? `end of input: ArgumentError: ${desc}` : undefined,
      );
      lines.failed = true;
    }
    return await exitStatus();
  } catch (stopped) {
    let caught = stopped;
    if (caught === QEMU_QUIT) { // a quit was sent, then the connection closed
      try {
        await lines.drainTo(0); // a line sent after the quit throws: it got no answer
        // QEMU answered the quit: the end asked for (a quit it refused leaves it running: a loss).
        if (!shell.quitAnswered) throw connectionLost(client);
        return await exitStatus();
      } catch (first) {
        caught = first;
      }
    }
    throw await stoppedRunError(caught);
  } finally {
    shell.onSend = undefined;
    events.close();
    stop.dispose();
  }

  /** 1 if any line failed, else 0, once the output is written. */
  async function exitStatus(): Promise<number> {
    await output.written;
    return lines.failed ? 1 : 0;
  }

  /**
   * The error a run cut short by `caught` throws, once what was answered before it is printed; a batch's says
   * which lines were run, and which not.
   */
  async function stoppedRunError(caught: unknown): Promise<unknown> {
    // Print what was answered before the failure; the first command that failed says why.
    // After an abort, the lines in flight failed because it closed the connection: say what was awaited. A
    // --timeout that came while the next line was awaited too names the replies still owed: QEMU's stall.
    const repliesOwed = caught instanceof DisconnectedError ||
      (caught instanceof TimeoutError && lines.unanswered().length > 0);
    let error = signal.aborted && repliesOwed
      ? abortErrorFor(`the replies to the lines sent to ${client.address.text}`)(signal)
      : caught;
    // While a line waits to be sent, qmpctl waits for QEMU (the schema read to type it), not for the input.
    if (stop.abortedSending !== undefined) error = abortErrorFor(`an answer from ${client.address.text}`)(signal);
    try {
      while (lines.length > 0 && !output.broken) await lines.drainHead(); // nowhere to print them
    } catch (first) {
      if (!signal.aborted) error = first; // after an abort, the lines in flight fail because of it
    }
    await output.written.catch(() => {});
    // A reader that did not take the output in time held the run, not QEMU: its error says so.
    if (signal.aborted && output.error instanceof TimeoutError) error = output.error;
    if (options.nameLines && error instanceof Error) {
      const unanswered = lines.unanswered();
      error.message += describeLoss({
        sent: lines.sent,
        unanswered,
        // Lost because of that, not while typing, unless it came while a line was being typed.
        typing: signal.aborted || output.broken ? stop.abortedSending : typingAtClose ?? lines.firstUnsent(),
        outputBroken: output.broken,
        // Said too when QEMU went away while the next line was awaited.
        lost: stop.closed && !signal.aborted && !output.broken,
        linesRead: number,
        inputEnded,
      });
      // qmpctl says nothing of its own on Ctrl-C, but lines sent and not answered may have run: said here.
      // (When another target's output failed, its message is this target's line on stderr: said there.)
      if (error instanceof AbortedError && unanswered.length > 0) {
        if (error.cause instanceof OutputError) error.message += `; QEMU may have run ${lineNumbers(unanswered)}`;
        else say(`interrupted; no answer to ${lineNumbers(unanswered)}, which QEMU may have run`);
      }
    }
    return error;
  }
}

/** Print a result line; `note` as BatchedOutput.print takes it. */
type Print = (value: Record<string, unknown>, note?: string) => void;

/**
 * What ends a run while it waits for the next line: a failed write, the connection's end, or the signal
 * (SIGINT, --timeout), which closes the connection.
 */
class RunStop {
  /** Rejects with what ended the run. */
  readonly promise: Promise<never>;
  /** The line whose send is awaited, and the one that still was when the abort came. */
  sending: number | undefined;
  abortedSending: number | undefined;
  /** The connection ended (QEMU went away, or qmpctl closed it on an abort): set before `promise` rejects. */
  closed = false;
  readonly #signal: AbortSignal;
  readonly #onAbort: () => void;

  constructor(
    client: QmpClient,
    shell: ShellContext,
    signal: AbortSignal,
    outputFailure: Promise<never>,
    abortError: (signal: AbortSignal) => Error,
  ) {
    this.#signal = signal;
    void client.closed.then(() => (this.closed = true));
    const ended = connectionEnd(client, shell);
    const aborted = Promise.withResolvers<never>();
    this.#onAbort = () => {
      this.abortedSending = this.sending;
      aborted.reject(abortError(signal));
      client.close();
    };
    if (signal.aborted) this.#onAbort();
    else signal.addEventListener("abort", this.#onAbort, { once: true });
    this.promise = Promise.race([outputFailure, ended, aborted.promise]);
    this.promise.catch(() => {}); // raced by the read of the input
  }

  /** Stop listening for the abort. */
  dispose(): void {
    this.#signal.removeEventListener("abort", this.#onAbort);
  }
}

/**
 * The lines read and not printed yet, in input order; each one's result is printed as soon as it and every line
 * before it have settled.
 */
class LinesInFlight {
  /**
   * The lines that went to QEMU (not blanks, comments, lines refused here, or a transaction's inner lines);
   * kept with `nameLines` only.
   */
  readonly sent: number[] = [];
  /** A line failed: the run exits 1. */
  failed = false;
  readonly #window: InFlight[] = [];
  /** The line of the open `transaction(`, while one is open. */
  #transaction: number | undefined;
  readonly #options: Pick<PipedOptions, "shell" | "mode" | "signal" | "nameLines">;
  readonly #print: Print;

  constructor(options: Pick<PipedOptions, "shell" | "mode" | "signal" | "nameLines">, print: Print) {
    this.#options = options;
    this.#print = print;
  }

  get length(): number {
    return this.#window.length;
  }

  /** Run `line`, the input's line `number`; `sent` resolves when its command is on its way to QEMU. */
  start(number: number, line: string | BadLine): { entry: InFlight; sent: Promise<void> } {
    const { shell, mode, signal, nameLines } = this.#options;
    const sent = nextSend(shell); // before the line runs: a command without typing is sent at once
    const wasInTransaction = mode.inTransaction();
    const entry: InFlight = { line: number, outcome: submit(mode, line, signal) };
    // A `transaction(` opens it as its line is run, before any wait (its action, if on the same line, is typed).
    if (!wasInTransaction) this.#transaction = mode.inTransaction() ? number : undefined;
    if (this.#transaction !== undefined) entry.transaction = this.#transaction;
    if (nameLines) void sent.then(() => this.sent.push(entry.line));
    entry.outcome.then((o) => {
      entry.settled = o;
      this.#printSettled();
    }, () => {});
    this.#window.push(entry);
    return { entry, sent };
  }

  /** Wait for the head of the window, which is then printed; rejects when it got no answer (it stays). */
  async drainHead(): Promise<void> {
    await this.#window[0].outcome;
  }

  /** Wait until at most `size` lines are left, the others printed; rejects as drainHead does. */
  async drainTo(size: number): Promise<void> {
    while (this.#window.length > size) await this.drainHead();
  }

  /** The lines sent that got no answer. */
  unanswered(): number[] {
    return this.#unsettled().filter((line) => this.sent.includes(line));
  }

  /** The first line neither sent nor settled. */
  firstUnsent(): number | undefined {
    return this.#unsettled().find((line) => !this.sent.includes(line));
  }

  #unsettled(): number[] {
    return this.#window.filter((w) => !w.settled).map((w) => w.line);
  }

  /**
   * Print the settled outcomes at the head of the window, in order: as each
   * settles, so that a reply is shown while the next line is still awaited
   * (a person typing into 'qmpctl shell | tee log', a slow producer).
   */
  #printSettled(): void {
    while (this.#window.length > 0 && this.#window[0].settled) {
      const entry = this.#window.shift()!;
      const outcome = entry.settled!;
      // A raw line's own id is in its reply: a script matches replies to its lines by it.
      const response = wholeResponse(outcome);
      // A transaction's line that made no action: its `)` line fails naming it, one result line for the transaction.
      if (outcome.kind === "error" && outcome.inTransaction) continue;
      if (outcome.kind === "error") {
        this.failed = true;
        // The error in words on stderr too (batch), its description cut at MAX_NOTE_DESC characters.
        const { class: errorClass, desc } = outcome.error;
        const words = desc.length > MAX_NOTE_DESC ? `${desc.slice(0, MAX_NOTE_DESC)}...` : desc;
        this.#print(
          response!,
          this.#options.nameLines ? `${this.#failedLines(entry)}: ${errorClass}: ${words}` : undefined,
        );
      } else if (response) this.#print(response);
    }
  }

  /**
   * The lines a failed line's stderr note names: its own, or for a transaction that went to QEMU (sent
   * on its `)` line), all of its lines, `lines 13-16 (transaction)`: QEMU's error does not say which action
   * failed. A transaction refused before it was sent names the line that was refused.
   */
  #failedLines({ line, transaction }: InFlight): string {
    return transaction !== undefined && this.sent.includes(line)
      ? `${transaction === line ? `line ${line}` : `lines ${transaction}-${line}`} (transaction)`
      : `line ${line}`;
  }
}

/** What is known of a batch's lines when its run was cut short: what describeLoss says. */
interface Loss {
  /** The lines that went to QEMU, and those of them that got no answer. */
  sent: number[];
  unanswered: number[];
  /** The line not sent because qmpctl was reading QEMU's schema to type it. */
  typing: number | undefined;
  /** The output could not be written: it holds no results. */
  outputBroken: boolean;
  /** QEMU went away (not an abort, not the output). */
  lost: boolean;
  /** The lines read, and whether they were all the input. */
  linesRead: number;
  inputEnded: boolean;
}

/** What a batch's error adds when its run was cut short: `; QEMU ran line 1; no answer to line 2 (any input ...)`. */
function describeLoss({ sent, unanswered, typing, outputBroken, lost, linesRead, inputEnded }: Loss): string {
  let words = "";
  // Output that could not be written (a full disk, a closed stdout) holds no results: say which lines
  // QEMU ran (a transaction's on its closing line, where its result goes).
  const ran = outputBroken ? sent.filter((line) => !unanswered.includes(line)) : [];
  if (ran.length > 0) words += `; QEMU ran ${lineNumbers(ran)}`;
  else if (outputBroken && unanswered.length === 0) words += "; no command was sent";
  if (unanswered.length > 0) words += `; no answer to ${lineNumbers(unanswered)}`;
  if (typing !== undefined) {
    words += sent.length === 0
      ? `; no line was sent: qmpctl was reading QEMU's schema to type line ${typing}`
      : `; line ${typing} was not sent: qmpctl was reading QEMU's schema to type it`;
  }
  // Not read yet: there may be none.
  if ((ran.length + unanswered.length > 0 || typing !== undefined || lost) && !inputEnded) {
    words += linesRead === 0 ? " (no input was run)" : ` (any input after line ${linesRead} was not run)`;
  }
  return words;
}

/**
 * Run one line; a line that asks to quit settles as `quit`. A line that could
 * not be read as text (not UTF-8, too long) is not sent: an ArgumentError, as
 * for every line that cannot be sent as written (and a transaction it is in is not sent either).
 */
function submit(mode: ShellMode, line: string | BadLine, signal: AbortSignal) {
  if (line instanceof BadLine) return Promise.resolve(mode.refuse(line.reason));
  return mode.run(line, signal);
}

/** Resolves when the shell next sends a command (its send is synchronous: it is on its way then). */
function nextSend(shell: ShellContext): Promise<void> {
  return new Promise((resolve) => (shell.onSend = () => resolve()));
}

/** `lines 3-5, 9` from [3, 4, 5, 9]. */
function lineNumbers(numbers: number[]): string {
  const ranges: string[] = [];
  for (let i = 0; i < numbers.length; i++) {
    let j = i;
    while (j + 1 < numbers.length && numbers[j + 1] === numbers[j] + 1) j++;
    ranges.push(i === j ? `${numbers[i]}` : `${numbers[i]}-${numbers[j]}`);
    i = j;
  }
  return `${numbers.length === 1 ? "line" : "lines"} ${ranges.join(", ")}`;
}

/** The items of `source`, unless `stop` rejects first (while waiting for the next one). */
async function* racing<T>(source: AsyncIterable<T>, stop: Promise<never>): AsyncGenerator<T> {
  const iterator = source[Symbol.asyncIterator]();
  // One handler on `stop` for the whole input (racing it line by line would keep one per line until it settles).
  let stopped: { error: unknown } | undefined;
  let wake = (_error: unknown) => {};
  stop.catch((error) => {
    stopped = { error };
    wake(error);
  });
  for (;;) {
    if (stopped) throw stopped.error;
    const next = await new Promise<IteratorResult<T>>((resolve, reject) => {
      wake = reject;
      iterator.next().then(resolve, reject);
    });
    wake = () => {};
    if (next.done) return;
    yield next.value;
  }
}

/** The lines of FILE, or of stdin without one; input that cannot be read (a directory) is a usage error. */
export async function* inputLines(file: string | undefined): AsyncGenerator<string | BadLine> {
  try {
    yield* readLines(file, MAX_LINE_BYTES);
  } catch (error) {
    const words = fileErrorWords(error);
    if (words === undefined) throw error;
    throw new UsageError(`cannot read ${file ?? "stdin"}: ${words}`);
  }
}
