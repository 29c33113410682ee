/**
 * scripts/build.sh as a packager runs it: paths given from the caller's own
 * directory, a source tree unpacked inside another git repository (a
 * packaging repository) built without that repository's commit in its version,
 * and the man page's date from SOURCE_DATE_EPOCH, the commit, or a source
 * tarball's file times.
 */
import { afterAll, expect, test } from "bun:test";
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import packageJson from "../package.json" with { type: "json" };

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

test("--help prints the usage; an unknown option or a --target without one is refused; neither writes a file", () => {
  const caller = join(dir, "options");
  mkdirSync(caller);
  const help = run([join(ROOT, "scripts/build.sh"), "--help"], caller);
  expect(help.code).toBe(0);
  expect(help.stdout).toStartWith("usage: scripts/build.sh [--target TARGET] [OUT] [ENTRY]");
  for (const argv of [["--out", "x"], ["out", "--verbose"], ["--target"], ["--target", "--help"]]) {
    const refused = run([join(ROOT, "scripts/build.sh"), ...argv], caller);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/^build\.sh: (unknown option -|--target needs a target)/);
  }
  expect(readdirSync(caller)).toEqual([]);
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

/** The footer line of OUT's man page as `man -l` shows it (its date in the middle). */
function manFooter(page: string): string {
  const shown = Bun.spawnSync(["man", "-l", page], { env: { ...process.env, MANWIDTH: "80" }, stdout: "pipe" });
  return shown.stdout.toString().trimEnd().split("\n").at(-1)!.replace(/\s+/g, " ");
}

/** An unpacked source tarball (git archive HEAD, no .git), with this checkout's build scripts. */
function sourceTarball(name: string): string {
  const tree = join(dir, name);
  mkdirSync(tree);
  const unpacked = Bun.spawnSync(["sh", "-c", 'git -C "$0" archive HEAD | tar -x -C "$1"', ROOT, tree]);
  expect(unpacked.exitCode).toBe(0);
  for (const file of ["scripts/build.sh", "scripts/manpage.ts"]) copyFileSync(join(ROOT, file), join(tree, file));
  symlinkSync(join(ROOT, "node_modules"), join(tree, "node_modules"));
  return tree;
}

test("a source tarball with SOURCE_DATE_EPOCH: the man page's date is that day; the version names no commit", () => {
  const tree = sourceTarball("tarball-epoch");
  const built = Bun.spawnSync([join(tree, "scripts/build.sh")], {
    cwd: tree,
    env: { ...process.env, SOURCE_DATE_EPOCH: "31536000" }, // 1971-01-01T00:00:00Z
    stdout: "pipe",
    stderr: "pipe",
  });
  expect(built.stderr.toString()).toBe("");
  expect(built.exitCode).toBe(0);
  expect(manFooter(join(tree, "dist/qmpctl.1"))).toBe(`qmpctl ${packageJson.version} 1971-01-01 QMPCTL(1)`);
  expect(run([join(tree, "dist/qmpctl"), "--version"], tree).stdout).toBe(`qmpctl ${packageJson.version}\n`);
});

test("a source tarball without SOURCE_DATE_EPOCH: the man page's date is the commit's (its files' time, UTC)", () => {
  const tree = sourceTarball("tarball");
  const { SOURCE_DATE_EPOCH: _, ...env } = process.env;
  expect(Bun.spawnSync([join(tree, "scripts/build.sh")], { cwd: tree, env }).exitCode).toBe(0);
  const committed = Bun.spawnSync(["git", "-C", ROOT, "log", "-1", "--format=%cd", "--date=format-local:%Y-%m-%d"], {
    env: { ...process.env, TZ: "UTC" },
  }).stdout.toString().trim();
  expect(manFooter(join(tree, "dist/qmpctl.1"))).toBe(`qmpctl ${packageJson.version} ${committed} QMPCTL(1)`);
});

test("in the checkout SOURCE_DATE_EPOCH is the man page's date too, not the commit's; a malformed one is refused", () => {
  const out = join(dir, "checkout/qmpctl");
  const build = (epoch: string) =>
    Bun.spawnSync([join(ROOT, "scripts/build.sh"), out], {
      env: { ...process.env, SOURCE_DATE_EPOCH: epoch },
      stdout: "pipe",
      stderr: "pipe",
    });
  expect(build("31536000").exitCode).toBe(0);
  expect(manFooter(join(dir, "checkout/qmpctl.1"))).toContain(" 1971-01-01 QMPCTL(1)");
  const malformed = build("1971-01-01");
  expect(malformed.stderr.toString()).toBe("build.sh: SOURCE_DATE_EPOCH is not a number of seconds: 1971-01-01\n");
  expect(malformed.exitCode).toBe(1);
});
