/**
 * The signals that end a process from outside (SIGTERM, SIGHUP; SIGINT), as
 * their default action would, whoever handles them on the way: left ignored
 * when the caller ignored them (`nohup`, a script's background job), and
 * acted on as PID 1 (a container's first process), where the kernel takes
 * no default action: `docker stop` would otherwise wait for its SIGKILL.
 *
 * @module
 */
import { denoGrants } from "./deno_api.ts";

/** A signal that ends the process by default. */
export type EndingSignal = "SIGHUP" | "SIGINT" | "SIGTERM";

const NUMBERS: Record<EndingSignal, number> = { SIGHUP: 1, SIGINT: 2, SIGTERM: 15 };

let ignoredMask: number | undefined;

/** The ignored signals of a /proc/self/status text, as a mask (bit n-1: signal n); 0 where it says none. */
function ignoredMaskOf(status: string): number {
  const hex = /^SigIgn:\s*([0-9a-f]+)$/m.exec(status)?.[1];
  return hex ? parseInt(hex.slice(-8), 16) : 0; // the low 32 bits: the signals here are all below 32
}

/**
 * Keep `status` (/proc/self/status, read before any handler was set) as
 * what was ignored at start, for a caller that read it already, without
 * node:fs (its cost at start-up): later asks use it.
 */
export function rememberIgnoredAtStart(status: string): void {
  ignoredMask ??= ignoredMaskOf(status);
}

/**
 * Whether `signal` was ignored when the process started (/proc/self/status;
 * false where that cannot be read). Read once, on the first ask, which must
 * come before any handler for it is set: a handler replaces the disposition.
 */
export function ignoredAtStart(signal: EndingSignal): boolean {
  if (ignoredMask === undefined) {
    let status = "";
    try {
      // Not asked of Deno where it was not granted (a library user's --allow-read=/run/qemu): it would prompt.
      if (denoGrants({ name: "read", path: "/proc/self/status" })) {
        const fs = process.getBuiltinModule("node:fs") as typeof import("node:fs");
        status = fs.readFileSync("/proc/self/status", "latin1");
      }
    } catch {
      // no /proc: none ignored
    }
    ignoredMask = ignoredMaskOf(status);
  }
  return (ignoredMask & (1 << (NUMBERS[signal] - 1))) !== 0;
}

/** What `dieOf` runs first: a death by a signal runs no "exit" listener. */
const lastWork: (() => void)[] = [];

/**
 * Run `work` (synchronous) when `dieOf` ends the process, before it dies:
 * what must not be left behind (a child process), which an "exit" listener
 * stops on the other ways out.
 */
export function beforeDying(work: () => void): void {
  lastWork.push(work);
}

/**
 * End the process as `signal`'s default action does, now: the work given to
 * `beforeDying` done, then every handler for it removed, and death by it; as
 * PID 1, which the kernel does not kill so, exit with 128 + its number, as a
 * shell reports a death by it.
 */
export function dieOf(signal: EndingSignal): void {
  // The work first, with the handlers still set: the signal sent again meanwhile (timeout(1) sends it to
  // the process, then to its group) waits behind it, where it would end the process midway (an ssh's
  // directory left in TMPDIR).
  for (const work of lastWork.splice(0)) {
    try {
      work();
    } catch {
      // dying all the same
    }
  }
  process.removeAllListeners(signal);
  if (process.pid === 1) process.exit(128 + NUMBERS[signal]);
  process.kill(process.pid, signal);
}

const standIns = new Set<() => void>();

/** Whether a handler for `signal` besides `mine` (and the PID-1 stand-in) handles it: it then decides. */
export function othersHandle(signal: EndingSignal, mine: () => void): boolean {
  return process.listeners(signal).some((listener) => listener !== mine && !standIns.has(listener as () => void));
}

/**
 * As PID 1, stand in for SIGTERM's and SIGHUP's default action, which the
 * kernel does not take there: die of it (`dieOf`) unless another handler
 * takes it; not for one ignored at start. Elsewhere nothing to do.
 */
export function standInAsPid1(): void {
  if (process.pid !== 1) return;
  for (const signal of ["SIGTERM", "SIGHUP"] as const) {
    if (ignoredAtStart(signal)) continue;
    const standIn = () => {
      if (!othersHandle(signal, standIn)) dieOf(signal);
    };
    standIns.add(standIn);
    process.on(signal, standIn);
  }
}
