/**
 * The digest of `query-qmp-schema`: what typing, checking, `describe` and
 * completion need, in a form that is cheap to load from the cache (about
 * half the size of QEMU's answer, and indexed by name).
 *
 * QEMU's introspection (qapi/introspect.json) names every type but the
 * built-in ones with a meaningless number ("49", "[49]" for its array); the
 * digest keeps those names, since only references between types use them.
 *
 * @module
 */
import { ProtocolError } from "../errors.ts";

/** A QMP command: the object type of its arguments and the type it returns. */
export interface CommandInfo {
  /** The name of its arguments' object type, in `types`. */
  args: string;
  /** The name of the type it returns, in `types`. */
  returns: string;
  /** Its features (`deprecated`, `unstable`, ...), when it has any. */
  features?: string[];
  /** Present when it may run out of band (QEMU's `allow-oob`). */
  oob?: true;
}

/** A QMP event: the object type of its `data`. */
export interface EventInfo {
  /** The name of its `data` object type, in `types`. */
  data: string;
  /** Its features (`deprecated`, `unstable`, ...), when it has any. */
  features?: string[];
}

/** One member of an object type. */
export interface MemberInfo {
  /** The member's name, as an arguments object or event data holds it. */
  name: string;
  /** The name of its type, in `types`. */
  type: string;
  /** Present when it may be left out. */
  optional?: true;
  /** Its features (`deprecated`, `unstable`, ...), when it has any. */
  features?: string[];
}

/**
 * A type. `builtin` carries QEMU's json-type (`string`, `int`, `number`,
 * `boolean`, `null`, `value` for `any`); a flat union is an `object` with a
 * `tag` member whose value picks one of `variants` (case → object type) whose
 * members are added; `other` is a meta-type this version does not know.
 */
export type TypeInfo =
  | { kind: "builtin"; json: string }
  | { kind: "enum"; values: string[]; features?: Record<string, string[]> }
  | { kind: "array"; element: string }
  | { kind: "object"; members: MemberInfo[]; tag?: string; variants?: Record<string, string> }
  | { kind: "alternate"; members: string[] }
  | { kind: "other" };

/** The whole digest. */
export interface SchemaDigest {
  /** The commands, by name. */
  commands: Record<string, CommandInfo>;
  /** The events, by name. */
  events: Record<string, EventInfo>;
  /** The types, by QEMU's name for them (`str`, `int`, or a number such as `49`, `[49]` for its array). */
  types: Record<string, TypeInfo>;
}

type Raw = Record<string, unknown>;

/**
 * Digest QEMU's answer to `query-qmp-schema`.
 * @throws {ProtocolError} when the answer is not a schema
 */
export function digestSchema(schema: unknown): SchemaDigest {
  if (!Array.isArray(schema)) throw new ProtocolError("query-qmp-schema did not return an array");
  const digest: SchemaDigest = { commands: {}, events: {}, types: {} };
  for (const entry of schema as Raw[]) {
    const name = entry?.name;
    if (typeof name !== "string") throw new ProtocolError("query-qmp-schema returned an entry without a name");
    const features = withFeatures(entry);
    switch (entry["meta-type"]) {
      case "command":
        digest.commands[name] = {
          args: String(entry["arg-type"]),
          returns: String(entry["ret-type"]),
          ...features,
          ...(entry["allow-oob"] === true ? { oob: true } : {}),
        };
        break;
      case "event":
        digest.events[name] = { data: String(entry["arg-type"]), ...features };
        break;
      default:
        digest.types[name] = digestType(entry);
    }
  }
  if (!isDigest(digest)) {
    throw new ProtocolError(
      "query-qmp-schema returned an inconsistent schema (a type it does not define, or an alternate or union that contains itself)",
    );
  }
  return digest;
}

function withFeatures(entry: Raw): { features?: string[] } {
  const features = entry.features;
  return Array.isArray(features) && features.length > 0 ? { features: features.map(String) } : {};
}

function digestType(entry: Raw): TypeInfo {
  const members = Array.isArray(entry.members) ? (entry.members as Raw[]) : [];
  switch (entry["meta-type"]) {
    case "builtin":
      return { kind: "builtin", json: String(entry["json-type"]) };
    case "enum": {
      // QEMU 6.2+ lists members with features; older ones only `values`.
      const values = members.length > 0 ? members.map((m) => String(m.name)) : (entry.values as string[] ?? []);
      const features = Object.fromEntries(
        members.filter((m) => withFeatures(m).features).map((m) => [String(m.name), withFeatures(m).features!]),
      );
      return { kind: "enum", values, ...(Object.keys(features).length > 0 ? { features } : {}) };
    }
    case "array":
      return { kind: "array", element: String(entry["element-type"]) };
    case "object": {
      const type: TypeInfo = {
        kind: "object",
        members: members.map((m) => ({
          name: String(m.name),
          type: String(m.type),
          ...("default" in m ? { optional: true as const } : {}),
          ...withFeatures(m),
        })),
      };
      if (typeof entry.tag === "string" && Array.isArray(entry.variants)) {
        type.tag = entry.tag;
        type.variants = Object.fromEntries((entry.variants as Raw[]).map((v) => [String(v.case), String(v.type)]));
      }
      return type;
    }
    case "alternate":
      return { kind: "alternate", members: members.map((m) => String(m.type)) };
    default:
      return { kind: "other" };
  }
}

/**
 * Whether `value` is a whole, consistent digest: every entry has its shape
 * and every type it refers to is defined. A cache entry that fails this is
 * refetched, never trusted.
 */
export function isDigest(value: unknown): value is SchemaDigest {
  const d = value as SchemaDigest;
  if (!isRecord(d) || !isRecord(d.commands) || !isRecord(d.events) || !isRecord(d.types)) return false;
  const types = d.types;
  const known = (name: unknown) => typeof name === "string" && Object.hasOwn(types, name);
  const stringList = (list: unknown) => Array.isArray(list) && list.every((s) => typeof s === "string");
  const features = (x: { features?: unknown }) => x.features === undefined || stringList(x.features);
  for (const c of Object.values(d.commands)) {
    if (!isRecord(c) || !known(c.args) || !known(c.returns) || !features(c)) return false;
  }
  for (const e of Object.values(d.events)) if (!isRecord(e) || !known(e.data) || !features(e)) return false;
  for (const t of Object.values(types)) {
    if (!isRecord(t)) return false;
    switch (t.kind) {
      case "builtin":
        if (typeof t.json !== "string") return false;
        break;
      case "enum":
        if (!stringList(t.values) || (t.features !== undefined && !isRecord(t.features))) return false;
        break;
      case "array":
        if (!known(t.element)) return false;
        break;
      case "alternate":
        // QAPI never nests an alternate in an alternate; one that does (or
        // names itself) would send typing round in circles.
        if (!Array.isArray(t.members) || !t.members.every(known)) return false;
        if (t.members.some((m: string) => (types[m] as { kind?: unknown } | undefined)?.kind === "alternate")) {
          return false;
        }
        break;
      case "object":
        if (!Array.isArray(t.members)) return false;
        for (const m of t.members) if (!isRecord(m) || typeof m.name !== "string" || !known(m.type)) return false;
        if (t.variants !== undefined && (typeof t.tag !== "string" || !isRecord(t.variants))) return false;
        if (t.variants && !Object.values(t.variants).every(known)) return false;
        break;
      case "other":
        break;
      default:
        return false;
    }
  }
  return variantsAcyclic(types);
}

/**
 * Whether no union reaches itself through its variants (arguments are typed
 * by following them). Depth-first with its own stack, so a long chain from a
 * hostile server cannot overflow the call stack.
 */
function variantsAcyclic(types: Record<string, TypeInfo>): boolean {
  const state = new Map<string, "open" | "done">();
  const branchesOf = (name: string) => {
    const type = types[name];
    return type.kind === "object" ? Object.values(type.variants ?? {}) : [];
  };
  for (const root of Object.keys(types)) {
    if (state.has(root)) continue;
    const stack: { name: string; next: number; branches: string[] }[] = [];
    const enter = (name: string) => {
      state.set(name, "open");
      stack.push({ name, next: 0, branches: branchesOf(name) });
    };
    enter(root);
    while (stack.length > 0) {
      const top = stack[stack.length - 1];
      if (top.next === top.branches.length) {
        state.set(top.name, "done");
        stack.pop();
        continue;
      }
      const branch = top.branches[top.next++];
      const seen = state.get(branch);
      if (seen === "open") return false;
      if (seen === undefined) enter(branch);
    }
  }
  return true;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** The part of a digest that one command needs: the command, and every type its arguments and return reach. */
export function commandPart(digest: SchemaDigest, name: string): SchemaDigest {
  const command = digest.commands[name];
  const types: Record<string, TypeInfo> = {};
  const todo = [command.args, command.returns]; // a list, not recursion: a long chain of types cannot overflow the stack
  while (todo.length > 0) {
    const typeName = todo.pop()!;
    if (Object.hasOwn(types, typeName)) continue;
    const type = types[typeName] = digest.types[typeName];
    if (type.kind === "array") todo.push(type.element);
    else if (type.kind === "alternate") todo.push(...type.members);
    else if (type.kind === "object") {
      todo.push(...type.members.map((m) => m.type), ...Object.values(type.variants ?? {}));
    }
  }
  return { commands: { [name]: command }, events: {}, types };
}
