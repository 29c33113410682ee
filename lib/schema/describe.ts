/**
 * Readable JSON for commands, events and types, resolved from the schema's
 * numbered type names:
 *
 * - a built-in type is its name: `"str"`, `"int"`, `"number"`, `"bool"`, `"null"`, `"any"`;
 * - an enum is `{"enum": [values]}` (with `"features"` of values that have any);
 * - an array is `{"array": element}`; an alternate `{"alternate": [branches]}`;
 * - an object maps member names to types; an optional member's name ends in
 *   `?`, and a member with features (`deprecated`, `unstable`) has them in
 *   brackets after its name (`"device? [deprecated]"`); a flat union adds one
 *   key per branch, `"driver=null-co"`, mapping to the members that branch adds;
 * - a type met again inside itself is `"(recursive)"`.
 *
 * @module
 */
import { didYouMean } from "../closest.ts";
import { isGlob } from "../glob.ts";
import { ArgumentError } from "../errors.ts";
import type { Schema } from "./model.ts";
import type { MemberInfo } from "./digest.ts";

/**
 * A command or an event, described.
 *
 * @example
 * ```ts
 * import { QmpClient } from "../client.ts";
 * import { describe, loadSchema } from "./mod.ts";
 * const schema = await loadSchema(await QmpClient.connect("/run/vm1.qmp"));
 * describe(schema, "set_link");
 * // { command: "set_link", arguments: { name: "str", up: "bool" }, returns: {} }
 * ```
 * @throws {ArgumentError} when `name` is neither, naming the closest ones
 */
export function describe(schema: Schema, name: string): Record<string, unknown> {
  const command = schema.command(name);
  if (command) {
    return {
      command: name,
      arguments: describeType(schema, command.args),
      returns: describeType(schema, command.returns),
      ...(command.features ? { features: command.features } : {}),
      ...(command.oob ? { "allow-oob": true } : {}),
    };
  }
  const event = schema.event(name);
  if (event) {
    return {
      event: name,
      data: describeType(schema, event.data),
      ...(event.features ? { features: event.features } : {}),
    };
  }
  const known = [...schema.commandNames(), ...schema.eventNames()];
  if (isGlob(name)) throw new ArgumentError(`describe takes one name, not a glob ('${name}')`);
  throw new ArgumentError(`'${name}' is neither a command nor an event${didYouMean(name, known)}`);
}

/** A type as readable JSON (see the module's description). */
export function describeType(schema: Schema, typeName: string, within: ReadonlySet<string> = new Set()): unknown {
  const type = schema.type(typeName);
  if (within.has(typeName)) return "(recursive)";
  const inner = new Set(within).add(typeName);
  switch (type.kind) {
    case "builtin":
      return typeName;
    case "enum":
      return { enum: type.values, ...(type.features ? { features: type.features } : {}) };
    case "array":
      return { array: describeType(schema, type.element, inner) };
    case "alternate":
      return { alternate: type.members.map((m) => describeType(schema, m, inner)) };
    case "object": {
      const out: Record<string, unknown> = membersObject(schema, type.members, inner);
      for (const [value, branch] of Object.entries(type.variants ?? {})) {
        out[`${type.tag}=${value}`] = describeType(schema, branch, inner);
      }
      return out;
    }
    default:
      return "any";
  }
}

function membersObject(schema: Schema, members: MemberInfo[], within: ReadonlySet<string>): Record<string, unknown> {
  return Object.fromEntries(members.map((m) => [memberKey(m), describeType(schema, m.type, within)]));
}

function memberKey(member: MemberInfo): string {
  return `${member.name}${member.optional ? "?" : ""}${member.features ? ` [${member.features.join(", ")}]` : ""}`;
}

/**
 * A command's arguments on one line, as they are written on the command line:
 * optional ones in brackets, enums as their values, a flat union's branch
 * members after `...`.
 *
 * @example
 * ```ts
 * import { QmpClient } from "../client.ts";
 * import { loadSchema, signature } from "./mod.ts";
 * const schema = await loadSchema(await QmpClient.connect("/run/vm1.qmp"));
 * signature(schema, "set_link"); // "name=str up=bool"
 * ```
 */
export function signature(schema: Schema, command: string): string {
  const info = schema.command(command);
  return info ? membersSignature(schema, info.args) : "";
}

/** An object type's members as KEY=TYPE words (optional ones in brackets): an event's data, a command's arguments. */
export function membersSignature(schema: Schema, typeName: string): string {
  const type = schema.type(typeName);
  if (type.kind !== "object") return "";
  const words = type.members.map((m) => {
    const word = `${m.name}=${shortType(schema, m.type)}`;
    return m.optional ? `[${word}]` : word;
  });
  if (type.variants) words.push(`[...members of the ${type.tag} branch]`);
  return words.join(" ");
}

/** A type in a few characters, for signatures. */
function shortType(schema: Schema, typeName: string): string {
  const type = schema.type(typeName);
  switch (type.kind) {
    case "builtin":
      return typeName;
    case "enum":
      return type.values.length <= 6 ? type.values.join("|") : `${type.values.slice(0, 5).join("|")}|...`;
    case "array":
      return `[${shortType(schema, type.element)}]`;
    case "alternate":
      return type.members.map((m) => shortType(schema, m)).join("|");
    case "object":
      return "{...}";
    default:
      return "any";
  }
}
