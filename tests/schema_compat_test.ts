/**
 * QEMUs of one build (one cache key) whose schemas differ: `-compat
 * deprecated-output=hide` leaves deprecated commands and members out of
 * query-qmp-schema, not out of query-commands. `commands` and `describe`
 * hold the cached entry against query-commands; typing refetches on an
 * unknown name. Real QEMUs, and a fake for what QEMU 7.2 does not do.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { qmpctl } from "./helpers/cli.ts";
import { type FakeServer, fakeServer } from "./helpers/fake_server.ts";
import { startQemu, type TestQemu } from "./helpers/qemu.ts";
import { freshCacheHome, SMALL_SCHEMA } from "./helpers/schema_fixture.ts";

let hiding: TestQemu, plain: TestQemu;
const homes: string[] = [];
beforeAll(async () => {
  [hiding, plain] = await Promise.all([
    startQemu({ extraArgs: ["-compat", "deprecated-input=reject,deprecated-output=hide"] }),
    startQemu(),
  ]);
});
afterAll(async () => {
  await Promise.all([hiding?.stop(), plain?.stop()]);
  homes.forEach((h) => rmSync(h, { recursive: true, force: true }));
});

function home(): string {
  const dir = freshCacheHome();
  homes.push(dir);
  return dir;
}

/** qmpctl -v against `socket` with XDG_CACHE_HOME=`cacheHome`. */
const run = (socket: string, cacheHome: string, args: string[]) =>
  qmpctl(["-s", socket, "-v", ...args], { env: { XDG_CACHE_HOME: cacheHome } });

/** The commands qmpctl sent, from its -v log. */
function sent(stderr: string): string[] {
  return stderr.split("\n").filter((l) => l.startsWith("> ")).map((l) => JSON.parse(l.slice(2)).execute);
}

/** What the -v log shows before the first reply: what was sent together, without waiting. */
function sentBeforeFirstReply(stderr: string): string[] {
  const lines = stderr.split("\n").filter((l) => l.startsWith("> ") || l.startsWith("< "));
  const afterNegotiation = lines.slice(lines.findIndex((l) => l.includes('"return"')) + 1);
  const firstReply = afterNegotiation.findIndex((l) => l.startsWith("< "));
  return sent(afterNegotiation.slice(0, firstReply).join("\n"));
}

/** Fill the cache of `cacheHome` with the hiding QEMU's schema, as a typed exec does (it has no query-commands). */
async function fillFromHiding(cacheHome: string): Promise<void> {
  const result = await run(hiding.socket, cacheHome, ["exec", "set_link", "name=x", "up=on"]);
  expect(sent(result.stderr)).toEqual(["qmp_capabilities", "query-target", "query-qmp-schema", "set_link"]);
}

const stdout = async (result: Promise<{ stdout: string }>) => JSON.parse((await result).stdout);

describe("what QEMU 7.2 does under -compat (what the check relies on)", () => {
  test("query-commands lists the deprecated commands that deprecated-output=hide leaves out of the schema", async () => {
    const names = async (qemu: TestQemu, command: string, kind?: string) =>
      ((await qemu.control.execute(command)) as { name: string; "meta-type"?: string }[])
        .filter((e) => kind === undefined || e["meta-type"] === kind).map((e) => e.name);
    for (const qemu of [hiding, plain]) expect(await names(qemu, "query-commands")).toContain("drive-backup");
    expect(await names(plain, "query-qmp-schema", "command")).toContain("drive-backup");
    expect(await names(hiding, "query-qmp-schema", "command")).not.toContain("drive-backup");
  });
});

describe("commands and describe hold the cache against query-commands", () => {
  test("commands: the entry a QEMU with -compat deprecated-output=hide left does not answer for one without", async () => {
    const cache = home();
    await fillFromHiding(cache);
    expect(await stdout(run(hiding.socket, cache, ["commands", "drive-backup"]))).toEqual([]);
    expect(await stdout(run(plain.socket, cache, ["commands", "drive-backup"]))).toEqual(["drive-backup"]);
    expect(await stdout(run(plain.socket, cache, ["commands", "nbd-server-*"]))).toEqual([
      "nbd-server-add",
      "nbd-server-remove",
      "nbd-server-start",
      "nbd-server-stop",
    ]);
  });

  test("describe: a deprecated command and a deprecated member the hiding QEMU's entry lacks", async () => {
    const cache = home();
    await fillFromHiding(cache);
    expect((await run(hiding.socket, cache, ["describe", "drive-backup"])).code).toBe(2);
    const eject = await stdout(run(hiding.socket, cache, ["describe", "eject"]));
    expect(Object.keys(eject.arguments)).toEqual(["id?", "force?"]);
    // eject first: describe of a name the entry lacks (drive-backup) refetches, and so replaces the entry, anyway
    expect(Object.keys((await stdout(run(plain.socket, cache, ["describe", "eject"]))).arguments)).toEqual([
      "device? [deprecated]",
      "id?",
      "force?",
    ]);
    expect(await stdout(run(plain.socket, cache, ["describe", "drive-backup"]))).toMatchObject({
      command: "drive-backup",
      features: ["deprecated"],
    });
  });

  test("the check adds no wait: query-commands goes out with query-target, and an entry that agrees is used", async () => {
    const cache = home();
    const first = await run(plain.socket, cache, ["commands", "query-kvm"]);
    expect(sent(first.stderr)).toEqual(["qmp_capabilities", "query-target", "query-commands", "query-qmp-schema"]);
    for (const args of [["commands", "query-kvm"], ["commands", "--long", "query-kvm"], ["describe", "query-kvm"]]) {
      const result = await run(plain.socket, cache, args);
      expect(result.code).toBe(0);
      expect(sent(result.stderr)).toEqual(["qmp_capabilities", "query-target", "query-commands"]);
      expect(sentBeforeFirstReply(result.stderr)).toEqual(["query-target", "query-commands"]);
    }
  });

  test("over TCP query-commands goes once query-target is answered (QEMU's Nagle would hold a second reply)", async () => {
    const tcp = await startQemu({ tcp: true });
    try {
      const address = `127.0.0.1:${tcp.tcpPort}`;
      const cache = home();
      for (const args of [["commands", "query-kvm"], ["describe", "query-kvm"]]) { // cold, then warm
        const result = await run(address, cache, args);
        expect(result.code).toBe(0);
        expect(sentBeforeFirstReply(result.stderr)).toEqual(["query-target"]);
        expect(sent(result.stderr)).toContain("query-commands");
      }
    } finally {
      await tcp.stop();
    }
  });

  test("a hiding QEMU is answered by its own schema, not cached; by the build's whole one once that is", async () => {
    // Nothing QEMU says tells its -compat: an entry whose commands are the ones listed answers for it too.
    const cache = home();
    for (let i = 0; i < 2; i++) {
      const result = await run(hiding.socket, cache, ["commands", "drive-backup"]);
      expect(result.stdout).toBe("[]\n");
      expect(sent(result.stderr)).toContain("query-qmp-schema");
    }
    const root = join(cache, "qmpctl");
    expect(existsSync(root) ? readdirSync(root) : []).toEqual([]);
    await run(plain.socket, cache, ["commands"]);
    const whole = await run(hiding.socket, cache, ["commands", "--long", "drive-backup"]);
    expect(JSON.parse(whole.stdout)).toMatchObject([{ name: "drive-backup", features: ["deprecated"] }]);
    expect(sent(whole.stderr)).not.toContain("query-qmp-schema");
  });
});

describe("typing under -compat: no query-commands, and an unknown name refetches", () => {
  test.each([
    [["drive-backup", "device=x", "target=/x", "sync=full"], "GenericError: Cannot find device='x' nor node-name='x'"],
    [["eject", "device=x"], "DeviceNotFound: Device 'x' not found"],
  ])("exec %p, which the hiding QEMU's entry lacks, is typed for a QEMU that has it", async (words, error) => {
    const cache = home();
    await fillFromHiding(cache);
    const result = await run(plain.socket, cache, ["exec", ...words]);
    const refetch = ["query-commands", "query-qmp-schema"]; // a refetch asks what QEMU lists (see below)
    expect(sent(result.stderr)).toEqual(["qmp_capabilities", "query-target", ...refetch, words[0]]);
    expect(result.stderr.trimEnd().split("\n").at(-1)).toBe(`qmpctl: ${error}`);
    const warm = await run(plain.socket, cache, ["exec", ...words]);
    expect(sent(warm.stderr)).toEqual(["qmp_capabilities", "query-target", words[0]]);
  });

  test("a typed exec's refetch on a hiding QEMU leaves the build's whole schema in the cache", async () => {
    const cache = home();
    await run(plain.socket, cache, ["commands"]); // the whole schema, cached
    const refetched = await run(hiding.socket, cache, ["exec", "set_link", "nme=x", "up=on"]); // unknown: refetched
    expect(refetched.code).toBe(2);
    expect(sent(refetched.stderr)).toContain("query-qmp-schema");
    const whole = await run(hiding.socket, cache, ["commands", "drive-backup"]);
    expect(JSON.parse(whole.stdout)).toEqual(["drive-backup"]); // the whole schema still answers
    expect(sent(whole.stderr)).not.toContain("query-qmp-schema");
  });
});

describe("the schema's commands that query-commands does not list (QEMU 2.9 to 2.12: other targets')", () => {
  const servers: FakeServer[] = [];
  afterEach(() => servers.splice(0).forEach((s) => s.stop()));

  /** A fake QEMU serving `schema` whose query-commands lists `listed`. */
  function listing(listed: string[], schema = SMALL_SCHEMA): FakeServer {
    const server = fakeServer(async (c) => {
      await c.handshake();
      const answers: Record<string, unknown> = {
        "query-target": { arch: "x86_64" },
        "query-qmp-schema": schema,
        "query-commands": listed.map((name) => ({ name })),
      };
      for (;;) {
        const request = await c.nextRequest();
        c.reply(request, answers[String(request.execute)] ?? {});
      }
    });
    servers.push(server);
    return server;
  }
  const asked = (server: FakeServer) => server.requests.filter((r) => r.execute === "query-qmp-schema").length;

  test("are noted in the entry, which then answers: no refetch each time", async () => {
    const cache = home();
    const server = listing(["query-status", "set_link", "typed"]); // not add-thing
    for (let i = 0; i < 3; i++) {
      expect(await stdout(run(server.path, cache, ["commands", "add-*"]))).toEqual(["add-thing"]);
    }
    // --long and describe read the whole entry, which notes them too.
    expect((await stdout(run(server.path, cache, ["commands", "--long", "add-*"])))[0].name).toBe("add-thing");
    expect((await run(server.path, cache, ["describe", "add-thing"])).code).toBe(0);
    expect(asked(server)).toBe(1);
  });

  test("an entry with commands this QEMU does not list, not noted, is refetched (another binary of one key)", async () => {
    const cache = home();
    const whole = listing(["add-thing", "query-status", "set_link", "typed"]);
    expect((await run(whole.path, cache, ["commands"])).code).toBe(0);
    const fewer = listing(["query-status", "set_link", "typed"], SMALL_SCHEMA.filter((e) => e.name !== "add-thing"));
    for (let i = 0; i < 2; i++) expect(await stdout(run(fewer.path, cache, ["commands", "add-*"]))).toEqual([]);
    expect(asked(fewer)).toBe(1); // then its own entry answered
  });
});
