/**
 * The schema cache on disk: `$XDG_CACHE_HOME/qmpctl` (default
 * `~/.cache/qmpctl`), one directory per QEMU build. Directories are 0700 and
 * files 0600; an entry is written whole in a temporary directory and renamed
 * into place, so a reader sees all of an entry or none of it.
 *
 * Reading is on the path of every typed `exec`, so under Bun it uses
 * `Bun.mmap` (importing `node:fs` costs a compiled binary ~7 ms of start-up,
 * and `Bun.file().text()` ~4 ms); writing happens once per QEMU build and
 * may load `node:fs`.
 *
 * @module
 */

/** The cache directory from the environment, or undefined when neither XDG_CACHE_HOME nor HOME is set. */
export function defaultCacheDir(): string | undefined {
  const env = (globalThis as { process?: { env: Record<string, string | undefined> } }).process?.env ?? {};
  const base = env.XDG_CACHE_HOME || (env.HOME ? `${env.HOME}/.cache` : undefined);
  return base ? `${base}/qmpctl` : undefined;
}

/** The text of a file, or undefined when it is missing or unreadable. */
export async function readCacheFile(path: string): Promise<string | undefined> {
  try {
    const bun = (globalThis as { Bun?: typeof Bun }).Bun;
    // Bun.mmap is synchronous and ~4 ms cheaper than Bun.file().text() in a fresh
    // process; entries are replaced by rename, never rewritten in place.
    if (bun) return new TextDecoder().decode(bun.mmap(path));
    const { readFile } = await import("node:fs/promises");
    return await readFile(path, "utf8");
  } catch {
    return undefined;
  }
}

/**
 * Write the entry `root/name`, holding `files` (relative path → text), in
 * place of any entry there. Throws on failure; callers treat the cache as
 * best effort.
 */
export async function writeCacheEntry(root: string, name: string, files: Record<string, string>): Promise<void> {
  const { chmod, mkdir, mkdtemp, rename, rm, writeFile } = await import("node:fs/promises");
  await mkdir(root, { recursive: true, mode: 0o700 });
  await chmod(root, 0o700);
  const temporary = await mkdtemp(`${root}/.new-`); // mode 0700
  try {
    const dirs = new Set(Object.keys(files).map((f) => f.slice(0, f.lastIndexOf("/") + 1)).filter((d) => d));
    await Promise.all([...dirs].map((d) => mkdir(`${temporary}/${d}`, { recursive: true, mode: 0o700 })));
    await Promise.all(
      Object.entries(files).map(([file, text]) => writeFile(`${temporary}/${file}`, text, { mode: 0o600, flag: "wx" })),
    );
    const target = `${root}/${name}`;
    const old = `${root}/.old-${crypto.randomUUID()}`;
    const moved = await rename(target, old).then(() => true, () => false); // a stale or corrupt entry
    await rename(temporary, target);
    if (moved) await rm(old, { recursive: true, force: true });
  } catch (error) {
    await rm(temporary, { recursive: true, force: true });
    throw error;
  }
}
