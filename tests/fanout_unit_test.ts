/** The pieces of fan-out that need no QEMU: which addresses are globs, expansion, the combined exit status. */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { combinedStatus, expandTargets, isGlob } from "../cli/fanout.ts";
import { globPaths } from "../cli/io.ts";

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "qmpctl-glob-"));
  for (const name of ["b.qmp", "a.qmp", "c.sock", ".hidden.qmp"]) writeFileSync(join(dir, name), "");
  mkdirSync(join(dir, "vm1"));
  mkdirSync(join(dir, "vm2"));
  writeFileSync(join(dir, "vm1", "qmp.sock"), "");
  writeFileSync(join(dir, "vm2", "qmp.sock"), "");
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("isGlob", () => {
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
    expect(isGlob(address)).toBe(expected);
  });
});

describe("expanding -s", () => {
  test("a glob's matches sorted, hidden names left out, within one path component", async () => {
    expect(await globPaths(join(dir, "*.qmp"))).toEqual([join(dir, "a.qmp"), join(dir, "b.qmp")]);
    expect(await globPaths(join(dir, "vm*", "qmp.sock"))).toEqual([
      join(dir, "vm1/qmp.sock"),
      join(dir, "vm2/qmp.sock"),
    ]);
    expect(await globPaths(join(dir, "?.sock"))).toEqual([join(dir, "c.sock")]);
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
  });

  test("a glob that matches nothing is a connection error naming it", async () => {
    await expect(expandTargets([join(dir, "*.none")])).rejects.toThrow(`no socket matches ${join(dir, "*.none")}`);
  });
});

describe("combinedStatus", () => {
  test.each([
    [[0, 0], 0],
    [[0, 1], 1],
    [[1, 124, 0], 124],
    [[124, 3, 1], 3],
    [[2, 1], 2],
    [[], 0],
  ])("%p → %p", (statuses, expected) => {
    expect(combinedStatus(statuses)).toBe(expected);
  });
});
