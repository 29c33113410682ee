/** Every environment variable qmpctl reads is named in the general help (and so in the man page's ENVIRONMENT). */
import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { generalHelp } from "../cli/help.ts";
import { ROOT, sourceFiles, withoutComments } from "./helpers/source_scan.ts";

/** The variables a source reads: env("X"), env.X, process.env.X / ["X"], and the names of *_VARIABLE constants. */
function variablesRead(source: string): string[] {
  const code = withoutComments(source);
  const patterns = [
    /\benv\(\s*"([A-Z_][A-Z0-9_]*)"\s*\)/g,
    /\benv\.([A-Z_][A-Z0-9_]*)\b/g,
    /\bprocess\.env(?:\.([A-Z_][A-Z0-9_]*)|\[\s*"([A-Z_][A-Z0-9_]*)"\s*\])/g,
    /_VARIABLE\s*=\s*"([A-Z_][A-Z0-9_]*)"/g,
  ];
  return [...new Set(patterns.flatMap((pattern) => [...code.matchAll(pattern)].map((m) => m[1] ?? m[2])))].sort();
}

test("variablesRead finds each form of reading a variable", () => {
  expect(variablesRead('env("A"); env.B; process.env.C; process.env["D"]; const X_VARIABLE = "E"; // env("F")'))
    .toEqual(["A", "B", "C", "D", "E"]);
});

test("the general help's Environment section names every variable the sources read", () => {
  const read = new Set(sourceFiles().flatMap((file) => variablesRead(readFileSync(join(ROOT, file), "utf8"))));
  const help = generalHelp();
  const section = help.slice(help.indexOf("\nEnvironment:\n"), help.indexOf("\nFiles:\n"));
  expect(read.size).toBeGreaterThan(5);
  // Named as a row's name, or in a row that speaks of several (BUN_OPTIONS's: "and BUN_INSPECT, ...").
  expect([...read].filter((name) => !new RegExp(`\\b${name}\\b`).test(section))).toEqual([]);
});
