/** The pieces of fan-out that need no QEMU: which addresses are globs, expansion, the combined exit status. */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { linkSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative as relativePath } from "node:path";
import { combinedStatus } from "../cli/fanout.ts";
import { expandTargets, startTargets } from "../cli/targets.ts";
import { isSocketGlob } from "../lib/glob.ts";
import { globSockets } from "../cli/io/files.ts";

let dir: string;
const listeners: { stop(): void }[] = [];
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "qmpctl-glob-"));
  mkdirSync(join(dir, "vm1"));
  mkdirSync(join(dir, "vm2"));
  for (const name of ["b.qmp", "a.qmp", "c.sock", ".hidden.qmp", "vm1/qmp.sock", "vm2/qmp.sock"]) {
    listeners.push(Bun.listen({ unix: join(dir, name), socket: { data() {} } }));
  }
  // What else lies beside sockets: a pidfile, a disk image, a directory.
  writeFileSync(join(dir, "vm.pid.qmp"), "1234\n");
  writeFileSync(join(dir, "disk.sock"), "");
  mkdirSync(join(dir, "d.qmp"));
});
afterAll(() => {
  for (const listener of listeners) listener.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe("isSocketGlob", () => {
  test.each([
    ["/run/qemu/*.qmp", true],
    ["unix:/run/vm?.sock", true],
    ["./vm[12].qmp", false], // only * and ? are glob characters: a [ is part of the name
    ["/run/vm1.qmp", false],
    ["unix:/run/vm1.qmp,server=on", false],
    ["[::1]:4444", false],
    ["tcp:[::1]:4444", false],
    ["localhost:4444", false],
    ["ssh://host/run/*.qmp", false],
  ])("%p: %p", (address, expected) => {
    expect(isSocketGlob(address)).toBe(expected);
  });
});

describe("expanding -s", () => {
  test("a glob's sockets sorted, hidden names and what is not a socket left out, within one path component", async () => {
    const sockets = async (pattern: string) => (await globSockets(pattern)).sockets;
    expect(await sockets(join(dir, "*.qmp"))).toEqual([join(dir, "a.qmp"), join(dir, "b.qmp")]);
    expect(await sockets(join(dir, "vm*", "qmp.sock"))).toEqual([
      join(dir, "vm1/qmp.sock"),
      join(dir, "vm2/qmp.sock"),
    ]);
    expect(await sockets(join(dir, "*.sock"))).toEqual([join(dir, "c.sock")]);
    expect(await sockets(join(dir, "?.sock"))).toEqual([join(dir, "c.sock")]);
  });

  test("repeated -s keep their order, each address once; one plain address is not several targets", async () => {
    expect(await expandTargets(["/x.qmp", join(dir, "?.qmp"), "/x.qmp", "[::1]:4444"])).toEqual([
      "/x.qmp",
      join(dir, "a.qmp"),
      join(dir, "b.qmp"),
      "[::1]:4444",
    ]);
    expect(await expandTargets(["[::1]:4444"])).toBeUndefined();
    expect(await expandTargets([join(dir, "a.*")])).toEqual([join(dir, "a.qmp")]); // a glob is several, even of one
    // QEMU's -qmp argument pasted with a glob in it: its options are dropped before matching, as for one path.
    expect(await expandTargets([`unix:${join(dir, "?.qmp")},server=on,wait=off`])).toEqual([
      join(dir, "a.qmp"),
      join(dir, "b.qmp"),
    ]);
  });

  test("one monitor spelled several ways is one target (a second connection would wait on the first)", async () => {
    const relative = relativePath(process.cwd(), join(dir, "a.qmp"));
    expect(await expandTargets([join(dir, "a.qmp"), relative, `./${relative}`, `unix:${relative}`, join(dir, "?.qmp")]))
      .toEqual([join(dir, "a.qmp"), join(dir, "b.qmp")]);
    // link/.. is where the link leads, as the kernel resolves it: another directory's socket, another target.
    mkdirSync(join(dir, "other", "inner"), { recursive: true });
    symlinkSync(join(dir, "other", "inner"), join(dir, "link"));
    const throughLink = `${dir}/link/../a.qmp`; // not join(): it would take the .. by name
    expect(await expandTargets([join(dir, "a.qmp"), throughLink])).toEqual([join(dir, "a.qmp"), throughLink]);
    // A socket that is a link to another: the same monitor, also before it is there (--wait-socket).
    symlinkSync(join(dir, "a.qmp"), join(dir, "alias.sock"));
    expect(await expandTargets([join(dir, "a.qmp"), join(dir, "alias.sock")])).toEqual([join(dir, "a.qmp")]);
    linkSync(join(dir, "a.qmp"), join(dir, "hard.sock")); // a hard link: the same socket under another name
    expect(await expandTargets([join(dir, "hard.sock"), join(dir, "a.qmp")])).toEqual([join(dir, "hard.sock")]);
    symlinkSync("later.qmp", join(dir, "later-link.sock"));
    expect(await expandTargets([join(dir, "later.qmp"), join(dir, "later-link.sock")])).toEqual([
      join(dir, "later.qmp"),
    ]);
    expect(await expandTargets(["127.0.0.1:4444", "tcp:127.0.0.1:4444", "[::1]:4444", "tcp:[::1]:4444,ipv6=on"]))
      .toEqual(["127.0.0.1:4444", "[::1]:4444"]);
  });

  test("a socket whose name is not UTF-8 is not left out in silence: a target that fails, labelled with \\xHH", async () => {
    const odd = join(dir, "odd");
    mkdirSync(odd);
    // Made by python (Bun's paths are text): a socket named s<0xff>.qmp, a plain file x<0xfe>.qmp.
    const script = "import os, socket, sys; d = os.fsencode(sys.argv[1]); " +
      "socket.socket(socket.AF_UNIX).bind(d + b'/s\\xff.qmp'); open(d + b'/x\\xfe.qmp', 'w').close()";
    expect(Bun.spawnSync(["python3", "-c", script, odd]).exitCode).toBe(0);
    const why = `'${odd}/s\\xff.qmp' matches ${
      join(odd, "*.qmp")
    }, but its name is not valid UTF-8: qmpctl cannot open it`;
    await expect(expandTargets([join(odd, "*.qmp")])).rejects.toThrow(why);
    // Beside others (another -s, or a socket the same glob matches): a target of its own, its error kept for it.
    const targets = (await startTargets([join(odd, "*"), join(dir, "a.qmp")]))!;
    await targets.settled();
    expect(targets.addresses).toEqual([`${odd}/s\\xff.qmp`, join(dir, "a.qmp")]);
    expect([...targets.failed.keys()]).toEqual([`${odd}/s\\xff.qmp`]);
    expect(targets.failed.get(`${odd}/s\\xff.qmp`)).toMatchObject({
      name: "ConnectionError",
      message: `'${odd}/s\\xff.qmp' matches ${join(odd, "*")}, but its name is not valid UTF-8: qmpctl cannot open it`,
    });
    expect(await globSockets(join(odd, "x*"))).toEqual({ sockets: [], unnamable: [], denied: [] }); // not a socket: left out
  });

  test("a glob that matches nothing yet (--wait-socket) holds up no target: its sockets join when it matches", async () => {
    const late = join(dir, "late");
    const targets = (await startTargets([join(dir, "a.qmp"), join(late, "*.qmp"), join(dir, "b.qmp")], 2000))!;
    expect({ addresses: targets.addresses, done: targets.done }).toEqual({
      addresses: [join(dir, "a.qmp"), join(dir, "b.qmp")],
      done: false,
    });
    const changed = targets.changed();
    mkdirSync(late);
    for (const name of ["x.qmp", "y.qmp"]) {
      listeners.push(Bun.listen({ unix: join(late, name), socket: { data() {} } }));
    }
    symlinkSync(join(dir, "a.qmp"), join(late, "a.qmp")); // a monitor already there: once
    await changed;
    await targets.settled();
    expect({ addresses: targets.addresses, done: targets.done }).toEqual({
      addresses: [join(dir, "a.qmp"), join(dir, "b.qmp"), join(late, "x.qmp"), join(late, "y.qmp")],
      done: true,
    });
  });

  test("globs that never match: a failing target each beside others; alone, one error in the order given", async () => {
    const [never1, never2] = [join(dir, "never1", "*"), join(dir, "never2", "*")];
    const beside = (await startTargets([never1, join(dir, "a.qmp")], 100))!;
    await beside.settled();
    expect(beside.addresses).toEqual([join(dir, "a.qmp"), never1]);
    expect(beside.failed.get(never1)?.message).toBe(`no socket matches ${never1} (still so after 100ms of retries)`);
    const alone = (await startTargets([never1, never2], 100))!;
    await expect(alone.settled()).rejects.toThrow(
      `no socket matches ${never1} (still so after 100ms of retries); ` +
        `no socket matches ${never2} (still so after 100ms of retries)`,
    );
  });

  test("a glob that matches no socket is a connection error naming it", async () => {
    await expect(expandTargets([join(dir, "*.none")])).rejects.toThrow(`no socket matches ${join(dir, "*.none")}`);
    await expect(expandTargets([join(dir, "disk.*")])).rejects.toThrow(`no socket matches ${join(dir, "disk.*")}`);
    await expect(expandTargets([join(dir, "[ab]*")])).rejects.toThrow( // a shell's [...]: said to be no glob
      `no socket matches ${join(dir, "[ab]*")} ('[...]' is no glob: only * and ? are)`,
    );
  });
});

describe("combinedStatus", () => {
  test.each([
    [[0, 0], 0],
    [[0, 1], 1],
    [[1, 124, 0], 124],
    [[124, 3, 1], 3],
    [[2, 1], 2],
    [[4, 1, 0], 4], // a job or migration not there to follow
    [[4, 2], 2],
    [[], 0],
  ])("%p → %p", (statuses, expected) => {
    expect(combinedStatus(statuses)).toBe(expected);
  });
});
