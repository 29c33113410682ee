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
 * Event subscriptions and filters.
 *
 * @example
 * ```ts
 * const matches = eventMatcher({ names: ["BLOCK_JOB_*"] });
 * matches({ event: "BLOCK_JOB_COMPLETED" }); // true
 * ```
 */
export { type EventFilter, eventMatcher, EventSubscription, isGlob, type QmpEvent } from "./events.ts";

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
export { buildArguments, jsonOrString, parseArgumentsJson, splitKeyValueWords, type ValueTyper } from "./args.ts";

/**
 * Framing, for other transports: bytes in, JSON messages out.
 *
 * @example
 * ```ts
 * new JsonFramer().push(new TextEncoder().encode('{"return": {}}\n')); // [{ return: {} }]
 * ```
 */
export { DEFAULT_MAX_MESSAGE_BYTES, JsonFramer } from "./framing.ts";

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
