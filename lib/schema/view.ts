/**
 * One client's view of its QEMU's schema, for a session that asks many
 * times (an interactive shell): the typing of `KEY=VALUE` words (the same
 * entry point as a one-shot `typedArguments`), command names (from
 * `query-commands`, which needs no schema), and argument names and values
 * for completion (from the cached `query-qmp-schema`, loaded once, when
 * first needed).
 *
 * @module
 */
import { buildArguments, untypedArguments } from "../args.ts";
import type { QmpClient } from "../client.ts";
import { listedCommands } from "./cache.ts";
import { loadSchema, typedArguments } from "./load.ts";
import type { Schema } from "./model.ts";
import { completeArgumentWord } from "./complete.ts";

/** The schema questions of one client's session, each answer fetched once. */
export class SchemaView {
  readonly #client: QmpClient;
  #schema?: Promise<Schema>;

  constructor(client: QmpClient) {
    this.#client = client;
  }

  /**
   * The arguments object of `command` from its `KEY=VALUE` words, typed and
   * checked by the schema when a value needs typing.
   * @throws {ArgumentError} for a malformed word, an unknown command or argument, a bad value
   */
  async arguments(command: string, words: string[], signal: AbortSignal): Promise<Record<string, unknown>> {
    // A malformed word fails here, before any schema is loaded.
    return untypedArguments(words) ?? await typedArguments(this.#client, command, words, undefined, { signal });
  }

  /**
   * The data of a transaction action: typed as the arguments of the command
   * of the same name (`block-dirty-bitmap-add`), untyped for an action that
   * is no command (`abort`).
   */
  async actionData(type: string, words: string[], signal: AbortSignal): Promise<Record<string, unknown>> {
    if (words.length === 0) return {};
    const schema = await this.#load(signal).catch((error) => {
      if (signal.aborted) throw error; // Ctrl-C: the line is dropped, not sent untyped
      return undefined; // no schema (QEMU before 2.5): untyped
    });
    return schema?.command(type) ? this.arguments(type, words, signal) : buildArguments(words);
  }

  /** Every command QEMU offers (asked once). */
  commandNames(signal: AbortSignal): Promise<string[]> {
    return listedCommands(this.#client, signal);
  }

  /** The action types of `transaction`. */
  async actionTypes(signal: AbortSignal): Promise<string[]> {
    const prefix = "actions.0.type=";
    const words = completeArgumentWord(await this.#load(signal), "transaction", [], prefix);
    return words.map((word) => word.slice(prefix.length));
  }

  /**
   * Whole-word candidates for the argument word `current` of `command`
   * (`node-name=`, `driver=null-co`), given the words before it.
   */
  async argumentWords(command: string, previous: string[], current: string, signal: AbortSignal): Promise<string[]> {
    return completeArgumentWord(await this.#load(signal), command, previous, current);
  }

  #load(signal: AbortSignal): Promise<Schema> {
    this.#schema ??= loadSchema(this.#client, { signal, checkCommands: true }); // completes what this QEMU has
    this.#schema.catch(() => (this.#schema = undefined)); // try again next time
    return this.#schema;
  }
}
