/**
 * Several targets: `-s` repeated or a glob. The command runs once per
 * target, concurrently (`--jobs`), in one process; each output line carries
 * `"socket": ADDR`, and a target that fails prints one line saying how:
 * `{"socket", "error": QEMU's error}` or `{"socket", "failure": reason}`.
 * Any command that takes "a context with one address" runs this way: the
 * runner only swaps the address and the output writer.
 *
 * The exit status: 0 when every target succeeded; else 3 if any could not be
 * reached, else 124 if --timeout ran out, else 2 for a usage error on some
 * target (an event name its QEMU does not know), else 4 when the job or
 * migration to follow was not there on some target, else 1.
 *
 * @module
 */
import { parseAddress } from "../lib/address.ts";
import { formatDuration } from "../lib/duration.ts";
import { retryWhileNotReady } from "../lib/connect_ready.ts";
import { bracketsNoGlobHint } from "../lib/glob.ts";
import { CommandError, ConnectionError, TimeoutError } from "../lib/errors.ts";
import { describeSystemError } from "../lib/transport_socket.ts";
import { EXIT } from "./exit_status.ts";
import { fileIdentity, type GlobDenied, globSockets, realSocketPath } from "./io/files.ts";
import { OutputError, writeStderrLine, writeStdout } from "./io/output.ts";
import { type ParsedOptions, UsageError } from "./options.ts";
import { type CommandContext, printLabelled } from "./session.ts";

/** Targets run at once by default (commands that wait for events run every target at once). */
export const DEFAULT_JOBS = 32;

/**
 * Whether `address` is a glob over UNIX socket paths (`/run/qemu/*.qmp`,
 * `unix:/run/*.sock`); TCP forms such as `[::1]:4444` and URLs are not.
 */
export function isGlob(address: string): boolean {
  if (address.includes("://")) return false;
  const path = address.startsWith("unix:") ? address.slice(5) : address;
  if (!path.includes("/") && path.includes(":")) return false; // HOST:PORT, [IPV6]:PORT
  return /[*?]/.test(path);
}

/**
 * The targets `-s` names, in order, each glob's matches sorted, each address
 * once; undefined when it names one plain address (the single-target output).
 * A glob that matches nothing yet is looked at again for `waitMs`
 * (--wait-socket: the VMs may be starting). Given `unmatched`, a glob that
 * matches nothing beside other targets stays a target of its own, its error
 * kept there, so that the others still run (a site with no VM must not stop
 * the rest); alone, or without `unmatched`, it is thrown. So is a socket a
 * glob matches whose name is not UTF-8 (no runtime path can name it),
 * labelled with its bad bytes as \xHH. Every other address is parsed first:
 * one that is wrong as written stops the whole run before anything is sent.
 * @throws {ConnectionError} for a glob that matches no socket
 * @throws {AddressError} for an address that is not one (`-s ''`)
 */
export async function expandTargets(
  sockets: readonly string[],
  waitMs = 0,
  signal?: AbortSignal,
  unmatched?: Map<string, Error>,
): Promise<string[] | undefined> {
  if (sockets.length === 1 && !isGlob(sockets[0])) return undefined;
  for (const socket of sockets) if (!isGlob(socket)) parseAddress(socket); // `-s ''` (an unset $VM): before any runs
  const targets: string[] = [];
  const unnamed = new Map<string, Error>(); // sockets whose names are not UTF-8
  for (const socket of sockets) {
    if (!isGlob(socket)) {
      targets.push(socket);
      continue;
    }
    const matching = async () => {
      const { sockets: matches, unnamable, denied } = await globSockets(
        socket.startsWith("unix:") ? (parseAddress(socket) as { path: string }).path : socket, // QEMU's options dropped
      ).catch((error) =>
        Promise.reject(deniedError(socket, { path: (error as { path?: string }).path ?? ".", looking: "list", error }))
      );
      // Not left out in silence (a command meant for every VM would miss one): each is a target that fails.
      for (const name of unnamable) {
        const why = `'${name}' matches ${socket}, but its name is not valid UTF-8: qmpctl cannot open it`;
        unnamed.set(name, new ConnectionError(why));
      }
      if (matches.length + unnamable.length > 0) return [...matches, ...unnamable].sort();
      // Not "no socket matches": one may be there. Waited out as no match is (--wait-socket: the VM that
      // matches may still be starting, beside a directory the user may not enter), then told.
      if (denied.length > 0) throw deniedError(socket, denied[0], "not there yet");
      const hint = bracketsNoGlobHint(socket); // a user who wrote [12] meant a glob
      throw new ConnectionError(`no socket matches ${socket}${hint}`, { cause: { code: "ENOENT" } }); // not there yet
    };
    try {
      targets.push(...await retryWhileNotReady(matching, waitMs, signal));
    } catch (error) {
      if (!unmatched || sockets.length === 1 || !(error instanceof ConnectionError)) throw error;
      unmatched.set(socket, error);
      targets.push(socket);
    }
  }
  for (const [name, error] of unnamed) {
    if (!unmatched) throw error;
    unmatched.set(name, error);
  }
  if (unmatched && unmatched.size === targets.length) { // nothing to run: each glob said
    throw new ConnectionError([...unmatched.values()].map((error) => error.message).join("; "));
  }
  // Each target once, however it is spelled: QEMU serves one client at a time, so a second connection would wait on the first.
  const keys = await Promise.all(
    targets.map((target) => unnamed.has(target) ? [`unnamed:${target}`] : targetKeys(target)),
  );
  const seen = new Set<string>();
  return targets.filter((_, i) => {
    const known = keys[i].some((key) => seen.has(key));
    for (const key of keys[i]) seen.add(key);
    return !known;
  });
}

/** A glob's target that could not be looked for: "cannot list /run/qemu for /run/qemu/*.sock: permission denied (EACCES)". */
function deniedError(glob: string, { path, looking, error }: GlobDenied, notYet?: "not there yet"): ConnectionError {
  const shown = path.length > 1 ? path.replace(/\/$/, "") : path; // "/run/qemu/", not "/"
  const cause = notYet ? { code: "ENOENT", error } : error; // ENOENT: retried under --wait-socket (isNotReady)
  return new ConnectionError(`cannot ${looking} ${shown} for ${glob}: ${describeSystemError(error)}`, { cause });
}

/**
 * What names one monitor, however its address is spelled (two targets that
 * share one are one): a UNIX socket by its real path (q.sock, ./q.sock,
 * unix:q.sock, /run/q.sock and a link to it alike; links resolved as the
 * kernel resolves them, so that link/.. is where the link leads, also
 * before it is there: --wait-socket) and, once there, by the file it is (a
 * hard link); TCP by host and port (tcp: or not); anything else as written
 * (an address that does not parse fails later, named as given).
 */
async function targetKeys(address: string): Promise<string[]> {
  let parsed;
  try {
    parsed = parseAddress(address);
  } catch {
    return [address];
  }
  if (parsed.kind === "tcp") return [`tcp:${parsed.host}:${parsed.port}`];
  if (parsed.kind !== "unix") return [address];
  const [path, file] = await Promise.all([realSocketPath(parsed.path), fileIdentity(parsed.path)]);
  return file ? [`unix:${path}`, `unix-file:${file}`] : [`unix:${path}`];
}

/** `--jobs N`: how many targets run at once (for the commands that take it). */
export function readJobs(options: ParsedOptions, fallback: number): number {
  const text = options.get("jobs");
  if (text === undefined) return fallback;
  if (typeof text !== "string" || !/^[1-9]\d*$/.test(text)) {
    throw new UsageError(`--jobs '${text}': how many run at once must be a whole number, 1 or more`);
  }
  return Number(text);
}

export interface FanoutOptions {
  /** How many targets run at once. */
  jobs: number;
  /** Targets that failed before they ran (a glob that matched nothing, a name not UTF-8: expandTargets), with why. */
  failed?: ReadonlyMap<string, Error>;
  /**
   * The exit status an error means (the CLI's one table); undefined for an
   * error that is not a target's own (a bug): it ends the whole run.
   */
  statusOf(error: unknown): number | undefined;
}

/**
 * Run `run` once per address, at most `jobs` at a time, with each output
 * line labelled; resolves to the combined exit status. An output that cannot
 * be written (a closed pipe, a full disk) ends the whole run (thrown); so
 * does SIGINT, once every target under way has ended (each says what it
 * leaves undone) and without starting those still waiting for their turn.
 */
export async function runOnEach(
  context: CommandContext,
  addresses: readonly string[],
  run: (context: CommandContext) => Promise<number>,
  options: FanoutOptions,
): Promise<number> {
  let output = Promise.resolve();
  // One line (or one batch of lines) at a time, so lines of different targets never interleave. Once a
  // write fails, every later one fails with it: each target gets its own error, for its own notes.
  const write = (text: string) => {
    // Bounded by --timeout and SIGINT (a reader that stops reading must not hold the run past them); the
    // failure lines written once they have come still get their moment (see writeStdout).
    output = output.then(() => writeStdout(text, context.signal));
    return output.catch((error) => {
      if (error instanceof OutputError) throw new OutputError(error.message, { cause: error });
      throw error instanceof TimeoutError ? new TimeoutError(error.message, { cause: error }) : error;
    });
  };
  const statuses: number[] = new Array(addresses.length).fill(EXIT.OK);
  let interrupted: unknown;
  const runTarget = async (address: string): Promise<number> => {
    const target = { label: address, write };
    const own: CommandContext = { ...context, global: { ...context.global, socket: address }, target };
    // stderr's line names the bound that ran out, as a single target's does (cli.ts); the JSON line is data.
    const fail = async (reason: string, members: Record<string, unknown> = { failure: reason }, bound = "") => {
      writeStderrLine(`qmpctl: ${reason.includes(address) ? reason : `${address}: ${reason}`}${bound}`);
      await printLabelled(own, members);
    };
    if ((context.signal.reason as Error | undefined)?.name === "TimeoutError") { // not a connection that timed out
      await fail(`not tried: --timeout ran out while it waited for its turn (--jobs ${options.jobs})`);
      return EXIT.TIMEOUT;
    }
    if (context.signal.aborted) return EXIT.INTERRUPTED; // SIGINT before its turn: nothing done, nothing to say
    try {
      const failed = options.failed?.get(address);
      if (failed) throw failed;
      return await run(own);
    } catch (error) {
      const status = options.statusOf(error);
      // SIGINT, and an output that cannot be written (nowhere to print any target's line): the whole run ends;
      // what the error says was run is this target's.
      if (status === EXIT.OUTPUT) {
        (error as Error).message = `${address}: ${(error as Error).message}` +
          (addresses.length > 1 ? "; the other targets' output is lost too" : "");
      }
      if (status === EXIT.INTERRUPTED) {
        interrupted ??= error;
        return status;
      }
      if (status === undefined || status === EXIT.OK || status === EXIT.OUTPUT) throw error;
      const reason = (error as Error).message;
      const bound = error instanceof TimeoutError ? ` (--timeout ${formatDuration(context.global.timeoutMs)})` : "";
      await fail(reason, error instanceof CommandError ? { error: error.response.error } : undefined, bound);
      return status;
    }
  };
  let next = 0;
  const worker = async () => {
    while (next < addresses.length) {
      const i = next++;
      statuses[i] = await runTarget(addresses[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(options.jobs, addresses.length) }, worker));
  await output;
  if (interrupted) throw interrupted;
  return combinedStatus(statuses);
}

/** 0 when all succeeded; else unreachable (3) over timed out (124) over usage (2) over not there (4) over failed (1). */
export function combinedStatus(statuses: readonly number[]): number {
  for (const status of [EXIT.CONNECTION, EXIT.TIMEOUT, EXIT.USAGE, EXIT.GONE]) {
    if (statuses.includes(status)) return status;
  }
  return statuses.some((s) => s !== EXIT.OK) ? EXIT.QEMU_ERROR : EXIT.OK;
}
