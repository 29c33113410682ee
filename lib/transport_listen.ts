/**
 * Listening: serve a UNIX socket (`qmpctl proxy`). The socket file is checked,
 * given its mode and removed here, so these are file-system calls too, as is
 * the check for a descriptor left for another client.
 *
 * @module
 */
import { bun } from "./bun_api.ts";
import { ConnectionError } from "./errors.ts";
import { connectSocket, describeSystemError } from "./transport_socket.ts";
import type { Listener, ListenEvents } from "./transport_types.ts";

/** Options of `listenTransport`. */
export interface ListenOptions {
  /** The socket file's permissions; default 0o600 (only the owner may connect). */
  mode?: number;
}

/** The longest path a UNIX socket address holds (sun_path's 108 bytes, less the terminating NUL). */
const MAX_SOCKET_PATH_BYTES = 107;

/**
 * Make sure `path` is free to serve: nothing there, or a stale socket file,
 * which is removed. Stale means that connecting to it is refused
 * (ECONNREFUSED: it is bound by no one). Any other failure leaves the file
 * alone: EAGAIN is a server whose listen queue is full (a QEMU monitor with
 * one client connected and others waiting), EACCES a socket of another
 * user's, which may well be served.
 * @throws {ConnectionError} when a process serves it, or may, or the file is not a socket
 */
async function claimSocketPath(path: string): Promise<void> {
  const fs = await import("node:fs/promises");
  const fail = (reason: string) => listenError(path, reason);
  const existing = await fs.lstat(path).catch(() => undefined);
  if (!existing) return;
  if (existing.isSymbolicLink()) throw fail(await symlinkReason(fs, path));
  if (existing.isDirectory()) throw fail("it is a directory (give a path for the socket in it)");
  if (!existing.isSocket()) throw fail("the file exists and is not a socket");
  const failure = await connectSocket({ kind: "unix", path, text: path }, { data() {}, close() {} }).then(
    (transport) => void transport.close(),
    (error: ConnectionError) => (error.cause ?? error) as { code?: string },
  );
  if (failure === undefined) throw fail("another process is serving this socket");
  if (failure.code === "ENOENT") return; // removed meanwhile
  if (failure.code === "EAGAIN") {
    throw fail("another process is serving this socket (its listen queue is full: EAGAIN)");
  }
  if (failure.code !== "ECONNREFUSED") {
    throw fail(
      `cannot tell whether a process serves this socket (connecting to it: ${describeSystemError(failure)}), ` +
        "so it is left in place; remove it if none does",
    );
  }
  // Stale: whoever served it has gone. Removed only if it is still the file looked at (not one put there since).
  const now = await fs.lstat(path).catch(() => undefined);
  if (now?.dev !== existing.dev || now.ino !== existing.ino) return;
  await fs.unlink(path).catch((error: NodeJS.ErrnoException) => {
    if (error.code === "ENOENT") return; // removed meanwhile
    // Another user's, in a sticky directory (/tmp): only its owner (or root) may remove it.
    throw fail(`it is a stale socket this user may not remove: ${describeSystemError(error)} (its owner may)`);
  });
}

/** Why a symbolic link at the listen path is refused: what it points to, and whether that exists. */
async function symlinkReason(fs: typeof import("node:fs/promises"), path: string): Promise<string> {
  const target = await fs.readlink(path).catch(() => "?");
  const found = await fs.stat(path).then(() => true, () => false);
  return `it is a symbolic link (to ${target}${found ? "" : ", which does not exist"}), which the proxy neither ` +
    "follows nor replaces";
}

/**
 * Check that a socket can be served at `path` before anything is started for
 * it (a QEMU that would be stopped again): by taking listenTransport's first
 * steps, which check that the path fits a socket address, that nothing
 * serves it (a stale socket file is removed), and that a directory can be
 * made beside it (the directory is there, this process may write in it, the
 * file system is not read-only). What changes meanwhile listenTransport finds.
 * @throws {ConnectionError} naming the path and the reason
 */
export async function checkListenPath(path: string): Promise<void> {
  const { rm } = await import("node:fs/promises");
  // Its own name: one a kill leaves behind says what it was for.
  await rm(await claimedDirBeside(path, ".qmpctl-check-"), { recursive: true, force: true });
}

/**
 * A new private directory beside `path`, named `prefix` and a random suffix,
 * once `path` is found short enough and free to serve (claimSocketPath).
 * @throws {ConnectionError} naming the path and the reason
 */
async function claimedDirBeside(path: string, prefix: string): Promise<string> {
  const length = new TextEncoder().encode(path).length;
  if (length > MAX_SOCKET_PATH_BYTES) { // bound elsewhere and moved here, it would take no connection
    throw listenError(
      path,
      `the path is too long for a UNIX socket (${length} bytes; at most ${MAX_SOCKET_PATH_BYTES})`,
    );
  }
  await claimSocketPath(path);
  const { mkdtemp } = await import("node:fs/promises");
  const { dirname, join } = await import("node:path");
  try {
    return await mkdtemp(join(dirname(path), prefix));
  } catch (error) {
    throw listenError(path, await listenFailure(path, error), error);
  }
}

/** Why `path` cannot be served, as an error: `cannot listen on PATH: REASON`. */
function listenError(path: string, reason: string, cause?: unknown): ConnectionError {
  return new ConnectionError(`cannot listen on ${path}: ${reason}`, { cause });
}

/**
 * Serve a UNIX socket at `path`, created with `mode` from its first instant:
 * it is bound in a private directory beside `path`, given its mode, then
 * linked into place. A stale socket file (connecting to it is refused) is
 * replaced; any other (served, busy, not ours to open), or a file that is not
 * a socket, is an error.
 * Closing the listener removes the socket file, if it is still this one (not
 * one another server put there since).
 * @throws {ConnectionError} naming the path and the reason
 */
export async function listenTransport(
  path: string,
  events: ListenEvents,
  options: ListenOptions = {},
): Promise<Listener> {
  const fs = await import("node:fs/promises");
  const { join } = await import("node:path");
  const privateDir = await claimedDirBeside(path, ".qmpctl-listen-");
  const { listen } = bun ? await import("./transport_bun.ts") : await import("./transport_node.ts");
  const bound = join(privateDir, "s");
  let listener: Listener | undefined;
  let ours: { dev: number; ino: number };
  try {
    listener = await listen(bound, events);
    await fs.chmod(bound, options.mode ?? 0o600);
    ours = await fs.lstat(bound); // the same file once linked
    // A link, not a rename: it fails where another server has put a socket since the claim (two started at
    // once), where a rename would silently take its place.
    await fs.link(bound, path).catch(async (error) => {
      if ((error as { code?: string }).code !== "EEXIST") throw error;
      await claimSocketPath(path); // a stale one is removed; a live one fails
      await fs.link(bound, path);
    });
  } catch (error) {
    await listener?.close();
    if (error instanceof ConnectionError) throw error; // the claim's own
    throw listenError(path, await listenFailure(path, error), error);
  } finally {
    await fs.rm(privateDir, { recursive: true, force: true });
  }
  return {
    async close() {
      await listener.close();
      const there = await fs.lstat(path).catch(() => undefined); // undefined: already gone
      if (there?.dev === ours.dev && there.ino === ours.ino) await fs.unlink(path).catch(() => {});
    },
  };
}

/**
 * Why a socket could not be made at `path`, from the system's `error`. ENOENT
 * there is not "no such socket" (the socket is to be made): the directory is
 * missing (or was removed meanwhile), or it is there and the system refuses
 * to make anything in it (/proc answers ENOENT), which the code alone does
 * not tell apart, so the directory is looked at.
 */
async function listenFailure(path: string, error: unknown): Promise<string> {
  if ((error as { code?: string }).code !== "ENOENT") return describeSystemError(error);
  const { stat } = await import("node:fs/promises");
  const { dirname } = await import("node:path");
  const dir = dirname(path);
  const there = await stat(dir).then((found) => found.isDirectory(), () => false);
  return there ? `the system refused to make a socket in ${dir} (ENOENT)` : `no such directory ${dir} (ENOENT)`;
}

/**
 * Whether a listener has a file descriptor left for another client.
 * At the descriptor limit (`ulimit -n`), accept(2) fails with EMFILE and
 * leaves the connection in the listen queue, so the listening socket stays
 * readable: Bun's listener (uSockets) retries at once, for ever, and says
 * nothing to JavaScript, which spins a core. Node's libuv closes such a
 * connection with a descriptor it keeps in reserve; Bun has no such guard,
 * and no way to pause a listener short of closing its socket. So the proxy
 * asks, after each connection it accepts, whether one more descriptor could
 * be opened: when none could, it closes that connection at once, which
 * leaves one free for the next accept(2) and nothing to spin on.
 *
 * Returns a check to run after each accept: undefined while a descriptor can still
 * be opened, else the error code that says why not (`EMFILE`, `ENFILE`).
 * Other failures (no /dev/null, no read permission under Deno) tell nothing
 * of the limit, and are taken as room.
 */
export async function spareDescriptorCheck(): Promise<() => string | undefined> {
  // Only Bun's listener spins; Deno would also ask a terminal for leave to read /dev/null, which stops the loop.
  if (!bun) return () => undefined;
  const { closeSync, openSync } = await import("node:fs");
  return () => {
    try {
      closeSync(openSync("/dev/null", "r"));
      return undefined;
    } catch (error) {
      const code = (error as { code?: string }).code;
      return code === "EMFILE" || code === "ENFILE" ? code : undefined;
    }
  };
}
