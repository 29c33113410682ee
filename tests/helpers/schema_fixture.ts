/**
 * A small `query-qmp-schema` answer in QEMU's form, with one of each kind of
 * type, and a fake QMP server that serves it and answers every other
 * command with the arguments it received (so a test sees what was sent).
 */
import { type FakeServer, fakeServer, QEMU_GREETING } from "./fake_server.ts";
import { scratchDir } from "./scratch.ts";

const optional = (name: string, type: string, extra: Record<string, unknown> = {}) => ({
  name,
  type,
  default: null,
  ...extra,
});

export const SMALL_SCHEMA = [
  { name: "str", "meta-type": "builtin", "json-type": "string" },
  { name: "int", "meta-type": "builtin", "json-type": "int" },
  { name: "number", "meta-type": "builtin", "json-type": "number" },
  { name: "bool", "meta-type": "builtin", "json-type": "boolean" },
  { name: "null", "meta-type": "builtin", "json-type": "null" },
  { name: "any", "meta-type": "builtin", "json-type": "value" },
  { name: "0", "meta-type": "object", members: [] },
  { name: "set_link", "meta-type": "command", "arg-type": "1", "ret-type": "0" },
  { name: "1", "meta-type": "object", members: [{ name: "name", type: "str" }, { name: "up", type: "bool" }] },
  { name: "typed", "meta-type": "command", "arg-type": "2", "ret-type": "any", features: ["unstable"] },
  {
    name: "2",
    "meta-type": "object",
    members: [
      { name: "id", type: "str" },
      optional("count", "int"),
      optional("ratio", "number"),
      optional("flag", "bool"),
      optional("mode", "3"),
      optional("ref", "4"),
      optional("mixed", "6"),
      optional("nullable", "7"),
      optional("list", "[str]"),
      optional("refs", "[5]"),
      optional("extra", "any"),
      optional("child", "8"),
      optional("old", "str", { features: ["deprecated"] }),
    ],
  },
  {
    name: "3",
    "meta-type": "enum",
    values: ["fast", "slow", "off"],
    members: [{ name: "fast" }, { name: "slow" }, { name: "off" }],
  },
  { name: "4", "meta-type": "alternate", members: [{ type: "5" }, { type: "str" }] },
  { name: "5", "meta-type": "object", members: [{ name: "driver", type: "str" }, optional("path", "str")] },
  { name: "6", "meta-type": "alternate", members: [{ type: "int" }, { type: "bool" }, { type: "[int]" }] },
  { name: "7", "meta-type": "alternate", members: [{ type: "str" }, { type: "null" }] },
  { name: "8", "meta-type": "object", members: [{ name: "name", type: "str" }, optional("child", "8")] },
  { name: "[str]", "meta-type": "array", "element-type": "str" },
  { name: "[int]", "meta-type": "array", "element-type": "int" },
  { name: "[5]", "meta-type": "array", "element-type": "5" },
  { name: "add-thing", "meta-type": "command", "arg-type": "9", "ret-type": "0" },
  {
    name: "9",
    "meta-type": "object",
    members: [{ name: "driver", type: "10" }, optional("node", "str")],
    tag: "driver",
    variants: [{ case: "alpha", type: "11" }, { case: "beta", type: "12" }],
  },
  {
    name: "10",
    "meta-type": "enum",
    values: ["alpha", "beta", "gamma"],
    members: [{ name: "alpha" }, { name: "beta" }, { name: "gamma", features: ["deprecated"] }],
  },
  { name: "11", "meta-type": "object", members: [optional("size", "int"), optional("ro", "bool")] },
  { name: "12", "meta-type": "object", members: [{ name: "path", type: "str" }] },
  { name: "query-status", "meta-type": "command", "arg-type": "0", "ret-type": "13" },
  { name: "13", "meta-type": "object", members: [{ name: "running", type: "bool" }] },
  { name: "SHUTDOWN", "meta-type": "event", "arg-type": "14" },
  { name: "14", "meta-type": "object", members: [{ name: "guest", type: "bool" }] },
  { name: "STOP", "meta-type": "event", "arg-type": "0" },
  { name: "BLOCK_JOB_COMPLETED", "meta-type": "event", "arg-type": "0" },
];

export interface SchemaServerOptions {
  /** The greeting's package string (a different build). */
  package?: string;
  /** Answer query-qmp-schema with CommandNotFound, as QEMU before 2.5 does. */
  noSchema?: boolean;
  schema?: unknown[];
  /** The target architecture query-target answers (default x86_64). */
  arch?: string;
}

/** A fake QEMU serving SMALL_SCHEMA; other commands return their arguments (or {}). */
export function schemaServer(options: SchemaServerOptions = {}): FakeServer {
  const greeting = structuredClone(QEMU_GREETING);
  greeting.QMP.version.package = options.package ?? "";
  return fakeServer(async (c) => {
    await c.handshake(greeting);
    for (;;) {
      const request = await c.nextRequest();
      if (request.execute === "query-target") c.reply(request, { arch: options.arch ?? "x86_64" });
      else if (request.execute === "query-qmp-schema" && options.noSchema) {
        c.sendJson({
          error: { class: "CommandNotFound", desc: "The command query-qmp-schema has not been found" },
          id: request.id,
        });
      } else if (request.execute === "query-qmp-schema") c.reply(request, options.schema ?? SMALL_SCHEMA);
      else c.reply(request, request.arguments ?? {});
    }
  });
}

/** The commands a fake server received, by name, after negotiation. */
export function executed(server: FakeServer): string[] {
  return server.requests.map((r) => String(r.execute)).filter((name) => name !== "qmp_capabilities");
}

/** A fresh, empty XDG_CACHE_HOME. */
export function freshCacheHome(): string {
  return scratchDir("qmpctl-cache-");
}
