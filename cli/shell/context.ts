/**
 * What both shells (QMP and HMP) share: the client, the settings a line can
 * change (`events on|off`), and what a line comes to (an `Outcome`), which
 * the interactive and the piped front ends each print their own way.
 *
 * @module
 */
import type { QmpClient } from "../../lib/client.ts";
import { ArgumentError, CommandError, UnparsedRequestError } from "../../lib/errors.ts";
import type { Completion } from "./completion.ts";

/** What running one line came to. */
export type Outcome =
  | { kind: "none" } // a blank line, a comment, or a transaction action kept for later
  | { kind: "quit" }
  | { kind: "note"; text: string } // a local command's answer, for people
  | { kind: "return"; value: unknown; id?: unknown } // a QMP command's return value (and a raw line's own id)
  | { kind: "text"; text: string; note?: string } // the human monitor's text (and, for people, a note after it)
  // QEMU's error, whole; or qmpctl's for a line not sent (inTransaction: a line that made no action, which
  // the transaction's `)` line names again)
  | {
    kind: "error";
    error: { class: string; desc: string; [member: string]: unknown };
    id?: unknown;
    inTransaction?: true;
  };

export const NOTHING: Outcome = { kind: "none" };

/**
 * An outcome as the whole response, `{"return": ...}` or `{"error": ...}`
 * (the human monitor's text as its return), with a raw line's own id, as
 * QEMU echoes it: what piped lines and `--raw` print. Undefined for a local
 * command's note, which is for people at a terminal.
 */
export function wholeResponse(outcome: Outcome): Record<string, unknown> | undefined {
  const id = "id" in outcome ? { id: outcome.id } : {}; // present only when the line gave one
  if (outcome.kind === "return") return { return: outcome.value, ...id };
  if (outcome.kind === "text") return { return: outcome.text };
  if (outcome.kind === "error") return { error: outcome.error, ...id };
  return undefined;
}

/** One kind of shell: its prompt, how it runs a line, how it completes one. */
export interface ShellMode {
  readonly kind: "qmp" | "hmp";
  prompt(): string;
  /** Whether a `transaction(` is open: its lines are gathered, and its `)` sends them as one command. */
  inTransaction(): boolean;
  /**
   * Run one line. QEMU's errors and malformed lines come back as an `error`
   * outcome; a lost connection or an aborted wait is thrown.
   */
  run(line: string, signal: AbortSignal): Promise<Outcome>;
  /** Candidates for the word that ends `before` (the text left of the cursor). */
  complete(before: string, signal: AbortSignal): Promise<Completion>;
  /**
   * A line that cannot be run as written (not UTF-8): its error outcome; inside a
   * transaction, also a line that made no action, so that the transaction is not sent.
   */
  refuse(reason: string): Outcome;
  /** Drop a half-entered construct (a transaction); true if there was one. */
  cancel(): boolean;
}

export class ShellContext {
  readonly client: QmpClient;
  /** Whether events are printed as they arrive. */
  eventsOn: boolean;
  /**
   * Whether each command takes the line's signal (at a terminal, Ctrl-C stops
   * waiting for one reply); piped lines instead end together on one abort,
   * which closes the connection.
   */
  signalPerCommand = true;
  /** Whether a `quit` command went to QEMU (its closing the connection then is no loss). */
  quitSent = false;
  /** Whether QEMU answered a `quit` with its return (not refused it): it is on its way out. */
  quitAnswered = false;
  /**
   * Whether the shell's own words act (quit, exit, events, help); `batch`
   * sends them to QEMU like any line, each with its result line.
   */
  shellWords = true;
  /** Called with each message about to be sent (`-v` in a terminal). */
  onSend?: (message: Record<string, unknown>) => void;
  /** How many commands have gone to QEMU: whether a line stopped with Ctrl-C sent its own. */
  commandsSent = 0;

  constructor(client: QmpClient, eventsOn: boolean) {
    this.client = client;
    this.eventsOn = eventsOn;
  }

  /**
   * Send one command; QEMU's error becomes an `error` outcome.
   * @throws {DisconnectedError | ProtocolError | UnparsedRequestError | AbortedError | TimeoutError}
   */
  async execute(
    command: string,
    args: Record<string, unknown> | undefined,
    signal: AbortSignal,
    options: { id?: unknown; oob?: boolean } = {},
  ): Promise<Outcome> {
    const message: Record<string, unknown> = { [options.oob ? "exec-oob" : "execute"]: command };
    if (args !== undefined) message.arguments = args;
    this.onSend?.(message);
    this.commandsSent++;
    if (command === "quit") this.quitSent = true;
    try {
      // Piped lines go without ids, answered in order (less for QEMU to parse). An id the line gives is not
      // sent but put on its result line, as QEMU would echo it: lines may then repeat an id, or take one
      // the client gives its own requests, without a clash between replies awaited at once.
      const perCommand = this.signalPerCommand ? { signal } : { inOrder: true };
      const value = await this.client.execute(command, args, { oob: options.oob, ...perCommand });
      if (command === "quit") this.quitAnswered = true;
      return { kind: "return", value, ...idOf(options) };
    } catch (error) {
      // An error without an id ended the session: the shell ends with it, as when the connection is lost.
      // What QEMU's parser would refuse (too deep a nesting, a lone surrogate) is not sent: this line's error.
      if (error instanceof ArgumentError) return localError(error);
      if (error instanceof CommandError && !(error instanceof UnparsedRequestError)) {
        const { error: whole } = error.response; // with its other members (an old QEMU's `data`)
        const members = typeof whole === "object" && whole !== null && !Array.isArray(whole) ? whole : {};
        return { kind: "error", error: { ...members, class: error.errorClass, desc: error.desc }, ...idOf(options) };
      }
      throw error;
    }
  }

  /** The local commands of both shells (`help` aside); undefined when `words` is none of them. */
  localCommand(words: readonly string[]): Outcome | undefined {
    if (!this.shellWords) return undefined;
    switch (words[0]) {
      case "quit":
      case "exit": // a word after it is a slip, not a reason to leave
        return words.length === 1 ? { kind: "quit" } : localError(new ArgumentError(`usage: ${words[0]} (no words)`));
      case "events":
        if (words.length === 1) return { kind: "note", text: `events are ${this.eventsOn ? "on" : "off"}` };
        if (words.length === 2 && (words[1] === "on" || words[1] === "off")) {
          this.eventsOn = words[1] === "on";
          return { kind: "note", text: `events ${words[1]}` };
        }
        return localError(new ArgumentError("usage: events [on|off]"));
    }
    return undefined;
  }
}

/**
 * A line that could not be sent as written, as an `error` outcome of class
 * ArgumentError (qmpctl's, not one of QEMU's: the line was not sent); other
 * errors are thrown on.
 */
export function localError(error: unknown): Outcome {
  if (error instanceof ArgumentError) {
    return { kind: "error", error: { class: "ArgumentError", desc: error.message } };
  }
  throw error;
}

/** The id a raw line gave its command, as QEMU echoes it in the reply (none when it gave none). */
function idOf(options: { id?: unknown }): { id?: unknown } {
  return options.id === undefined ? {} : { id: options.id };
}
