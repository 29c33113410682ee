/**
 * Scratch directories for one test run (a cache home, a state home), inside
 * a directory of that run's own. `bun test` runs no exit handler, so a run
 * cannot remove its own: each run removes those of earlier runs whose
 * process is gone, and /tmp keeps at most the live runs'.
 */
import { chmodSync, mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const PREFIX = "qmpctl-test-run-";

/** Remove the run directories (ours: this user's) whose process has ended. */
function removeEndedRuns(): void {
  for (const name of readdirSync(tmpdir())) {
    const pid = Number(/^qmpctl-test-run-(\d+)-/.exec(name)?.[1]);
    if (!pid || pid === process.pid || isRunning(pid)) continue;
    const path = join(tmpdir(), name);
    try {
      if (statSync(path).uid === process.getuid!()) rmSync(path, { recursive: true, force: true });
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
