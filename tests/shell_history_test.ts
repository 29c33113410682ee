/**
 * The shell's history file on a real pseudo-terminal: root may run the shell
 * with another user's HOME or XDG_STATE_HOME (`sudo -E`, `su -m`), so what
 * lies at the history's path is not trusted. A link is not followed, a file
 * or directory of another user is not used (history is then off, with one
 * warning, and the shell works on), a loose mode of ours is tightened (a
 * link's target's is refused, never changed), and a relative XDG_STATE_HOME
 * is ignored. Tests run as root, as the other tests that chown to nobody
 * (65534) do.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import {
  chmodSync,
  chownSync,
  existsSync,
  lchownSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  realpathSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { historyPath } from "../cli/shell/history.ts";
import { QMPCTL } from "./helpers/cli.ts";
import { startQemu, type TestQemu, waitForMonitorFree } from "./helpers/qemu.ts";
import { enterLine } from "./helpers/shell.ts";
import { startTerminal, type TerminalSession } from "./helpers/terminal.ts";

let qemu: TestQemu;
const homes: string[] = [];
const PROMPT = "(QEMU)"; // no -name: "(QEMU) ", its blank dropped from the screen
const NOBODY = 65534;

beforeAll(async () => {
  qemu = await startQemu();
});
afterAll(async () => {
  await qemu?.stop();
  for (const home of homes) rmSync(home, { recursive: true, force: true });
});

/** A fresh home, its history directory `state/qmpctl` not made yet. */
function freshHome(): { home: string; dir: string; file: (kind?: string) => string } {
  const home = mkdtempSync(join(tmpdir(), "qmpctl-history-"));
  homes.push(home);
  const dir = join(home, "state", "qmpctl");
  return { home, dir, file: (kind = "qmp") => join(dir, `${kind}_history`) };
}

/**
 * Run a shell on a wide terminal (so that a warning stays on one row) with
 * HOME=`home` and XDG_STATE_HOME=`home`/state unless `env` says otherwise,
 * let `body` use it, then leave with `quit` (exit 0). Returns the last screen.
 */
async function shell(
  home: string,
  body: (terminal: TerminalSession) => Promise<void>,
  options: { hmp?: boolean; env?: Record<string, string | undefined>; cwd?: string } = {},
): Promise<string[]> {
  const env = { HOME: home, XDG_STATE_HOME: join(home, "state"), XDG_CACHE_HOME: join(home, "cache"), ...options.env };
  const argv = [QMPCTL, "shell", ...(options.hmp ? ["--hmp"] : []), "-s", qemu.socket];
  const terminal = await startTerminal(argv, { env, cwd: options.cwd, columns: 320 });
  try {
    await terminal.waitForLastLine(PROMPT);
    await body(terminal);
    await terminal.type("quit");
    await terminal.press("Enter");
    expect(await terminal.exitStatus()).toBe(0);
    return await terminal.screen();
  } finally {
    await terminal.close();
    await waitForMonitorFree(qemu.socket);
  }
}

/** A shell in which Up brings back the saved line query-status, then query-name is entered; no warning. */
async function recallThenEnter(home: string): Promise<void> {
  const screen = await shell(home, async (terminal) => {
    await terminal.press("Up");
    await terminal.waitForLastLine("(QEMU) query-status");
    await terminal.press("C-u");
    await enterLine(terminal, PROMPT, "query-name");
  });
  expect(screen.filter((row) => row.startsWith("qmpctl:"))).toEqual([]);
}

const warning = (file: string, reason: string) =>
  `qmpctl: cannot save shell history in ${file}: ${reason}; history is off for this session`;

describe("the shell's history file", () => {
  test("a symlink planted as the history file is not followed: its target is unchanged, a warning says why, the shell works", async () => {
    const { home, dir, file } = freshHome();
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const target = join(home, "victim");
    writeFileSync(target, "planted\n", { mode: 0o644 });
    symlinkSync(target, file());
    lchownSync(file(), NOBODY, NOBODY); // planted by another user (while the directory was open to others)
    const screen = await shell(home, async (terminal) => {
      expect(await enterLine(terminal, PROMPT, "object-add qom-type=secret id=s0 data=hunter2")).toEqual([
        "(QEMU) object-add qom-type=secret id=s0 data=hunter2",
        "{}",
      ]);
    });
    const reason = `it is a symbolic link (not followed): the link belongs to uid ${NOBODY}, not to this user (uid 0)`;
    expect(screen[0]).toBe(warning(file(), reason));
    expect(readFileSync(target, "utf8")).toBe("planted\n");
    expect(lstatSync(file()).isSymbolicLink()).toBe(true);
  });

  test("shell --hmp: a dangling symlink planted as hmp_history does not create its target", async () => {
    const { home, dir, file } = freshHome();
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const target = join(home, "cron.d-planted");
    symlinkSync(target, file("hmp"));
    const screen = await shell(home, async (terminal) => {
      const rows = await enterLine(terminal, PROMPT, "info version");
      expect(rows[1]).toMatch(/^\d+\.\d+\.\d+/);
    }, { hmp: true });
    // Even a link of ours: nothing is created through a link.
    expect(screen[0]).toBe(warning(file("hmp"), "it is a symbolic link (not followed): its target does not exist"));
    expect(existsSync(target)).toBe(false);
  });

  test("a symlink planted as the history directory is not followed: nothing is written where it leads", async () => {
    const { home, dir, file } = freshHome();
    const target = join(home, "elsewhere");
    mkdirSync(target, { mode: 0o755 });
    mkdirSync(join(home, "state"));
    symlinkSync(target, dir);
    const screen = await shell(home, async (terminal) => {
      await enterLine(terminal, PROMPT, "query-name");
    });
    expect(screen[0]).toBe(warning(file(), "its directory is a symbolic link (not followed)"));
    expect(readdirSync(target)).toEqual([]);
    expect(statSync(target).mode & 0o777).toBe(0o755);
  });

  test("a history file owned by another user is neither read nor written", async () => {
    const { home, dir, file } = freshHome();
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    writeFileSync(file(), "system_powerdown\n", { mode: 0o644 });
    chownSync(file(), NOBODY, NOBODY);
    const screen = await shell(home, async (terminal) => {
      await enterLine(terminal, PROMPT, "query-name");
      // Up brings back only this session's line, not the other user's.
      // (The mark typed after the keys shows that both were taken.)
      await terminal.press("Up", "Up");
      await terminal.type("#");
      await terminal.waitForLastLine("(QEMU) query-name#");
      await terminal.press("C-u");
      await terminal.waitForLastLine(PROMPT);
    });
    expect(screen[0]).toBe(warning(file(), `it belongs to uid ${NOBODY}, not to this user (uid 0)`));
    expect(readFileSync(file(), "utf8")).toBe("system_powerdown\n");
  });

  test("a history directory owned by another user is not written to", async () => {
    const { home, dir, file } = freshHome();
    mkdirSync(dir, { recursive: true, mode: 0o755 });
    chownSync(dir, NOBODY, NOBODY);
    const screen = await shell(home, async (terminal) => {
      await enterLine(terminal, PROMPT, "query-name");
    });
    expect(screen[0]).toBe(warning(file(), `its directory belongs to uid ${NOBODY}, not to this user (uid 0)`));
    expect(existsSync(file())).toBe(false);
    expect(statSync(dir).mode & 0o777).toBe(0o755);
  });

  test("a missing history directory is not created in another user's tree (root run with a user's HOME, as sudo -E does)", async () => {
    const { home } = freshHome();
    const theirs = join(home, "alice");
    mkdirSync(theirs, { mode: 0o755 });
    chownSync(theirs, NOBODY, NOBODY); // nobody's home, without a .local yet
    const file = join(theirs, ".local", "state", "qmpctl", "qmp_history");
    const screen = await shell(home, async (terminal) => {
      await enterLine(terminal, PROMPT, "query-name");
    }, { env: { HOME: theirs, XDG_STATE_HOME: join(theirs, ".local", "state") } });
    const reason =
      `its directory would be created in ${theirs}, which belongs to uid ${NOBODY}, not to this user (uid 0)`;
    expect(screen[0]).toBe(warning(file, reason));
    expect(readdirSync(theirs)).toEqual([]);
  });

  test("a symlinked history file of ours (a dotfile manager's, as stow makes) is read, cut back and appended to through the link, which stays", async () => {
    const { home, dir, file } = freshHome();
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const dotfiles = join(home, "dotfiles");
    mkdirSync(dotfiles, { mode: 0o755 });
    const target = join(dotfiles, "qmp_history");
    writeFileSync(target, "x".repeat(2 * 1024 * 1024) + "\nquery-status\n", { mode: 0o600 }); // cut back when loaded
    symlinkSync(target, file());
    await recallThenEnter(home);
    expect(lstatSync(file()).isSymbolicLink()).toBe(true);
    expect(readFileSync(target, "utf8")).toBe("query-status\nquery-name\nquit\n");
    expect(readdirSync(dotfiles)).toEqual(["qmp_history"]); // no temporary file left
  });

  test("a symlinked history file is not followed into a directory that others may write to", async () => {
    const { home, dir, file } = freshHome();
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const shared = join(home, "shared");
    mkdirSync(shared);
    chmodSync(shared, 0o777); // not sticky: anyone could swap the file for another
    const target = join(shared, "qmp_history");
    writeFileSync(target, "query-status\n", { mode: 0o600 });
    symlinkSync(target, file());
    const screen = await shell(home, async (terminal) => {
      await enterLine(terminal, PROMPT, "query-name");
    });
    const reason =
      `it is a symbolic link (not followed): ${shared}, above its target, is writable by others (mode 777)`;
    expect(screen[0]).toBe(warning(file(), reason));
    expect(readFileSync(target, "utf8")).toBe("query-status\n");
  });

  test("a symlinked history file whose target belongs to another user is neither read nor written", async () => {
    const { home, dir, file } = freshHome();
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const target = join(home, "theirs");
    writeFileSync(target, "system_powerdown\n", { mode: 0o600 });
    chownSync(target, NOBODY, NOBODY);
    symlinkSync(target, file());
    const screen = await shell(home, async (terminal) => {
      await enterLine(terminal, PROMPT, "query-name");
    });
    expect(screen[0]).toBe(warning(file(), `it belongs to uid ${NOBODY}, not to this user (uid 0)`));
    expect(readFileSync(target, "utf8")).toBe("system_powerdown\n");
  });

  test("shell --hmp: a symlinked history file whose target its group or others may read or write is refused, not chmod-ed: the target's mode and lines stay", async () => {
    // The link could lead anywhere of this user's (root's: /etc/passwd): a target's mode is never changed.
    for (
      const [mode, who] of [
        [0o644, "its group and others may read"],
        [0o620, "its group may write"],
      ] as const
    ) {
      const { home, dir, file } = freshHome();
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      const configs = join(home, "tgt");
      mkdirSync(configs, { mode: 0o755 });
      const target = join(configs, "config");
      writeFileSync(target, "root:x:0:0\n");
      chmodSync(target, mode);
      symlinkSync(target, file("hmp"));
      const screen = await shell(home, async (terminal) => {
        const rows = await enterLine(terminal, PROMPT, "info version");
        expect(rows[1]).toMatch(/^\d+\.\d+\.\d+/);
      }, { hmp: true });
      const reason = `it is a symbolic link to ${realpathSync(target)}, which ${who} (mode ${mode.toString(8)}): ` +
        "chmod 600 it to keep history there";
      expect(statSync(target).mode & 0o7777).toBe(mode);
      expect(readFileSync(target, "utf8")).toBe("root:x:0:0\n");
      expect(screen[0]).toBe(warning(file("hmp"), reason));
      expect(lstatSync(file("hmp")).isSymbolicLink()).toBe(true);
      expect(readdirSync(configs)).toEqual(["config"]);
    }
  });

  test("a symlinked history file whose target is 0600 is used: lines are appended to the target, its mode and the link stay", async () => {
    const { home, dir, file } = freshHome();
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const dotfiles = join(home, "dotfiles");
    mkdirSync(dotfiles, { mode: 0o755 });
    const target = join(dotfiles, "qmp_history");
    writeFileSync(target, "query-status\n", { mode: 0o600 });
    const inode = statSync(target).ino;
    symlinkSync(target, file());
    await recallThenEnter(home);
    expect(readFileSync(target, "utf8")).toBe("query-status\nquery-name\nquit\n");
    expect(statSync(target).mode & 0o7777).toBe(0o600);
    expect(statSync(target).ino).toBe(inode); // appended to, not rewritten
    expect(lstatSync(file()).isSymbolicLink()).toBe(true);
  });

  test("a symlinked history file over 2000 lines is cut back beside its target: the link stays a link, the target keeps its mode", async () => {
    const { home, dir, file } = freshHome();
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const dotfiles = join(home, "dotfiles");
    mkdirSync(dotfiles, { mode: 0o755 });
    const target = join(dotfiles, "qmp_history");
    const lines = (count: number) => Array.from({ length: count }, (_, i) => `query-name # ${i}\n`).join("");
    writeFileSync(target, lines(2001));
    chmodSync(target, 0o400); // a mode of the user's own choosing (root, as the tests run, still writes it)
    symlinkSync(target, file());
    await shell(home, async () => {});
    expect(lstatSync(file()).isSymbolicLink()).toBe(true);
    expect(readlinkSync(file())).toBe(target);
    expect(readFileSync(target, "utf8")).toBe(lines(2001).split("\n").slice(1001).join("\n") + "quit\n");
    expect(statSync(target).mode & 0o7777).toBe(0o400);
    expect(readdirSync(dotfiles)).toEqual(["qmp_history"]); // no temporary file left
  });

  test("an existing 0644 history file of ours becomes 0600 and a 0755 directory of ours 0700; its lines are kept", async () => {
    const { home, dir, file } = freshHome();
    mkdirSync(dir, { recursive: true });
    chmodSync(dir, 0o755);
    writeFileSync(file(), "query-status\n");
    chmodSync(file(), 0o644);
    await recallThenEnter(home);
    expect(statSync(file()).mode & 0o777).toBe(0o600);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    expect(readFileSync(file(), "utf8")).toBe("query-status\nquery-name\nquit\n");
  });

  test("an edited recalled line and the line being typed survive a walk up and down the history", async () => {
    const { home } = freshHome();
    await shell(home, async (terminal) => {
      await enterLine(terminal, PROMPT, "query-name");
      await enterLine(terminal, PROMPT, "query-status");
      await terminal.type("query-k");
      await terminal.press("Up");
      await terminal.waitForLastLine("(QEMU) query-status");
      await terminal.press("BSpace", "BSpace", "BSpace", "BSpace", "BSpace", "BSpace");
      await terminal.type("version");
      await terminal.press("Up");
      await terminal.waitForLastLine("(QEMU) query-name");
      await terminal.press("Down");
      await terminal.waitForLastLine("(QEMU) query-version");
      await terminal.press("Down");
      await terminal.waitForLastLine("(QEMU) query-k");
      await terminal.type("vm");
      await terminal.press("Enter");
      await terminal.waitFor("query-kvm's answer", (screen) => screen.some((row) => row.includes('"enabled":')));
    });
  });

  test("a relative XDG_STATE_HOME is ignored: history goes to ~/.local/state/qmpctl", async () => {
    const { home } = freshHome();
    const cwd = join(home, "work");
    mkdirSync(cwd);
    await shell(home, async (terminal) => {
      await enterLine(terminal, PROMPT, "query-name");
    }, { env: { XDG_STATE_HOME: "state" }, cwd });
    expect(readFileSync(join(home, ".local", "state", "qmpctl", "qmp_history"), "utf8")).toBe("query-name\nquit\n");
    expect(existsSync(join(cwd, "state"))).toBe(false);
  });

  test("a relative HOME, or none, keeps no history and says why: nothing is made where the shell was started", async () => {
    const { home } = freshHome();
    const cwd = join(home, "work");
    mkdirSync(cwd);
    for (
      const [HOME, XDG_STATE_HOME, why] of [
        ["abc", undefined, "HOME (abc) is not an absolute path, and XDG_STATE_HOME is not set"],
        [undefined, "state", "HOME is not set, and XDG_STATE_HOME (state) is not an absolute path"],
      ]
    ) {
      const screen = await shell(home, async (terminal) => {
        await enterLine(terminal, PROMPT, "query-name");
      }, { env: { HOME, XDG_STATE_HOME }, cwd });
      expect(screen).toContain(
        `qmpctl: cannot keep shell history: ${why}; history is off for this session`,
      );
    }
    expect(readdirSync(cwd)).toEqual([]);
  });

  test("HOME=/ (a system user's): the file is /.local/state/qmpctl/..., one slash; a trailing slash is dropped", () => {
    const saved = { HOME: process.env.HOME, XDG_STATE_HOME: process.env.XDG_STATE_HOME };
    try {
      delete process.env.XDG_STATE_HOME;
      process.env.HOME = "/";
      expect(historyPath("qmp")).toBe("/.local/state/qmpctl/qmp_history");
      process.env.HOME = "/home/u/";
      expect(historyPath("hmp")).toBe("/home/u/.local/state/qmpctl/hmp_history");
    } finally {
      for (const [name, value] of Object.entries(saved)) {
        if (value === undefined) delete process.env[name];
        else process.env[name] = value;
      }
    }
  });

  test("a file over 2000 lines is cut back to its last 1000 when a shell starts; one under 2000 is left as it is", async () => {
    // Cutting back rewrites the file: done rarely, since a line another shell enters meanwhile is lost.
    const { home, dir, file } = freshHome();
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const lines = (count: number) => Array.from({ length: count }, (_, i) => `query-name # ${i}\n`).join("");
    writeFileSync(file(), lines(1500), { mode: 0o600 });
    const inode = statSync(file()).ino;
    await shell(home, async (terminal) => {
      await terminal.press("Up");
      await terminal.waitForLastLine("(QEMU) query-name # 1499");
      await terminal.press("C-u");
      await terminal.waitForLastLine(PROMPT);
    });
    expect(readFileSync(file(), "utf8")).toBe(lines(1500) + "quit\n");
    expect(statSync(file()).ino).toBe(inode); // appended to, not rewritten
    writeFileSync(file(), lines(2001), { mode: 0o600 });
    await shell(home, async () => {});
    expect(readFileSync(file(), "utf8")).toBe(lines(2001).split("\n").slice(1001).join("\n") + "quit\n");
  });

  test("only the end of a large history file is read, and the file is cut back to the lines kept", async () => {
    const { home, dir, file } = freshHome();
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    writeFileSync(file(), "x".repeat(2 * 1024 * 1024) + "\nquery-status\n", { mode: 0o600 });
    await shell(home, async (terminal) => {
      await terminal.press("Up");
      await terminal.waitForLastLine("(QEMU) query-status");
      await terminal.press("C-u");
      await terminal.waitForLastLine(PROMPT);
    });
    expect(readFileSync(file(), "utf8")).toBe("query-status\nquit\n");
  });
});
