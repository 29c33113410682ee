/**
 * Questions about a schema type that typing, checking and completion share:
 * an object's members (with its union branch), whether a JSON value fits a
 * type, and how to name what a type accepts.
 *
 * @module
 */
import type { Schema } from "./model.ts";
import type { MemberInfo, TypeInfo } from "./digest.ts";
import { isJsonObject, isRawNumber } from "../exact_json.ts";
import { withinIntRange } from "./scalars.ts";

/** The members of an object type, with those of the union branch its tag selects (by `tagOf`). */
export function membersOf(
  schema: Schema,
  type: TypeInfo & { kind: "object" },
  tagOf: (tag: MemberInfo) => unknown,
): MemberInfo[] {
  const members = type.members.slice();
  if (type.tag === undefined || type.variants === undefined) return members;
  const tag = members.find((m) => m.name === type.tag);
  const value = tag ? tagOf(tag) : undefined;
  if (typeof value !== "string" || !Object.hasOwn(type.variants, value)) return members;
  const branch = schema.type(type.variants[value]);
  return branch.kind === "object" ? [...members, ...membersOf(schema, branch, tagOf)] : members;
}

/**
 * Whether a JSON value has the JSON type of a type (how QEMU picks an
 * alternate's branch). A number kept as written (exact_json.ts) is a number,
 * and an int only when written without fraction or exponent and within
 * int64/uint64, as QEMU's parser reads it (`1.0` and 2^64 are doubles there).
 */
export function fits(schema: Schema, value: unknown, typeName: string): boolean {
  const type = schema.type(typeName);
  const raw = isRawNumber(value);
  switch (type.kind) {
    case "builtin":
      switch (type.json) {
        case "string":
          return typeof value === "string";
        case "int":
          return raw ? /^-?\d+$/.test(value.rawJSON) && withinIntRange(value.rawJSON) : Number.isInteger(value);
        case "number":
          return raw || typeof value === "number";
        case "boolean":
          return typeof value === "boolean";
        case "null":
          return value === null;
        default:
          return true;
      }
    case "enum":
      return typeof value === "string";
    case "array":
      return Array.isArray(value);
    case "object":
      return isJsonObject(value);
    case "alternate":
      return type.members.some((m) => fits(schema, value, m));
    default:
      return true;
  }
}

/** What a value of a type looks like, for error messages; `inJson`: as a value inside JSON text. */
export function expected(schema: Schema, typeName: string, inJson = false): string {
  const type = schema.type(typeName);
  switch (type.kind) {
    case "builtin":
      if (type.json !== "boolean") return typeName;
      return inJson ? `${typeName} (true or false)` : `${typeName} (true/false, on/off, yes/no)`;
    case "enum": // in JSON, a string: the value 1 is not the enum value "1"
      return `${inJson ? "a string, " : ""}one of ${type.values.join(", ")}`;
    case "array":
      return inJson ? "an array" : "an array (JSON, or KEY.0=... KEY.1=...)";
    case "object":
      return inJson ? "an object" : "an object (JSON, or KEY.MEMBER=...)";
    case "alternate":
      return type.members.map((m) => expected(schema, m, inJson)).join(", or ");
    default:
      return "a value";
  }
}
