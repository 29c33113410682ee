/** A schema whose alternate or union contains itself never sends typing round in circles (no stack overflow, no exit 70). */
import { afterAll, afterEach, expect, test } from "bun:test";
import { readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { isDigest } from "../lib/schema/digest.ts";
import type { FakeServer } from "./helpers/fake_server.ts";
import { qmpctl } from "./helpers/cli.ts";
import { executed, freshCacheHome, schemaServer, SMALL_SCHEMA } from "./helpers/schema_fixture.ts";

const servers: FakeServer[] = [];
const homes: string[] = [];
afterEach(() => servers.splice(0).forEach((s) => s.stop()));
afterAll(() => homes.forEach((h) => rmSync(h, { recursive: true, force: true })));

/** SMALL_SCHEMA plus `cyc`, whose argument `v` is the alternate "91" of `members`. */
function withAlternate(members: string[]): unknown[] {
  return [
    ...SMALL_SCHEMA,
    { name: "cyc", "meta-type": "command", "arg-type": "90", "ret-type": "any" },
    { name: "90", "meta-type": "object", members: [{ name: "v", type: "91" }] },
    { name: "91", "meta-type": "alternate", members: members.map((type) => ({ type })) },
  ];
}

function run(schema: unknown[], home: string) {
  const server = schemaServer({ schema });
  servers.push(server);
  const result = qmpctl(["-s", server.path, "exec", "cyc", "v=5"], { env: { XDG_CACHE_HOME: home } });
  return { server, result };
}

test("isDigest refuses an alternate that contains itself and a union that reaches itself", () => {
  const types = {
    str: { kind: "builtin", json: "string" },
    alt: { kind: "alternate", members: ["alt", "str"] },
  };
  expect(isDigest({ commands: {}, events: {}, types })).toBe(false);
  const union = {
    str: { kind: "builtin", json: "string" },
    u: { kind: "object", members: [{ name: "t", type: "str" }], tag: "t", variants: { a: "w" } },
    w: { kind: "object", members: [], tag: "t", variants: { b: "u" } },
  };
  expect(isDigest({ commands: {}, events: {}, types: union })).toBe(false);
});

test("from the server: exit 3, the schema is inconsistent", async () => {
  const home = freshCacheHome();
  homes.push(home);
  const { result } = run(withAlternate(["91", "str"]), home);
  expect(await result).toMatchObject({
    code: 3,
    stdout: "",
    stderr:
      "qmpctl: query-qmp-schema returned an inconsistent schema (a type it does not define, or an alternate or union that contains itself)\n",
  });
});

test("from the cache: the entry is refetched, and the command runs", async () => {
  const home = freshCacheHome();
  homes.push(home);
  const good = withAlternate(["int", "str"]);
  expect(await run(good, home).result).toMatchObject({ code: 0, stdout: '{"v":5}\n' });
  const entry = join(home, "qmpctl", readdirSync(join(home, "qmpctl"))[0]);
  const file = join(entry, "commands", "cyc.json");
  const body = JSON.parse(readFileSync(file, "utf8"));
  body.schema.types["91"].members = ["91", "str"];
  writeFileSync(file, JSON.stringify(body));
  const again = run(good, home);
  expect(await again.result).toMatchObject({ code: 0, stdout: '{"v":5}\n', stderr: "" });
  expect(executed(again.server)).toEqual(["query-target", "query-qmp-schema", "cyc"]);
});
