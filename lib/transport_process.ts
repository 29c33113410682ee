/**
 * Child processes for the ssh transport: `Bun.spawn` under Bun,
 * `node:child_process` under Deno and Node (imported here, inside the
 * function, so that a compiled binary loads it only for `ssh://`).
 *
 * @module
 */
import { within } from "./abort.ts";
import { bun, type BunApi } from "./bun_api.ts";
import { denoGrants, notGranted } from "./deno_api.ts";

/** A running child process. */
export interface Child {
  /** Settles with the exit status, or null when a signal ended it. */
  readonly exited: Promise<number | null>;
  /** Whether it has ended. */
  readonly done: boolean;
  /** Send SIGTERM, or `signal` (nothing when it has ended): to its whole group when it leads one (`detached`). */
  kill(signal?: "SIGTERM" | "SIGKILL"): void;
  /** Send SIGTERM, and SIGKILL if it has not ended `graceMs` later (a child may miss or ignore a SIGTERM). */
  stop(graceMs: number): void;
}

/** How to start a child. */
export interface SpawnOptions {
  /**
   * In its own session (setsid): the terminal's Ctrl-C then reaches only the parent. The child then leads a
   * process group of its own, which `kill` and `stop` signal whole, so that what it started ends with it
   * (ssh's ProxyCommand or ProxyJump ssh, the ssh of a wrapper script that does not exec), also what of
   * the group outlives it then. A child that ends by itself leaves its group alone: a daemon it forks (ssh's
   * ControlPersist master, as ssh hands over to it and exits) is in the group until it makes its own session.
   */
  detached: boolean;
  /** Called with each chunk of the child's stderr, as text. */
  stderr(text: string): void;
}

/** Start processes and run short ones to the end, with whichever runtime this is. */
export interface ProcessRuntime {
  /** Start `argv` with stdin and stdout on /dev/null; throws when it cannot be started. */
  spawn(argv: string[], options: SpawnOptions): Child;
  /**
   * Run `argv` to its end (or `timeoutMs`), synchronously, output discarded: usable in an exit handler.
   * Returns its exit status; null when it was killed (by the timeout).
   */
  runSync(argv: string[], timeoutMs: number): number | null;
}

/**
 * How long an exit waits for the rest of stderr: a process that forked a
 * daemon (ssh's ControlPersist master) may have left the pipe open.
 */
const STDERR_GRACE_MS = 200;

/**
 * Send `signal` to process group `id`, to what is left of it: whether any process was there to take it.
 * Only for a child started detached, which leads its own group: a group's id is the pid of the process that
 * made it, and the kernel gives no new process a pid still in use as a group's id, so `id` (the child's pid,
 * free when it was forked) is no group of qmpctl's own. It names the child's group while the child is not
 * yet reaped, and after that while any process of the group is left: no other can take its id until then.
 */
function signalGroup(id: number, signal: "SIGTERM" | "SIGKILL" | 0): boolean {
  try {
    process.kill(-id, signal);
    return true;
  } catch {
    return false; // ESRCH: none left
  }
}

/**
 * A Child over a started process: done once it exited and its stderr was read (or the grace ran out).
 * `group`: its pid when it leads its own process group (started detached).
 */
function startedChild(
  exitCode: Promise<number | null>,
  stderrEnded: Promise<void>,
  kill: (signal: "SIGTERM" | "SIGKILL") => void,
  group: number | undefined,
): Child {
  let done = false;
  let signalled = false;
  // The whole group; the child alone if it leads none after all (a runtime that did not make its session).
  const signalAll = (signal: "SIGTERM" | "SIGKILL") => {
    signalled = true;
    if (group === undefined || !signalGroup(group, signal)) kill(signal);
  };
  const exited = exitCode.then(async (code) => {
    // Told to end, it did; what of its group is still there (a wrapper's ssh that missed its SIGTERM) is
    // killed once its stderr is read. Looked at right after the reap: its id, still in use then, can be
    // no other group's; a moment later only if the whole pid space came round.
    const left = signalled && group !== undefined && signalGroup(group, 0) ? group : undefined;
    await within(stderrEnded, STDERR_GRACE_MS);
    if (left !== undefined) signalGroup(left, "SIGKILL");
    done = true;
    return code;
  });
  const child: Child = {
    exited,
    get done() {
      return done;
    },
    kill: (signal = "SIGTERM") => void (done || signalAll(signal)),
    stop(graceMs) {
      if (done) return;
      signalAll("SIGTERM");
      // Not kept past the child's end: a running child holds the process open anyway.
      const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
      void exited.then(() => clearTimeout(timer));
    },
  };
  return child;
}

/** The process functions of this runtime. */
export async function processRuntime(): Promise<ProcessRuntime> {
  return bun ? bunRuntime(bun) : await nodeRuntime();
}

let childrenWaitable = false;

/**
 * Let Bun wait for its children. A parent that ignores SIGCHLD (some
 * daemons, container entrypoints) passes that on through exec(2), and the
 * kernel then reaps the children itself: Bun's waitpid(2) fails with ECHILD,
 * an exit status never comes. A handler of our own, doing nothing, restores
 * the usual reaping (Node and Deno set one themselves).
 */
export function makeChildrenWaitable(): void {
  if (childrenWaitable) return;
  process.on("SIGCHLD", () => {});
  childrenWaitable = true;
}

function bunRuntime(runtime: BunApi): ProcessRuntime {
  makeChildrenWaitable();
  return {
    spawn(argv, options) {
      const child = runtime.spawn(argv, {
        stdin: "ignore",
        stdout: "ignore",
        stderr: "pipe",
        detached: options.detached,
      });
      return startedChild(
        child.exited.then((code) => child.signalCode ? null : code),
        pipeText(child.stderr, options.stderr),
        (signal) => child.kill(signal),
        options.detached ? child.pid : undefined,
      );
    },
    runSync(argv, timeoutMs) {
      const run = runtime.spawnSync(argv, { stdin: "ignore", stdout: "ignore", stderr: "ignore", timeout: timeoutMs });
      return run.signalCode ? null : run.exitCode;
    },
  };
}

/**
 * Under Deno without `--allow-run`: Deno's own NotCapable error, thrown (the
 * CLI says which permission, exit 2), rather than a child that "exited 127".
 */
function checkRunPermission(program: string): void {
  if (denoGrants({ name: "run", command: program })) return;
  throw notGranted("run", program, "--allow-run");
}

async function pipeText(stream: ReadableStream<Uint8Array>, deliver: (text: string) => void): Promise<void> {
  const decoder = new TextDecoder();
  try {
    for await (const chunk of stream) deliver(decoder.decode(chunk, { stream: true }));
  } catch {
    // the child was killed while we read: nothing more to tell
  }
}

async function nodeRuntime(): Promise<ProcessRuntime> {
  const { spawn, spawnSync } = await import("node:child_process");
  return {
    spawn(argv, options) {
      checkRunPermission(argv[0]);
      const child = spawn(argv[0], argv.slice(1), { stdio: ["ignore", "ignore", "pipe"], detached: options.detached });
      child.stderr!.setEncoding("utf8");
      child.stderr!.on("data", (text: string) => options.stderr(text));
      return startedChild(
        new Promise<number | null>((resolve) => {
          child.once("error", (error) => { // it could not be started (ENOENT): as a shell reports it, and why
            options.stderr(`cannot run ${argv[0]}: ${error.message}\n`);
            resolve(127);
          });
          child.once("exit", (code) => resolve(code));
        }),
        new Promise<void>((resolve) => child.stderr!.once("close", resolve)),
        (signal) => child.kill(signal),
        options.detached ? child.pid : undefined, // none when it could not be started
      );
    },
    runSync(argv, timeoutMs) {
      return spawnSync(argv[0], argv.slice(1), { stdio: "ignore", timeout: timeoutMs }).status;
    },
  };
}
