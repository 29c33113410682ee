/**
 * The module graph of cli.ts, cli/ and lib/ has no cycles: every relative
 * import, static, type-only or dynamic (`import("./x.ts")`), is an edge.
 */
import { describe, expect, test } from "bun:test";
import { findImportCycles, importGraph, relativeImports } from "./helpers/source_scan.ts";

describe("import graph", () => {
  test("relativeImports reads static, type-only, re-export and dynamic imports", () => {
    const source = [
      'import { a } from "./a.ts";',
      'import type { B } from "../b.ts";',
      'export { c } from "./c.ts";',
      'const d = () => import("./d.ts");',
      'import { e } from "node:fs";',
      '/** @example import { f } from "./f.ts"; */',
    ].join("\n");
    expect(relativeImports(source)).toEqual(["./a.ts", "../b.ts", "./c.ts", "./d.ts"]);
  });

  test("findImportCycles finds a cycle through a dynamic import", () => {
    const graph = new Map([
      ["a.ts", ["b.ts"]],
      ["b.ts", ["c.ts"]],
      ["c.ts", ["a.ts"]],
      ["d.ts", ["a.ts"]],
    ]);
    expect(findImportCycles(graph)).toEqual([["a.ts", "b.ts", "c.ts", "a.ts"]]);
  });

  test("lib/ imports nothing from cli.ts or cli/", () => {
    const upward = [...importGraph()].flatMap(([file, imports]) =>
      file.startsWith("lib/")
        ? imports.filter((i) => i === "cli.ts" || i.startsWith("cli/")).map((i) => `${file} -> ${i}`)
        : []
    );
    expect(upward).toEqual([]);
  });

  test("cli.ts, cli/ and lib/ import one another without a cycle", () => {
    const cycles = findImportCycles(importGraph());
    expect(cycles.map((cycle) => cycle.join(" -> "))).toEqual([]);
  });
});
