/**
 * The shell on a terminal: a prompt, line editing, history, TAB, and events
 * printed above the prompt as they arrive without breaking the line being
 * typed. Ctrl-C clears the line (or stops the command that runs); Ctrl-D on
 * an empty line, `quit` or `exit` leave with 0, as does QEMU's closing the
 * connection after `{"execute": "quit"}`; a lost connection is thrown
 * (exit 3) once the terminal is given back.
 *
 * @module
 */
import type { QmpClient } from "../../lib/client.ts";
import { abortable } from "../../lib/abort.ts";
import { AbortedError, CommandError, TimeoutError } from "../../lib/errors.ts";
import { formatJson } from "../session.ts";
import { applyCompletion, type TabResult } from "./completion.ts";
import { connectionEnd, QEMU_QUIT } from "./connection_end.ts";
import { type Outcome, type ShellContext, type ShellMode, wholeResponse } from "./context.ts";
import { LineEditor } from "./editor.ts";
import { History } from "./history.ts";
import type { Key } from "./keys.ts";
import { listCandidates, type ListingTerminal } from "./listing.ts";
import { Screen } from "./screen.ts";
import { Terminal } from "./terminal.ts";
import { splitWords } from "./words.ts";
import { notUtf8 } from "./bytes.ts";

/** How long the shell waits for QEMU to close the connection after it answered a quit (a proxy may keep it open). */
const QUIT_CLOSE_WAIT_MS = 2000;

/** How long TAB waits for QEMU (the schema, the monitor's help) before it gives up with the bell. */
const COMPLETION_WAIT_MS = 3000;

export interface InteractiveOptions {
  client: QmpClient;
  shell: ShellContext;
  mode: ShellMode;
  banner: string;
  pretty: boolean;
  /** Print each outcome as the whole response, as piped lines are. */
  raw: boolean;
  verbose: boolean;
  /** SIGINT from outside and `--timeout`: they end the shell. */
  signal: AbortSignal;
}

export async function runInteractive(options: InteractiveOptions): Promise<number> {
  const history = await History.load(options.mode.kind);
  return await new InteractiveShell(options, history).run();
}

/** One session on the terminal: the line being typed, the keys that edit it, and the lines it runs. */
class InteractiveShell {
  readonly #options: InteractiveOptions;
  readonly #history: History;
  readonly #terminal = new Terminal();
  readonly #screen = new Screen(this.#terminal.write, () => this.#terminal.columns);
  readonly #editor: LineEditor;
  /**
   * Rejects (with the error to throw) when the connection is lost or the shell's signal aborts
   * (at once when it aborted already: a --timeout that ran out, a Ctrl-C while connecting).
   * After QEMU has answered a quit, its closing the connection is the end asked for.
   */
  readonly #ended: Promise<never>;
  /** The wait for the connection's close after QEMU answered a quit (once: one that stays open gets the prompt). */
  #quitClosing: Promise<void> | undefined;
  /** The text before the cursor whose completions the last key, a TAB, listed (a TAB again lists nothing new). */
  #listedFor: string | undefined;
  /** A question awaiting its answer, drawn where the prompt was (events print above it; a resize or fg redraws it). */
  #asking: string | undefined;

  constructor(options: InteractiveOptions, history: History) {
    this.#options = options;
    this.#history = history;
    this.#editor = new LineEditor(history.lines);
    this.#ended = abortable(connectionEnd(options.client, options.shell), options.signal, "the shell to end");
    this.#ended.catch(() => {}); // handled by each race
  }

  /** Prompt for lines and run them until the shell is left: its exit status. */
  async run(): Promise<number> {
    const { client, shell, pretty } = this.#options;
    const terminal = this.#terminal;
    const screen = this.#screen;
    // As JSON, as stdout's JSON is written: DEL, C1 and bidi controls as \u escapes (not \x7f: that is no JSON).
    if (this.#options.verbose) shell.onSend = (message) => screen.print(`> ${formatJson(message, false)}`);
    const events = client.events();
    void (async () => {
      for await (const event of events) if (shell.eventsOn) screen.print(formatJson(event, pretty));
    })().catch(() => {}); // the connection's end is reported by `#ended`
    terminal.open();
    const stopResizing = terminal.onResize(() => screen.resized());
    // Ctrl-Z: the line is left as typed (^Z after it) for the shell that takes the terminal; after fg, drawn again.
    terminal.onSuspend(() => {
      const prompting = screen.showing;
      screen.leave("^Z");
      return prompting ? () => this.#draw() : undefined;
    });
    try {
      screen.print(this.#options.banner);
      this.#draw();
      return await this.#readKeys();
    } catch (error) {
      if (error !== QEMU_QUIT) throw error;
      screen.leave();
      screen.print("QEMU quit");
      return 0;
    } finally {
      stopResizing();
      screen.leave();
      events.close();
      await terminal.close();
    }
  }

  /** Act on each key as it comes until one leaves the shell: its exit status. */
  async #readKeys(): Promise<number> {
    const screen = this.#screen;
    const editor = this.#editor;
    for (;;) {
      const key = await this.#race(this.#terminal.nextKey());
      const action = editor.key(key);
      if (action !== "complete") this.#listedFor = undefined;
      switch (action) {
        case undefined:
          this.#draw();
          break;
        case "interrupt":
          screen.leave("^C");
          if (editor.text === "" && this.#options.mode.cancel()) screen.print("transaction dropped");
          editor.reset();
          this.#draw();
          break;
        case "eof":
          screen.leave();
          return this.#leave();
        case "clear-screen":
          this.#terminal.refreshSize(); // a resize that was missed (a SIGWINCH lost while stopped) is seen here
          screen.clear();
          break;
        case "complete":
          await this.#complete();
          break;
        case "submit": {
          const status = await this.#submit();
          if (status !== undefined) return status;
        }
      }
    }
  }

  /** Draw the prompt and the line being typed, or the question asked in their place. */
  #draw(): void {
    if (this.#asking !== undefined) this.#screen.show(this.#asking, "", 0);
    else this.#screen.show(this.#options.mode.prompt(), this.#editor.text, this.#editor.cursor);
  }

  /** `promise`, unless the connection is lost or the signal aborts first. */
  #race<T>(promise: Promise<T>): Promise<T> {
    return Promise.race([promise, this.#ended]);
  }

  /** Leave with 0; a transaction still open is dropped, and said so. */
  #leave(): number {
    if (this.#options.mode.cancel()) this.#screen.print("the transaction was not sent");
    return 0;
  }

  /** Enter: run the line and print its outcome, then prompt again; the exit status when the line leaves the shell. */
  async #submit(): Promise<number | undefined> {
    const { mode, shell, pretty, raw } = this.#options;
    const line = this.#editor.text;
    this.#screen.leave();
    this.#editor.reset();
    // A byte that is not UTF-8 is refused, not sent as U+FFFD nor kept in history (as piped lines are).
    const notText = notUtf8(line);
    if (notText === undefined) await this.#history.add(line);
    const outcome = notText === undefined ? await this.#runLine(line) : mode.refuse(notText);
    if (outcome?.kind === "quit") return this.#leave();
    if (outcome?.kind === "error" && outcome.error.class === "CommandNotFound" && mode.kind === "qmp" && !raw) {
      outcome.error.desc += await this.#race(this.#closestCommandsHint(line)); // as exec says it
    }
    if (outcome) this.#screen.print(render(outcome, pretty, raw));
    // QEMU answered a quit: no prompt for a line that could not run, while it closes the connection.
    if (shell.quitAnswered) await this.#race(this.#quitClosing ??= delay(QUIT_CLOSE_WAIT_MS));
    this.#draw();
  }

  /** Run a line; Ctrl-C stops waiting for it (undefined then), a lost connection throws. */
  async #runLine(line: string): Promise<Outcome | undefined> {
    const { mode, shell, signal } = this.#options;
    const stop = new AbortController();
    this.#terminal.onInterrupt(() => stop.abort(new Error("interrupted")));
    const sentBefore = shell.commandsSent;
    try {
      return await this.#race(mode.run(line, AbortSignal.any([signal, stop.signal])));
    } catch (error) {
      if (!stop.signal.aborted || signal.aborted) throw error;
      // It may have stopped before its command went out (while the schema was asked for, to type its words).
      this.#screen.print(
        shell.commandsSent > sentBefore ? "^C (the command was sent; its reply will not be shown)" : "^C (not sent)",
      );
      return undefined;
    } finally {
      this.#terminal.onInterrupt(undefined);
    }
  }

  /** " (did you mean ...?)" for the command of a line QEMU did not find (schema from the cache; bounded). */
  async #closestCommandsHint(line: string): Promise<string> {
    if (line.trim().startsWith("{")) return ""; // a JSON line: its command is inside
    const [command] = splitWords(line); // as the QMP shell read the line (it went to QEMU: its quotes close)
    const schema = await import("../../lib/schema/mod.ts");
    return await schema.closestCommandsHint(this.#options.client, command, { signal: this.#options.signal });
  }

  /** TAB. Its wait for QEMU ends at Ctrl-C or after COMPLETION_WAIT_MS (a stopped QEMU), with the bell. */
  async #complete(): Promise<void> {
    const { mode, signal } = this.#options;
    const terminal = this.#terminal;
    const before = this.#editor.beforeCursor;
    if (this.#listedFor === before) return void terminal.write("\x07"); // a second TAB (a bash habit): listed already
    const stop = new AbortController();
    terminal.onInterrupt(() => stop.abort(new Error("interrupted")));
    let result: TabResult = { kind: "none" };
    try {
      const bounded = AbortSignal.any([signal, stop.signal, AbortSignal.timeout(COMPLETION_WAIT_MS)]);
      result = applyCompletion(before, await this.#race(mode.complete(before, bounded)));
    } catch (error) {
      // QEMU would not say (an old QEMU without query-qmp-schema), or not in time, or Ctrl-C: nothing to offer.
      const gaveUp = (error instanceof TimeoutError || error instanceof AbortedError) && !signal.aborted;
      if (!(error instanceof CommandError || gaveUp)) throw error;
      if (error instanceof TimeoutError) {
        this.#screen.print(`TAB: no answer from QEMU within ${COMPLETION_WAIT_MS / 1000}s`);
      }
    } finally {
      terminal.onInterrupt(undefined);
    }
    if (result.kind === "replace") this.#editor.replaceBeforeCursor(result.count, result.text);
    else if (result.kind === "list") {
      const listing: ListingTerminal = {
        screen: this.#screen,
        size: () => {
          terminal.refreshSize(); // a resize whose SIGWINCH is not handled yet (it races the key) sizes this one too
          return { columns: terminal.columns, rows: terminal.rows };
        },
        ask: (question, answer) => this.#ask(question, answer),
      };
      if (await listCandidates(result.candidates, listing)) this.#listedFor = before; // not when cut short
    } else terminal.write("\x07"); // nothing to complete: ring the bell
    this.#draw();
  }

  /**
   * Ask `question` where the prompt was (TAB's `Display all N possibilities?`, `--More--`) until `answer` takes
   * a key; any other key rings the bell. The question stays drawn, for the caller to leave or replace.
   */
  async #ask<T>(question: string, answer: (key: Key) => T | undefined): Promise<T> {
    this.#asking = question;
    try {
      for (;;) {
        this.#draw();
        const result = answer(await this.#race(this.#terminal.nextKey()));
        if (result !== undefined) return result;
        this.#terminal.write("\x07");
      }
    } finally {
      this.#asking = undefined;
    }
  }
}

/** Resolves after `ms`: a timer that keeps no process alive. */
function delay(ms: number): Promise<void> {
  return new Promise((resolve) => void setTimeout(resolve, ms).unref());
}

/** An outcome as a person reads it (with --raw, the whole response). */
function render(outcome: Outcome, pretty: boolean, raw: boolean): string {
  const response = raw ? wholeResponse(outcome) : undefined;
  if (response) return formatJson(response, pretty);
  switch (outcome.kind) {
    case "return":
      return formatJson(outcome.value, pretty);
    case "text":
      return outcome.text + (outcome.note ?? "");
    case "note":
      return outcome.text;
    case "error":
      return `${outcome.error.class}: ${outcome.error.desc}`;
    default:
      return "";
  }
}
