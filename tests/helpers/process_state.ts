/**
 * Readiness from the kernel's view of a process (Linux /proc), for tests
 * that must act while a process is in a given state: a signal handler
 * installed, a thread blocked opening a FIFO. Polled with a deadline, so a
 * loaded machine waits longer instead of acting too early.
 */
import { readdirSync, readFileSync, readlinkSync } from "node:fs";

/** Resolve once `condition()` holds; fail after `timeoutMs`, naming `what` was awaited. */
export async function waitUntil(condition: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting until ${what}`);
    await Bun.sleep(5);
  }
}

function read(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return "";
  }
}

/** Whether process `pid` has a handler for SIGINT (bit 2 of SigCgt in /proc/PID/status). */
export function catchesSigint(pid: number): boolean {
  const mask = /^SigCgt:\s*([0-9a-f]+)/m.exec(read(`/proc/${pid}/status`))?.[1];
  return mask !== undefined && (BigInt(`0x${mask}`) & 2n) !== 0n;
}

/** Whether some thread of `pid` is blocked in the kernel at `wchan` (e.g. "wait_for_partner": opening a FIFO). */
export function blockedIn(pid: number, wchan: string): boolean {
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return false;
  }
  return tasks.some((task) => read(`/proc/${pid}/task/${task}/wchan`) === wchan);
}

/** The inodes of the sockets `pid` holds open, beyond its standard streams. */
function socketInodes(pid: number): Set<string> {
  const inodes = new Set<string>();
  let fds: string[];
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return inodes;
  }
  // Not 0-2: a test runner's pipes to stdin, stdout and stderr may be socket pairs.
  for (const fd of fds.filter((fd) => Number(fd) > 2)) {
    try {
      const target = readlinkSync(`/proc/${pid}/fd/${fd}`);
      const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1];
      if (inode) inodes.add(inode);
    } catch {
      // closed meanwhile
    }
  }
  return inodes;
}

/** Whether `pid` holds a connected UNIX stream socket (state 03 in /proc/net/unix). */
export function hasConnectedUnixSocket(pid: number): boolean {
  const inodes = socketInodes(pid);
  if (inodes.size === 0) return false;
  return read("/proc/net/unix").split("\n").some((line) => {
    const fields = line.trim().split(/\s+/);
    return fields[5] === "03" && inodes.has(fields[6]);
  });
}

/** The pids of `pid`'s child processes (none once it has gone). */
export function childrenOf(pid: number): number[] {
  return read(`/proc/${pid}/task/${pid}/children`).trim().split(/\s+/).filter(Boolean).map(Number);
}

/** The pids of the live processes whose command line holds `text` (its words joined by NULs, as /proc gives it). */
export function processesNaming(text: string): number[] {
  return readdirSync("/proc").filter((name) => /^\d+$/.test(name)).map(Number).filter((pid) =>
    read(`/proc/${pid}/cmdline`).includes(text) && alive(pid)
  );
}

/** Whether process `pid` runs (exists, and is no zombie). */
export function alive(pid: number): boolean {
  const status = read(`/proc/${pid}/status`);
  return status !== "" && !/^State:\s+Z/m.test(status);
}

/** The first child of `pid` (0 while it has none): the program `unshare --fork` or a wrapper started. */
export function firstChildOf(pid: number): number {
  return childrenOf(pid)[0] ?? 0;
}
