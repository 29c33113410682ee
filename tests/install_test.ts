/**
 * scripts/install.sh as a user runs it: into a prefix, then the installed
 * binary, `man -l` on the installed page, and each shell finding the installed
 * completion where it looks by itself (a real shell on a terminal, a real TAB).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import {
  chmodSync,
  chownSync,
  copyFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { COMMANDS, GLOBAL_OPTIONS } from "../cli/registry.ts";
import { QMPCTL } from "./helpers/cli.ts";
import { startTerminal } from "./helpers/terminal.ts";

const INSTALL = resolve(import.meta.dir, "../scripts/install.sh");
const prefix = mkdtempSync(join(tmpdir(), "qmpctl-prefix-"));
const home = mkdtempSync(join(tmpdir(), "qmpctl-home-"));

/** What install.sh puts beside the binary, each installed 0644. */
const DOCS = [
  "share/man/man1/qmpctl.1",
  "share/bash-completion/completions/qmpctl",
  "share/zsh/site-functions/_qmpctl",
  "share/fish/vendor_completions.d/qmpctl.fish",
];

/** The binary 0755 and the rest 0644 under `root`, whatever the installing user's umask. */
function expectInstalledModes(root: string) {
  const mode = (file: string) => `${file} ${(statSync(join(root, file)).mode & 0o7777).toString(8)}`;
  expect(mode("bin/qmpctl")).toBe("bin/qmpctl 755");
  for (const file of DOCS) expect(mode(file)).toBe(`${file} 644`);
}

function run(argv: string[], env: Record<string, string> = {}) {
  const result = Bun.spawnSync(argv, { env: { ...process.env, ...env }, stdout: "pipe", stderr: "pipe" });
  return { code: result.exitCode, stdout: result.stdout.toString(), stderr: result.stderr.toString() };
}

beforeAll(() => {
  const result = run([INSTALL, prefix]);
  expect(result.stderr).toBe("");
  expect(result.code).toBe(0);
});
afterAll(() => {
  for (const dir of [prefix, home]) rmSync(dir, { recursive: true, force: true });
});

describe("install.sh PREFIX", () => {
  test("puts the binary, the man page and three completions where tools look", () => {
    for (const file of ["bin/qmpctl", ...DOCS]) expect(existsSync(join(prefix, file))).toBe(true);
  });

  test("the installed binary is the built one", () => {
    const installed = run([join(prefix, "bin/qmpctl"), "--version"]);
    expect(installed).toEqual(run([QMPCTL, "--version"]));
    expect(installed.stdout).toMatch(/^qmpctl \d+\.\d+\.\d+(\+g[0-9a-f]+(\.dirty)?)?\n$/);
  });

  test("man -l renders the page without a warning, no line wider than 80, with every command, every option and the exit statuses", () => {
    const result = run(["man", "--warnings", "-l", join(prefix, "share/man/man1/qmpctl.1")], { MANWIDTH: "80" });
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    const text = result.stdout.replace(/‐\n\s*/g, "").replace(/\s+/g, " ");
    for (const name of Object.keys(COMMANDS)) expect(text).toContain(`Usage: qmpctl ${name}`);
    for (const option of GLOBAL_OPTIONS) expect(text).toContain(`--${option.name}`);
    for (const section of ["EXIT STATUS", "ENVIRONMENT", "FILES", "EXAMPLES", "QMPCTL_SOCKET", "124"]) {
      expect(text).toContain(section);
    }
    // The tables (options, exit statuses) are wrapped for the page's indent, and the lines kept as typed
    // (examples, usage lines) are short enough for it: every line fits an 80-column terminal.
    const rows = result.stdout.split("\n").filter((line) => /^ +((-\w, )?--[a-z-]+|\d+ {2,})/.test(line));
    expect(rows.length).toBeGreaterThan(20);
    expect(result.stdout.split("\n").filter((line) => line.length > 80)).toEqual([]);
    // The footer's date: the commit's the page was built from (the checkout's, built by scripts/build.sh).
    const date = Bun.spawnSync(["git", "log", "-1", "--format=%cs"], { cwd: import.meta.dir }).stdout.toString().trim();
    expect(result.stdout.trimEnd().split("\n").at(-1)).toContain(date);
  });
});

describe("each shell finds the installed completion by itself and completes 'qmpctl ex<TAB>' to exec", () => {
  // The prefix is where the shells look for vendor completions, as /usr/local is by default.
  const env = {
    HOME: home,
    XDG_CONFIG_HOME: join(home, ".config"),
    PATH: `${join(prefix, "bin")}:${process.env.PATH}`,
    XDG_DATA_DIRS: `${join(prefix, "share")}:/usr/share`,
    QMPCTL_SOCKET: "",
    PS1: "$ ",
  };
  const shells: Record<string, { argv: string[]; setup: string }> = {
    bash: { argv: ["bash", "--norc", "--noprofile", "-i"], setup: "source /usr/share/bash-completion/bash_completion" },
    zsh: {
      argv: ["zsh", "-f", "-i"],
      setup: `fpath=(${join(prefix, "share/zsh/site-functions")} $fpath); autoload -U compinit; compinit -u; PS1='$ '`,
    },
    // (not --no-config: it also empties fish_complete_path; HOME is a fresh directory, so no user config is read)
    fish: { argv: ["fish", "-i"], setup: "function fish_prompt; echo '$ '; end" },
  };
  for (const [shell, { argv, setup }] of Object.entries(shells)) {
    test(shell, async () => {
      const terminal = await startTerminal(argv, { env });
      try {
        await terminal.type(setup);
        await terminal.press("Enter");
        await terminal.type("clear");
        await terminal.press("Enter");
        await terminal.waitFor("a prompt", (s) => s.length === 1 && s[0].startsWith("$"), 30_000);
        await terminal.type("qmpctl ex");
        await terminal.press("Tab");
        await terminal.waitFor("the completed word", (s) => s.some((row) => /qmpctl exec\s*$/.test(row)), 10_000);
      } finally {
        await terminal.close();
      }
    });
  }
});

test("an unpacked source tarball (no .git) installs its own dist/qmpctl, as a checkout does", () => {
  const tree = mkdtempSync(join(tmpdir(), "qmpctl-tarball-"));
  try {
    for (const part of ["scripts", "cli.ts"]) {
      cpSync(resolve(import.meta.dir, "..", part), join(tree, part), { recursive: true });
    }
    const install = join(tree, "scripts/install.sh");
    expect(run([install, join(tree, "prefix")])).toEqual({
      code: 1,
      stdout: "",
      stderr: "install.sh: no dist/qmpctl in this source tree: build it first (scripts/build.sh)\n",
    });
    mkdirSync(join(tree, "dist"));
    for (const file of ["qmpctl", "qmpctl.1"]) {
      copyFileSync(resolve(import.meta.dir, "../dist", file), join(tree, "dist", file));
    }
    const result = run([install, join(tree, "prefix")]);
    expect(result).toMatchObject({ code: 0, stderr: "" });
    expect(result.stdout).toContain(`from ${join(tree, "dist/qmpctl")} into ${join(tree, "prefix")}`);
  } finally {
    rmSync(tree, { recursive: true, force: true });
  }
});

test("install.sh --uninstall PREFIX removes every file it installed (not the directories: others may need them)", () => {
  const other = mkdtempSync(join(tmpdir(), "qmpctl-prefix-"));
  try {
    expect(run([INSTALL, other]).code).toBe(0);
    expect(run([INSTALL, "--uninstall", other]).code).toBe(0);
    const left = (dir: string): string[] =>
      readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
        e.isDirectory() ? left(join(dir, e.name)) : [join(dir, e.name)]
      );
    expect(left(other)).toEqual([]);
    expect(existsSync(join(other, "bin"))).toBe(true);
    // Again, or a PREFIX with nothing of qmpctl (mistyped): it says so and fails, claiming no removal.
    expect(run([INSTALL, "--uninstall", other])).toMatchObject({
      code: 1,
      stdout: "",
      stderr: `install.sh: no qmpctl installed under ${other}: nothing removed\n`,
    });
  } finally {
    rmSync(other, { recursive: true, force: true });
  }
});

test("install.sh --help prints its usage and installs nothing; an unknown option is refused", () => {
  const cwd = mkdtempSync(join(tmpdir(), "qmpctl-cwd-"));
  try {
    const inDir = (argv: string[]) => {
      const result = Bun.spawnSync(argv, { cwd, stdout: "pipe", stderr: "pipe" });
      return { code: result.exitCode, stdout: result.stdout.toString(), stderr: result.stderr.toString() };
    };
    const help = inDir([INSTALL, "--help"]);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain("install.sh [PREFIX]");
    expect(help.stderr).toBe("");
    const wrong = inDir([INSTALL, "--prefix=/opt"]);
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toBe("install.sh: unknown option --prefix=/opt (see install.sh --help)\n");
    const misplaced = inDir([INSTALL, join(cwd, "prefix"), "--uninstall"]); // it installed, dropping --uninstall
    expect(misplaced.code).toBe(2);
    expect(misplaced.stderr).toBe("install.sh: one PREFIX at most, options first (see install.sh --help)\n");
    for (const argv of [[INSTALL, ""], [INSTALL, "--uninstall", ""]]) { // sh install.sh "$PREFIX", PREFIX unset
      expect(inDir(argv)).toEqual({
        code: 2,
        stdout: "",
        stderr: "install.sh: PREFIX is empty (leave it out for /usr/local)\n",
      });
    }
    expect(readdirSync(cwd)).toEqual([]);
  } finally {
    rmSync(cwd, { recursive: true, force: true });
  }
});

test("sh install.sh PREFIX works with a POSIX sh (dash), as the README's install line runs it", () => {
  const other = mkdtempSync(join(tmpdir(), "qmpctl-prefix-"));
  try {
    const installed = run(["dash", INSTALL, other]);
    expect(installed.stderr).toBe("");
    expect(installed.code).toBe(0);
    expect(existsSync(join(other, "bin/qmpctl"))).toBe(true);
    expect(existsSync(join(other, "share/fish/vendor_completions.d/qmpctl.fish"))).toBe(true);
    expect(run(["dash", INSTALL, "--uninstall", other]).code).toBe(0);
    expect(existsSync(join(other, "bin/qmpctl"))).toBe(false);
  } finally {
    rmSync(other, { recursive: true, force: true });
  }
});

test("a PREFIX the installing user may not write in: one line of its own, naming it (as nobody: setpriv)", () => {
  const other = mkdtempSync(join(tmpdir(), "qmpctl-prefix-"));
  try {
    chmodSync(other, 0o755); // root's, as /usr/local is
    const asNobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "sh", INSTALL, other];
    const result = run(asNobody);
    expect(result.stderr).toMatch(
      new RegExp(
        `^install\\.sh: cannot make its directories in ${other} \\(run it as a user who may, or give ` +
          "another PREFIX\\): mkdir: [^\\n]*: Permission denied\\n$",
      ),
    );
    expect(result.code).toBe(1);
    expect(readdirSync(other)).toEqual([]);
  } finally {
    rmSync(other, { recursive: true, force: true });
  }
});

test("--uninstall by a user who may not remove the files: each named with rm's reason, exit 1, every file left", () => {
  const other = mkdtempSync(join(tmpdir(), "qmpctl-prefix-"));
  try {
    chmodSync(other, 0o755); // root's, as /usr/local is
    expect(run([INSTALL, other]).code).toBe(0);
    const asNobody = [
      "setpriv",
      "--reuid=65534",
      "--regid=65534",
      "--clear-groups",
      "sh",
      INSTALL,
      "--uninstall",
      other,
    ];
    const files = ["bin/qmpctl", "share/man/man1/qmpctl.1", "share/bash-completion/completions/qmpctl"];
    files.push("share/zsh/site-functions/_qmpctl", "share/fish/vendor_completions.d/qmpctl.fish");
    expect(run(asNobody)).toMatchObject({
      code: 1,
      stdout: "",
      stderr: `install.sh: cannot remove qmpctl from ${other}: nothing removed (run it as a user who may):\n` +
        files.map((file) => `rm: cannot remove '${join(other, file)}': Permission denied\n`).join(""),
    });
    for (const file of files) expect(existsSync(join(other, file))).toBe(true);
    // Only the man page's directory is root's: the others go, and it says so.
    for (const file of files.filter((file) => !file.includes("man1"))) {
      chownSync(join(other, dirname(file)), 65534, 65534);
    }
    expect(run(asNobody)).toMatchObject({
      code: 1,
      stdout: "",
      stderr: `install.sh: some files stay under ${other} (the others are removed; run it as a user who may):\n` +
        `rm: cannot remove '${join(other, "share/man/man1/qmpctl.1")}': Permission denied\n`,
    });
    expect(files.filter((file) => existsSync(join(other, file)))).toEqual(["share/man/man1/qmpctl.1"]);
  } finally {
    rmSync(other, { recursive: true, force: true });
  }
});

test("directories already there keep their mode and group (a 0700 bin, a 2775 root:staff man1); those made are 0755", () => {
  const other = mkdtempSync(join(tmpdir(), "qmpctl-prefix-"));
  try {
    mkdirSync(join(other, "bin"), { mode: 0o700 });
    mkdirSync(join(other, "share/man/man1"), { recursive: true });
    chownSync(join(other, "share/man/man1"), 0, 50); // staff, as /usr/local/* on older Debian
    chmodSync(join(other, "share/man/man1"), 0o2775);
    const installed = run(["sh", "-c", 'umask 077 && exec sh "$0" "$1"', INSTALL, other]);
    expect(installed).toMatchObject({ code: 0, stderr: "" });
    const mode = (dir: string) => `${dir} ${(statSync(join(other, dir)).mode & 0o7777).toString(8)}`;
    expect(mode("bin")).toBe("bin 700");
    expect(mode("share/man/man1")).toBe("share/man/man1 2775");
    expect(statSync(join(other, "share/man/man1")).gid).toBe(50);
    for (const dir of ["share/bash-completion/completions", "share/zsh", "share/fish/vendor_completions.d"]) {
      expect(mode(dir)).toBe(`${dir} 755`);
    }
  } finally {
    rmSync(other, { recursive: true, force: true });
  }
});

test("a completion it cannot write (a folder it may not write in): nothing installed, saying so; the earlier install and folders as they were", () => {
  const other = mkdtempSync(join(tmpdir(), "qmpctl-prefix-"));
  const files = (dir: string): string[] =>
    readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
      e.isDirectory() ? [`${join(dir, e.name)}/`, ...files(join(dir, e.name))] : [join(dir, e.name)]
    );
  try {
    // An earlier install (a binary and a man page), the user's; fish's folder is root's.
    mkdirSync(join(other, "bin"));
    writeFileSync(join(other, "bin/qmpctl"), "#!/bin/sh\necho qmpctl 0.0.1\n", { mode: 0o755 });
    mkdirSync(join(other, "share/man/man1"), { recursive: true });
    writeFileSync(join(other, "share/man/man1/qmpctl.1"), ".TH QMPCTL 1\n");
    mkdirSync(join(other, "share/fish/vendor_completions.d"), { recursive: true });
    for (const dir of ["", "bin", "share", "share/man", "share/man/man1", "share/fish"]) {
      chownSync(join(other, dir), 65534, 65534);
    }
    for (const file of ["bin/qmpctl", "share/man/man1/qmpctl.1"]) chownSync(join(other, file), 65534, 65534);
    const before = files(other);
    const asNobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "sh", INSTALL, other];
    const result = run(asNobody);
    expect(result.stderr).toMatch(
      new RegExp(
        `^install\\.sh: cannot write the fish completion in ${other}/share/fish/vendor_completions\\.d ` +
          "\\(mktemp: [^\\n]*: Permission denied\\): nothing installed, an earlier install is as it was\\n$",
      ),
    );
    expect(result.code).toBe(1);
    expect(files(other)).toEqual(before); // no file staged beside another, no directory it made
    expect(readFileSync(join(other, "bin/qmpctl"), "utf8")).toContain("0.0.1");
    expect(readFileSync(join(other, "share/man/man1/qmpctl.1"), "utf8")).toBe(".TH QMPCTL 1\n");
  } finally {
    rmSync(other, { recursive: true, force: true });
  }
});

test("install.sh writes every file readable by all (completions too) when the installing user's umask is 077", () => {
  const other = mkdtempSync(join(tmpdir(), "qmpctl-prefix-"));
  try {
    const installed = run(["sh", "-c", 'umask 077 && exec sh "$0" "$1"', INSTALL, other]);
    expect(installed.stderr).toBe("");
    expect(installed.code).toBe(0);
    expectInstalledModes(other);
  } finally {
    rmSync(other, { recursive: true, force: true });
  }
});

test("an exported CDPATH does not change where it looks for the binary (scripts/install.sh run from the checkout)", () => {
  const other = mkdtempSync(join(tmpdir(), "qmpctl-prefix-"));
  try {
    const root = resolve(import.meta.dir, "..");
    // cd scripts, with CDPATH=.:/usr, goes to ./scripts through CDPATH and prints where it went.
    const result = Bun.spawnSync(["sh", "scripts/install.sh", other], {
      cwd: root,
      env: { ...process.env, CDPATH: ".:/usr" },
      stdout: "pipe",
      stderr: "pipe",
    });
    expect(result.stderr.toString()).toBe("");
    const version = run([QMPCTL, "--version"]).stdout.trim();
    expect(result.stdout.toString()).toBe(`installed ${version} from ${join(root, "dist/qmpctl")} into ${other}\n`);
    expect(result.exitCode).toBe(0);
  } finally {
    rmSync(other, { recursive: true, force: true });
  }
});

// A umask that takes the user's own bits: the script's own work files must still be its to write and read,
// and what it installs keeps the modes it sets. As nobody: root may write and read a file whatever its mode.
for (const umask of ["0222", "0377", "0577", "0777"]) {
  test(`a non-root user whose umask is ${umask} installs, with the usual modes, and leaves no work file`, () => {
    const parent = mkdtempSync(join(tmpdir(), "qmpctl-umask-"));
    try {
      chmodSync(parent, 0o777);
      const [other, temp] = [join(parent, "prefix"), join(parent, "tmp")];
      mkdirSync(temp);
      chownSync(temp, 65534, 65534);
      const asNobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"];
      const script = 'umask "$2" && exec sh "$0" "$1"';
      const result = run([...asNobody, "sh", "-c", script, INSTALL, other, umask], { TMPDIR: temp });
      expect(result.stderr).toBe("");
      expect(result.stdout).toContain(` into ${other}\n`);
      expect(result.code).toBe(0);
      expectInstalledModes(other);
      const mode = (file: string) => `${file} ${(statSync(join(other, file)).mode & 0o7777).toString(8)}`;
      for (const dir of ["", "bin", "share/man/man1", "share/zsh/site-functions", "share/fish"]) {
        expect(mode(dir)).toBe(`${dir} 755`);
      }
      expect(readdirSync(temp)).toEqual([]); // its work directory taken away again
      expect(run([join(other, "bin/qmpctl"), "--version"]).stdout).toBe(run([QMPCTL, "--version"]).stdout);
    } finally {
      rmSync(parent, { recursive: true, force: true });
    }
  });
}

describe("sh install.sh from a release folder, as the README downloads it", () => {
  const arch = process.arch === "arm64" ? "arm64" : "x64";
  const NAME = `qmpctl-${process.platform}-${arch}`;
  const OTHER_ARCH = `qmpctl-${process.platform}-${arch === "arm64" ? "x64" : "arm64"}`;
  const sha256 = (file: string) => createHash("sha256").update(readFileSync(file)).digest("hex");
  const parents: string[] = [];
  afterAll(() => {
    for (const dir of parents) rmSync(dir, { recursive: true, force: true });
  });

  /**
   * PARENT/qmpctl-0.1.0/ holding the binary named NAME at mode 0644 (what a
   * download leaves), qmpctl.1, install.sh and SHA256SUMS as scripts/release.sh
   * writes it; and PARENT/dist/qmpctl, planted by someone else (PARENT is /tmp
   * for a folder downloaded there): a program that leaves a mark if it runs.
   */
  function releaseFolder(name: string) {
    const parent = mkdtempSync(join(tmpdir(), "qmpctl-release-"));
    parents.push(parent);
    const folder = join(parent, "qmpctl-0.1.0");
    const mark = join(parent, "planted-ran");
    mkdirSync(folder);
    copyFileSync(QMPCTL, join(folder, name));
    chmodSync(join(folder, name), 0o644);
    copyFileSync(join(import.meta.dir, "../dist/qmpctl.1"), join(folder, "qmpctl.1"));
    copyFileSync(INSTALL, join(folder, "install.sh"));
    const sums = [name, "qmpctl.1", "install.sh"].map((file) => `${sha256(join(folder, file))}  ${file}\n`);
    writeFileSync(join(folder, "SHA256SUMS"), sums.join(""));
    mkdirSync(join(parent, "dist"));
    writeFileSync(join(parent, "dist/qmpctl"), `#!/bin/sh\nid >${mark}\necho planted\n`, { mode: 0o755 });
    copyFileSync(join(folder, "qmpctl.1"), join(parent, "dist/qmpctl.1"));
    const prefix = join(parent, "prefix");
    const install = (env: Record<string, string | undefined> = process.env) => {
      const result = Bun.spawnSync(["sh", "install.sh", prefix], { cwd: folder, env, stdout: "pipe", stderr: "pipe" });
      return { code: result.exitCode, stdout: result.stdout.toString(), stderr: result.stderr.toString() };
    };
    return { folder, prefix, install, plantedRan: () => existsSync(mark) };
  }

  test("this machine's binary, downloaded at mode 0644, is installed and named in the output", () => {
    const release = releaseFolder(NAME);
    const result = release.install();
    expect(result.stderr).toBe("");
    const version = run([QMPCTL, "--version"]).stdout.trim();
    expect(result.stdout).toBe(`installed ${version} from ${join(release.folder, NAME)} into ${release.prefix}\n`);
    expect(result.code).toBe(0);
    expect(run([join(release.prefix, "bin/qmpctl"), "--version"]).stdout).toBe(`${version}\n`);
    expect(release.plantedRan()).toBe(false);
  });

  test("with only another machine's binary downloaded it stops, and never takes ../dist/qmpctl beside the folder", () => {
    const release = releaseFolder(OTHER_ARCH);
    const result = release.install();
    expect(result.stderr).toBe(`install.sh: no ${NAME} beside this script in ${release.folder}\n`);
    expect(result.code).toBe(1);
    expect(release.plantedRan()).toBe(false);
    expect(existsSync(release.prefix)).toBe(false);
  });

  test("a binary that does not run here (a truncated download) is not installed: the installed one stays", () => {
    const release = releaseFolder(NAME);
    expect(release.install()).toMatchObject({ code: 0, stderr: "" });
    const binary = join(release.folder, NAME);
    writeFileSync(binary, readFileSync(binary).subarray(0, 4_000_000));
    rmSync(join(release.folder, "SHA256SUMS"));
    const result = release.install();
    expect(result.stderr).toMatch(
      new RegExp(
        `^install\\.sh: ${binary}, copied to ${release.prefix}/bin, does not run there \\(exit status \\d+[^\\n]*\\): ` +
          "nothing installed\\n$",
      ),
    );
    expect(result.code).toBe(1);
    expect(run([join(release.prefix, "bin/qmpctl"), "--version"]).stdout).toBe(run([QMPCTL, "--version"]).stdout);
    expect(readdirSync(join(release.prefix, "bin"))).toEqual(["qmpctl"]);
  });

  test("a binary that does not run here, into a new PREFIX: nothing is left there, not even its directories", () => {
    const release = releaseFolder(NAME);
    const binary = join(release.folder, NAME);
    writeFileSync(binary, readFileSync(binary).subarray(0, 4_000_000));
    rmSync(join(release.folder, "SHA256SUMS"));
    const result = release.install();
    expect(result.stderr).toContain("does not run there");
    expect(result.code).toBe(1);
    expect(existsSync(release.prefix)).toBe(false);
  });

  test("a stripped binary (dh_strip, makepkg) is the Bun runtime alone: not installed, saying so, whatever $SHELL", () => {
    const release = releaseFolder(NAME);
    const binary = join(release.folder, NAME);
    expect(Bun.spawnSync(["strip", "--remove-section=.comment", "--remove-section=.note", binary]).exitCode).toBe(0);
    rmSync(join(release.folder, "SHA256SUMS"));
    // The runtime's own `completions` fails without $SHELL (as under CI or cron): the message is the same.
    const { SHELL: _, ...withoutShell } = process.env;
    for (const env of [{ ...withoutShell, SHELL: "/bin/bash" }, withoutShell]) {
      const result = release.install(env);
      expect(result.stderr).toMatch(
        new RegExp(
          `^install\\.sh: ${binary} does not say it is qmpctl \\(--version: [^)]*\\); a stripped binary is the Bun`,
        ),
      );
      expect(result.code).toBe(1);
      expect(existsSync(join(release.prefix, "bin/qmpctl"))).toBe(false);
    }
  });

  test("with SHA256SUMS but no tool to check it (sha256sum, shasum) nothing is installed", () => {
    const release = releaseFolder(NAME);
    const tools = join(release.folder, "..", "tools");
    mkdirSync(tools);
    for (const tool of ["sh", "dirname", "uname", "awk", "cut", "install", "mktemp", "rm", "head", "mv", "cat"]) {
      symlinkSync(Bun.which(tool)!, join(tools, tool));
    }
    const result = Bun.spawnSync(["sh", "install.sh", release.prefix], {
      cwd: release.folder,
      env: { PATH: tools },
      stderr: "pipe",
    });
    expect(result.stderr.toString()).toBe(
      `install.sh: neither sha256sum nor shasum is here to check ${release.folder}/SHA256SUMS: nothing installed\n`,
    );
    expect(result.exitCode).toBe(1);
    expect(existsSync(release.prefix)).toBe(false);
  });

  test("a binary that does not match SHA256SUMS, or that SHA256SUMS does not list, is refused before it runs", () => {
    const release = releaseFolder(NAME);
    const sums = join(release.folder, "SHA256SUMS");
    const listed = readFileSync(sums, "utf8");
    writeFileSync(sums, listed.replace(sha256(join(release.folder, NAME)), "0".repeat(64)));
    const changed = release.install();
    expect(changed.stderr).toBe(
      `install.sh: ${join(release.folder, NAME)} does not match its SHA256SUMS line: not installing it\n`,
    );
    expect(changed.code).toBe(1);
    writeFileSync(sums, listed.split("\n").filter((line) => !line.includes(NAME)).join("\n"));
    const unlisted = release.install();
    expect(unlisted.stderr).toBe(`install.sh: ${join(release.folder, NAME)} is not in ${sums}: not installing it\n`);
    expect(unlisted.code).toBe(1);
    expect(existsSync(release.prefix)).toBe(false);
    expect(release.plantedRan()).toBe(false);
  });

  test("without SHA256SUMS it installs, then says on stderr that nothing was checked (not when it fails)", () => {
    const release = releaseFolder(NAME);
    rmSync(join(release.folder, "SHA256SUMS"));
    expect(release.install()).toMatchObject({
      code: 0,
      stderr: `install.sh: no SHA256SUMS beside this script: ${
        join(release.folder, NAME)
      } and its man page were installed unchecked\n`,
    });
    const file = join(release.folder, "a-file");
    writeFileSync(file, "");
    const failed = run(["sh", join(release.folder, "install.sh"), file]);
    expect(failed.code).not.toBe(0);
    expect(failed.stderr).not.toContain("unchecked");
  });

  test("a SHA256SUMS with CRLF line ends (sha256sum -c takes it) is read as its lines", () => {
    const release = releaseFolder(NAME);
    const sums = join(release.folder, "SHA256SUMS");
    writeFileSync(sums, readFileSync(sums, "utf8").replaceAll("\n", "\r\n"));
    expect(release.install()).toMatchObject({ code: 0, stderr: "" });
  });
});
