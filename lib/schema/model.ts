/**
 * The model of QEMU's schema: a digest (see digest.ts) with lookups by name,
 * whole or in part (one command with the types it reaches, or the names).
 *
 * @module
 */
import { didYouMean } from "../closest.ts";
import { ArgumentError } from "../errors.ts";
import { eventMatcher, isGlob } from "../events.ts";
import type { CommandInfo, EventInfo, SchemaDigest, TypeInfo } from "./digest.ts";

/** A digested schema (or the part of it that was loaded) with lookups by name. */
export class Schema {
  /** The digest (plain JSON); a part holds fewer commands and types. */
  readonly digest: SchemaDigest;
  /** True when it came from the cache rather than from QEMU just now. */
  readonly fromCache: boolean;
  #commandNames?: string[];
  #eventNames?: string[];

  constructor(
    digest: SchemaDigest,
    options: { fromCache?: boolean; commandNames?: string[]; eventNames?: string[] } = {},
  ) {
    this.digest = digest;
    this.fromCache = options.fromCache ?? false;
    this.#commandNames = options.commandNames;
    this.#eventNames = options.eventNames;
  }

  /** Every command name, sorted. */
  commandNames(): string[] {
    return this.#commandNames ??= Object.keys(this.digest.commands).sort();
  }

  /** Every event name, sorted. */
  eventNames(): string[] {
    return this.#eventNames ??= Object.keys(this.digest.events).sort();
  }

  /** A command, or undefined (also when this part of the schema does not hold it). */
  command(name: string): CommandInfo | undefined {
    return Object.hasOwn(this.digest.commands, name) ? this.digest.commands[name] : undefined;
  }

  /** An event, or undefined (also when this part of the schema does not hold it). */
  event(name: string): EventInfo | undefined {
    return Object.hasOwn(this.digest.events, name) ? this.digest.events[name] : undefined;
  }

  /** A type by its (schema-internal) name; a loaded digest defines every type it refers to. */
  type(name: string): TypeInfo {
    return this.digest.types[name];
  }

  /**
   * A command, or an ArgumentError naming the closest known commands.
   * @throws {ArgumentError}
   */
  requireCommand(name: string): CommandInfo {
    const info = this.command(name);
    if (!info) throw new ArgumentError(`unknown command '${name}'${didYouMean(name, this.commandNames())}`);
    return info;
  }

  /**
   * Check event names: an exact name must be an event of this QEMU, and a
   * glob (`BLOCK_JOB_*`) must match at least one, since a glob that matches
   * nothing can never be satisfied and is as much a mistake as a misspelt name.
   * @throws {ArgumentError} naming the closest known events
   */
  checkEventNames(names: readonly string[]): void {
    const known = this.eventNames();
    for (const name of names) {
      if (isGlob(name) ? known.some((e) => eventMatcher({ names: [name] })({ event: e })) : known.includes(name)) {
        continue;
      }
      const what = isGlob(name) ? `no event matches '${name}'` : `unknown event '${name}'`;
      throw new ArgumentError(`${what}${didYouMean(name.replace(/[*?]/g, ""), known)}`);
    }
  }
}

/**
 * How much of the schema to load: all of it; only the command and event
 * names; or one command with the types it reaches (when the command is
 * unknown, the names, so that `requireCommand` can suggest others).
 */
export type SchemaScope = "all" | "names" | { command: string };
