/**
 * Paths and directories: which file a path is, a socket's real path, a
 * private temporary directory, and the sockets a glob names. node:fs is
 * loaded in each call, so the one-shot path never pays for it.
 *
 * @module
 */
import { globMatcher, isGlob } from "../../lib/glob.ts";
import { decodeUtf8, showInvalidUtf8 } from "../../lib/utf8.ts";

/** Which file `path` is (its device and inode, links followed); undefined when it is not there. */
export async function fileIdentity(path: string): Promise<string | undefined> {
  const { stat } = await import("node:fs/promises");
  return await stat(path).then((file) => `${file.dev}:${file.ino}`, () => undefined);
}

/**
 * The real path of a socket (relative: to the working directory): every link
 * resolved; for one not there (yet: --wait-socket), its directory's real path
 * and its name, a link to it followed by what it names; else the path as given.
 */
export async function realSocketPath(path: string, links = 8): Promise<string> {
  const { readlink, realpath } = await import("node:fs/promises");
  const slash = path.lastIndexOf("/");
  const dir = slash < 0 ? "." : path.slice(0, slash) || "/";
  const real = await realpath(path).catch(() => undefined);
  if (real !== undefined) return real;
  const target = links > 0 ? await readlink(path).catch(() => undefined) : undefined; // a link to what is not there yet
  if (target !== undefined) return realSocketPath(target.startsWith("/") ? target : `${dir}/${target}`, links - 1);
  return await realpath(dir).then((real) => `${real}/${path.slice(slash + 1)}`, () => path);
}

/** Write all of `bytes` to an open file (one write may take only part of them). */
export async function writeAllTo(file: import("node:fs/promises").FileHandle, bytes: Uint8Array): Promise<void> {
  for (let done = 0; done < bytes.length;) done += (await file.write(bytes, done)).bytesWritten;
}

/**
 * A new directory only the owner may enter (mode 0700), in the system's
 * temporary directory ($TMPDIR; /tmp for a relative one, as for ssh's).
 * @throws {Error} "cannot make a directory for WHAT in TMPDIR /x (ENOENT)", with the system's code
 */
export async function makePrivateDir(prefix: string, what: string): Promise<string> {
  const { mkdtemp } = await import("node:fs/promises");
  const { tmpdir } = await import("node:os");
  const temp = tmpdir().startsWith("/") ? tmpdir() : "/tmp";
  try {
    return await mkdtemp(`${temp}/${prefix}`);
  } catch (error) {
    const code = (error as { code?: string }).code ?? (error as Error).message;
    throw Object.assign(new Error(`cannot make a directory for ${what} in TMPDIR ${temp} (${code})`), { code });
  }
}

/** Remove a directory and what it holds (no error when it is already gone). */
export async function removeDir(path: string): Promise<void> {
  const { rm } = await import("node:fs/promises");
  await rm(path, { recursive: true, force: true });
}

// Not there (yet): nothing matches there. Any other failure (EACCES) is told, not taken for "nothing matches".
const NOT_THERE = ["ENOENT", "ENOTDIR"];

/** A path the glob could not look into or at, and the system's error (its `code`: EACCES). */
export interface GlobDenied {
  path: string;
  looking: "list" | "reach";
  error: unknown;
}

/**
 * The sockets whose paths match `pattern` (`*` and `?` within one path
 * component, matched in linear time: lib/glob.ts), sorted; hidden names only
 * when the component itself starts with a dot. What is not a socket (a
 * pidfile or disk image beside them) is left out, and so is a socket whose
 * name is not UTF-8 (which the runtime's text paths cannot name): it is
 * listed in `unnamable`. What a wildcard led to but could not be listed or
 * looked at (another user's directory beside the VMs': /run/lvm among
 * /run/*) is in `denied`, for when nothing matches. `node:fs` is loaded
 * here, so the single-address path never pays for it.
 * @throws the system's error (its `code`: EACCES) for a directory the
 * pattern names itself (before any wildcard) that is there but cannot be listed
 */
export async function globSockets(
  pattern: string,
): Promise<{ sockets: string[]; unnamable: string[]; denied: GlobDenied[] }> {
  const { readdir, stat } = await import("node:fs/promises");
  const absolute = pattern.startsWith("/");
  const parts = pattern.split("/").filter((part, i) => part !== "" || i === 0);
  let found = [absolute ? "/" : ""];
  const unnamable: string[] = []; // matching sockets whose names are not UTF-8 (shown with \x escapes)
  const denied: GlobDenied[] = [];
  const isSocket = (path: string | Buffer, shown = String(path)) =>
    stat(path).then((s) => s.isSocket(), (error) => {
      if (!NOT_THERE.includes((error as { code?: string }).code ?? "")) {
        denied.push({ path: shown, looking: "reach", error });
      }
      return false;
    });
  const firstWildcard = parts.findIndex(isGlob); // the directory it looks in is the pattern's own, named
  for (const [i, part] of parts.entries()) {
    if (i === 0 && absolute) continue;
    const last = i === parts.length - 1;
    const next: string[] = [];
    for (const base of found) {
      if (!isGlob(part)) {
        next.push(base + part + (last ? "" : "/"));
        continue;
      }
      const matches = globMatcher(part);
      const names = await readdir(base === "" ? "." : base, { encoding: "buffer" }).catch((error) => {
        if (NOT_THERE.includes((error as { code?: string }).code ?? "")) return [] as Buffer[];
        if (i === firstWildcard) throw error;
        denied.push({ path: base, looking: "list", error });
        return [] as Buffer[];
      });
      for (const bytes of names) {
        const name = decodeUtf8(bytes);
        if (name === undefined) { // the runtime's paths are text: such a socket cannot be reached
          const shown = showInvalidUtf8(bytes).text;
          if (last && matches(shown) && await isSocket(Buffer.concat([Buffer.from(base), bytes]), base + shown)) {
            unnamable.push(base + shown);
          }
          continue;
        }
        if (matches(name) && (!name.startsWith(".") || part.startsWith("."))) {
          next.push(base + name + (last ? "" : "/"));
        }
      }
    }
    found = next;
  }
  const sockets = await Promise.all(found.map((path) => isSocket(path)));
  return { sockets: found.filter((_, i) => sockets[i]).sort(), unnamable, denied };
}
