/**
 * The README's layout table names every file of lib/ and scripts/ and every
 * folder of lib/ and cli/, and nothing that is gone; and the repository's top
 * level holds only what the layout names (no file a manual check left behind).
 */
import { expect, test } from "bun:test";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT } from "./helpers/source_scan.ts";

function layoutSection(): string {
  const readme = readFileSync(join(ROOT, "README.md"), "utf8");
  const start = readme.indexOf("## Layout");
  return readme.slice(start, readme.indexOf("\n## ", start + 1));
}

test("the layout table matches the tree", () => {
  const layout = layoutSection();
  const entries = (dir: string) => readdirSync(join(ROOT, dir), { withFileTypes: true });
  // lib/ files and folders by path (`lib/hmp.ts`, `lib/schema/`); scripts by name in their row (`bench.sh`).
  const expected = [
    ...entries("lib").map((e) => e.isDirectory() ? `\`lib/${e.name}/\`` : `\`lib/${e.name}\``),
    ...entries("cli").filter((e) => e.isDirectory()).map((e) => `\`cli/${e.name}/\``),
    ...entries("scripts").map((e) => `\`${e.name}\``),
  ];
  expect(expected.filter((name) => !layout.includes(name))).toEqual([]);
  const named = [...layout.matchAll(/`((?:lib|cli)\/[\w/.]*)`/g)].map((m) => m[1]);
  expect(named.filter((path) => !existsSync(join(ROOT, path)))).toEqual([]);
});

test("the repository's top level holds what the layout names, and nothing else", () => {
  const layout = layoutSection();
  const tracked = Bun.spawnSync(["git", "ls-files"], { cwd: ROOT }).stdout.toString().trim().split("\n");
  const top = [...new Set(tracked.map((path) => path.split("/")[0]))];
  expect(top.filter((name) => name !== ".gitignore" && !layout.includes(`\`${name}`))).toEqual([]); // git's own
});
