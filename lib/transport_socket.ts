/**
 * A UNIX or TCP socket, opened with the runtime's own API: `Bun.connect`
 * under Bun (importing `node:net` costs a compiled binary ~14 ms of
 * start-up, more than a whole QMP exchange), `node:net` elsewhere (Deno,
 * Node), loaded only there. The Bun one is imported statically: it touches
 * nothing of Bun's until it connects, and a one-shot exec saves its own
 * `import()` and chunks (~0.08 M instructions, ~1%).
 *
 * @module
 */
import { sleep } from "./abort.ts";
import { ConnectionError } from "./errors.ts";
import { bracketsNoGlobHint } from "./glob.ts";
import { bun } from "./bun_api.ts";
import { connect as connectBun } from "./transport_bun.ts";
import type { SocketAddress, Transport, TransportEvents, TransportOptions } from "./transport_types.ts";

/**
 * Open a socket to `address` with the runtime's own API. EAGAIN from connect(2) on a UNIX socket means
 * the server's listen queue is full (QEMU's is short: a few clients connecting
 * at the same moment fill it), not that nobody listens: try again after a
 * short pause, doubling up to 64 ms, until `retry.signal` aborts.
 * @throws {ConnectionError} naming the address and the system's reason
 */
export async function connectSocket(
  address: SocketAddress,
  events: TransportEvents,
  retry: TransportOptions = {},
): Promise<Transport> {
  const connect = bun ? connectBun : (await import("./transport_node.ts")).connect;
  // No `Math` here: the runtime makes that object when the first function
  // naming it first runs (~0.1 M instructions, ~1% of a one-shot exec).
  for (let pauseMs = 1;; pauseMs = pauseMs < 32 ? pauseMs * 2 : 64) {
    try {
      return await connect(address, events);
    } catch (error) {
      await failedOrRetrying(address, error, retry, pauseMs);
    }
  }
}

/**
 * After connecting failed with `error`: throw its ConnectionError, or, for
 * EAGAIN with a `retry.signal` not aborted, wait about `pauseMs` before the
 * next try (spread, so that clients refused together do not all come back
 * together).
 */
async function failedOrRetrying(
  address: SocketAddress,
  error: unknown,
  retry: TransportOptions,
  pauseMs: number,
): Promise<void> {
  const { reason, cause } = await notASocket(address, error) ?? { reason: describeSystemError(error), cause: error };
  // A path is taken as written: a shell's glob [12] in a missing one is said to be none.
  const missing = address.kind === "unix" && (cause as { code?: string })?.code === "ENOENT";
  const hint = missing ? bracketsNoGlobHint(address.path) + addressFormHint(address.path) : "";
  const failure = new ConnectionError(`cannot connect to ${address.text}: ${reason}${hint}`, { cause });
  const { signal } = retry;
  if ((error as { code?: string })?.code !== "EAGAIN" || !signal || signal.aborted) throw failure;
  retry.onBusy?.();
  await sleep(pauseMs * (0.5 + Math.random()), signal, "the server's listen queue").catch(() =>
    Promise.reject(failure)
  );
}

/**
 * For a missing path that reads as a mistyped address (`SSH://host/path`,
 * `ssh:host/path`, `qmp://...`): it was taken as a path, which is why no
 * socket was found. Likewise a `~` the shell did not expand (`--socket=~/x`,
 * `unix:~/x`, a quoted one): nothing here expands it.
 */
function addressFormHint(path: string): string {
  if (path.startsWith("~")) return " (~ is not expanded here: write $HOME/..., which the shell expands)";
  return /^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(path) || /^ssh:/i.test(path)
    ? " (taken as a path: an ssh address is written ssh://HOST/PATH, in lower case)"
    : "";
}

const REASONS: Record<string, string> = {
  ENOENT: "no such socket",
  ECONNREFUSED: "connection refused (nothing is listening there)",
  EAGAIN: "the server's listen queue is full (too many clients connecting at once)",
  ECONNRESET: "connection reset by the peer",
  EACCES: "permission denied",
  EPERM: "permission denied",
  ENOTDIR: "a part of the path is not a directory",
  ELOOP: "too many levels of symbolic links",
  ENAMETOOLONG: "the path is too long",
  ENOTSOCK: "not a socket",
  EPROTOTYPE: "a socket of another kind (not a stream socket): no QMP monitor there", // datagram, seqpacket
  EMFILE: "too many open files (this process's limit, ulimit -n)",
  ENFILE: "too many open files on this system",
  ETIMEDOUT: "connection timed out",
  EHOSTUNREACH: "host unreachable",
  ENETUNREACH: "network unreachable",
  ENOTFOUND: "unknown host",
  EAI_AGAIN: "host name lookup failed",
  EADDRNOTAVAIL: "address not available",
  EINVAL: "not an address this machine can connect to", // an IPv6 zone naming no interface: [fe80::1%nope]
};

/**
 * Linux refuses a connection to a path that is no socket (a pidfile, a disk
 * image, a directory) with ECONNREFUSED, as if nobody listened there, and
 * Bun reports a path it cannot follow (a symlink loop, a file as a directory,
 * a name too long) as ECONNREFUSED or EINVAL: stat tells what the path is.
 * What to report, and the error behind it (its `code` decides whether
 * --wait-socket tries again: ENOTSOCK, ELOOP and the like are not worth
 * waiting out); undefined for a socket, or any other error.
 */
async function notASocket(
  address: SocketAddress,
  error: unknown,
): Promise<{ reason: string; cause: unknown } | undefined> {
  const code = (error as { code?: string })?.code;
  if (address.kind !== "unix" || (code !== "ECONNREFUSED" && code !== "EINVAL")) return undefined;
  const { stat } = await import("node:fs/promises");
  let found;
  try {
    found = await stat(address.path);
  } catch (statError) {
    const statCode = (statError as { code?: string })?.code;
    // ELOOP, ENOTDIR, ENAMETOOLONG, EACCES; and ENOENT behind Bun's EINVAL for a path past sun_path's
    // 108 bytes whose directory is missing: "no such socket", which --wait-socket waits out.
    if (statCode === "ENOENT" && code === "ECONNREFUSED") return undefined;
    return { reason: describeSystemError(statError), cause: statError };
  }
  if (found.isSocket()) return undefined;
  const kind = found.isFile()
    ? "a regular file"
    : found.isDirectory()
    ? "a directory"
    : found.isFIFO()
    ? "a FIFO"
    : "a device";
  return {
    reason: `not a socket (${kind})`,
    cause: Object.assign(new Error(`not a socket (${kind})`), { code: "ENOTSOCK" }),
  };
}

/** A system error as words, with its code (ENOENT: "no such socket (ENOENT)"). */
export function describeSystemError(error: unknown): string {
  const { code, message } = error as { code?: string; message?: string };
  if (code && REASONS[code]) return `${REASONS[code]} (${code})`;
  return code ?? message ?? String(error);
}
