/**
 * QEMU's schema (`query-qmp-schema`): fetched once per QEMU build and cached,
 * keyed by the greeting's version and package and by `query-target`, so two
 * builds never share an entry. A cache file that is missing, unreadable,
 * corrupt or for another key is refetched, never trusted. QEMUs of one key
 * may still differ (`-compat deprecated-output=hide`, Debian's microvm
 * binary): `checkCommands` holds an entry against the QEMU's own list.
 *
 * @example
 * ```ts
 * import { QmpClient } from "../client.ts";
 * import { loadSchema } from "./mod.ts";
 * const qmp = await QmpClient.connect("/run/vm1.qmp");
 * const schema = await loadSchema(qmp, { signal: AbortSignal.timeout(5000) });
 * schema.commandNames().filter((n) => n.startsWith("query-"));
 * ```
 *
 * @module
 */
import { buildArguments, type KeyValueWord } from "../args.ts";
import type { QmpClient } from "../client.ts";
import { ArgumentError, CommandError, ProtocolError } from "../errors.ts";
import {
  askForSchema,
  type CachedSchema,
  cacheKey,
  likelyCacheKey,
  listedCommands,
  readEntry,
  writeEntry,
} from "./cache.ts";
import { digestSchema } from "./digest.ts";
import { Schema, type SchemaScope } from "./model.ts";
import { checkCacheRootEarly, defaultCacheDir } from "./store.ts";
import { isValueError, typeArguments } from "./typing.ts";

/** Options of `loadSchema`. */
export interface LoadSchemaOptions {
  /** Bounds the queries to QEMU (TimeoutError / AbortedError). */
  signal?: AbortSignal;
  /**
   * The cache directory, an absolute path (a relative one is no cache); default `$XDG_CACHE_HOME/qmpctl`
   * (or `~/.cache/qmpctl`); null for no cache.
   */
  cacheDir?: string | null;
  /** Fetch from QEMU even if the cache holds an entry (the fetched one replaces it). */
  refresh?: boolean;
  /** Default "all". A fetch always gives all. */
  scope?: SchemaScope;
  /**
   * Hold the cached entry against the commands QEMU lists (`query-commands`,
   * sent with query-target, over TCP after it), and refetch one that differs
   * (see `unlistedCommands`): for answers about what QEMU has (`commands`,
   * `describe`). Typing goes without: an unknown name refetches there (and
   * a refetch asks, whatever this says).
   */
  checkCommands?: boolean;
}

/**
 * The schema of the QEMU behind `client`: from the cache when it holds an
 * entry for this build, else fetched with `query-qmp-schema` and cached.
 *
 * @example
 * ```ts
 * import { QmpClient } from "../client.ts";
 * import { loadSchema } from "./mod.ts";
 * const qmp = await QmpClient.connect("/run/vm1.qmp");
 * const schema = await loadSchema(qmp, { scope: { command: "set_link" } });
 * schema.command("set_link"); // { args: "99", returns: "0" }
 * ```
 * @throws {CommandError} when QEMU has no `query-qmp-schema` (before 2.5)
 * @throws {ProtocolError | DisconnectedError | TimeoutError | AbortedError}
 */
export function loadSchema(client: QmpClient, options: LoadSchemaOptions = {}): Promise<Schema> {
  return load(client, options, (schema) => schema);
}

/**
 * The schema, as `loadSchema` gives it, passed through `then`. While QEMU
 * answers query-target (the cache key's last part), the entry of the
 * likeliest key is read and given to `then` already (likelyCacheKey): when
 * the answer names that key, the result is ready, and a typed exec sends
 * its command as soon as the answer comes (~0.3 ms sooner here). Otherwise
 * what `then` made of it is dropped.
 */
async function load<T>(client: QmpClient, options: LoadSchemaOptions, then: (schema: Schema) => T): Promise<T> {
  const { signal } = options;
  const root = options.cacheDir === undefined ? defaultCacheDir() : options.cacheDir ?? undefined;
  const readRoot = options.refresh ? undefined : root;
  const scope = options.scope ?? "all";
  const answer = cacheKey(client, signal);
  // A refetch asks too: the schema of a QEMU that hides some of its commands must not replace the whole one.
  // (An entry of one command's types has no list of commands to hold against QEMU's.)
  const ask = ((options.checkCommands && typeof scope !== "object") || options.refresh) && root;
  // With query-target, but over TCP after its answer: QEMU's TCP monitor holds a second reply in flight
  // (Nagle's algorithm) until our delayed ACK of the first, ~40 ms; a request sent after it carries the ACK.
  const askList = () => listedCommands(client, signal);
  const listed = ask
    ? (client.address.kind === "tcp" ? answer.then(askList) : askList()).catch(uncheckable)
    : undefined;
  listed?.catch(() => {}); // awaited below, unless query-target failed first
  // Once query-target has gone out (what runs before delays it): the root's check, then the early read.
  if (readRoot) void afterTurn(() => checkCacheRootEarly(readRoot));
  const likely = readRoot && likelyCacheKey(client);
  const early = likely ? afterTurn(() => fromCache(readRoot!, likely, scope, then)) : undefined;
  early?.catch(() => {}); // awaited only when QEMU's answer is the likely key
  const key = await answer;
  const names = await listed; // before the schema is asked for: over TCP, not two requests in flight
  if (readRoot) {
    const cached = await (key === likely ? early! : fromCache(readRoot, key, scope, then));
    if (cached && (!names || sameNames(unlistedCommands(cached.schema, names), cached.entry.unlisted))) {
      return cached.result;
    }
  }
  const schema = new Schema(digestSchema(await askForSchema(client, "query-qmp-schema", signal)));
  const unlisted = names ? unlistedCommands(schema, names) : [];
  // One that lacks commands QEMU has answers for this QEMU only: it would fail the next check.
  if (root && unlisted) await writeEntry(root, key, schema.digest, unlisted).catch(() => {}); // best effort
  return then(schema);
}

/** A catch handler: a peer that does not answer query-commands with a list (not QEMU) goes unchecked. */
function uncheckable(error: unknown): undefined {
  if (error instanceof CommandError || error instanceof ProtocolError) return undefined;
  throw error;
}

/**
 * The commands of `schema` that query-commands did not list (`listed`);
 * null when it lacks one that was listed. QEMU lists in query-commands the
 * deprecated commands that `-compat deprecated-output=hide` leaves out of its
 * schema, and another binary of one key (Debian's qemu-system-x86_64 and
 * its -microvm, 7.2: 216 and 206 commands) its own: an entry is used when
 * its commands are the ones listed, but those it noted unlisted when
 * written (QEMU 2.9 to 2.12 list no target-specific command of another
 * target, while their schema has them all).
 */
function unlistedCommands(schema: Schema, listed: readonly string[]): string[] | null {
  const names = schema.commandNames(), known = new Set(names), seen = new Set(listed);
  return listed.every((name) => known.has(name)) ? names.filter((name) => !seen.has(name)) : null;
}

function sameNames(a: readonly string[] | null, b: readonly string[]): boolean {
  return a !== null && a.length === b.length && a.every((name) => b.includes(name));
}

/** The cached schema for `key` and `then` of it, or undefined when the cache has no usable entry. */
async function fromCache<T>(
  root: string,
  key: string,
  scope: SchemaScope,
  then: (schema: Schema) => T,
): Promise<{ entry: CachedSchema; schema: Schema; result: T } | undefined> {
  const entry = await readEntry(root, key, scope);
  if (!entry) return undefined;
  const { digest, commandNames, eventNames } = entry;
  const schema = new Schema(digest, { fromCache: true, commandNames, eventNames });
  return { entry, schema, result: then(schema) };
}

/**
 * `work`, started once this turn of the event loop has ended: after what
 * the turn wrote has gone out (the Bun transport sends a turn's writes
 * together then), so that query-target is not held up by work that can wait.
 */
function afterTurn<T>(work: () => T | Promise<T>): Promise<T> {
  const turnEnded = Promise.withResolvers<void>(); // no new Promise(executor): its first use costs ~0.1 M instructions
  setImmediate(turnEnded.resolve);
  return turnEnded.promise.then(work);
}

/**
 * Run `use` on the schema; when a cached schema rejects something (`use`
 * throws ArgumentError), fetch a fresh one and try once more, so a stale
 * entry never fails a valid command. `use` may also run on the cached
 * schema of another build (the likeliest, read before QEMU said which it
 * is), and that result is dropped: it should only compute.
 *
 * @example
 * ```ts
 * import { QmpClient } from "../client.ts";
 * import { describe, withSchema } from "./mod.ts";
 * const qmp = await QmpClient.connect("/run/vm1.qmp");
 * const info = await withSchema(qmp, { scope: "all" }, (schema) => describe(schema, "set_link"));
 * ```
 * @throws {CommandError} when QEMU has no `query-qmp-schema`, and what `use` throws
 */
export async function withSchema<T>(
  client: QmpClient,
  options: LoadSchemaOptions,
  use: (schema: Schema) => T,
): Promise<T> {
  // `use` runs inside load, so that it too can run while QEMU answers query-target.
  const tried = await load(
    client,
    options,
    (schema): { schema: Schema; value: T } | { schema: Schema; error: unknown } => {
      try {
        return { schema, value: use(schema) };
      } catch (error) {
        return { schema, error };
      }
    },
  );
  if (!("error" in tried)) return tried.value;
  // A name the cached schema does not know may be new in this QEMU; a bool that is not a bool is not.
  if (!(tried.error instanceof ArgumentError) || !tried.schema.fromCache || isValueError(tried.error)) {
    throw tried.error;
  }
  return use(await loadSchema(client, { ...options, refresh: true }));
}

/**
 * The arguments of `words` over `base` (the `--args` object), typed and
 * checked by the schema of `command` (see `typeArguments`); without a schema
 * (QEMU before 2.5), the untyped `buildArguments`.
 *
 * @example
 * ```ts
 * import { QmpClient } from "../client.ts";
 * import { typedArguments } from "./mod.ts";
 * const qmp = await QmpClient.connect("/run/vm1.qmp");
 * await typedArguments(qmp, "set_link", ["name=123", "up=off"]); // { name: "123", up: false }
 * ```
 * @throws {ArgumentError} for an unknown command or argument, a missing argument, or a bad value
 */
export async function typedArguments(
  client: QmpClient,
  command: string,
  words: readonly string[],
  base?: Record<string, unknown>,
  options: LoadSchemaOptions = {},
): Promise<Record<string, unknown>> {
  const scoped = { ...options, scope: { command } };
  return await withSchema(client, scoped, (schema) => typeArguments(schema, command, words, base))
    .catch(withoutSchema(() => buildArguments(words, base)));
}

/**
 * Check event names against the schema of the QEMU behind `client` (see
 * `Schema.checkEventNames`); without a schema, nothing is checked.
 *
 * @example
 * ```ts
 * import { QmpClient } from "../client.ts";
 * import { checkEventNames } from "./mod.ts";
 * const qmp = await QmpClient.connect("/run/vm1.qmp");
 * await checkEventNames(qmp, ["SHUTDOWN", "BLOCK_JOB_*"], { signal: AbortSignal.timeout(5000) });
 * ```
 * @throws {ArgumentError} for an unknown name or a glob that matches no event
 */
export function checkEventNames(
  client: QmpClient,
  names: readonly string[],
  options: LoadSchemaOptions = {},
): Promise<void> {
  return checkEventFilter(client, names, [], options);
}

/**
 * Check event names and conditions on their data (`KEY=VALUE` words, as
 * `splitKeyValueWords` reads them) against the schema of the QEMU behind
 * `client` (see `Schema.checkEventNames` and `Schema.checkEventData`);
 * without a schema, nothing is checked.
 * @throws {ArgumentError} for an unknown name, a glob that matches no event, or a condition none can meet
 */
export async function checkEventFilter(
  client: QmpClient,
  names: readonly string[],
  conditions: readonly KeyValueWord[],
  options: LoadSchemaOptions = {},
): Promise<void> {
  const scope = conditions.length > 0 ? "all" : "names"; // the data's types only when there are conditions
  await withSchema(client, { ...options, scope }, (schema) => {
    schema.checkEventNames(names);
    schema.checkEventData(names, conditions);
  }).catch(withoutSchema(() => {}));
}

/** A catch handler: QEMU before 2.5 has no query-qmp-schema (CommandError), so go on without. */
function withoutSchema<T>(fallback: () => T): (error: unknown) => T {
  return (error) => {
    if (error instanceof CommandError) return fallback();
    throw error;
  };
}

/**
 * For QEMU's CommandNotFound: ` (did you mean ...?)` naming the closest
 * commands in the schema's names (from the cache), or saying that the name
 * is an event's; "" when none is close or there is no schema. Never throws:
 * it only adds to another error.
 */
export async function closestCommandsHint(
  client: QmpClient,
  name: string,
  options: LoadSchemaOptions = {},
): Promise<string> {
  // A hint is not worth a long wait: bounded even when the caller's signal is not.
  const signal = AbortSignal.any([AbortSignal.timeout(2000), ...(options.signal ? [options.signal] : [])]);
  try {
    const schema = await loadSchema(client, { ...options, signal, scope: "names" });
    return schema.notACommandHint(name);
  } catch {
    return "";
  }
}
