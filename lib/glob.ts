/**
 * Name globs (`*` any run of characters, `?` one character) matched in time
 * linear in the name for each part of the glob, with no regular expression:
 * a glob such as `**********x` compiled to a backtracking RegExp takes
 * exponential time on a long name that does not match, and blocks the event
 * loop (so no timeout can fire).
 *
 * @module
 */

/** True when `name` holds glob characters. */
export function isGlob(name: string): boolean {
  return name.includes("*") || name.includes("?");
}

/**
 * Whether `address` (a `-s`) is a glob over UNIX socket paths
 * (`/run/qemu/*.qmp`, `unix:/run/*.sock`); TCP forms such as `[::1]:4444`
 * and URLs are not: their `*` or `?` is a bad address, said as one.
 */
export function isSocketGlob(address: string): boolean {
  if (address.includes("://")) return false;
  const path = address.startsWith("unix:") ? address.slice(5) : address;
  if (!path.includes("/") && path.includes(":")) return false; // HOST:PORT, [IPV6]:PORT
  return isGlob(path);
}

/**
 * For a name or path that named nothing: " ('[...]' is no glob: only * and ?
 * are)" when it holds a shell's bracket expression (vm[12].qmp), which is
 * taken as written here; else "".
 */
export function bracketsNoGlobHint(text: string): string {
  return /\[[^\]]*\]/.test(text) ? " ('[...]' is no glob: only * and ? are)" : "";
}

/**
 * Compile `glob` into a test of whole names.
 *
 * The glob is split at its stars: the first part must match at the start, the
 * last at the end, and each part between them at its leftmost place after the
 * previous one. Taking the leftmost place never loses a match, because what
 * lies between two parts is a star, which takes any run; so nothing is ever
 * retried.
 *
 * @example
 * ```ts
 * globMatcher("BLOCK_JOB_*")("BLOCK_JOB_COMPLETED"); // true
 * ```
 */
export function globMatcher(glob: string): (name: string) => boolean {
  const parts = glob.split("*");
  if (parts.length === 1) return (name) => name.length === glob.length && matchesAt(name, 0, glob);
  const first = parts[0];
  const last = parts[parts.length - 1];
  const middle = parts.slice(1, -1).filter((part) => part !== "");
  const fixed = first.length + last.length;
  return (name) => {
    if (name.length < fixed || !matchesAt(name, 0, first) || !matchesAt(name, name.length - last.length, last)) {
      return false;
    }
    let from = first.length;
    const end = name.length - last.length;
    for (const part of middle) {
      const at = find(name, part, from, end);
      if (at < 0) return false;
      from = at + part.length;
    }
    return true;
  };
}

/** Whether `part` (with `?` for any one character) matches `name` at `at`. */
function matchesAt(name: string, at: number, part: string): boolean {
  for (let i = 0; i < part.length; i++) {
    if (part[i] !== "?" && part[i] !== name[at + i]) return false;
  }
  return true;
}

/** The first place from `from` where `part` matches and ends by `end`, or -1. */
function find(name: string, part: string, from: number, end: number): number {
  if (!part.includes("?")) {
    const at = name.indexOf(part, from);
    return at >= 0 && at + part.length <= end ? at : -1;
  }
  for (let at = from; at + part.length <= end; at++) if (matchesAt(name, at, part)) return at;
  return -1;
}
