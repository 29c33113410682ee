/**
 * The targets `-s` names for a run on several: each address given, each
 * socket a glob matches (sorted), each monitor once however it is spelled;
 * a glob that matches nothing yet is looked at again beside the run under
 * --wait-socket, and what it matches joins the run (cli/fanout.ts runs them).
 *
 * @module
 */
import { parseAddress } from "../lib/address.ts";
import { isNotReady, retryWhileNotReady } from "../lib/connect_ready.ts";
import { bracketsNoGlobHint, isSocketGlob } from "../lib/glob.ts";
import { ConnectionError } from "../lib/errors.ts";
import { describeSystemError } from "../lib/transport_socket.ts";
import { fileIdentity, type GlobDenied, globSockets, realSocketPath } from "./io/files.ts";

/** A target: an address to run on, or (with `error`) one that fails before it runs, labelled with `address`. */
export interface Target {
  address: string;
  error?: Error;
}

/**
 * The targets `-s` names, as they become known: every address given and
 * every socket a glob matches at once, in order, each glob's matches sorted,
 * each monitor once. A glob that matches nothing yet is looked at again
 * beside the run for --wait-socket (the VMs may be starting; --timeout and
 * SIGINT end that wait too), and the sockets it matches when it first
 * matches join the run: no target waits for it. A glob that matches
 * nothing beside other targets is a target of its own that fails, its
 * error in `failed`, so that the others still run (a site with no VM must
 * not stop the rest); so is a socket a glob matches whose name is not UTF-8
 * (no runtime path can name it), labelled with its bad bytes as \xHH. When
 * no target can run at all (each glob failed), `settled()` rejects with why.
 */
export class Targets {
  /** The targets known so far, in the order they became known, each monitor once. */
  readonly addresses: string[] = [];
  /** Targets that fail before they run (a glob that matched nothing, a name not UTF-8), with why. */
  readonly failed = new Map<string, Error>();
  /** Failures while no target can run: one error if none ever can, targets of their own once one can. */
  #held: Target[] = [];
  #runnable = false;
  #waiting = 0; // globs still looked at
  #broken: unknown; // a bug met while adding a glob's targets
  #adding = Promise.resolve(); // one addition at a time: each compares its targets with those known
  #changed = Promise.withResolvers<void>();
  #settled = Promise.withResolvers<void>();

  /** `given`: the -s addresses, whose order the reasons follow when no target can run. */
  constructor(readonly given: readonly string[] = []) {
    this.#settled.promise.catch(() => {}); // told to whoever awaits settled(), if anyone does
  }

  /** Whether no glob is looked at any more: the addresses are all there will be. */
  get done(): boolean {
    return this.#waiting === 0;
  }

  /** Resolves at the next change: targets added, or the last glob looked at done. */
  changed(): Promise<void> {
    return this.#changed.promise;
  }

  /** Resolves once no glob is looked at any more; rejects when no target can run (each glob said why). */
  settled(): Promise<void> {
    return this.#settled.promise;
  }

  /** Add `targets` (in order), after the additions before it, leaving out each monitor already there. */
  add(targets: Target[]): Promise<void> {
    this.#adding = this.#adding.then(() => this.#addNow(targets));
    return this.#adding;
  }

  /** Look at `glob` again beside the run until it matches (retryWhileNotReady), then add what it matches. */
  lookAgain(glob: string, waitMs: number, signal?: AbortSignal): void {
    this.#waiting++;
    retryWhileNotReady(() => globTargets(glob), waitMs, signal)
      .catch((error: Error) => [{ address: glob, error }])
      .then((targets) => this.add(targets))
      .catch((error) => (this.#broken ??= error)) // a bug: the run ends with it
      .finally(() => {
        this.#waiting--;
        this.settle();
      });
  }

  /** Settled once no glob is looked at any more: rejected when no target can run. */
  settle(): void {
    if (this.#waiting > 0) return;
    if (this.#broken) this.#settled.reject(this.#broken);
    else if (this.#runnable) this.#settled.resolve();
    else {
      const rank = (target: Target) => this.given.indexOf(target.address) + 1 || this.given.length + 1;
      const held = this.#held.sort((a, b) => rank(a) - rank(b)); // in the order given, not as they failed
      this.#settled.reject(nothingToRun(held.map((target) => target.error!)));
    }
    this.#wake();
  }

  async #addNow(targets: Target[]): Promise<void> {
    // Each monitor once, however it is spelled: QEMU serves one client at a time, so a second connection would
    // wait on the first. The keys of those known are looked up again: a socket that has come since has a file.
    const known = [...this.addresses, ...this.#held.map((target) => target.address)];
    const failed = (address: string) => this.failed.has(address) || this.#held.some((t) => t.address === address);
    const keys = await Promise.all([
      ...known.map((address) => failed(address) ? [`failed:${address}`] : targetKeys(address)),
      ...targets.map(({ address, error }) => error ? [`failed:${address}`] : targetKeys(address)),
    ]);
    const seen = new Set(keys.slice(0, known.length).flat());
    let fresh = targets.filter((_, i) => {
      const own = keys[known.length + i];
      const again = own.some((key) => seen.has(key));
      for (const key of own) seen.add(key);
      return !again;
    });
    if (!this.#runnable && fresh.some((target) => !target.error)) {
      this.#runnable = true;
      fresh = [...this.#held.splice(0), ...fresh];
    }
    for (const target of fresh) {
      if (!this.#runnable) this.#held.push(target);
      else {
        if (target.error) this.failed.set(target.address, target.error);
        this.addresses.push(target.address);
      }
    }
    if (fresh.length > 0) this.#wake();
  }

  #wake(): void {
    this.#changed.resolve();
    this.#changed = Promise.withResolvers();
  }
}

/**
 * The targets `-s` names (see Targets), the globs that match nothing yet
 * being looked at again beside the run for `waitMs` (--wait-socket) or
 * until `signal` aborts; undefined when it names one plain address (the
 * single-target output). Every other address is parsed first: one that is
 * wrong as written stops the whole run before anything is sent.
 * @throws {ConnectionError} when no target can run (each glob matched nothing, at once or after `waitMs`)
 * @throws {AddressError} for an address that is not one (`-s ''`)
 */
export async function startTargets(
  sockets: readonly string[],
  waitMs = 0,
  signal?: AbortSignal,
): Promise<Targets | undefined> {
  if (sockets.length === 1 && !isSocketGlob(sockets[0])) return undefined;
  for (const socket of sockets) if (!isSocketGlob(socket)) parseAddress(socket); // `-s ''` (an unset $VM): before any runs
  const targets = new Targets(sockets);
  const later: string[] = []; // globs that match nothing yet, looked at again once those known are in
  const found = await Promise.all(sockets.map(async (socket): Promise<Target[]> => {
    if (!isSocketGlob(socket)) return [{ address: socket }];
    try {
      return await globTargets(socket);
    } catch (error) {
      if (waitMs <= 0 || !isNotReady(error)) return [{ address: socket, error: error as Error }];
      later.push(socket);
      return [];
    }
  }));
  await targets.add(found.flat());
  for (const glob of later) targets.lookAgain(glob, waitMs, signal);
  targets.settle();
  if (targets.done) await targets.settled(); // nothing can run: said before anything is started
  return targets;
}

/**
 * Every target `-s` names (see Targets), once each glob has matched or
 * given up, for a command that runs on one target; undefined for one plain
 * address.
 * @throws {ConnectionError} for a glob that matches no socket, or a target that fails (the first)
 * @throws {AddressError} for an address that is not one (`-s ''`)
 */
export async function expandTargets(
  sockets: readonly string[],
  waitMs = 0,
  signal?: AbortSignal,
): Promise<string[] | undefined> {
  const targets = await startTargets(sockets, waitMs, signal);
  if (!targets) return undefined;
  await targets.settled();
  const [failed] = targets.failed.values(); // the first, as given
  if (failed) throw failed;
  return targets.addresses;
}

/**
 * What `glob` matches: its sockets and those whose names are not UTF-8,
 * sorted (the latter as targets that fail: not left out in silence, a
 * command meant for every VM would miss one).
 * @throws {ConnectionError} when it matches none ("not there yet" under --wait-socket: isNotReady)
 */
async function globTargets(glob: string): Promise<Target[]> {
  const { sockets, unnamable, denied } = await globSockets(
    glob.startsWith("unix:") ? (parseAddress(glob) as { path: string }).path : glob, // QEMU's options dropped
  ).catch((error) =>
    Promise.reject(deniedError(glob, { path: (error as { path?: string }).path ?? ".", looking: "list", error }))
  );
  const unnamed = unnamable.map((name) => {
    const why = `'${name}' matches ${glob}, but its name is not valid UTF-8: qmpctl cannot open it`;
    return { address: name, error: new ConnectionError(why) };
  });
  if (sockets.length + unnamed.length > 0) {
    return [...sockets.map((address) => ({ address })), ...unnamed].sort((a, b) =>
      a.address < b.address ? -1 : a.address > b.address ? 1 : 0
    );
  }
  // Not "no socket matches": one may be there. Waited out as no match is (--wait-socket: the VM that
  // matches may still be starting, beside a directory the user may not enter), then told.
  if (denied.length > 0) throw deniedError(glob, denied[0], "not there yet");
  const hint = bracketsNoGlobHint(glob); // a user who wrote [12] meant a glob
  throw new ConnectionError(`no socket matches ${glob}${hint}`, { cause: { code: "ENOENT" } }); // not there yet
}

/**
 * Why nothing can run, from each glob's error: one as it is; of several, the
 * run's own end (SIGINT, --timeout) or a bug as it is, else all the reasons
 * in one ConnectionError.
 */
function nothingToRun(errors: Error[]): Error {
  if (errors.length === 1) return errors[0];
  return errors.find((error) => !(error instanceof ConnectionError)) ??
    new ConnectionError(errors.map((error) => error.message).join("; "));
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
