/**
 * Completion of `KEY=VALUE` words from the schema, for the shell's line
 * editor and `qmpctl completions`. Pure: the caller loads the schema (from the
 * cache, so a TAB costs no fetch) and passes the words typed so far.
 *
 * @module
 */
import type { Schema } from "./model.ts";
import type { TypeInfo } from "./digest.ts";
import { membersOf } from "./members.ts";

/**
 * Candidates for the argument word being typed (`current`) after `command`,
 * given the argument words before it. A partial name completes to `NAME=`
 * (`NAME.` for an object), dotted names walk into objects, and after `=` an
 * enum or bool completes to its values. A flat union's branch members are
 * offered once its tag is among the words (`driver=null-co` → `size=`); names
 * already given are left out. Returns whole words, sorted.
 *
 * @example
 * ```ts
 * import { QmpClient } from "../client.ts";
 * import { completeArgumentWord, loadSchema } from "./mod.ts";
 * const schema = await loadSchema(await QmpClient.connect("/run/vm1.qmp"));
 * completeArgumentWord(schema, "blockdev-add", [], "dri"); // ["driver="]
 * completeArgumentWord(schema, "blockdev-add", [], "driver=null"); // ["driver=null-aio", "driver=null-co"]
 * completeArgumentWord(schema, "set_link", ["name=n0"], ""); // ["up="]
 * ```
 */
export function completeArgumentWord(
  schema: Schema,
  command: string,
  previous: readonly string[],
  current: string,
): string[] {
  const info = schema.command(command);
  if (!info) return [];
  const given = new Map<string, string>();
  for (const word of previous) {
    const eq = word.indexOf("=");
    if (eq <= 0) continue;
    if (word[eq - 1] !== ":") given.set(word.slice(0, eq), word.slice(eq + 1));
    else given.set(word.slice(0, eq - 1), jsonText(word.slice(eq + 1))); // KEY:="file" picks the branch file
  }
  const eq = current.indexOf("=");
  const key = eq < 0 ? current : current.slice(0, eq);
  const parts = key.split(".");
  const walk = walker(schema, given);
  if (eq >= 0) {
    const type = walk(info.args, parts);
    const prefix = current.slice(eq + 1);
    return valuesOf(schema, type, prefix).map((v) => `${key}=${v}`).sort();
  }
  const parentPath = parts.slice(0, -1);
  const parent = walk(info.args, parentPath);
  const head = parentPath.map((p) => `${p}.`).join("");
  const givenNames = new Set([...given.keys()].map((k) => k.split(".").slice(0, parentPath.length + 1).join(".")));
  if (parent?.kind === "array") { // the next item: KEY.N= or KEY.N.
    let index = 0;
    while (givenNames.has(`${head}${index}`)) index++;
    return wordsFor(schema, `${head}${index}`, schema.type(parent.element)).filter((w) => w.startsWith(current));
  }
  const object = parent && objectBranch(schema, parent);
  if (!object) return [];
  const candidates: string[] = [];
  for (const member of membersOf(schema, object, (tag) => given.get(head + tag.name))) {
    const name = head + member.name;
    if (name.startsWith(current) && !givenNames.has(name)) {
      candidates.push(...wordsFor(schema, name, schema.type(member.type)));
    }
  }
  return candidates.sort();
}

/** `KEY=` for a value, `KEY.` to go inside an object or array (both for an alternate that allows both). */
function wordsFor(schema: Schema, key: string, type: TypeInfo): string[] {
  return [
    ...(type.kind === "object" ? [] : [`${key}=`]),
    ...(objectBranch(schema, type) || type.kind === "array" ? [`${key}.`] : []),
  ];
}

/**
 * The values of an enum or bool (or an alternate's such branches) that start
 * with `prefix`. A bool offers false and true; once a letter is typed, every
 * word a bool takes, in any case (`up=o`: off, on).
 */
function valuesOf(schema: Schema, type: TypeInfo | undefined, prefix: string): string[] {
  if (!type) return [];
  if (type.kind === "enum") return type.values.filter((v) => v.startsWith(prefix));
  if (type.kind === "builtin" && type.json === "boolean") {
    if (prefix === "") return ["false", "true"];
    return ["false", "no", "off", "on", "true", "yes"].filter((v) => v.startsWith(prefix.toLowerCase()));
  }
  if (type.kind === "alternate") return type.members.flatMap((m) => valuesOf(schema, schema.type(m), prefix));
  return [];
}

/** The object type of a type: itself, or an alternate's object branch. */
function objectBranch(schema: Schema, type: TypeInfo): (TypeInfo & { kind: "object" }) | undefined {
  if (type.kind === "object") return type;
  if (type.kind !== "alternate") return undefined;
  return type.members.map((m) => schema.type(m)).find((t): t is TypeInfo & { kind: "object" } => t.kind === "object");
}

/** Walk a dotted key path from a type; union branches are chosen by the tags among `given` words. */
function walker(schema: Schema, given: Map<string, string>) {
  return (typeName: string, path: readonly string[]): TypeInfo | undefined => {
    let type: TypeInfo | undefined = schema.type(typeName);
    for (let i = 0; i < path.length && type; i++) {
      const part = path[i];
      if (type.kind === "alternate" && /^\d+$/.test(part)) {
        type = type.members.map((m) => schema.type(m)).find((t) => t.kind === "array");
      }
      if (type?.kind === "array") {
        type = /^\d+$/.test(part) ? schema.type(type.element) : undefined;
        continue;
      }
      const object = type && objectBranch(schema, type);
      const head = path.slice(0, i).map((p) => `${p}.`).join("");
      const member = object && membersOf(schema, object, (tag) => given.get(head + tag.name))
        .find((m) => m.name === part);
      type = member ? schema.type(member.type) : undefined;
    }
    return type;
  };
}

/** A KEY:=JSON value as a word's text: a JSON string's contents, else the JSON as written. */
function jsonText(json: string): string {
  try {
    const value = JSON.parse(json);
    return typeof value === "string" ? value : json;
  } catch {
    return json;
  }
}
