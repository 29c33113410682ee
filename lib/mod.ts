/**
 * qmpctl's QMP library: connect to a QEMU monitor, negotiate, run commands,
 * wait for events. It knows nothing of the command line.
 *
 * @example
 * ```ts
 * import { QmpClient } from "./mod.ts";
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
export {
  type ConnectOptions,
  DEFAULT_CONNECT_TIMEOUT_MS,
  type ExecuteOptions,
  type Greeting,
  QmpClient,
} from "./client.ts";

/**
 * Connect to a monitor that may not be up yet: retried while the socket is
 * missing, refuses, or closes before its greeting, up to `waitMs`.
 *
 * @example
 * ```ts
 * import { connectWhenReady } from "./mod.ts";
 * const qmp = await connectWhenReady("/run/vm1.qmp", { waitMs: 10_000 }); // QEMU was just started
 * ```
 */
export { connectWhenReady, type ConnectWhenReadyOptions, isNotReady } from "./connect_ready.ts";

/**
 * Event subscriptions and filters. Subscribe with `qmp.events(filter, options)`
 * before the command that causes the events; each subscription queues its own
 * events, and a full queue (`highWaterMark`) pauses reading the socket rather
 * than growing. `qmp.waitForEvent(filter, { signal })` waits for one. A
 * `for await` over a subscription with a `limit` ends only once that many
 * came: a connection that ends first (QEMU quit or died) throws
 * `DisconnectedError`; without a `limit`, a clean close ends the loop.
 *
 * @example
 * ```ts
 * import { eventMatcher, QmpClient } from "./mod.ts";
 * const qmp = await QmpClient.connect("/run/vm1.qmp");
 * const signal = AbortSignal.timeout(60_000);
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
 * Address forms: a path, `unix:PATH`, `HOST:PORT`, `tcp:HOST:PORT`, `[IPV6]:PORT`,
 * `ssh://[USER@]HOST[:PORT]/PATH`.
 *
 * @example
 * ```ts
 * import { parseAddress } from "./mod.ts";
 * parseAddress("tcp:[::1]:4444"); // { kind: "tcp", host: "::1", port: 4444, text: "tcp:[::1]:4444" }
 * ```
 */
export { type Address, parseAddress, type SshAddress } from "./address.ts";

/**
 * `KEY=VALUE` words and `--args` JSON to an arguments object.
 *
 * @example
 * ```ts
 * import { buildArguments } from "./mod.ts";
 * buildArguments(["file.driver=file", "size:=4096"]); // { file: { driver: "file" }, size: 4096 }
 * ```
 */
export {
  buildArguments,
  jsonOrString,
  type KeyValueWord,
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
 * import { checkEventNames, describe, loadSchema, QmpClient, typeArguments, typedArguments } from "./mod.ts";
 * const qmp = await QmpClient.connect("/run/vm1.qmp");
 * await typedArguments(qmp, "set_link", ["name=123", "up=off"]); // { name: "123", up: false }
 * await checkEventNames(qmp, ["SHUTDOWN", "BLOCK_JOB_*"]); // throws ArgumentError for unknown names
 * const schema = await loadSchema(qmp);
 * describe(schema, "set_link"); // { command: "set_link", arguments: { name: "str", up: "bool" }, returns: {} }
 * typeArguments(schema, "blockdev-add", ["driver=null-co", "node-name=n0", "size=4096"]);
 * ```
 */
export {
  checkEventFilter,
  checkEventNames,
  type CommandInfo,
  describe,
  describeType,
  type EventInfo,
  loadSchema,
  type LoadSchemaOptions,
  type MemberInfo,
  Schema,
  type SchemaDigest,
  type SchemaScope,
  signature,
  typeArguments,
  typedArguments,
  type TypeInfo,
  withSchema,
} from "./schema/mod.ts";

/**
 * Completion of `KEY=VALUE` words from a loaded schema, and "did you mean" suggestions.
 *
 * @example
 * ```ts
 * import { closestNames, completeArgumentWord, loadSchema, QmpClient } from "./mod.ts";
 * const schema = await loadSchema(await QmpClient.connect("/run/vm1.qmp"));
 * completeArgumentWord(schema, "blockdev-add", [], "dri"); // ["driver="]
 * closestNames("query-stauts", schema.commandNames()); // ["query-stats", "query-status"]
 * ```
 */
export { completeArgumentWord } from "./schema/mod.ts";
export { closestNames, didYouMean } from "./closest.ts";

/**
 * Long work: follow jobs (backup, mirror, ...) and migrations to their end.
 * Create the watch before the command that starts the work.
 *
 * @example
 * ```ts
 * import { JobWatch, MigrationWatch, QmpClient } from "./mod.ts";
 * const qmp = await QmpClient.connect("/run/vm1.qmp");
 * const jobs = new JobWatch(qmp);
 * await qmp.execute("blockdev-backup", { "job-id": "b0", device: "disk0", target: "t0", sync: "full" });
 * const { concluded, gone } = await jobs.follow(["b0"], { signal: AbortSignal.timeout(3_600_000) });
 * concluded[0].result; // "completed", "failed" (with .error) or "cancelled"
 * const migration = new MigrationWatch(qmp);
 * await qmp.execute("migrate", { uri: "tcp:dst:4444" });
 * (await migration.follow({ onProgress: (info) => console.log(info.ram?.remaining) }))?.status; // "completed"
 * ```
 */
export { followJobs, type FollowJobsOptions, type JobInfo, type JobOutcome, type JobReport, JobWatch } from "./jobs.ts";
export { type FollowMigrationOptions, MIGRATION_END_STATES, type MigrationInfo, MigrationWatch } from "./migration.ts";

/**
 * The human monitor through QMP (`human-monitor-command`), text with LF.
 *
 * @example
 * ```ts
 * import { humanMonitorCommand, QmpClient } from "./mod.ts";
 * const qmp = await QmpClient.connect("/run/vm1.qmp");
 * const text = await humanMonitorCommand(qmp, "info registers", { cpuIndex: 1 });
 * ```
 */
export { hmpArguments, hmpText, humanMonitorCommand, parseCpuIndex } from "./hmp.ts";

/**
 * Framing, for other transports: bytes in, JSON messages out.
 *
 * @example
 * ```ts
 * import { JsonFramer } from "./mod.ts";
 * new JsonFramer().push(new TextEncoder().encode('{"return": {}}\n')); // [{ return: {} }]
 * ```
 */
export { DEFAULT_MAX_MESSAGE_BYTES, JsonFramer, MAX_NESTING } from "./framing.ts";

/**
 * Numbers as QEMU wrote them: in every message received, a number is a
 * `JSON.rawJSON` object, which `JSON.stringify` prints as written, when
 * JavaScript would print its double otherwise (`1e400`, `1.0`, and most
 * fractions QEMU sends: it writes 17 digits, `0.45969230769230768`, where
 * JavaScript prints fewer; `Number(x.rawJSON)` reads one as a double), and
 * so is every whole number of 2^53 or more, either sign, even one a double
 * holds exactly (`4611686018427387904`, 2^62): a whole number that comes as
 * a plain number is exact. In arguments sent, a BigInt and a whole number past 2^53 go out as the exact
 * integer they hold; `exactNumber` sends any number's text as written; NaN
 * and ±Infinity, which JSON has no number for, are an ArgumentError.
 *
 * @example
 * ```ts
 * import { exactNumber, isRawNumber, QmpClient } from "./mod.ts";
 * const qmp = await QmpClient.connect("/run/vm1.qmp");
 * const size = (await qmp.execute("query-x") as { size: unknown }).size;
 * isRawNumber(size) ? BigInt(size.rawJSON) : size; // exact either way
 * await qmp.execute("x-set", { size: 18446744073709551615n, ratio: exactNumber("0.10000000000000000001") });
 * ```
 */
export {
  asDouble,
  exactNumber,
  isRawNumber,
  type JsonNumber,
  mayChangeAt,
  numberText,
  parseExact,
  type RawJson,
  sameNumber,
} from "./exact_json.ts";

/**
 * The error tree: branch on `error.code` or `instanceof`.
 *
 * @example
 * ```ts
 * import { CommandError, QmpClient } from "./mod.ts";
 * const qmp = await QmpClient.connect("/run/vm1.qmp");
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
  GreetingClosedError,
  GreetingError,
  MessageTooLargeError,
  NegotiationError,
  NotKeyValueError,
  ProtocolError,
  QmpError,
  TimeoutError,
  UnparsedRequestError,
} from "./errors.ts";

/**
 * The QEMU guest agent (qemu-ga): connect and resynchronise the channel
 * (`guest-sync-delimited`), then run agent commands one after another.
 *
 * @example
 * ```ts
 * import { GuestAgent } from "./mod.ts";
 * const agent = await GuestAgent.connect("/run/vm1.ga", { connectTimeout: 5000 });
 * try {
 *   console.log(await agent.execute("guest-get-osinfo", undefined, { signal: AbortSignal.timeout(5000) }));
 * } finally {
 *   await agent.close();
 * }
 * ```
 */
export {
  AGENT_COMMANDS_WITHOUT_REPLY,
  type AgentConnectOptions,
  GuestAgent,
  MonitorNotAgentError,
  SyncClosedError,
} from "./agent_client.ts";

/**
 * Share one monitor among many QMP clients on a UNIX socket (`qmpctl proxy`).
 *
 * @example
 * ```ts
 * import { QmpProxy } from "./mod.ts";
 * const proxy = await QmpProxy.share("/run/vm1.qmp", "/run/vm1.shared.qmp", { notice: console.error });
 * console.log((await proxy.ended).reason); // "shutdown", "quit", "lost" or "closed"
 * ```
 */
export { type ProxyEnd, type ProxyOptions, QmpProxy } from "./proxy/proxy.ts";
