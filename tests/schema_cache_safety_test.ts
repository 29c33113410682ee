/**
 * The schema cache follows no link planted in its place, reads no file past
 * its size bound, and refuses a directory that is not privately ours; in each
 * case qmpctl works on without the cache (it asks QEMU).
 */
import { afterAll, afterEach, expect, test } from "bun:test";
import {
  chmodSync,
  chownSync,
  cpSync,
  existsSync,
  lchownSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { dirname, join } from "node:path";
import { tmpdir } from "node:os";
import type { FakeServer } from "./helpers/fake_server.ts";
import { qmpctl } from "./helpers/cli.ts";
import { executed, freshCacheHome, schemaServer } from "./helpers/schema_fixture.ts";

const servers: FakeServer[] = [];
const homes: string[] = [];
afterEach(() => servers.splice(0).forEach((s) => s.stop()));
afterAll(() => homes.forEach((h) => rmSync(h, { recursive: true, force: true })));

function home(): string {
  const dir = freshCacheHome();
  homes.push(dir);
  return dir;
}

/**
 * A typed exec against a fresh fake QEMU with XDG_CACHE_HOME=`cacheHome`
 * (run with the real uid `realUid`, or as the user `runAs`, if given): what
 * it printed, and what it asked.
 */
async function typedExec(cacheHome: string, as: { realUid?: number; runAs?: number } = {}) {
  const server = schemaServer();
  servers.push(server);
  if (as.runAs !== undefined) { // the fake QEMU is root's: its socket open to the user
    chmodSync(dirname(server.path), 0o755);
    chmodSync(server.path, 0o777);
  }
  const result = await qmpctl(["-s", server.path, "exec", "set_link", "name=n", "up=on"], {
    env: { XDG_CACHE_HOME: cacheHome },
    ...as,
  });
  expect(result).toMatchObject({ code: 0, stdout: '{"name":"n","up":true}\n', stderr: "" });
  return executed(server);
}

const ASKS_SCHEMA = ["query-target", "query-qmp-schema", "set_link"];
const USES_CACHE = ["query-target", "set_link"];

/** A cache home holding one valid entry, written by qmpctl itself. */
async function filledCache(): Promise<string> {
  const dir = home();
  expect(await typedExec(dir)).toEqual(ASKS_SCHEMA);
  expect(await typedExec(dir)).toEqual(USES_CACHE); // the control: this entry is used
  return dir;
}

test("a symlink planted as $XDG_CACHE_HOME/qmpctl is not followed: its target is neither chmod-ed nor written", async () => {
  const base = home();
  const target = join(base, "victim");
  mkdirSync(target, { mode: 0o755 });
  chmodSync(target, 0o755);
  writeFileSync(join(target, "keep"), "x");
  symlinkSync(target, join(base, "qmpctl"));
  expect(await typedExec(base)).toEqual(ASKS_SCHEMA);
  expect(await typedExec(base)).toEqual(ASKS_SCHEMA); // no cache: asked again
  expect(statSync(target).mode & 0o777).toBe(0o755);
  expect(readdirSync(target)).toEqual(["keep"]);
});

test("a valid entry reached through a symlinked $XDG_CACHE_HOME/qmpctl is not read", async () => {
  const filled = await filledCache();
  const base = home();
  const elsewhere = join(base, "elsewhere");
  cpSync(join(filled, "qmpctl"), elsewhere, { recursive: true });
  symlinkSync(elsewhere, join(base, "qmpctl"));
  expect(await typedExec(base)).toEqual(ASKS_SCHEMA);
});

test("a symlinked ~/.cache above a private qmpctl directory still works (the cache is used)", async () => {
  const filled = await filledCache();
  const base = home();
  symlinkSync(filled, join(base, "cache"));
  expect(await typedExec(join(base, "cache"))).toEqual(USES_CACHE);
});

test("a cache file past the size bound is not read (the schema is asked for)", async () => {
  const filled = await filledCache();
  const entry = join(filled, "qmpctl", readdirSync(join(filled, "qmpctl"))[0]);
  const file = join(entry, "commands", "set_link.json");
  const valid = readFileSync(file, "utf8"); // used as it is (see filledCache), but not once padded past 32 MiB
  rmSync(file);
  writeFileSync(file, " ".repeat(33 * 1024 * 1024) + valid, { mode: 0o600 });
  expect(await typedExec(filled)).toEqual(ASKS_SCHEMA);
});

test("a cache directory others may write to is made private again when written", async () => {
  const base = home();
  mkdirSync(join(base, "qmpctl"));
  chmodSync(join(base, "qmpctl"), 0o777);
  expect(await typedExec(base)).toEqual(ASKS_SCHEMA);
  expect(statSync(join(base, "qmpctl")).mode & 0o777).toBe(0o700);
  expect(await typedExec(base)).toEqual(USES_CACHE);
});

test("a cache directory owned by another user is not written into", async () => {
  const base = home();
  mkdirSync(join(base, "qmpctl"), { mode: 0o755 });
  chownSync(join(base, "qmpctl"), 65534, 65534); // nobody (tests run as root)
  expect(await typedExec(base)).toEqual(ASKS_SCHEMA);
  expect(readdirSync(join(base, "qmpctl"))).toEqual([]);
});

test("a filled cache directory owned by another user is not read (its entries could be planted)", async () => {
  const filled = await filledCache();
  chownSync(join(filled, "qmpctl"), 65534, 65534); // nobody (tests run as root)
  expect(await typedExec(filled)).toEqual(ASKS_SCHEMA);
});

test("a filled cache directory others may write to is not read; made private again, it is emptied first", async () => {
  const filled = await filledCache();
  const root = join(filled, "qmpctl");
  chmodSync(root, 0o777);
  mkdirSync(join(root, "schema-planted")); // what another user could have put there
  expect(await typedExec(filled)).toEqual(ASKS_SCHEMA);
  expect(statSync(root).mode & 0o777).toBe(0o700);
  expect(readdirSync(root)).toHaveLength(1); // the entry just written, nothing that was there before
  expect(readdirSync(root)).not.toContain("schema-planted");
  expect(await typedExec(filled)).toEqual(USES_CACHE);
});

test("a shared directory in the cache's place loses only what could pass for the cache's: other files stay", async () => {
  const base = home();
  const root = join(base, "qmpctl");
  mkdirSync(join(root, "sub"), { recursive: true });
  chmodSync(root, 0o775); // group-writable: someone's shared directory that happens to be named so
  writeFileSync(join(root, "vm1-notes.txt"), "important\n");
  mkdirSync(join(root, ".new-planted"));
  expect(await typedExec(base)).toEqual(ASKS_SCHEMA);
  expect(readdirSync(root).filter((name) => !name.startsWith("schema-")).sort()).toEqual(["sub", "vm1-notes.txt"]);
  expect(readFileSync(join(root, "vm1-notes.txt"), "utf8")).toBe("important\n");
});

/** A typed exec run twice as nobody (uid 65534), each against a fresh fake QEMU: what each run asked. */
async function twiceAsNobody(options: { env: Record<string, string | undefined>; umask?: string }) {
  const asked: string[][] = [];
  for (let run = 0; run < 2; run++) {
    const server = schemaServer();
    servers.push(server);
    chmodSync(dirname(server.path), 0o755);
    chmodSync(server.path, 0o777); // for nobody to connect
    const result = await qmpctl(["-s", server.path, "exec", "set_link", "name=n", "up=on"], {
      ...options,
      runAs: 65534,
    });
    expect(result).toMatchObject({ code: 0, stdout: '{"name":"n","up":true}\n', stderr: "" });
    asked.push(executed(server));
  }
  return asked;
}

test("a user's usual setups get a cache: a ~/.cache under umask 002 (775, their own group), a new directory in /tmp", async () => {
  const base = home();
  chmodSync(base, 0o755);
  const user = join(base, "user");
  mkdirSync(join(user, ".cache"), { recursive: true });
  chownSync(user, 65534, 65534);
  chownSync(join(user, ".cache"), 65534, 65534);
  chmodSync(join(user, ".cache"), 0o775); // as mkdir makes it under umask 002
  const fresh = join(tmpdir(), `qmpctl-fresh-cache-${process.pid}`); // not there yet
  homes.push(fresh);
  for (const env of [{ HOME: user, XDG_CACHE_HOME: undefined }, { HOME: user, XDG_CACHE_HOME: fresh }]) {
    expect(await twiceAsNobody({ env })).toEqual([ASKS_SCHEMA, USES_CACHE]);
  }
});

test("a umask that takes the owner's own bits (0277): ~/.cache and the cache made 0700 all the same, the entry used", async () => {
  const base = home();
  chmodSync(base, 0o755);
  const user = join(base, "user");
  mkdirSync(user);
  chownSync(user, 65534, 65534);
  const asked = await twiceAsNobody({ env: { HOME: user, XDG_CACHE_HOME: undefined }, umask: "277" });
  expect(asked).toEqual([ASKS_SCHEMA, USES_CACHE]);
  // Not 0500: a ~/.cache its owner could not write in would break every program that keeps a cache there.
  for (const dir of [".cache", ".cache/qmpctl"]) expect(statSync(join(user, dir)).mode & 0o777).toBe(0o700);
});

test("another user's symbolic link on the way (their ~/.cache, linked to a directory of root's) is not followed", async () => {
  const base = home();
  const alice = join(base, "alice"), roots = join(base, "roots");
  mkdirSync(alice);
  mkdirSync(roots);
  symlinkSync(roots, join(alice, ".cache"));
  chownSync(alice, 65534, 65534);
  lchownSync(join(alice, ".cache"), 65534, 65534); // the link is theirs: it says where root's files would go
  for (const env of [{ HOME: alice, XDG_CACHE_HOME: undefined }, { XDG_CACHE_HOME: join(alice, ".cache") }]) {
    const server = schemaServer();
    servers.push(server);
    const result = await qmpctl(["-s", server.path, "exec", "set_link", "name=n", "up=on"], { env });
    expect(result).toMatchObject({ code: 0, stdout: '{"name":"n","up":true}\n', stderr: "" });
    expect(readdirSync(roots)).toEqual([]);
  }
  // The same link of root's own is followed: the cache is made where it leads.
  lchownSync(join(alice, ".cache"), 0, 0);
  chownSync(alice, 0, 0);
  expect(await typedExec(join(alice, ".cache"))).toEqual(ASKS_SCHEMA);
  expect(readdirSync(join(roots, "qmpctl"))).toHaveLength(1);
});

test("nothing is created in another user's tree (root run with a user's HOME, as sudo -E does)", async () => {
  const base = home();
  const theirs = join(base, "alice");
  mkdirSync(theirs, { mode: 0o755 });
  chownSync(theirs, 65534, 65534); // nobody's home, without a .cache yet
  const server = schemaServer();
  servers.push(server);
  const result = await qmpctl(["-s", server.path, "exec", "set_link", "name=n", "up=on"], {
    env: { HOME: theirs, XDG_CACHE_HOME: undefined },
  });
  expect(result).toMatchObject({ code: 0, stdout: '{"name":"n","up":true}\n', stderr: "" });
  expect(readdirSync(theirs)).toEqual([]);
});

test("a process whose real uid is not its effective uid uses its cache: it makes it, so it is the effective uid's", async () => {
  const base = home(); // root's, as the cache directory made in it: the effective uid is root's, the real one nobody's
  expect(await typedExec(base, { realUid: 65534 })).toEqual(ASKS_SCHEMA);
  expect(statSync(join(base, "qmpctl")).uid).toBe(0);
  expect(await typedExec(base, { realUid: 65534 })).toEqual(USES_CACHE);
});

test("a cache made read-only (files 0400, directories 0500) is still read: the schema is not asked for again", async () => {
  const base = home();
  chownSync(base, 65534, 65534); // a user's own (root could write to any file, read-only or not)
  const nobody = { runAs: 65534 };
  expect(await typedExec(base, nobody)).toEqual(ASKS_SCHEMA);
  const tree = join(base, "qmpctl");
  const entries = [tree, ...readdirSync(tree, { recursive: true }).map((name) => join(tree, String(name)))];
  for (const path of entries.reverse()) chmodSync(path, statSync(path).isDirectory() ? 0o500 : 0o400);
  try {
    expect(await typedExec(base, nobody)).toEqual(USES_CACHE);
  } finally {
    for (const path of entries.reverse()) chmodSync(path, statSync(path).isDirectory() ? 0o700 : 0o600);
  }
});

test("a relative XDG_CACHE_HOME is ignored: nothing is written under the working directory", async () => {
  const base = home();
  const work = join(base, "work");
  mkdirSync(work);
  const server = schemaServer();
  servers.push(server);
  const result = await qmpctl(["-s", server.path, "exec", "set_link", "name=n", "up=on"], {
    env: { HOME: base, XDG_CACHE_HOME: "relcache" },
    cwd: work,
  });
  expect(result).toMatchObject({ code: 0, stdout: '{"name":"n","up":true}\n', stderr: "" });
  expect(readdirSync(work)).toEqual([]);
  expect(readdirSync(join(base, ".cache", "qmpctl"))).toHaveLength(1); // the default place instead
});

test("a HOME that does not exist (a system user's /nonexistent) is not created: the command works without a cache", async () => {
  const base = home();
  const missing = join(base, "no-such-home");
  symlinkSync(missing, join(base, "home-link")); // a HOME that is a link to a missing directory
  const spellings = [
    { HOME: missing, XDG_CACHE_HOME: undefined },
    { HOME: `${base}/./no-such-home`, XDG_CACHE_HOME: `${missing}/cache` }, // the same directory, named otherwise
    { HOME: `${missing}/.`, XDG_CACHE_HOME: `${base}//no-such-home/cache` },
    { HOME: join(base, "home-link"), XDG_CACHE_HOME: `${missing}/.cache` },
  ];
  for (const env of spellings) {
    const server = schemaServer();
    servers.push(server);
    const result = await qmpctl(["-s", server.path, "exec", "set_link", "name=n", "up=on"], { env });
    expect(result).toMatchObject({ code: 0, stdout: '{"name":"n","up":true}\n', stderr: "" });
    expect(existsSync(missing)).toBe(false);
  }
});
