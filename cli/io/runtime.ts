/**
 * Which runtime runs the CLI, and what a standard descriptor was at start:
 * what the other cli/io/ modules share. Under Bun, `bun` is its global;
 * elsewhere (Deno, Node) undefined.
 *
 * @module
 */

export const bun = (globalThis as { Bun?: typeof Bun }).Bun;

export const NULL_DEVICE = 0x103; // /dev/null is character device 1:3

/**
 * Whether standard descriptor `fd`, of status `stat`, was closed when qmpctl
 * started. Bun then opens /dev/null in its place. That descriptor has
 * close-on-exec set, which a descriptor inherited through exec(2) never has:
 * so it was not given by the caller. (Linux's /proc/self/fdinfo; elsewhere
 * false.) Only a /dev/null is looked at further; the status comes from
 * fstat(2) on Bun's thread pool (Bun.resolveSync of /proc/self/fd/1 held the
 * main thread ~0.45 ms; a one-shot exec is ~0.15 ms sooner this way).
 */
export function openedInPlaceOfClosed(fd: number, stat: import("node:fs").Stats): Promise<boolean> {
  if (!stat.isCharacterDevice() || Number(stat.rdev) !== NULL_DEVICE) return Promise.resolve(false);
  const O_CLOEXEC = 0o2000000;
  return descriptorFlags(fd).then((flags) => (flags & O_CLOEXEC) !== 0);
}

/** The open flags of descriptor `fd` (Linux's /proc/self/fdinfo); NaN where they cannot be read. */
export function descriptorFlags(fd: number): Promise<number> {
  return bun!.file(`/proc/self/fdinfo/${fd}`).text().then((info) => {
    // "pos:\t0\nflags:\t02100001\n...": the flags in octal (no regex: a process's first costs ~0.1 ms)
    const at = info.indexOf("\nflags:");
    return at < 0 ? NaN : parseInt(info.slice(at + 7), 8);
  }, () => NaN); // no /proc (NaN & FLAG is 0: no flag set)
}
