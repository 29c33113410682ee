/**
 * The guest agent's command arguments, for typing `KEY=VALUE` words. The
 * agent offers no `query-qmp-schema`, so this table is written from its
 * documented QAPI schema (qga/qapi-schema.json in QEMU's source tree, up to
 * QEMU 10): command → argument → type, in QAPI's own spelling (`*name` is
 * optional, `['str']` is written `[str]`). It is turned into the digest that
 * QMP typing uses, so the words mean the same as for `exec`. A command the
 * table does not know is sent with JSON-else-text values.
 *
 * @module
 */
import { buildArguments } from "./args.ts";
import type { MemberInfo, SchemaDigest, TypeInfo } from "./schema/mod.ts";

type Members = Record<string, string>;

const STRUCTS: Record<string, Members> = {
  GuestLogicalProcessor: { "logical-id": "int", online: "bool", "*can-offline": "bool" },
  GuestMemoryBlock: { "phys-index": "int", online: "bool", "*can-offline": "bool" },
};

const ENUMS: Record<string, string[]> = {
  QGASeek: ["set", "cur", "end"],
  GuestExecCaptureOutputMode: ["none", "stdout", "stderr", "separated", "merged"],
};

const ALTERNATES: Record<string, string[]> = {
  GuestFileWhence: ["int", "QGASeek"],
  // A bool before QEMU 8.1; a bool or a mode since.
  GuestExecCaptureOutput: ["bool", "GuestExecCaptureOutputMode"],
};

/** Every agent command and its arguments. */
export const AGENT_COMMANDS: Record<string, Members> = {
  "guest-sync": { id: "int" },
  "guest-sync-delimited": { id: "int" },
  "guest-ping": {},
  "guest-info": {},
  "guest-get-time": {},
  "guest-set-time": { "*time": "int" },
  "guest-shutdown": { "*mode": "str" },
  "guest-file-open": { path: "str", "*mode": "str" },
  "guest-file-close": { handle: "int" },
  "guest-file-read": { handle: "int", "*count": "int" },
  "guest-file-write": { handle: "int", "buf-b64": "str", "*count": "int" },
  "guest-file-seek": { handle: "int", offset: "int", whence: "GuestFileWhence" },
  "guest-file-flush": { handle: "int" },
  "guest-fsfreeze-status": {},
  "guest-fsfreeze-freeze": {},
  "guest-fsfreeze-freeze-list": { "*mountpoints": "[str]" },
  "guest-fsfreeze-thaw": {},
  "guest-fstrim": { "*minimum": "int" },
  "guest-suspend-disk": {},
  "guest-suspend-ram": {},
  "guest-suspend-hybrid": {},
  "guest-network-get-interfaces": {},
  "guest-network-get-route": {},
  "guest-get-vcpus": {},
  "guest-set-vcpus": { vcpus: "[GuestLogicalProcessor]" },
  "guest-get-disks": {},
  "guest-get-fsinfo": {},
  "guest-set-user-password": { username: "str", password: "str", crypted: "bool" },
  "guest-get-memory-blocks": {},
  "guest-set-memory-blocks": { "mem-blks": "[GuestMemoryBlock]" },
  "guest-get-memory-block-info": {},
  "guest-exec-status": { pid: "int" },
  "guest-exec": {
    path: "str",
    "*arg": "[str]",
    "*env": "[str]",
    "*input-data": "str",
    "*capture-output": "GuestExecCaptureOutput",
  },
  "guest-get-host-name": {},
  "guest-get-users": {},
  "guest-get-timezone": {},
  "guest-get-osinfo": {},
  "guest-get-devices": {},
  "guest-ssh-get-authorized-keys": { username: "str" },
  "guest-ssh-add-authorized-keys": { username: "str", keys: "[str]", "*reset": "bool" },
  "guest-ssh-remove-authorized-keys": { username: "str", keys: "[str]" },
  "guest-get-diskstats": {},
  "guest-get-cpustats": {},
  "guest-get-load": {},
};

const BUILTINS: Record<string, string> = { str: "string", int: "int", bool: "boolean", number: "number", any: "value" };

let digest: SchemaDigest | undefined;

/** The table as a schema digest (the form QMP typing reads), built once. */
export function agentSchemaDigest(): SchemaDigest {
  if (digest) return digest;
  const types: Record<string, TypeInfo> = {};
  const define = (name: string): string => {
    if (types[name]) return name;
    if (BUILTINS[name]) types[name] = { kind: "builtin", json: BUILTINS[name] };
    else if (name.startsWith("[")) types[name] = { kind: "array", element: define(name.slice(1, -1)) };
    else if (ENUMS[name]) types[name] = { kind: "enum", values: ENUMS[name] };
    else if (ALTERNATES[name]) types[name] = { kind: "alternate", members: ALTERNATES[name].map(define) };
    else if (STRUCTS[name]) types[name] = { kind: "object", members: members(STRUCTS[name]) };
    else throw new Error(`the agent's argument table names an undefined type ${name}`);
    return name;
  };
  const members = (spec: Members): MemberInfo[] =>
    Object.entries(spec).map(([key, type]) => ({
      name: key.replace(/^\*/, ""),
      type: define(type),
      ...(key.startsWith("*") ? { optional: true as const } : {}),
    }));
  define("any");
  const commands: SchemaDigest["commands"] = {};
  for (const [command, spec] of Object.entries(AGENT_COMMANDS)) {
    types[`${command}:args`] = { kind: "object", members: members(spec) };
    commands[command] = { args: `${command}:args`, returns: "any" };
  }
  return digest = { commands, events: {}, types };
}

/**
 * The arguments of agent `command` from `KEY=VALUE` words over `base` (the
 * `--args` object): typed and checked by the table when it knows the
 * command, else JSON where a value parses, else text.
 *
 * @example
 * ```ts
 * await typeAgentArguments("guest-exec", ["path=/bin/ls", "arg.0=-l"]); // { path: "/bin/ls", arg: ["-l"] }
 * ```
 * @throws {ArgumentError} for a malformed word, an unknown argument, a missing one or a bad value
 */
export async function typeAgentArguments(
  command: string,
  words: readonly string[],
  base?: Record<string, unknown>,
): Promise<Record<string, unknown>> {
  if (!Object.hasOwn(AGENT_COMMANDS, command)) return buildArguments(words, base);
  const { Schema, typeArguments } = await import("./schema/mod.ts");
  return typeArguments(new Schema(agentSchemaDigest()), command, words, base);
}
