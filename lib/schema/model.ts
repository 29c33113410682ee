/**
 * The model of QEMU's schema: a digest (see digest.ts) with lookups by name,
 * whole or in part (one command with the types it reaches, or the names).
 *
 * @module
 */
import { didYouMean } from "../closest.ts";
import { ArgumentError } from "../errors.ts";
import { eventMatcher, isGlob } from "../events.ts";
import type { KeyValueWord } from "../args.ts";
import type { CommandInfo, EventInfo, MemberInfo, SchemaDigest, TypeInfo } from "./digest.ts";

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

  /**
   * Check conditions on the data of the events `names` (names or globs;
   * every event when empty): each KEY must lead, member by member, into the
   * data of one of them at least, and a value for an enum must be one of its
   * values. A condition that no such event can meet would wait forever.
   * Past an `any`, an alternate or an array nothing more is known: accepted.
   * @throws {ArgumentError} naming the word, and the closest member names or values
   */
  checkEventData(names: readonly string[], conditions: readonly KeyValueWord[]): void {
    const matches = eventMatcher({ names });
    const events = this.eventNames().filter((event) => names.length === 0 || matches({ event }));
    for (const condition of conditions) {
      const misses = events.map((event) => this.#missIn(this.event(event)!.data, condition));
      if (events.length === 0 || misses.some((miss) => miss === undefined)) continue;
      const reason = events.length === 1
        ? misses[0]!.text
        : `none of their data has it${misses.map((m) => m!.hint).find((h) => h !== "") ?? ""}`;
      const what = names.length > 0 ? names.join(" or ") : "any event";
      throw new ArgumentError(`the condition '${condition.word}' can never hold for ${what}: ${reason}`);
    }
  }

  /** Why `condition` cannot hold for data of type `typeName`, with the closest names; undefined when it can. */
  #missIn(typeName: string, { path, text, raw }: KeyValueWord): { text: string; hint: string } | undefined {
    let type = this.type(typeName);
    for (const [i, key] of path.entries()) {
      if (type.kind !== "object") return undefined; // any, alternate, array: cannot tell
      const all = this.#allMembers(type);
      const member = all.find((m) => m.name === key);
      if (member) {
        type = this.type(member.type);
        continue;
      }
      const members = all.map((m) => m.name);
      if (i === 0 && members.length === 0) return { text: "it has no data", hint: "" };
      const hint = didYouMean(key, members);
      const where = i === 0 ? "its data" : `'${path.slice(0, i).join(".")}'`;
      return { text: `it has no '${key}' in ${where}${hint}`, hint };
    }
    if (type.kind !== "enum") return undefined;
    const value = raw ? parseJsonOrUndefined(text) : text;
    if (typeof value === "string" && type.values.includes(value)) return undefined;
    const hint = didYouMean(String(value), type.values) || ` (one of ${type.values.join(", ")})`;
    return { text: `its ${path.join(".")} is never ${JSON.stringify(value ?? text)}${hint}`, hint };
  }

  /** An object's members with those of every union branch (the tag's value is not known in advance). */
  #allMembers(type: TypeInfo & { kind: "object" }): MemberInfo[] {
    const members = [...type.members];
    for (const branch of Object.values(type.variants ?? {})) {
      const info = this.type(branch);
      if (info.kind !== "object") continue;
      for (const member of this.#allMembers(info)) {
        if (!members.some((m) => m.name === member.name)) members.push(member);
      }
    }
    return members;
  }
}

function parseJsonOrUndefined(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/**
 * How much of the schema to load: all of it; only the command and event
 * names; or one command with the types it reaches (when the command is
 * unknown, the names, so that `requireCommand` can suggest others).
 */
export type SchemaScope = "all" | "names" | { command: string };
