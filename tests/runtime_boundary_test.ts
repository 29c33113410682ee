/**
 * Runtime-specific calls (`process.*`, `Bun.*`, `Deno.*`, `node:*` modules)
 * stay in the files that exist to hold them, so the rest of cli.ts, cli/ and
 * lib/ runs unchanged under Bun, Deno and Node.
 */
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT, sourceFiles, withoutComments } from "./helpers/source_scan.ts";

/** The files allowed to call the runtime, and why. */
const BOUNDARY: Record<string, string> = {
  "cli/io/output.ts": "stdout and stderr, and the exit once they are out",
  "cli/io/input.ts": "stdin and files read",
  "cli/io/terminal.ts": "the terminal: raw mode, width, keys",
  "cli/io/process.ts": "environment, argv, signals, a child with the caller's stdio",
  "cli/io/signals.ts": "the ending signals for the commands that handle them",
  "cli/io/files.ts": "paths, private temporary directories, socket globs",
  "cli/io/runtime.ts": "which runtime runs the CLI, and the standard descriptors at start",
  "cli/private_dir.ts": "a private directory's files (the shell's history), checked as they are opened",
  "cli/byte_sink.ts": "a copy's file, written beside its destination and put in place whole",
  "lib/schema/store.ts": "the schema cache's files (the library cannot use cli/io/)",
  "lib/private_dir.ts": "a private directory (schema cache, shell history): the uid, creating and opening it",
  "lib/fatal_signals.ts": "the ending signals: ignored at start (/proc/self/status), death by one, PID 1",
  "lib/transport_listen.ts": "a listening socket's file: checked, given its mode, removed",
};

/** Whether `file` may call the runtime: a boundary file, or a transport implementation (sockets, per runtime). */
function mayCallRuntime(file: string): boolean {
  return Object.hasOwn(BOUNDARY, file) || (/^lib\/transport_\w+\.ts$/.test(file) && file !== "lib/transport_types.ts");
}

// Not after a slash: a module's path ("./io/process.ts") is no call.
const RUNTIME_CALL = /(?<![\w$/])(?:process|Bun|Deno)\.[A-Za-z]|["']node:[a-z]/;

/** Each line of `source` (comments removed) that calls the runtime, as "LINE: text". */
function runtimeCalls(source: string): string[] {
  return withoutComments(source).split("\n").flatMap((line, i) =>
    RUNTIME_CALL.test(line) ? [`${i + 1}: ${line.trim()}`] : []
  );
}

describe("runtime boundary", () => {
  test("runtimeCalls finds process, Bun, Deno and node: uses, not those in comments", () => {
    const source = [
      "const a = process.env.HOME;",
      'const { readFile } = await import("node:fs/promises");',
      "// Bun.mmap is cheaper",
      "/** process.stdout.write costs 13 ms */",
      "const bun = (globalThis as { Bun?: typeof Bun }).Bun;",
      "Deno.exit(1);",
      'import { env } from "./io/process.ts";',
      "const exiting = !process.exitCode;",
    ].join("\n");
    expect(runtimeCalls(source)).toEqual([
      "1: const a = process.env.HOME;",
      '2: const { readFile } = await import("node:fs/promises");',
      "6: Deno.exit(1);",
      "8: const exiting = !process.exitCode;",
    ]);
  });

  test("only the boundary files call the runtime", () => {
    const outside: string[] = [];
    for (const file of sourceFiles()) {
      if (mayCallRuntime(file)) continue;
      for (const call of runtimeCalls(readFileSync(join(ROOT, file), "utf8"))) outside.push(`${file}:${call}`);
    }
    expect(outside).toEqual([]);
  });
});
