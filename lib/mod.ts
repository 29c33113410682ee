/**
 * qmpctl's QMP library: connect to a QEMU monitor, negotiate, run commands,
 * wait for events. It knows nothing of the command line.
 *
 * @example
 * ```ts
 * import { QmpClient } from "./lib/mod.ts";
 *
 * const qmp = await QmpClient.connect("/run/vm1.qmp", { connectTimeout: 5000 });
 * try {
 *   const status = await qmp.execute("query-status", undefined, { signal: AbortSignal.timeout(2000) });
 *   console.log(status); // { status: "running", running: true, ... }
 * } finally {
 *   await qmp.close();
 * }
 * ```
 *
 * @module
 */

/** The client: connect, execute, events, close. See {@link QmpClient.connect}. */
export { type ConnectOptions, type ExecuteOptions, type Greeting, QmpClient } from "./client.ts";

/**
 * Event subscriptions and filters. Subscribe with `qmp.events(filter, options)`
 * before the command that causes the events; each subscription queues its own
 * events, and a full queue (`highWaterMark`) pauses reading the socket rather
 * than growing. `qmp.waitForEvent(filter, { signal })` waits for one.
 *
 * @example
 * ```ts
 * const jobs = qmp.events({ names: ["BLOCK_JOB_*"], where: (e) => e.data?.device === "job0" }, { signal, limit: 1 });
 * await qmp.execute("block-job-cancel", { device: "job0" });
 * for await (const event of jobs) console.log(event.event); // BLOCK_JOB_CANCELLED
 * eventMatcher({ names: ["BLOCK_JOB_*"] })({ event: "BLOCK_JOB_COMPLETED" }); // true
 * ```
 */
export {
  DEFAULT_HIGH_WATER_MARK,
  type EventFilter,
  eventMatcher,
  EventSubscription,
  isGlob,
  type QmpEvent,
  type SubscribeOptions,
} from "./events.ts";

/**
 * Address forms of the CLI contract.
 *
 * @example
 * ```ts
 * parseAddress("tcp:[::1]:4444"); // { kind: "tcp", host: "::1", port: 4444, text: "tcp:[::1]:4444" }
 * ```
 */
export { type Address, parseAddress } from "./address.ts";

/**
 * `KEY=VALUE` words and `--args` JSON to an arguments object.
 *
 * @example
 * ```ts
 * buildArguments(["file.driver=file", "size:=4096"]); // { file: { driver: "file" }, size: 4096 }
 * ```
 */
export {
  buildArguments,
  jsonOrString,
  parseArgumentsJson,
  splitKeyValueWords,
  type ValueTyper,
  wordsNeedTyping,
} from "./args.ts";

/**
 * QEMU's schema (`query-qmp-schema`), cached per QEMU build under
 * `$XDG_CACHE_HOME/qmpctl`: `KEY=VALUE` words typed and checked before
 * sending, event names checked, commands and events described.
 *
 * @example
 * ```ts
 * await typedArguments(qmp, "set_link", ["name=123", "up=off"]); // { name: "123", up: false }
 * await checkEventNames(qmp, ["SHUTDOWN", "BLOCK_JOB_*"]); // throws ArgumentError for unknown names
 * const schema = await loadSchema(qmp);
 * describe(schema, "set_link"); // { command: "set_link", arguments: { name: "str", up: "bool" }, returns: {} }
 * typeArguments(schema, "blockdev-add", ["driver=null-co", "node-name=n0", "size=4096"]);
 * ```
 */
export {
  checkEventNames,
  loadSchema,
  type LoadSchemaOptions,
  Schema,
  type SchemaScope,
  typedArguments,
  withSchema,
} from "./schema.ts";
export { typeArguments } from "./schema_typing.ts";
export { describe, describeType, signature } from "./schema_describe.ts";

/**
 * Completion of `KEY=VALUE` words from a loaded schema, and "did you mean" suggestions.
 *
 * @example
 * ```ts
 * completeArgumentWord(schema, "blockdev-add", [], "dri"); // ["driver="]
 * closestNames("query-stauts", schema.commandNames()); // ["query-stats", "query-status"]
 * ```
 */
export { completeArgumentWord } from "./schema_complete.ts";
export { closestNames, didYouMean } from "./closest.ts";

/**
 * Framing, for other transports: bytes in, JSON messages out.
 *
 * @example
 * ```ts
 * new JsonFramer().push(new TextEncoder().encode('{"return": {}}\n')); // [{ return: {} }]
 * ```
 */
export { DEFAULT_MAX_MESSAGE_BYTES, JsonFramer, MAX_NESTING } from "./framing.ts";

/**
 * Numbers as QEMU wrote them: in every message received, a number that a
 * JavaScript double would change (`18446744073709551615`, `1e400`) is a
 * `JSON.rawJSON` object, which `JSON.stringify` prints as its digits.
 *
 * @example
 * ```ts
 * const size = (await qmp.execute("query-x") as { size: unknown }).size;
 * isRawNumber(size) ? BigInt(size.rawJSON) : size; // exact either way
 * ```
 */
export { isRawNumber, numberText, parseExact, sameNumber } from "./exact_json.ts";

/**
 * The error tree: branch on `error.code` or `instanceof`.
 *
 * @example
 * ```ts
 * try { await qmp.execute("nosuch"); } catch (e) { if (e instanceof CommandError) console.log(e.errorClass); }
 * ```
 */
export {
  AbortedError,
  AddressError,
  ArgumentError,
  CommandError,
  ConnectionError,
  ConnectTimeoutError,
  DisconnectedError,
  GreetingError,
  MessageTooLargeError,
  NegotiationError,
  ProtocolError,
  QmpError,
  TimeoutError,
} from "./errors.ts";
