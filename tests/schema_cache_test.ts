/** Typed exec, the schema cache, `commands` and `describe` against a fake QEMU serving a small schema. */
import { afterAll, afterEach, describe, expect, test } from "bun:test";
import fc from "fast-check";
import { mkdirSync, readdirSync, rmSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { FakeServer } from "./helpers/fake_server.ts";
import { qmpctl } from "./helpers/cli.ts";
import { executed, freshCacheHome, schemaServer, SMALL_SCHEMA } from "./helpers/schema_fixture.ts";
import { hostTarget, writeCacheEntry } from "../lib/schema/store.ts";
import { entryName } from "../lib/schema/cache.ts";

const servers: FakeServer[] = [];
const homes: string[] = [];
afterEach(() => servers.splice(0).forEach((s) => s.stop()));
afterAll(() => homes.forEach((h) => rmSync(h, { recursive: true, force: true })));

function setup(options: Parameters<typeof schemaServer>[0] = {}, home = freshCacheHome()) {
  const server = schemaServer(options);
  servers.push(server);
  homes.push(home);
  const run = (args: string[]) => qmpctl(["-s", server.path, ...args], { env: { XDG_CACHE_HOME: home } });
  return { server, home, run };
}

/** The one cache entry's directory under `home`. */
function entryDir(home: string): string {
  const entries = readdirSync(join(home, "qmpctl"));
  expect(entries).toHaveLength(1);
  return join(home, "qmpctl", entries[0]);
}

describe("typed exec", () => {
  test("values are typed by the schema before they are sent", async () => {
    const { server, run } = setup();
    const words = ["id=123", "mixed=on", "ref.driver=f", "list.0=a", "list.1=2", "extra=abc", "mode=off"];
    const result = await run(["exec", "typed", ...words]);
    expect(result).toMatchObject({ code: 0, stderr: "" });
    expect(result.stdout).toBe(
      '{"id":"123","mixed":true,"ref":{"driver":"f"},"list":["a","2"],"extra":"abc","mode":"off"}\n',
    );
    expect(executed(server)).toEqual(["query-target", "query-qmp-schema", "typed"]);
  });

  test.each([
    [["exec", "query-status"]],
    [["exec", "typed", "--args", '{"id": 1}']],
    [["exec", "typed", 'id:="1"', "count:=2"]],
  ])("%p needs no typing: no schema, not even query-target", async (args) => {
    const { server, run } = setup();
    expect((await run(args)).code).toBe(0);
    expect(executed(server)).toEqual([args[1]]);
  });

  test.each([
    [["idd=1"], "qmpctl: typed: unknown argument 'idd' (did you mean id?)"],
    [["count=1"], "qmpctl: typed: missing argument 'id': expected str"],
    [["id=1", "mode=quick"], "qmpctl: typed: 'mode=quick': expected one of fast, slow, off"],
    [["id=1", "count=many"], "qmpctl: typed: 'count=many': expected int"],
  ])("%p exits 2 and sends nothing but the schema fetch", async (words, message) => {
    const { server, run } = setup();
    const result = await run(["exec", "typed", ...words]);
    expect(result).toMatchObject({ code: 2, stdout: "", stderr: message + "\n" });
    expect(executed(server)).toEqual(["query-target", "query-qmp-schema"]);
  });

  test("an unknown command exits 2 with the closest names", async () => {
    const { server, run } = setup();
    const result = await run(["exec", "set_lnk", "name=x"]);
    expect(result).toMatchObject({ code: 2, stderr: "qmpctl: unknown command 'set_lnk' (did you mean set_link?)\n" });
    expect(executed(server)).not.toContain("set_lnk");
  });

  test("a QEMU without query-qmp-schema gets untyped values (JSON where it parses)", async () => {
    const { server, run } = setup({ noSchema: true });
    const result = await run(["exec", "typed", "id=123"]);
    expect(result).toMatchObject({ code: 0, stdout: '{"id":123}\n' });
    expect(executed(server)).toEqual(["query-target", "query-qmp-schema", "typed"]);
  });
});

describe("the schema cache", () => {
  test("the second call reads the cache: no second query-qmp-schema", async () => {
    const { server, run } = setup();
    await run(["exec", "set_link", "name=a", "up=no"]);
    const second = await run(["exec", "set_link", "name=b", "up=yes"]);
    expect(second.stdout).toBe('{"name":"b","up":true}\n');
    expect(executed(server)).toEqual([
      "query-target",
      "query-qmp-schema",
      "set_link",
      "query-target",
      "set_link",
    ]);
  });

  test("directory 0700 and files 0600, one file per command beside the whole schema", async () => {
    const { home, run } = setup();
    await run(["exec", "set_link", "name=a", "up=no"]);
    const entry = entryDir(home);
    expect(statSync(join(home, "qmpctl")).mode & 0o777).toBe(0o700);
    expect(statSync(entry).mode & 0o777).toBe(0o700);
    expect(readdirSync(entry).sort()).toEqual(["commands", "names.json", "schema.json"]);
    expect(readdirSync(join(entry, "commands")).sort()).toEqual([
      "add-thing.json",
      "query-status.json",
      "set_link.json",
      "typed.json",
    ]);
    for (const file of ["names.json", "schema.json", "commands/set_link.json"]) {
      expect(statSync(join(entry, file)).mode & 0o777).toBe(0o600);
    }
  });

  test.each([
    ["garbage", "not json {"],
    ["a truncated file", '{"format":2,"key":'],
    ["another key", null],
    ["a type it does not define", "drop-type"],
  ])("a corrupt entry (%s) is refetched, then used again", async (_what, corruption) => {
    const { server, home, run } = setup();
    await run(["exec", "set_link", "name=a", "up=no"]);
    const file = join(entryDir(home), "commands", "set_link.json");
    const entry = JSON.parse(await Bun.file(file).text());
    if (corruption === null) entry.key = '["7.2.0","other","x86_64"]';
    if (corruption === "drop-type") delete entry.schema.types.bool;
    writeFileSync(
      file,
      typeof corruption === "string" && corruption !== "drop-type" ? corruption : JSON.stringify(entry),
    );
    const second = await run(["exec", "set_link", "name=b", "up=on"]);
    expect(second).toMatchObject({ code: 0, stdout: '{"name":"b","up":true}\n' });
    await run(["exec", "set_link", "name=c", "up=on"]);
    expect(executed(server).filter((n) => n === "query-qmp-schema")).toHaveLength(2);
  });

  test("another build of the same version (another package) gets its own entry", async () => {
    const home = freshCacheHome();
    const a = setup({ package: "build-a" }, home);
    const b = setup({ package: "build-b" }, home);
    await a.run(["exec", "set_link", "name=a", "up=no"]);
    await b.run(["exec", "set_link", "name=a", "up=no"]);
    expect(executed(b.server)).toContain("query-qmp-schema");
    expect(readdirSync(join(home, "qmpctl")).sort()).toEqual([
      expect.stringMatching(/^schema-7\.2\.0-build-a-x86_64-[0-9a-f]{8}$/),
      expect.stringMatching(/^schema-7\.2\.0-build-b-x86_64-[0-9a-f]{8}$/),
    ]);
  });

  test("the entry for this machine's architecture is read early, but not used for a QEMU of another", async () => {
    // qmpctl reads the entry of the likeliest key (this machine's architecture)
    // while QEMU answers query-target; another answer must not get that entry.
    const home = freshCacheHome();
    const here = hostTarget()!;
    const textUp = SMALL_SCHEMA.map((e) =>
      (e as { name: string }).name === "1"
        ? { name: "1", "meta-type": "object", members: [{ name: "name", type: "str" }, { name: "up", type: "str" }] }
        : e
    );
    const native = setup({ arch: here, schema: textUp }, home);
    expect((await native.run(["exec", "set_link", "name=a", "up=yes"])).stdout).toBe('{"name":"a","up":"yes"}\n');
    const other = setup({ arch: here === "s390x" ? "aarch64" : "s390x" }, home);
    const result = await other.run(["exec", "set_link", "name=b", "up=yes"]);
    expect(result).toMatchObject({ code: 0, stdout: '{"name":"b","up":true}\n' });
    expect(executed(other.server)).toEqual(["query-target", "query-qmp-schema", "set_link"]);
    const again = await native.run(["exec", "set_link", "name=c", "up=yes"]); // its own entry, still there
    expect(again.stdout).toBe('{"name":"c","up":"yes"}\n');
    expect(executed(native.server)).toEqual([
      "query-target",
      "query-qmp-schema",
      "set_link",
      "query-target",
      "set_link",
    ]);
  });

  test("a stale entry that does not know a command is refetched rather than failing it", async () => {
    const home = freshCacheHome();
    const old = setup({ schema: SMALL_SCHEMA.filter((e) => e.name !== "add-thing") }, home);
    await old.run(["exec", "set_link", "name=a", "up=no"]);
    const current = setup({}, home);
    const result = await current.run(["exec", "add-thing", "driver=alpha", "size=1"]);
    expect(result).toMatchObject({ code: 0, stdout: '{"driver":"alpha","size":1}\n' });
    // The refetch asks query-commands too (a hiding QEMU's schema must not replace a whole one).
    expect(executed(current.server)).toEqual(["query-target", "query-commands", "query-qmp-schema", "add-thing"]);
  });

  test("a value that cannot have its scalar type is refused from the cache, without a refetch", async () => {
    const { server, run } = setup();
    await run(["exec", "set_link", "name=a", "up=no"]);
    const bad = await run(["exec", "set_link", "name=a", "up=maybe"]);
    expect(bad).toMatchObject({ code: 2, stdout: "" });
    expect(bad.stderr).toContain("'up=maybe': expected");
    expect(executed(server).filter((n) => n === "query-qmp-schema")).toHaveLength(1);
  });

  test("an unwritable cache directory costs a fetch per call, not a failure", async () => {
    const { server, home, run } = setup();
    writeFileSync(join(home, "qmpctl"), "a file where the directory should be");
    expect((await run(["exec", "set_link", "name=a", "up=no"])).code).toBe(0);
    expect((await run(["exec", "set_link", "name=a", "up=no"])).code).toBe(0);
    expect(executed(server).filter((n) => n === "query-qmp-schema")).toHaveLength(2);
  });

  test("a cache path longer than the system takes (ENAMETOOLONG) is no cache: the command works, stderr stays quiet", async () => {
    const tooLong = `/tmp/${"abcdefghijklmnopqrs/".repeat(220)}`; // over PATH_MAX (4096), in short components
    const { server } = setup();
    for (const args of [["exec", "set_link", "name=a", "up=no"], ["describe", "set_link"], ["commands", "set_*"]]) {
      const result = await qmpctl(["-s", server.path, ...args], { env: { XDG_CACHE_HOME: tooLong } });
      expect({ args, code: result.code, stderr: result.stderr }).toEqual({ args, code: 0, stderr: "" });
    }
    expect(executed(server)).toContain("set_link");
  });
});

describe("commands and describe", () => {
  test("commands: sorted names, a glob, and --long signatures", async () => {
    const { run } = setup();
    expect((await run(["commands"])).stdout).toBe('["add-thing","query-status","set_link","typed"]\n');
    expect((await run(["commands", "s*"])).stdout).toBe('["set_link"]\n');
    expect((await run(["commands", "t*", "--long"])).stdout).toBe(
      JSON.stringify([{
        name: "typed",
        args:
          "id=str [count=int] [ratio=number] [flag=bool] [mode=fast|slow|off] [ref={...}|str] [mixed=int|bool|[int]] " +
          "[nullable=str|null] [list=[str]] [refs=[{...}]] [extra=any] [child={...}] [old=str]",
        features: ["unstable"],
      }]) + "\n",
    );
  });

  test("commands --events: the event names (a glob), and --long their data", async () => {
    const { run } = setup();
    expect((await run(["commands", "--events"])).stdout).toBe('["BLOCK_JOB_COMPLETED","SHUTDOWN","STOP"]\n');
    expect((await run(["commands", "--events", "S*", "--long"])).stdout).toBe(
      '[{"name":"SHUTDOWN","data":"guest=bool"},{"name":"STOP","data":""}]\n',
    );
  });

  test.each([
    [["commands", "qury-status"], "qmpctl: no command matches 'qury-status' (did you mean query-status?)\n"],
    [["commands", "QUERY-STATUS"], "qmpctl: no command matches 'QUERY-STATUS' (did you mean query-status?)\n"],
    [["commands", "SET_*"], "qmpctl: no command matches 'SET_*' (did you mean 'set_*'?)\n"],
    [["commands", "STOP"], "qmpctl: no command matches 'STOP' (it matches events: add --events)\n"],
    [["commands", "--events", "stop"], "qmpctl: no event matches 'stop' (did you mean STOP?)\n"],
    [
      ["commands", "--events", "set_*", "--long"],
      "qmpctl: no event matches 'set_*' (it matches commands: drop --events)\n",
    ],
    [["commands", "zz-*"], ""], // nothing close: the empty list is the whole answer
  ])("commands %p matches nothing: [] on stdout, exit 0, the close names on stderr", async (args, stderr) => {
    const { run } = setup();
    expect(await run(args)).toMatchObject({ code: 0, stdout: "[]\n", stderr });
  });

  test.each([
    [
      ["commands", "query-[s]tatus"],
      "qmpctl: unknown command 'query-[s]tatus' ('[...]' is no glob: only * and ? are) (did you mean query-status?)",
    ],
    [["commands", "[st]*"], "qmpctl: no command matches '[st]*' ('[...]' is no glob: only * and ? are)"],
    [
      ["commands", "--events", "[S]TOP"],
      "qmpctl: unknown event '[S]TOP' ('[...]' is no glob: only * and ? are) (did you mean STOP?)",
    ],
  ])("commands %p: a shell's [...] is no glob, exit 2 as wait-event says it", async (args, message) => {
    const { run } = setup();
    expect(await run(args)).toMatchObject({ code: 2, stdout: "", stderr: message + "\n" });
  });

  test("describe with a glob says it takes one name, and where a glob goes (before connecting)", async () => {
    const { server, run } = setup();
    expect(await run(["describe", "set*"])).toMatchObject({
      code: 2,
      stdout: "",
      stderr: "qmpctl: describe takes one name, not a glob ('set*'): qmpctl commands 'set*' --long lists the " +
        "commands it matches with their arguments, and qmpctl commands --events 'set*' --long the events\n",
    });
    expect(executed(server)).toEqual([]);
  });

  test("describe prints one JSON line; an unknown name exits 2", async () => {
    const { run } = setup();
    expect((await run(["describe", "set_link"])).stdout).toBe(
      '{"command":"set_link","arguments":{"name":"str","up":"bool"},"returns":{}}\n',
    );
    expect(await run(["describe", "STOPP"])).toMatchObject({
      code: 2,
      stdout: "",
      stderr: "qmpctl: 'STOPP' is neither a command nor an event (did you mean STOP?)\n",
    });
  });
});

describe("event names are checked against the schema", () => {
  test.each([
    [["wait-event", "SHUTDWN"], "qmpctl: unknown event 'SHUTDWN' (did you mean SHUTDOWN?)"],
    [["wait-event", "STOP", "BLOK_*"], "qmpctl: no event matches 'BLOK_*'"],
    [["exec", "query-status", "--wait-event", "STOPP"], "qmpctl: unknown event 'STOPP' (did you mean STOP?)"],
    [["wait-event", "[SR]TOP*"], "qmpctl: no event matches '[SR]TOP*' ('[...]' is no glob: only * and ? are)"],
    [
      ["wait-event", "[S]TOP"],
      "qmpctl: unknown event '[S]TOP' ('[...]' is no glob: only * and ? are) (did you mean STOP?)",
    ],
  ])("%p exits 2 before sending anything", async (args, message) => {
    const { server, run } = setup();
    expect(await run(args)).toMatchObject({ code: 2, stdout: "", stderr: message + "\n" });
    expect(executed(server)).toEqual(["query-target", "query-qmp-schema"]);
  });

  test("a glob that matches a known event is accepted (then waited for)", async () => {
    const { run } = setup();
    const result = await run(["wait-event", "BLOCK_JOB_*", "--timeout", "300ms"]);
    expect(result).toMatchObject({ code: 124, stdout: "" });
  });
});

test("writers racing on one entry leave one whole entry and no copy of the old one behind", async () => {
  const root = join(freshCacheHome(), "race");
  const files = (n: number) => ({ "meta.json": `{"n":${n}}`, "types/a.json": "[]".padEnd(2000, " ") });
  for (let round = 0; round < 20; round++) {
    await Promise.allSettled(Array.from({ length: 8 }, (_, n) => writeCacheEntry(root, "entry", files(n))));
    expect(readdirSync(root)).toEqual(["entry"]); // no .old-* (nor .new-*) left
  }
});

test("a writer removes what writers killed midway left over an hour ago, and not another writer's fresh work", async () => {
  const root = join(freshCacheHome(), "leftovers");
  await writeCacheEntry(root, "entry", { "meta.json": "{}" });
  const hoursAgo = new Date(Date.now() - 2 * 60 * 60 * 1000);
  for (const name of [".new-stale", ".old-stale", ".new-fresh", ".old-fresh", "other-stale"]) {
    mkdirSync(join(root, name));
    writeFileSync(join(root, name, "schema.json"), "{}");
    if (name.endsWith("stale")) utimesSync(join(root, name), hoursAgo, hoursAgo);
  }
  await writeCacheEntry(root, "entry", { "meta.json": "{}" });
  expect(readdirSync(root).sort()).toEqual([".new-fresh", ".old-fresh", "entry", "other-stale"]);
});

describe("entry names", () => {
  /** FNV-1a as written with Math.imul: the names of the entries already on users' disks. */
  const fnv1a = (text: string) => {
    let hash = 0x811c9dc5;
    for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193);
    return (hash >>> 0).toString(16).padStart(8, "0");
  };

  test("an entry's name ends with the FNV-1a hash of its exact key, as entries written before are named", () => {
    expect(entryName('["7.2.0","","x86_64"]')).toBe("schema-7.2.0--x86_64-32dd22bb");
    fc.assert(
      fc.property(fc.tuple(fc.string(), fc.string({ unit: "grapheme" }), fc.string()), (parts) => {
        const key = JSON.stringify(parts);
        expect(entryName(key).endsWith(`-${fnv1a(key)}`)).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });
});
