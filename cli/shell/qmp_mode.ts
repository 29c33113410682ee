/**
 * The QMP shell: `CMD key=value ...` typed as `exec` types it, a line that
 * starts with `{` sent as raw QMP JSON, and `transaction(` ... `)` gathering
 * the lines between into the actions of one `transaction` command (as QEMU's
 * python/qemu/qmp/qmp_shell.py does, with a `TRANS>` prompt).
 *
 * @module
 */
import { parseArgumentsJson } from "../../lib/args.ts";
import { didYouMean } from "../../lib/closest.ts";
import { ArgumentError, CommandError } from "../../lib/errors.ts";
import { type Completion, matching, NO_COMPLETION, wordsBefore } from "./completion.ts";
import { localError, NOTHING, type Outcome, type ShellContext, type ShellMode } from "./context.ts";
import { SchemaView, signature, withSchema } from "../../lib/schema/mod.ts";
import { splitWords } from "./words.ts";
import { formatTable } from "../exit_status.ts";

const QMP_HELP = `Local commands (everything else is sent to QEMU):
${
  formatTable([
    [
      "CMD [KEY=VALUE ...]",
      "run a QMP command; values typed as in 'qmpctl exec' (KEY.SUB=V nests, KEY.0=a KEY.1=b makes an array, " +
      "KEY:=JSON is raw JSON; quote a value with blanks, or put \\ before each blank)",
    ],
    ['{"execute": ...}', "send a line of raw QMP JSON"],
    ["transaction(", "start a transaction: each following line is one action"],
    [")", "send the transaction (not if one of its lines failed)"],
    ["events [on|off]", "show events as they arrive, or not"],
    ["help [CMD]", "this text; with CMD, the arguments CMD takes"],
    ["quit, exit, Ctrl-D", 'leave the shell (QEMU keeps running; send {"execute":"quit"} to end it)'],
  ], 3)
}
Keys: TAB completes commands, arguments and enum values; Up/Down walk the
history; Ctrl-C clears the line (and drops a transaction at an empty TRANS>);
editing as readline's defaults: Ctrl-A/E/B/F/D/K/U/W/L/N/P, Alt-B/F/Backspace
(for Alt, words are letters and digits; for Ctrl-W, what blanks separate),
Home/End (no Ctrl-R search, no Ctrl-Y yank).`;

const LOCAL_WORDS = ["events", "exit", "help", "quit", "transaction("];

/** One action of a transaction. */
type Action = Record<string, unknown>;

export class QmpMode implements ShellMode {
  readonly kind = "qmp";
  readonly #context: ShellContext;
  readonly #name: string;
  readonly #schema: SchemaView;
  /** The actions gathered so far, while in a transaction. */
  #actions?: Action[];
  /** Lines of that transaction that made no action: it is then not sent (all or nothing). */
  #failedActions = 0;
  /** Why the first of them made none, for the line of the `)` that does not send it. */
  #firstFailure?: string;

  /** @param name what the prompt shows: the VM's name, or QEMU */
  constructor(context: ShellContext, name: string) {
    this.#context = context;
    this.#name = name;
    this.#schema = new SchemaView(context.client);
  }

  prompt(): string {
    return this.#actions ? "TRANS> " : `(${this.#name}) `;
  }

  inTransaction(): boolean {
    return this.#actions !== undefined;
  }

  cancel(): boolean {
    const had = this.#actions !== undefined;
    this.#actions = undefined;
    return had;
  }

  async run(line: string, signal: AbortSignal): Promise<Outcome> {
    const trimmed = line.trim();
    if (trimmed === "" || trimmed.startsWith("#")) return NOTHING;
    try {
      if (trimmed.startsWith("[")) throw new ArgumentError("a raw QMP line is one JSON object ({...}), not an array");
      if (trimmed.startsWith("{")) {
        return this.#actions ? this.#addAction(jsonObject(trimmed)) : await this.#raw(trimmed, signal);
      }
      // Trimmed of the blanks sh does not split on (a no-break space pasted from a web page), not of those
      // it does: an escaped one may end the line.
      const words = splitWords(line.replace(/^[^\S \t\n\r]+|[^\S \t\n\r]+$/g, ""));
      if (words[0] === "help" && this.#context.shellWords) return await this.#help(words.slice(1), signal);
      const local = this.#context.localCommand(words); // also at TRANS>: no action is called quit or events
      if (local) return local;
      if (this.#actions) return await this.#transactionLine(words, signal);
      if (words[0] === "transaction(") {
        this.#actions = [];
        this.#failedActions = 0;
        this.#firstFailure = undefined;
        return words.length > 1 ? await this.#transactionLine(words.slice(1), signal) : NOTHING;
      }
      if (words[0] === ")") throw new ArgumentError("no transaction is open: ) ends one that transaction( began");
      const [command, ...rest] = words;
      // No QMP command's name has a '=': a KEY=VALUE first (a line cut in two, sh's \ at its end) names none.
      if (command.includes("=")) {
        throw new ArgumentError(
          `'${command}' is KEY=VALUE, not a command: a line starts with its command (CMD KEY=VALUE ...)`,
        );
      }
      const object = rest.find((word) => word.startsWith("{"));
      if (object !== undefined) { // the CLI's --args, which the shell has not: the raw line says the same
        const raw = `{"execute": ${JSON.stringify(command)}, "arguments": ${object}}`;
        throw new ArgumentError(`'${object}' is not KEY=VALUE (a line that starts with { is sent as QMP: ${raw})`);
      }
      const args = rest.length > 0 ? await this.#schema.arguments(command, rest, signal) : undefined;
      return await this.#context.execute(command, args, signal);
    } catch (error) {
      return signal.aborted ? localError(error) : this.#failed(error); // a line dropped with Ctrl-C: not sent
    }
  }

  refuse(reason: string): Outcome {
    return this.#failed(new ArgumentError(reason));
  }

  /**
   * A line that was not run, as its error outcome; in a transaction, one that made no action, which the
   * `)` line's error names again: piped lines print only that one, one line for the transaction.
   */
  #failed(error: unknown): Outcome {
    if (!this.#actions) return localError(error);
    const outcome = localError(error) as Extract<Outcome, { kind: "error" }>;
    this.#counted(outcome.error.desc);
    outcome.error.desc += " (so the transaction will not be sent)";
    return { ...outcome, inTransaction: true };
  }

  /** A line of the open transaction made no action, for `why`: the transaction will not go. */
  #counted(why: string): void {
    this.#failedActions++;
    this.#firstFailure ??= why;
  }

  /**
   * `help`: the local commands; `help CMD`: the arguments CMD takes, from the
   * schema, as `qmpctl commands --long` shows them. A mistake here is the
   * help's own, not a failed line of a transaction it is typed in.
   */
  async #help(words: string[], signal: AbortSignal): Promise<Outcome> {
    if (words.length === 0) return { kind: "note", text: QMP_HELP };
    if (words.length > 1) return localError(new ArgumentError("usage: help [CMD]"));
    const [command] = words;
    try {
      const text = await withSchema(this.#context.client, { signal, scope: { command } }, (schema) => {
        schema.requireCommand(command); // else the closest names
        return `${command} ${signature(schema, command) || "(no arguments)"}`;
      });
      return { kind: "note", text: `${text}\n(qmpctl describe ${command}: its types in full)` };
    } catch (error) {
      if (!(error instanceof CommandError) || signal.aborted) return localError(error);
      return { kind: "note", text: `QEMU has no schema to describe ${command} with (query-qmp-schema: QEMU 2.5)` };
    }
  }

  /**
   * A line inside `transaction(` ... `)`: an action, maybe followed by `)`,
   * or `)` alone. The transaction goes out only when every line made an
   * action: sent without one, QEMU would apply the rest.
   */
  async #transactionLine(words: string[], signal: AbortSignal): Promise<Outcome> {
    const close = words.at(-1) === ")";
    const body = close ? words.slice(0, -1) : words;
    if (body.length > 0) {
      const action = this.#action(body, signal).then((action) => this.#addAction(action));
      if (!close) return await action; // its error is counted by run()
      await action.catch((error) => {
        localError(error); // throws what is not the line's own fault (a lost connection)
        this.#counted((error as Error).message);
      });
    }
    if (!close) return NOTHING;
    const actions = this.#actions!, failed = this.#failedActions;
    this.#actions = undefined;
    if (failed > 0) { // sent without them, QEMU would apply the rest: all or nothing
      throw new ArgumentError(
        `${this.#firstFailure}; the transaction was not sent: ${failed} of its lines made no action`,
      );
    }
    return this.#context.execute("transaction", { actions }, signal);
  }

  /**
   * The action of a transaction line's words: its type checked against the
   * schema's action types, so that a mistyped one is refused here with the
   * closest names rather than by QEMU's "does not accept value" (unchecked
   * without a schema); its data typed as the command of that name's arguments.
   */
  async #action([type, ...words]: string[], signal: AbortSignal): Promise<Action> {
    if (type === "transaction(") throw new ArgumentError("a transaction is open: end it with ) before another");
    const types = await this.#schema.actionTypes(signal).catch((error) => {
      if (signal.aborted) throw error; // Ctrl-C: the line is dropped
      return undefined; // no schema (QEMU before 2.5): QEMU checks the type
    });
    if (types && !types.includes(type)) {
      throw new ArgumentError(`unknown transaction action '${type}'${didYouMean(type, types)}`);
    }
    return { type, data: await this.#schema.actionData(type, words, signal) };
  }

  #addAction(action: Action): Outcome {
    if (typeof action.type !== "string") throw new ArgumentError('a transaction action needs a "type"');
    this.#actions!.push(action);
    return NOTHING;
  }

  /** A raw QMP command: `execute` or `exec-oob`, `arguments`, `id`, as QEMU takes them. */
  #raw(text: string, signal: AbortSignal): Promise<Outcome> {
    const { execute, "exec-oob": oob, arguments: args, id, ...unknown } = jsonObject(text);
    const command = execute ?? oob;
    if (execute !== undefined && oob !== undefined) {
      throw new ArgumentError('a raw QMP line holds "execute" or "exec-oob", not both');
    }
    if (typeof command !== "string") {
      throw new ArgumentError('a raw QMP line needs "execute" (or "exec-oob") with a command name');
    }
    const extra = Object.keys(unknown);
    if (extra.length > 0) throw new ArgumentError(`a raw QMP line cannot hold "${extra[0]}"`);
    if (args !== undefined && (typeof args !== "object" || args === null || Array.isArray(args))) {
      throw new ArgumentError('"arguments" must be a JSON object');
    }
    return this.#context.execute(command, args as Record<string, unknown> | undefined, signal, {
      id,
      oob: oob !== undefined,
    });
  }

  async complete(before: string, signal: AbortSignal): Promise<Completion> {
    const { words, word, start, inComment } = wordsBefore(before);
    if (inComment || before.trimStart().startsWith("{")) return NO_COMPLETION;
    const inTransaction = this.#actions !== undefined || words[0] === "transaction(";
    const command = words[0] === "transaction(" ? words[1] : words[0];
    if (command === undefined) {
      const names = inTransaction ? [...await this.#schema.actionTypes(signal), ")"] : [
        ...await this.#schema.commandNames(signal),
        ...LOCAL_WORDS,
      ];
      return { start, candidates: matching(word, names) };
    }
    if (command === "help" && words.length === 1) { // help CMD
      return { start, candidates: matching(word, await this.#schema.commandNames(signal)) };
    }
    if (command === "events" && words.length === 1 && !inTransaction) {
      return { start, candidates: matching(word, ["off", "on"]) };
    }
    const previous = words.slice(words[0] === "transaction(" ? 2 : 1);
    return { start, candidates: matching(word, await this.#schema.argumentWords(command, previous, word, signal)) };
  }
}

function jsonObject(text: string): Record<string, unknown> {
  return parseArgumentsJson(text, "the line");
}
