/**
 * scripts/build.sh as a packager runs it: paths given from the caller's own
 * directory, and a source tree unpacked inside another git repository (a
 * packaging repository) built without that repository's commit in its version.
 */
import { afterAll, expect, test } from "bun:test";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const ROOT = resolve(import.meta.dir, "..");
const dir = mkdtempSync(join(tmpdir(), "qmpctl-build-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function run(argv: string[], cwd: string) {
  const result = Bun.spawnSync(argv, { cwd, stdout: "pipe", stderr: "pipe" });
  return { code: result.exitCode, stdout: result.stdout.toString(), stderr: result.stderr.toString() };
}

test("OUT and ENTRY given are taken from the caller's directory, not the checkout's", () => {
  const caller = join(dir, "caller");
  mkdirSync(caller);
  writeFileSync(join(caller, "hello.ts"), 'console.log("hello");\n');
  expect(run([join(ROOT, "scripts/build.sh"), "out/hello", "hello.ts"], caller).code).toBe(0);
  expect(run([join(caller, "out/hello")], caller).stdout).toBe("hello\n");
  expect(existsSync(join(ROOT, "out"))).toBe(false);
});

test("a source tree inside another git repository: its version names no commit of that repository", () => {
  const outer = join(dir, "outer");
  mkdirSync(join(outer, "src/scripts"), { recursive: true });
  const git = (...args: string[]) =>
    run(["git", "-c", "user.email=p@example.com", "-c", "user.name=p", ...args], outer);
  expect(git("init", "-q").code).toBe(0);
  writeFileSync(join(outer, "PKGBUILD"), "x\n");
  expect(git("add", "PKGBUILD").code + git("commit", "-qm", "packaging").code).toBe(0);
  writeFileSync(join(outer, "PKGBUILD"), "changed\n"); // the packaging repository is dirty too
  copyFileSync(join(ROOT, "scripts/build.sh"), join(outer, "src/scripts/build.sh"));
  symlinkSync(join(ROOT, "node_modules"), join(outer, "src/node_modules"));
  writeFileSync(join(outer, "src/suffix.ts"), "console.log(JSON.stringify(QMPCTL_BUILD_SUFFIX));\n");
  expect(run(["src/scripts/build.sh", "suffix", "src/suffix.ts"], outer).code).toBe(0);
  expect(run([join(outer, "suffix")], outer).stdout).toBe('""\n');
});
