/**
 * The schema cache on disk: `$XDG_CACHE_HOME/qmpctl` (default
 * `~/.cache/qmpctl`), one directory per QEMU build. Directories are 0700 and
 * files 0600; an entry is written whole in a temporary directory and renamed
 * into place, so a reader sees all of an entry or none of it. The cache is
 * used only when its directory is a real directory of this user that others
 * cannot write to, and a file is read only up to a size bound: a cache that
 * fails these checks is ignored, and qmpctl asks QEMU instead.
 *
 * Reading is on the path of every typed `exec`, so under Bun it uses
 * `Bun.mmap` (importing `node:fs` costs a compiled binary ~7 ms of start-up,
 * and `Bun.file().text()` ~4 ms); writing happens once per QEMU build and
 * may load `node:fs`, as reading an entry that may not be written does.
 *
 * @module
 */
import { bun } from "../bun_api.ts";
import { baseDir, isPrivate, openPrivateDirFd, ownUid, withOwnerBits } from "../private_dir.ts";

/**
 * The cache directory from the environment, or undefined when neither
 * XDG_CACHE_HOME nor HOME is set. A relative path is ignored, as the XDG
 * spec says: qmpctl reads nothing from the directory it runs in.
 */
export function defaultCacheDir(): string | undefined {
  const env = (globalThis as { process?: { env: Record<string, string | undefined> } }).process?.env ?? {};
  const home = baseDir(env.HOME);
  const base = baseDir(env.XDG_CACHE_HOME) ?? (home === undefined ? undefined : `${home}/.cache`);
  return base === undefined ? undefined : `${base}/qmpctl`;
}

/** Node's names of architectures (`process.arch`) that QEMU names otherwise (query-target's `arch`). */
const QEMU_TARGETS: Record<string, string> = { x64: "x86_64", arm64: "aarch64", ia32: "i386", loong64: "loongarch64" };

/** This machine's architecture as QEMU names a target (x86_64, aarch64, ...); undefined when the runtime does not say. */
export function hostTarget(): string | undefined {
  const arch = (globalThis as { process?: { arch?: string } }).process?.arch;
  return arch === undefined ? undefined : QEMU_TARGETS[arch] ?? arch;
}

/** The largest cache file read; a bigger one is ignored (an entry of QEMU's whole schema is well under 4 MiB). */
const MAX_CACHE_FILE_BYTES = 32 * 1024 * 1024;

/**
 * Why Bun.mmap fails on a file that may be read, not written: its mode
 * (EACCES), a read-only file system (EROFS), an immutable file (EPERM).
 */
const READ_ONLY_CODES = ["EACCES", "EROFS", "EPERM"];

const rootChecks = new Map<string, Promise<boolean>>();

/**
 * Whether `root` may be read: a directory owned by this user that no one
 * else may write to (else another user could have planted entries in it).
 * With `linkFree` (the caller saw no symlink on the way), under Bun, stat
 * runs on Bun's thread pool, off the main thread; otherwise lstat from
 * node:fs, so `root` itself must not be a link, and loading node:fs costs a
 * compiled Bun binary ~7 ms (which is why a symlinked path pays it only).
 * Checked once per process, root and kind.
 */
function isSafeRoot(root: string, linkFree = false): Promise<boolean> {
  const fast = linkFree && bun !== undefined;
  const id = `${fast}:${root}`;
  let known = rootChecks.get(id);
  if (!known) {
    let stat: Promise<{ isDirectory(): boolean; uid: number; mode: number }>;
    try {
      stat = fast && bun ? bun.file(root).stat() : import("node:fs/promises").then(({ lstat }) => lstat(root));
    } catch (error) { // Bun.file().stat() throws at once for a path it cannot take (ENAMETOOLONG)
      stat = Promise.reject(error); // (no new Promise(executor): its first use costs ~0.1 M instructions)
    }
    known = stat.then((stat) => stat.isDirectory() && isPrivate(stat, ownUid())).catch(() => false);
    rootChecks.set(id, known);
  }
  return known;
}

/**
 * Start checking `root` now, so that the check is done by the time a cache
 * file is read (load.ts starts it while QEMU answers query-target).
 */
export function checkCacheRootEarly(root: string): void {
  if (bun) void isSafeRoot(root, true);
}

/**
 * The text of `root/file`, or undefined when it is missing, unreadable, larger
 * than MAX_CACHE_FILE_BYTES, reached through a symlink, or `root` is not a
 * private directory of ours: qmpctl then asks QEMU instead. `linkProbe`
 * (default `file`) is the file whose path is checked for symlinks: one
 * nearer `root` in the same entry costs less (see below), and what is
 * below it in the entry was made by us, in a directory only we can write.
 */
export async function readCacheFile(root: string, file: string, linkProbe = file): Promise<string | undefined> {
  const path = `${root}/${file}`;
  try {
    if (bun) {
      // Bun.resolveSync resolves symlinks: when the probe's real path is the
      // path asked for, nothing on the way is a link. Otherwise (a symlinked
      // ~/.cache, say) lstat decides about `root`. It lists every directory on
      // the way (~0.2 ms, and ~0.4 ms through an entry's commands/).
      const linkFree = bun.resolveSync(`./${linkProbe}`, root) === `${root}/${linkProbe}`;
      if (!(await isSafeRoot(root, linkFree))) return undefined;
      // Bun.mmap is synchronous and ~4 ms cheaper than Bun.file().text() in a
      // fresh process; mapping reads nothing, so the size is checked before
      // any byte is. Entries are replaced by rename, never rewritten in place.
      try {
        const bytes = bun.mmap(path);
        return bytes.length > MAX_CACHE_FILE_BYTES ? undefined : new TextDecoder().decode(bytes);
      } catch (error) {
        // Bun.mmap opens the file to write as well: a read-only file or file system refuses it, and
        // node:fs reads it below (loaded only then), as it reads every file where Bun is not.
        if (!READ_ONLY_CODES.includes((error as { code?: string }).code ?? "")) throw error;
      }
    }
    if (!(await isSafeRoot(root))) return undefined;
    const { constants, promises } = await import("node:fs");
    const handle = await promises.open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
    try {
      const stat = await handle.stat();
      if (!stat.isFile() || stat.size > MAX_CACHE_FILE_BYTES) return undefined;
      return await handle.readFile("utf8");
    } finally {
      await handle.close();
    }
  } catch {
    return undefined;
  }
}

/**
 * Make sure `root` is a private directory of ours, creating it (0700) when
 * missing, never through a symlink, and never in another user's tree (root
 * run with a user's HOME, as `sudo -E` does): lib/private_dir.ts.
 * A directory that others could write to until now has its entries (and
 * writers' leftovers) removed once made private: what they may have put there
 * is not trusted. Anything else in it is left alone: not the cache's to delete.
 * @throws {Error} when `root` is a symlink, not a directory, someone else's, or in someone else's tree
 */
async function preparePrivateRoot(root: string): Promise<void> {
  const dir = await openPrivateDirFd(root);
  try {
    if (!dir.wasShared) return;
    // Nobody else can add to it now; remove (never follow) what could pass for the cache's.
    const { readdir, rm } = await import("node:fs/promises");
    const names = (await readdir(root)).filter((name) => /^(schema-|\.new-|\.old-)/.test(name));
    await Promise.all(names.map((name) => rm(`${root}/${name}`, { recursive: true, force: true })));
  } finally {
    dir.close();
  }
}

/** How old a writer's leftover directory must be before another writer removes it. */
const STALE_LEFTOVER_MS = 60 * 60 * 1000;

/**
 * Remove what writers killed midway left in `root` (a `.new-*` being
 * filled, a `.old-*` not yet removed), once older than any write takes: a
 * fresh one may be another writer's, still at work. Best effort.
 */
async function removeLeftovers(root: string): Promise<void> {
  const { lstat, readdir, rm } = await import("node:fs/promises");
  for (const name of await readdir(root).catch(() => [])) {
    if (!name.startsWith(".new-") && !name.startsWith(".old-")) continue;
    const path = `${root}/${name}`;
    const stale = await lstat(path).then((s) => Date.now() - s.mtimeMs > STALE_LEFTOVER_MS, () => false);
    if (stale) await rm(path, { recursive: true, force: true }).catch(() => {});
  }
}

/**
 * Write the entry `root/name`, holding `files` (relative path → text), in
 * place of any entry there. Throws on failure; callers treat the cache as
 * best effort.
 */
export async function writeCacheEntry(root: string, name: string, files: Record<string, string>): Promise<void> {
  await preparePrivateRoot(root);
  await removeLeftovers(root);
  const { mkdir, mkdtemp, rename, rm, writeFile } = await import("node:fs/promises");
  const temporary = await withOwnerBits(() => mkdtemp(`${root}/.new-`)); // mode 0700
  const old = `${root}/.old-${crypto.randomUUID()}`;
  let moved = false;
  try {
    await withOwnerBits(async () => {
      const dirs = new Set(Object.keys(files).map((f) => f.slice(0, f.lastIndexOf("/") + 1)).filter((d) => d));
      await Promise.all([...dirs].map((d) => mkdir(`${temporary}/${d}`, { recursive: true, mode: 0o700 })));
      // "wx": O_CREAT | O_EXCL, which never follows a symlink.
      await Promise.all(
        Object.entries(files).map(([file, text]) =>
          writeFile(`${temporary}/${file}`, text, { mode: 0o600, flag: "wx" })
        ),
      );
    });
    const target = `${root}/${name}`;
    moved = await rename(target, old).then(() => true, () => false); // a stale or corrupt entry
    await rename(temporary, target); // fails when another qmpctl has put its entry there meanwhile
  } catch (error) {
    await rm(temporary, { recursive: true, force: true });
    throw error;
  } finally {
    if (moved) await rm(old, { recursive: true, force: true });
  }
}
