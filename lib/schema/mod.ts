/**
 * QEMU's schema (`query-qmp-schema`), as one package: load it (cached per
 * QEMU build), type `KEY=VALUE` words by it, check event names, describe a
 * command or type, and complete argument words. The files behind it:
 * digest.ts (the raw schema made compact), model.ts (`Schema`, lookups),
 * cache.ts and store.ts (the cache), load.ts, typing.ts with members.ts and
 * scalars.ts, describe.ts, complete.ts, and view.ts (one client's view, as
 * the shell uses it).
 *
 * @example
 * ```ts
 * import { QmpClient } from "../client.ts";
 * import { describe, loadSchema } from "./mod.ts";
 *
 * const qmp = await QmpClient.connect("/run/vm1.qmp");
 * try {
 *   const schema = await loadSchema(qmp, { signal: AbortSignal.timeout(5000) });
 *   console.log(describe(schema, "set_link")); // { command: "set_link", arguments: { name: "str", up: "bool" }, returns: {} }
 * } finally {
 *   await qmp.close();
 * }
 * ```
 *
 * @module
 */
export { Schema, type SchemaScope } from "./model.ts";
export type { CommandInfo, EventInfo, MemberInfo, SchemaDigest, TypeInfo } from "./digest.ts";
export {
  checkEventFilter,
  checkEventNames,
  closestCommandsHint,
  loadSchema,
  type LoadSchemaOptions,
  typedArguments,
  withSchema,
} from "./load.ts";
export { typeArguments } from "./typing.ts";
export { describe, describeType, membersSignature, signature } from "./describe.ts";
export { completeArgumentWord } from "./complete.ts";
export { SchemaView } from "./view.ts";
