/**
 * Scratch directories for one test run (a cache home, a state home), inside
 * a directory of that run's own. `bun test` runs no exit handler, so a run
 * cannot remove its own: each run removes those of earlier runs whose
 * process is gone, and /tmp keeps at most the live runs'.
 */
import { chmodSync, lstatSync, mkdtempSync, readdirSync, readlinkSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

// A pid means this process only in its own PID namespace (a container sharing /tmp has its own): the
// namespace is part of the name, and only this namespace's ended runs are removed.
const PREFIX = `qmpctl-test-run-${pidNamespace()}-`;

function pidNamespace(): string {
  try {
    return /\d+/.exec(readlinkSync("/proc/self/ns/pid"))?.[0] ?? "0"; // "pid:[4026531836]"
  } catch {
    return "0"; // no /proc
  }
}

/** Remove the run directories (ours: this user's) whose process has ended. */
function removeEndedRuns(): void {
  for (const name of readdirSync(tmpdir())) {
    if (!name.startsWith(PREFIX)) continue;
    const pid = Number(/^(\d+)-/.exec(name.slice(PREFIX.length))?.[1]);
    if (!pid || pid === process.pid || isRunning(pid)) continue;
    const path = join(tmpdir(), name);
    try {
      const stat = lstatSync(path);
      if (stat.isDirectory() && stat.uid === process.getuid!()) rmSync(path, { recursive: true, force: true });
    } catch {
      // gone already, or not ours to remove
    }
  }
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as { code?: string }).code === "EPERM"; // another user's live process
  }
}

let runDir: string | undefined;

/** A new empty directory named `prefix` + random characters, inside this run's directory. */
export function scratchDir(prefix: string): string {
  if (!runDir) {
    removeEndedRuns();
    runDir = mkdtempSync(join(tmpdir(), `${PREFIX}${process.pid}-`)); // not a guessable name
    chmodSync(runDir, 0o755); // as /tmp is to other users (a test's run as nobody), but for writing
  }
  return mkdtempSync(join(runDir, prefix));
}
