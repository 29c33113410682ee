/**
 * The layout of a schema cache entry, one directory per QEMU build (see
 * `store.ts` for where and how it is written):
 *
 * - `schema.json`: the whole digest (describe, `commands --long`, the shell);
 * - `names.json`: the command and event names (event checks, completion);
 * - `commands/NAME.json`: one command and the types it reaches, so that a
 *   typed `exec` reads a few hundred bytes rather than the whole schema.
 *
 * Each file holds the format and the exact key, and is checked when read.
 *
 * @module
 */
import type { QmpClient } from "../client.ts";
import { CommandError, excerpt, ProtocolError, TimeoutError } from "../errors.ts";
import type { SchemaScope } from "./model.ts";
import { commandPart, isDigest, type SchemaDigest } from "./digest.ts";
import { hostTarget, readCacheFile, writeCacheEntry } from "./store.ts";

/** Bumped whenever the layout of an entry changes, so older entries are refetched. */
const CACHE_FORMAT = 2;

/** Each connection's cache key, asked once (one connection is one QEMU process). */
const keys = new WeakMap<QmpClient, string>();

/** Each connection's query-commands names, asked once (again after a failure). */
const listedNames = new WeakMap<QmpClient, Promise<string[]>>();

/**
 * One of the commands qmpctl sends to learn QEMU's schema. The user typed
 * none of them: a timeout says why it was sent.
 */
export async function askForSchema(client: QmpClient, command: string, signal?: AbortSignal): Promise<unknown> {
  try {
    return await client.execute(command, undefined, { signal });
  } catch (error) {
    if (error instanceof TimeoutError) error.message += " (sent by qmpctl to read QEMU's schema)";
    if (command === "query-qmp-schema" && error instanceof CommandError && error.errorClass === "CommandNotFound") {
      error.message += ` (qmpctl asked for QEMU's schema: QEMU ${versionOf(client)} has none; it came in QEMU 2.5)`;
    }
    throw error;
  }
}

function versionOf(client: QmpClient): string {
  const { major, minor, micro } = client.greeting.version;
  return `${major}.${minor}.${micro}`;
}

/** The cache key: QEMU's version and package, and its target architecture. */
export async function cacheKey(client: QmpClient, signal?: AbortSignal): Promise<string> {
  const known = keys.get(client);
  if (known) return known;
  let arch = "unknown";
  try {
    const target = await askForSchema(client, "query-target", signal) as { arch?: unknown };
    if (typeof target?.arch === "string") arch = target.arch;
  } catch (error) {
    if (!(error instanceof CommandError)) throw error;
  }
  const key = keyOf(client, arch);
  keys.set(client, key);
  return key;
}

/**
 * The names of the commands QEMU lists (`query-commands`, which needs no
 * schema), asked once per connection.
 * @throws {ProtocolError} when the answer is no list of commands
 */
export function listedCommands(client: QmpClient, signal?: AbortSignal): Promise<string[]> {
  let names = listedNames.get(client);
  if (!names) {
    names = askForSchema(client, "query-commands", signal).then((list) => {
      const named = (c: unknown) =>
        typeof c === "object" && c !== null && typeof (c as { name?: unknown }).name === "string";
      if (!Array.isArray(list) || !list.every(named)) {
        throw new ProtocolError(`query-commands did not return a list of commands: ${excerpt(list)}`);
      }
      return list.map((c: { name: string }) => c.name);
    });
    listedNames.set(client, names);
    names.catch(() => listedNames.get(client) === names && listedNames.delete(client)); // ask again next time
  }
  return names;
}

/**
 * The key `cacheKey` will most likely give, without asking QEMU: a QEMU
 * for this machine's own architecture (as with KVM). Undefined when the
 * key is known already, or the architecture is not.
 */
export function likelyCacheKey(client: QmpClient): string | undefined {
  const arch = hostTarget();
  return keys.has(client) || arch === undefined ? undefined : keyOf(client, arch);
}

function keyOf(client: QmpClient, arch: string): string {
  return JSON.stringify([versionOf(client), client.greeting.version.package, arch]);
}

/** A directory name for a key: readable, plus a hash of the exact key so sanitising cannot merge two keys. */
export function entryName(key: string): string {
  let hash = 0x811c9dc5; // FNV-1a
  for (let i = 0; i < key.length; i++) {
    // Times the FNV prime 0x01000193 (2^24 + 2^8 + 2^7 + 2^4 + 2^1 + 1) modulo 2^32, as Math.imul would:
    // a process's first use of Math costs ~0.1 M instructions (the runtime makes the object then).
    const h = hash ^ key.charCodeAt(i);
    hash = (h + (h << 1) + (h << 4) + (h << 7) + (h << 8) + (h << 24)) | 0;
  }
  const readable = (JSON.parse(key) as string[]).join("-").replace(/[^A-Za-z0-9._+-]+/g, "_").slice(0, 80);
  return `schema-${readable}-${(hash >>> 0).toString(16).padStart(8, "0")}`;
}

/** A command name that is safe as a file name (QMP's are letters, digits, `-` and `_`). */
function isFileSafe(name: string): boolean {
  return /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/.test(name);
}

/**
 * Write the entry for `key` (replacing any): the digest, the names, and
 * each command's part. `unlisted`: the schema's commands that QEMU's
 * query-commands did not list, when known (see load.ts, `unlistedCommands`).
 */
export function writeEntry(root: string, key: string, digest: SchemaDigest, unlisted: string[] = []): Promise<void> {
  const file = (body: Record<string, unknown>) => JSON.stringify({ format: CACHE_FORMAT, key, ...body });
  const whole = unlisted.length > 0 ? { unlisted } : {}; // in the files that commands and describe read
  const files: Record<string, string> = {
    "schema.json": file({ schema: digest, ...whole }),
    "names.json": file({
      commands: Object.keys(digest.commands).sort(),
      events: Object.keys(digest.events).sort(),
      ...whole,
    }),
  };
  for (const name of Object.keys(digest.commands).filter(isFileSafe)) {
    files[`commands/${name}.json`] = file({ schema: commandPart(digest, name) });
  }
  return writeCacheEntry(root, entryName(key), files);
}

/** What `readEntry` found: a digest (or part of one), and the names when they came without one. */
export interface CachedSchema {
  digest: SchemaDigest;
  commandNames?: string[];
  eventNames?: string[];
  /** The commands that query-commands did not list when the entry was written (none when not known). */
  unlisted: string[];
}

/**
 * Read what `scope` needs from the entry for `key`; undefined when it is
 * missing, unreadable, corrupt or for another key (the caller refetches).
 */
export async function readEntry(root: string, key: string, scope: SchemaScope): Promise<CachedSchema | undefined> {
  const entry = entryName(key);
  const read = async (file: string) => {
    const text = await readCacheFile(root, `${entry}/${file}`, `${entry}/names.json`); // every entry has one
    try {
      const body = text === undefined ? undefined : JSON.parse(text);
      return body?.format === CACHE_FORMAT && body.key === key ? body : undefined;
    } catch {
      return undefined;
    }
  };
  const list = (value: unknown): value is string[] => {
    if (!Array.isArray(value)) return false;
    for (const n of value) if (typeof n !== "string") return false;
    return true;
  };
  const unlistedOf = (body: { unlisted?: unknown }) => {
    const unlisted = body.unlisted ?? []; // none in an entry written without query-commands' names
    return list(unlisted) ? unlisted : undefined;
  };
  const fromDigest = (body: { schema?: unknown; unlisted?: unknown } | undefined) => {
    const unlisted = body && unlistedOf(body);
    return body && isDigest(body.schema) && unlisted ? { digest: body.schema, unlisted } : undefined;
  };
  if (scope === "all") return fromDigest(await read("schema.json"));
  if (typeof scope === "object" && isFileSafe(scope.command)) {
    const part = fromDigest(await read(`commands/${scope.command}.json`));
    if (part && Object.hasOwn(part.digest.commands, scope.command)) return part;
  }
  // The names; for a command whose file is missing, only if it is not among them.
  const names = await read("names.json");
  const unlisted = names && unlistedOf(names);
  if (!names || !list(names.commands) || !list(names.events) || !unlisted) return undefined;
  if (typeof scope === "object" && names.commands.includes(scope.command)) return undefined;
  return {
    digest: { commands: {}, events: {}, types: {} },
    commandNames: names.commands,
    eventNames: names.events,
    unlisted,
  };
}
