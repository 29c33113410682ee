/**
 * Private directories: the one set of rules that says whether a directory is
 * this user's alone, and the one way to create or open one, shared by the
 * schema cache (lib/schema/store.ts) and the shell's history
 * (cli/private_dir.ts). Their paths come from the environment, which root
 * may have taken from another user (`sudo -E`, `su -m`), so nothing is
 * followed, created or trusted outside what is this user's alone.
 *
 * The rules are pure (they take a stat's `uid` and `mode`), so the schema
 * cache's read path applies them to a stat from Bun's thread pool without
 * loading node:fs (~7 ms of a compiled binary's start-up); creating and
 * opening loads node:fs, inside.
 *
 * @module
 */
import { bun } from "./bun_api.ts";

/**
 * This user's uid, as the runtime creates files with it: the effective uid
 * (a process whose real uid differs, as a setuid wrapper's does, creates
 * files of its effective uid, so a directory it made must count as its own).
 * Deno 2 has `process.geteuid` (2.9.6: the effective uid under the
 * `--allow-sys=uid` that `deno task qmpctl` grants; without it, it throws, and
 * so would `getuid`). A runtime without geteuid falls back to getuid, and one
 * with neither (Windows) to undefined: no owner can then be checked.
 * @throws {Error} "cannot tell this user's uid: …" when the runtime refuses
 */
export function ownUid(): number | undefined {
  try {
    return process.geteuid?.() ?? process.getuid?.();
  } catch (error) {
    throw new Error(`cannot tell this user's uid: ${(error as Error).message}`, { cause: error });
  }
}

/** What the rules look at: a stat's owner, mode and (for aboveReason) group. */
export interface Owned {
  uid: number;
  mode: number;
  gid?: number;
}

/**
 * This user's group (the effective one), as ownUid says the uid; undefined
 * where the runtime cannot tell (Deno without `--allow-sys=getegid`, which
 * `deno task qmpctl` grants: a directory writable by this group then counts
 * as writable by others).
 */
function ownGid(): number | undefined {
  try {
    return process.getegid?.() ?? process.getgid?.();
  } catch {
    return undefined;
  }
}

/**
 * Why something owned by `owner` is not this user's (`uid`), as "belongs to
 * uid 65534, not to this user (uid 0)"; undefined when it is, or when the
 * uid is unknown.
 */
export function notOursReason(owner: number, uid: number | undefined): string | undefined {
  return uid === undefined || owner === uid ? undefined : `belongs to uid ${owner}, not to this user (uid ${uid})`;
}

/** Whether someone besides its owner (its group, others) may write to it. */
export function othersMayWrite(mode: number): boolean {
  return (mode & 0o022) !== 0;
}

/** Whether its mode lets its group or others in at all: a private directory is made 0700 (a file 0600). */
export function tooOpen(mode: number): boolean {
  return (mode & 0o077) !== 0;
}

/**
 * Whether an existing directory may be trusted as it is: ours, and no one
 * else may write to it (else another user could have put things in it).
 */
export function isPrivate(dir: Owned, uid: number | undefined): boolean {
  return notOursReason(dir.uid, uid) === undefined && !othersMayWrite(dir.mode);
}

/**
 * Why a directory may not be created under `nearest` (the nearest directory
 * that exists on its way, with owner `owned.uid`), or undefined: nothing is
 * created in another user's tree (root run with a user's HOME, as `sudo -E`
 * does, would leave a directory there that its user cannot use).
 */
export function notOurTreeReason(nearest: string, owned: Owned, uid: number | undefined): string | undefined {
  if (owned.uid === 0 && (owned.mode & 0o1000) !== 0) return undefined; // /tmp: anyone's to make a directory in
  const notOurs = notOursReason(owned.uid, uid);
  return notOurs && `its directory would be created in ${nearest}, which ${notOurs}`;
}

/**
 * Why the directory `above`, on the real path to a private directory, would
 * let someone else rename or replace what is below it, or undefined: it must
 * be root's or this user's, and writable by no one else unless sticky (as
 * /tmp is), as OpenSSH's StrictModes asks of the path to a user's files. A
 * directory of this user's that this user's own group (`gid`) may write to
 * passes, as Debian's OpenSSH lets it: under umask 002 every directory a
 * user makes is so, in a group of their own.
 */
export function aboveReason(above: Owned, uid: number | undefined, gid?: number): string | undefined {
  if (above.uid !== 0 && above.uid !== uid) return `belongs to uid ${above.uid}`;
  const ownGroup = above.uid === uid && gid !== undefined && above.gid === gid;
  const writers = above.mode & (ownGroup ? 0o002 : 0o022);
  if (writers !== 0 && (above.mode & 0o1000) === 0) {
    return `is writable by others (mode ${(above.mode & 0o777).toString(8)})`;
  }
  return undefined;
}

/**
 * A base directory from the environment (HOME, an XDG_*_HOME) to put names
 * under: an absolute path without its trailing slashes ("/" gives "", so
 * that "/.cache" has one), or undefined for a relative or empty one (the XDG
 * spec ignores it; it would put files wherever the process stands).
 */
export function baseDir(value: string | undefined): string | undefined {
  return value?.startsWith("/") ? value.replace(/\/+$/, "") : undefined;
}

/** The directory that holds `path` (an absolute path: openPrivateDirFd takes no other): "/" for "/x". */
export function parentDir(path: string): string {
  return path.slice(0, path.lastIndexOf("/")) || "/";
}

/** A private directory held open: see openPrivateDirFd. */
export interface PrivateDirFd {
  /** The descriptor (O_RDONLY | O_DIRECTORY), open until `close`. */
  fd: number;
  dev: number;
  ino: number;
  /** The uid it was checked against (ownUid). */
  uid: number | undefined;
  /**
   * Whether others could write to it until now (it is 0700 by then): what is
   * in it may have been put there by someone else.
   */
  wasShared: boolean;
  close(): void;
}

/**
 * Open the directory `path` (absolute), creating it (0700, and its parents)
 * when missing, but not in another user's tree: then the nearest directory
 * that exists on its way must be ours; and never $HOME itself. It must be a directory of ours, not
 * reached through a symlink at its last component (opened with O_NOFOLLOW,
 * and under Deno, which resolves links before it opens, compared with what
 * lstat finds); a looser mode is tightened to 0700 through the descriptor,
 * so a link swapped in meanwhile is not chmod-ed. A plain descriptor, not a
 * FileHandle: Bun closes a FileHandle no longer referenced when it is
 * collected (and throws), and the shell's history holds it for the session.
 * The way to it must be one no one else can steer (checkWayTo).
 * @throws {Error} whose message is the reason, about "its directory": "its
 * directory is a symbolic link (not followed)", "its directory belongs to uid
 * 65534, not to this user (uid 0)", "its directory would be created in
 * /home/alice, which belongs to uid 1000, not to this user (uid 0)", or the
 * system's ("permission denied (EACCES)")
 */
export async function openPrivateDirFd(path: string): Promise<PrivateDirFd> {
  const { closeSync } = await import("node:fs");
  const uid = ownUid();
  // A relative path would be made and checked from wherever the process stands.
  if (!path.startsWith("/")) throw new Error(`its directory ${path} is not an absolute path`);
  const fd = await makeAndOpen(path, uid).catch((error) => openFailure(path, error));
  const stat = await checkOpened(fd, path, uid);
  return { fd, dev: stat.dev, ino: stat.ino, uid, wasShared: othersMayWrite(stat.mode), close: () => closeSync(fd) };
}

/** The `code` of a system error ("ENOENT"); undefined for ours. */
function errorCode(error: unknown): string | undefined {
  return (error as { code?: string })?.code;
}

/** Create `path` where it is missing, on a way no one else steers (checkWayTo), and open it, not through a link. */
async function makeAndOpen(path: string, uid: number | undefined): Promise<number> {
  const { constants, openSync } = await import("node:fs");
  const toMake = await missingDirs(path, uid);
  await checkWayTo(path, uid);
  if (toMake.length > 0) await makeDirs(toMake, path, uid);
  return openSync(path, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
}

/**
 * The directories to make for `path`, from the top down (none when it
 * exists): refused when the nearest one that exists is not ours to make them
 * in (notOurTreeReason), or when one of them would be the home directory.
 */
async function missingDirs(path: string, uid: number | undefined): Promise<string[]> {
  const { promises: fs } = await import("node:fs");
  const missing = await fs.lstat(path).then(() => false, (error) => errorCode(error) === "ENOENT");
  if (!missing) return [];
  const missingUp = [path]; // from the deepest up
  // A home that does not exist (a system user's /nonexistent) is not made to exist.
  const homes = await homeSpellings(fs.readlink);
  for (let dir = parentDir(path);; dir = parentDir(dir)) {
    const stat = await fs.stat(dir).catch((error) => {
      if (errorCode(error) !== "ENOENT" || dir === "/") throw error;
    });
    if (!stat && homes.has(lexicalPath(dir))) {
      throw new Error(`its directory would be created in ${dir}, the home directory, which does not exist`);
    }
    if (!stat) {
      missingUp.push(dir);
      continue;
    }
    const problem = notOurTreeReason(dir, stat, uid);
    if (problem) throw new Error(problem);
    return missingUp.toReversed(); // from the top down: each in the one made before it
  }
}

/** Make `toMake` (0700, from the top down) on the way to `path`, and check that way again. */
async function makeDirs(toMake: string[], path: string, uid: number | undefined): Promise<void> {
  const { promises: fs } = await import("node:fs");
  await withOwnerBits(async () => {
    for (const dir of toMake) {
      await fs.mkdir(dir, { mode: 0o700 }).catch((error) => {
        if (errorCode(error) !== "EEXIST") throw error;
      });
    }
  });
  await checkWayTo(path, uid); // again: a directory on the way made meanwhile by someone else is refused
  await ownerBitsBack(toMake, uid);
}

/** Why `path` could not be made or opened (`error`), as a reason about "its directory". */
async function openFailure(path: string, error: unknown): Promise<never> {
  // A link opened with O_DIRECTORY | O_NOFOLLOW fails with ENOTDIR, as a
  // file does (and under Deno a dangling one with ENOENT): lstat tells which.
  if (!errorCode(error)) throw error;
  const { promises: fs } = await import("node:fs");
  if (await fs.lstat(path).then((s) => s.isSymbolicLink(), () => false)) {
    throw new Error("its directory is a symbolic link (not followed)", { cause: error });
  }
  if (errorCode(error) === "ENOTDIR" || errorCode(error) === "ELOOP") {
    throw new Error("its directory is not a directory", { cause: error });
  }
  throw reasonError(error, "its directory");
}

/**
 * The stat of the directory opened as `fd` at `path`, once checked: what
 * the path itself is (notFollowed), ours, and tightened to 0700 through the
 * descriptor when looser; `fd` is closed when it is refused.
 */
async function checkOpened(
  fd: number,
  path: string,
  uid: number | undefined,
): Promise<{ dev: number; ino: number; mode: number }> {
  const { closeSync, fchmodSync, fstatSync } = await import("node:fs");
  const stat = fstatSync(fd);
  try {
    await notFollowed(path, "its directory", stat);
    const notOurs = notOursReason(stat.uid, uid);
    if (notOurs) throw new Error(`its directory ${notOurs}`);
    if (tooOpen(stat.mode)) fchmodSync(fd, 0o700);
  } catch (error) {
    closeSync(fd);
    throw reasonError(error, "its directory");
  }
  return stat;
}

/**
 * Run `make` (mkdir, file creation) with the owner's own bits out of the
 * umask: one that takes them (0277) would make a directory its owner cannot
 * write in (a ~/.cache, for every program). The umask, not a chmod after:
 * a chmod by name could follow a link swapped in meanwhile. Under Bun only
 * (Deno asks for a permission, --allow-sys, to read the umask).
 */
export async function withOwnerBits<T>(make: () => Promise<T>): Promise<T> {
  if (!bun) return await make();
  if (ownerBitsHeld++ === 0) { // the first of overlapping calls (a fan-out's caches) sets it, the last restores it
    callersUmask = process.umask(0o077);
    process.umask(callersUmask & 0o077);
  }
  try {
    return await make();
  } finally {
    if (--ownerBitsHeld === 0) process.umask(callersUmask);
  }
}

let ownerBitsHeld = 0, callersUmask = 0;

/**
 * Where the umask could not be set aside (Deno asks a permission it has no
 * flag for), give each directory of `dirs`, just made in a way no one else
 * steers (checked again after), the owner's bits the umask took; a link, or
 * what is not this user's, is left alone.
 */
async function ownerBitsBack(dirs: string[], uid: number | undefined): Promise<void> {
  if (bun) return; // the umask kept them (withOwnerBits)
  const { chmod, lstat } = await import("node:fs/promises");
  for (const dir of dirs) {
    const stat = await lstat(dir).catch(() => undefined);
    if (stat?.isDirectory() && stat.uid === uid && (stat.mode & 0o700) !== 0o700) await chmod(dir, 0o700);
  }
}

/**
 * Refuse a way to `path` (absolute) that someone besides root and this user
 * could steer: a symbolic link above it of another user's (root run with a
 * user's HOME, whose ~/.cache links to a directory of root's: root's files
 * would go where that user chose), or a directory it really lies in that
 * they could change (checkAbove). The part of the way that exists is walked
 * name by name; `path` itself is the opener's to check.
 * @throws {Error} as "/home/alice/.cache, on the way to its directory, is a symbolic link of uid 1000"
 */
async function checkWayTo(path: string, uid: number | undefined): Promise<void> {
  const { promises: fs } = await import("node:fs");
  let real = "/";
  for (const name of lexicalPath(path).split("/").slice(1, -1)) {
    const next = `${real === "/" ? "" : real}/${name}`;
    const stat = await fs.lstat(next).catch(() => undefined);
    if (!stat) break; // from here on, to be created
    if (stat.isSymbolicLink() && stat.uid !== 0 && stat.uid !== uid) {
      throw new Error(`${next}, on the way to its directory, is a symbolic link of uid ${stat.uid}`);
    }
    real = stat.isSymbolicLink() ? await fs.realpath(next) : next;
  }
  await checkAbove(`${real}/`, "its directory", uid); // from `real` itself up
}

/**
 * Refuse the real path `real` when someone besides root and `uid` could
 * rename or replace what is on it (aboveReason, each directory up from its
 * own; from `real` itself when it ends in "/").
 * @throws {Error} as "/home/x, above WHAT, is writable by others (mode 777)"
 */
export async function checkAbove(real: string, what: string, uid: number | undefined): Promise<void> {
  const { promises: fs } = await import("node:fs");
  const gid = ownGid();
  for (let above = real; above !== "/";) {
    above = parentDir(above);
    const problem = aboveReason(await fs.stat(above), uid, gid);
    if (problem) throw new Error(`${above}, above ${what}, ${problem}`);
  }
}

/**
 * Refuse `path` when it is a symbolic link, or (with `opened`, the stat of
 * what was opened) when it is no longer what was opened: Deno (without
 * --allow-all) resolves the links in a path before it opens it, O_NOFOLLOW
 * or not, so what was opened is compared with what the path itself is
 * before anything is changed or written.
 * @throws {Error} "WHAT is a symbolic link (not followed)", "WHAT was replaced meanwhile"
 */
export async function notFollowed(path: string, what: string, opened?: { dev: number; ino: number }): Promise<void> {
  const { promises: fs } = await import("node:fs");
  const own = await fs.lstat(path).catch(() => undefined);
  if (own?.isSymbolicLink()) throw new Error(`${what} is a symbolic link (not followed)`);
  if (opened && (own?.dev !== opened.dev || own?.ino !== opened.ino)) {
    throw new Error(`${what} was replaced meanwhile`);
  }
}

/**
 * An error whose message is a reason a person can read: ours as it is, the
 * system's as "permission denied (EACCES)" (its own message names the path
 * it was given, maybe a /proc/self/fd one that would only confuse), and a
 * link not followed said so, about `what` ("it", "its directory").
 */
export function reasonError(error: unknown, what: string): Error {
  const code = errorCode(error);
  if (!code) return error as Error;
  if (code === "ELOOP") return new Error(`${what} is a symbolic link (not followed)`, { cause: error });
  const text = /^[A-Z0-9]+: ([^,]+)/.exec((error as Error).message)?.[1] ?? code;
  return new Error(`${text} (${code})`, { cause: error });
}

/**
 * $HOME as a path is compared with another (absolute, "." and ".." and
 * doubled "/" resolved), and the target of $HOME when it is a symbolic link:
 * the names under which a missing home might otherwise be created.
 */
async function homeSpellings(readlink: (path: string) => Promise<string>): Promise<Set<string>> {
  if (!process.env.HOME?.startsWith("/")) return new Set();
  const home = lexicalPath(process.env.HOME);
  const spellings = new Set([home]);
  const target = await readlink(home).catch(() => undefined);
  if (target !== undefined) spellings.add(lexicalPath(target.startsWith("/") ? target : `${home}/../${target}`));
  return spellings;
}

/** An absolute path with ".", ".." and empty components resolved by name alone (no links followed). */
function lexicalPath(path: string): string {
  const parts: string[] = [];
  for (const part of path.split("/")) {
    if (part === "..") parts.pop();
    else if (part !== "" && part !== ".") parts.push(part);
  }
  return `/${parts.join("/")}`;
}
