/**
 * A private directory and the secret-bearing files in it (the shell's
 * history), for when the path comes from an environment another user may
 * have set (root run with a user's HOME through `sudo -E` or `su -m`):
 * nothing is followed, created or written outside what is this user's alone.
 * Runtime-specific (node:fs, loaded inside, off the one-shot path).
 *
 * @module
 */
import {
  checkAbove,
  notFollowed,
  notOursReason,
  openPrivateDirFd,
  parentDir,
  reasonError,
  tooOpen,
  withOwnerBits,
} from "../lib/private_dir.ts";
import { writeAllTo } from "./io/files.ts";

/**
 * A directory of this user's that no one else may write to, held open, and
 * the private files in it: what a secret-bearing file (the shell's history)
 * needs when the path comes from an environment another user may have set
 * (root run with a user's HOME through `sudo -E` or `su -m`).
 */
export interface PrivateDir {
  /**
   * The last `maxBytes` of the file `name` as text, starting at a whole line
   * when cut (`cut` true); undefined when there is no such file. The file is
   * checked (and, in the directory, tightened) as `append` does it.
   */
  readTail(name: string, maxBytes: number): Promise<{ text: string; cut: boolean } | undefined>;
  /** Append `text` to the file `name`, created 0600 if missing; one write, so lines of two shells do not mix. */
  append(name: string, text: string): Promise<void>;
  /**
   * Put `text` in place of the file `name`: written to a new temporary file
   * (O_EXCL, 0600; beside a link's target, with the target's mode) renamed
   * over it.
   */
  replace(name: string, text: string): Promise<void>;
}

/**
 * Open the directory `path` as a PrivateDir, creating it (0700, and its
 * parents) when missing, but not in another user's tree, as the schema cache
 * does (lib/private_dir.ts: the same rules and the same opening). It must be
 * a directory of the effective user, not reached through a symlink at its
 * last component; a looser mode is tightened to 0700 through the open
 * descriptor (so a link swapped in meanwhile is not chmod-ed). Unlike the
 * cache's, a directory others could write to is not emptied: each file is
 * checked as it is opened, and the files are the user's own lines.
 * Its files are then opened through /proc/self/fd/N/NAME, which
 * resolves to the directory held open, not to whatever the path names by then:
 * the parents may belong to another user, who could rename the directory and
 * put a link in its place. Without /proc (and under Deno), the real path is
 * used, and only when no other user may change a directory on it.
 * Files must be regular, of this user, with one link (else a planted hard
 * link to another file of ours would be written), and are opened with
 * O_NOFOLLOW and O_NONBLOCK (a planted FIFO must not block the open).
 * A file may be a symbolic link of this user's (dotfile managers make them)
 * to an existing file that passes the same checks, on a path that only root
 * and this user can change, as OpenSSH's StrictModes asks: it is read and
 * written there, and replaced beside its target (a new file with the
 * target's mode, renamed over it), so the link stays. A target is never
 * chmod-ed (the link could lead to any file of this user's, /etc/passwd for
 * root): one that its group or others may read or write is refused, its
 * mode left as it is, while a file in the directory itself is tightened to
 * 0600 through its descriptor.
 * @throws {Error} whose message is the reason, about the file: "its directory
 * is a symbolic link (not followed)", "it belongs to uid 65534, not to this
 * user (uid 0)", "it is a symbolic link to /home/u/dotfiles/qmp_history,
 * which its group and others may read (mode 644): chmod 600 it to keep
 * history there", "its directory would be created in /home/alice, which
 * belongs to uid 1000, not to this user (uid 0)", or the system's
 * ("permission denied (EACCES)")
 */
export async function openPrivateDir(path: string): Promise<PrivateDir> {
  const fs = await import("node:fs");
  const dir = await openPrivateDirFd(path);
  // The descriptor stays open for the process's life (the shell's session).
  const proc = `/proc/self/fd/${dir.fd}`;
  const viaProc = await fs.promises.stat(proc).then((s) => s.dev === dir.dev && s.ino === dir.ino, () => false);
  const base = viaProc ? proc : await safeRealPath(path, dir, dir.uid).catch((error) => {
    dir.close();
    throw reasonError(error, "its directory");
  });
  return new OpenedPrivateDir(fs, base, dir.uid);
}

/** A PrivateDir whose files are opened under `base`: /proc/self/fd/N of the directory held open, or its real path. */
class OpenedPrivateDir implements PrivateDir {
  readonly #fs: typeof import("node:fs").promises;
  readonly #flags: typeof import("node:fs").constants;
  readonly #base: string;
  readonly #euid: number | undefined;

  constructor(fs: typeof import("node:fs"), base: string, euid: number | undefined) {
    this.#fs = fs.promises;
    this.#flags = fs.constants;
    this.#base = base;
    this.#euid = euid;
  }

  async readTail(name: string, maxBytes: number): Promise<{ text: string; cut: boolean } | undefined> {
    const { path, linked } = await this.#place(name);
    const opened = await this.#openFile(path, this.#flags.O_RDONLY, linked);
    if (!opened) return undefined;
    try {
      const start = Math.max(0, opened.size - maxBytes);
      const bytes = new Uint8Array(opened.size - start);
      let length = 0;
      while (length < bytes.length) {
        const { bytesRead } = await opened.file.read(bytes, length, bytes.length - length, start + length);
        if (bytesRead === 0) break; // cut short meanwhile
        length += bytesRead;
      }
      const text = new TextDecoder().decode(bytes.subarray(0, length));
      return start === 0 ? { text, cut: false } : { text: text.slice(text.indexOf("\n") + 1), cut: true };
    } finally {
      await opened.file.close();
    }
  }

  async append(name: string, text: string): Promise<void> {
    const flags = this.#flags.O_WRONLY | this.#flags.O_APPEND | this.#flags.O_CREAT;
    const { path, linked } = await this.#place(name);
    const opened = await this.#openFile(path, flags, linked);
    if (!opened) throw new Error("it is a symbolic link (not followed): its target does not exist");
    const { file } = opened;
    try {
      await writeAllTo(file, new TextEncoder().encode(text));
    } catch (error) {
      throw reasonError(error, "it");
    } finally {
      await file.close();
    }
  }

  async replace(name: string, text: string): Promise<void> {
    // Beside the file's target when it is a link, so that the link stays, and with the target's mode.
    const { path: target, linked } = await this.#place(name);
    let mode = 0o600;
    if (linked) {
      // Checked again (it may have changed), and for writing: a target this user may not write is not replaced.
      const opened = await this.#openFile(target, this.#flags.O_WRONLY, true);
      if (!opened) throw new Error("it is a symbolic link (not followed): its target does not exist");
      await opened.file.close();
      mode = opened.mode & 0o700; // no more: a mode letting others in was refused
    }
    const temporary = `${parentDir(target)}/.${name}.${crypto.randomUUID()}.tmp`;
    const flags = this.#flags.O_WRONLY | this.#flags.O_CREAT | this.#flags.O_EXCL;
    const { file } = (await this.#openFile(temporary, flags))!;
    try {
      await writeAllTo(file, new TextEncoder().encode(text));
      if (mode !== 0o600) await file.chmod(mode); // the new file's, through its descriptor
      await file.close();
      await this.#fs.rename(temporary, target);
    } catch (error) {
      await file.close().catch(() => {});
      await this.#fs.unlink(temporary).catch(() => {});
      throw reasonError(error, "it");
    }
  }

  /**
   * Where the file `name` is: its place in the directory, or, when that is a
   * symbolic link of ours (a dotfile manager's, as stow makes), the real path
   * of its target, which must exist (nothing is created through a link) and
   * lie on a path that only root and this user can change (aboveReason, each
   * directory up from the target's own): the target itself is then checked
   * as a file in the directory is, but never tightened (`linked` true).
   */
  async #place(name: string): Promise<{ path: string; linked: boolean }> {
    const own = `${this.#base}/${name}`;
    const link = await this.#fs.lstat(own).catch(() => undefined);
    if (!link?.isSymbolicLink()) return { path: own, linked: false };
    const refused = (why: string) => new Error(`it is a symbolic link (not followed): ${why}`);
    const notOurs = notOursReason(link.uid, this.#euid);
    if (notOurs) throw refused(`the link ${notOurs}`);
    const real = await this.#fs.realpath(own).catch((error) => {
      const code = (error as { code?: string }).code;
      if (code === "ENOENT") throw refused("its target does not exist");
      throw refused(code === "ELOOP" ? "it leads to a loop" : `its target: ${reasonError(error, "it").message}`);
    });
    await checkAbove(real, "its target", this.#euid).catch((error) => {
      throw refused((error as Error).message);
    });
    return { path: real, linked: true };
  }

  /**
   * Open the file at `path` and check it; undefined when it does not exist
   * and `flags` do not create it. A mode that lets its group or others in is
   * tightened to 0600 through the descriptor, unless `linked` (`path` is a
   * link's target, which may be any file of this user's): then it is refused.
   */
  async #openFile(path: string, flags: number, linked = false) {
    const { O_CREAT, O_NOFOLLOW, O_NONBLOCK } = this.#flags;
    // Nothing is created through a link (place checked that the target exists; it may be gone since).
    if (linked) flags &= ~O_CREAT;
    let file;
    try {
      // Owner bits kept: a history file created 0400 (umask 0277) could not be appended to by the next session.
      file = await withOwnerBits(() => this.#fs.open(path, flags | O_NOFOLLOW | O_NONBLOCK, 0o600));
    } catch (error) {
      await notFollowed(path, "it"); // Deno: a dangling link fails with ENOENT
      if ((error as { code?: string }).code === "ENOENT" && !(flags & O_CREAT)) return undefined;
      throw reasonError(error, "it");
    }
    try {
      const stat = await file.stat();
      await notFollowed(path, "it", stat);
      const problem = !stat.isFile()
        ? "is not a regular file"
        : notOursReason(stat.uid, this.#euid) ?? (stat.nlink !== 1 ? `has ${stat.nlink} hard links` : undefined);
      if (problem) throw new Error(`it ${problem}`);
      if (tooOpen(stat.mode) && linked) {
        const which = `which ${whoMay(stat.mode)} (mode ${(stat.mode & 0o7777).toString(8)})`;
        throw new Error(`it is a symbolic link to ${path}, ${which}: chmod 600 it to keep history there`);
      }
      if (tooOpen(stat.mode)) await file.chmod(0o600);
      return { file, size: stat.size, mode: stat.mode };
    } catch (error) {
      await file.close();
      throw reasonError(error, "it");
    }
  }
}

/**
 * Who besides the owner may do what to a file of mode `mode`, for a refusal:
 * "others may read", "its group may read and write, and others may read",
 * "its group and others may read and write".
 */
function whoMay(mode: number): string {
  const can = (bits: number) => {
    const verbs = [bits & 4 && "read", bits & 2 && "write", bits & 1 && "execute"].filter((verb) => verb) as string[];
    return verbs.length < 2 ? verbs.join("") : `${verbs.slice(0, -1).join(", ")} and ${verbs.at(-1)}`;
  };
  const group = can((mode >> 3) & 7), others = can(mode & 7);
  if (group && group === others) return `its group and others may ${group}`;
  return [group && `its group may ${group}`, others && `others may ${others}`].filter((part) => part).join(", and ");
}

/**
 * The real path of the directory `path` (whose descriptor's stat is
 * `opened`), for when its files must be opened by path: without /proc (and
 * under Deno, which refuses /proc/self without --allow-all). Then no one but
 * root and `euid` may be able to rename or replace anything on it: each
 * directory above it must be theirs, and writable by no one else unless
 * sticky (as /tmp is). Else a user owning a parent (root run with that
 * user's HOME) could swap the directory for a link between the checks and a
 * write, as OpenSSH's StrictModes refuses such a path.
 * @throws {Error} naming the directory that is not safe
 */
async function safeRealPath(path: string, opened: { dev: number; ino: number }, euid?: number): Promise<string> {
  const { promises: fs } = await import("node:fs");
  const real = await fs.realpath(path);
  const stat = await fs.stat(real);
  if (stat.dev !== opened.dev || stat.ino !== opened.ino) throw new Error(`its directory was replaced meanwhile`);
  await checkAbove(real, "its directory", euid);
  return real;
}
