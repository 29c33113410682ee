/**
 * The model of QEMU's schema: a digest (see digest.ts) with lookups by name,
 * whole or in part (one command with the types it reaches, or the names).
 *
 * @module
 */
import { didYouMean } from "../closest.ts";
import { ArgumentError } from "../errors.ts";
import { bracketsNoGlobHint } from "../glob.ts";
import { eventMatcher, isGlob } from "../events.ts";
import { isArrayIndex, type KeyValueWord, parseJson } from "../args.ts";
import { isJsonObject, isRawNumber } from "../exact_json.ts";
import type { CommandInfo, EventInfo, MemberInfo, SchemaDigest, TypeInfo } from "./digest.ts";

/** A digested schema (or the part of it that was loaded) with lookups by name. */
export class Schema {
  /** The digest (plain JSON); a part holds fewer commands and types. */
  readonly digest: SchemaDigest;
  /** True when it came from the cache rather than from QEMU just now. */
  readonly fromCache: boolean;
  #commandNames?: string[];
  #eventNames?: string[];

  /**
   * A schema over `digest`. `fromCache` says where it came from;
   * `commandNames` and `eventNames` (sorted) stand for the digest's own when
   * only the names were loaded (scope `names`: the digest is empty).
   */
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
    if (!info) throw new ArgumentError(`unknown command '${name}'${this.notACommandHint(name)}`);
    return info;
  }

  /** For a name that is no command: ` (NAME is an event: ...)` when it is one, else the closest commands, or "". */
  notACommandHint(name: string): string {
    if (this.eventNames().includes(name)) {
      return ` (${name} is an event, which QEMU sends: it can be waited for, not run)`;
    }
    return didYouMean(name, this.commandNames().filter((n) => n !== name));
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
      throw new ArgumentError(`${what}${bracketsNoGlobHint(name)}${didYouMean(name.replace(/[*?]/g, ""), known)}`);
    }
  }

  /**
   * Check conditions on the data of the events `names` (names or globs;
   * every event when empty): each KEY must lead, member by member (an
   * array's by its index), into the data of one of them at least, and the
   * VALUE must be one such a member can have (an enum's value, a bool's
   * true or false, a number). A condition that no such event can meet would
   * wait forever. Past an `any` or an alternate nothing more is known: accepted.
   * @throws {ArgumentError} naming the word, and the closest member names or values
   */
  checkEventData(names: readonly string[], conditions: readonly KeyValueWord[]): void {
    const matches = eventMatcher({ names });
    const events = this.eventNames().filter((event) => names.length === 0 || matches({ event }));
    for (const condition of conditions) {
      const misses = events.map((event) => ({ event, miss: this.#missIn(this.event(event)!.data, condition) }));
      if (events.length === 0 || misses.some(({ miss }) => miss === undefined)) continue;
      const what = names.length > 0 ? names.join(" or ") : "any event";
      throw new ArgumentError(`the condition '${condition.word}' can never hold for ${what}: ${this.#why(misses)}`);
    }
  }

  /** Why a condition holds for none of several events: theirs that have its first key, else the closest key. */
  #why(misses: { event: string; miss?: Miss }[]): string {
    if (misses.length === 1) return misses[0].miss!.text;
    const near = misses.filter(({ miss }) => !miss!.noFirstKey);
    if (near.length === 0) {
      const keys = new Set(misses.flatMap(({ miss }) => miss!.firstKeys));
      return `none of their data has '${misses[0].miss!.firstKey}'${didYouMean(misses[0].miss!.firstKey, keys)}`;
    }
    const byText = new Map<string, string[]>(); // events that miss it for the same reason, said once
    for (const { event, miss } of near) byText.set(miss!.text, [...byText.get(miss!.text) ?? [], event]);
    const shown = [...byText].slice(0, 3).map(([text, events]) => `${events.join(", ")}: ${text}`);
    return shown.join("; ") + (byText.size > 3 ? `; and ${byText.size - 3} more` : "");
  }

  /** Why `condition` cannot hold for data of type `typeName`, with the closest names; undefined when it can. */
  #missIn(typeName: string, condition: KeyValueWord): Miss | undefined {
    const type = this.type(typeName);
    const firstKeys = type.kind === "object" ? this.#allMembers(type).map((m) => m.name) : [];
    const miss = this.#missAt(type, condition, 0);
    if (miss === undefined) return undefined;
    return { text: miss.text, noFirstKey: miss.noFirstKey, firstKey: condition.path[0], firstKeys };
  }

  /** `#missIn` from the key at `i` on, in `type`; a member several union branches have is tried in each. */
  #missAt(type: TypeInfo, condition: KeyValueWord, i: number): { text: string; noFirstKey: boolean } | undefined {
    const { path, text, raw } = condition;
    const miss = (text: string, noFirstKey = false) => ({ text, noFirstKey });
    if (i === path.length) {
      // The value, as the matcher takes it: the JSON it parses as, or (KEY=VALUE) a string of its text.
      const json = parseJson(text);
      const inside = type.kind === "object" && type.members.length > 0
        ? ` (a member inside it, as ${path.join(".")}.${type.members[0].name}=VALUE, is matched on its own)`
        : "";
      // An object is compared whole: one without a member every such object has, or with one none has, never equals.
      if (type.kind === "object" && isJsonObject(json)) {
        const lacks = this.#lacking(type, json);
        if (lacks !== undefined) return miss(`its ${path.join(".")} is compared whole, and ${text} ${lacks}${inside}`);
      }
      if ((raw ? [json] : [json, text]).some((value) => fitsLeaf(type, value))) return undefined;
      const shown = raw ? text : JSON.stringify(text);
      const hint = type.kind === "enum" && !raw ? didYouMean(text, type.values) : "";
      // The closest value says enough; without one, the values it can have.
      return miss(`its ${path.join(".")} is ${hint ? "" : `${describeValue(type)}, `}never ${shown}${hint}${inside}`);
    }
    const key = path[i];
    const where = i === 0 ? "its data" : `'${path.slice(0, i).join(".")}'`;
    if (type.kind === "array") {
      if (!isArrayIndex(key)) return miss(`${where} is an array: '${key}' is no index into it`);
      return this.#missAt(this.type(type.element), condition, i + 1);
    }
    if (type.kind === "alternate" || (type.kind === "builtin" && type.json === "value") || type.kind === "other") {
      return undefined; // cannot tell what is inside
    }
    if (type.kind !== "object") return miss(`${where} is ${describeValue(type)}, with nothing inside`);
    const all = this.#allMembers(type);
    const candidates = all.filter((m) => m.name === key);
    if (candidates.length === 0) {
      if (i === 0 && all.length === 0) return miss("it has no data", true);
      return miss(`it has no '${key}' in ${where}${didYouMean(key, new Set(all.map((m) => m.name)))}`, i === 0);
    }
    const misses = candidates.map((member) => this.#missAt(this.type(member.type), condition, i + 1));
    return misses.some((m) => m === undefined) ? undefined : misses[0];
  }

  /**
   * Why an object `value` can never be a whole value of `type`: "has no 'm'"
   * for a member every such object has, "has 'k', which none has" for a key
   * that is no member of any branch; undefined when it may be one.
   */
  #lacking(type: TypeInfo & { kind: "object" }, value: Record<string, unknown>): string | undefined {
    const missing = type.members.find((m) => !m.optional && !Object.hasOwn(value, m.name));
    if (missing) return `has no '${missing.name}'`;
    const names = new Set(this.#allMembers(type).map((m) => m.name));
    const stray = Object.keys(value).find((key) => !names.has(key));
    return stray === undefined ? undefined : `has '${stray}', which none has${didYouMean(stray, names)}`;
  }

  /** An object's members with those of every union branch (the tag's value is not known in advance). */
  #allMembers(type: TypeInfo & { kind: "object" }): MemberInfo[] {
    const members = [...type.members];
    for (const branch of Object.values(type.variants ?? {})) {
      const info = this.type(branch);
      if (info.kind !== "object") continue;
      for (const member of this.#allMembers(info)) {
        // The same name in another branch may have another type: kept, and tried too.
        if (!members.some((m) => m.name === member.name && m.type === member.type)) members.push(member);
      }
    }
    return members;
  }
}

/** Why a condition cannot hold for one event's data. */
interface Miss {
  text: string;
  /** Its data has no member by the condition's first key (the event is no near miss). */
  noFirstKey: boolean;
  firstKey: string;
  /** The members of its data, for the closest name when no event has the key. */
  firstKeys: string[];
}

/** What a member of `type` is, for a message. */
function describeValue(type: TypeInfo): string {
  if (type.kind === "enum") return `one of ${type.values.join(", ")}`;
  if (type.kind === "builtin") {
    return { boolean: "true or false", int: "a whole number", number: "a number" }[type.json] ?? `a ${type.json}`;
  }
  return `an ${type.kind}`;
}

/** Whether a leaf member of `type` can equal `value` (undefined: text that is no JSON). */
function fitsLeaf(type: TypeInfo, value: unknown): boolean {
  switch (type.kind) {
    case "enum":
      return typeof value === "string" && type.values.includes(value);
    case "builtin":
      switch (type.json) {
        case "string":
          return typeof value === "string";
        case "int": // the matcher compares numbers by value (1.0 is 1), beyond 2^53 too
          return typeof value === "number" ? Number.isInteger(value) : isRawNumber(value) && isWhole(value);
        case "number":
          return typeof value === "number" || isRawNumber(value);
        case "boolean":
          return typeof value === "boolean";
        case "null":
          return value === null;
      }
      return value !== undefined;
    case "object": // given as JSON, compared whole
      return isJsonObject(value);
    case "array":
      return Array.isArray(value);
    default:
      return value !== undefined;
  }
}

/** Whether an exactly kept number (as written: 2.0, 1e3, 2^64 - 1) is a whole one: no digit past its point but 0. */
function isWhole(raw: unknown): boolean {
  const [, whole, fraction = "", exponent = "0"] =
    /^-?(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/.exec(JSON.stringify(raw)) ?? [];
  if (whole === undefined) return false;
  const digits = whole + fraction;
  return /^0*$/.test(digits.slice(Math.max(0, whole.length + Number(exponent))));
}

/**
 * How much of the schema to load: all of it; only the command and event
 * names; or one command with the types it reaches (when the command is
 * unknown, the names, so that `requireCommand` can suggest others).
 */
export type SchemaScope = "all" | "names" | { command: string };
