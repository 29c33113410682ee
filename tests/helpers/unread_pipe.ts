/**
 * Run a program with its stdout, its stderr or both into a pipe that nobody
 * reads while it runs (a stuck consumer): one page (4 KiB, F_SETPIPE_SZ),
 * optionally part-full already, so that little output fills it.
 */

export interface UnreadPipeRun {
  /** Its exit status, negative for a signal (as Python says it); null when it had not ended after 20 s. */
  code: number | null;
  /** Whether it ended within 8 s of its start, or of the signal sent. */
  fast: boolean;
  /** Its stderr, when that is not the unread pipe. */
  stderr: string;
}

export interface UnreadPipeOptions {
  /** Bytes an earlier writer left in the pipe (of 4096). */
  prefill?: number;
  /** Send this signal so many seconds after the start. */
  signalAfter?: { seconds: number; signal: "SIGTERM" | "SIGINT" };
  /** Told the program's pid once it runs. */
  started?: (pid: number) => void;
  env?: Record<string, string>;
}

const SCRIPT = `
import fcntl, json, os, signal, subprocess, sys, time
stalled, prefill, signal_after, signal_name = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
r, w = os.pipe()
fcntl.fcntl(w, fcntl.F_SETPIPE_SZ, 4096)
os.write(w, b"x" * prefill)
started = time.time()
p = subprocess.Popen(sys.argv[5:], stdin=subprocess.DEVNULL,
                     stdout=w if stalled in ("stdout", "both") else subprocess.DEVNULL,
                     stderr=w if stalled in ("stderr", "both") else subprocess.PIPE)
os.close(w)
print("pid %d" % p.pid, flush=True)
try:
    if signal_after:
        time.sleep(signal_after)
        p.send_signal(getattr(signal, signal_name))
        started = time.time()
    code = p.wait(timeout=20)
except subprocess.TimeoutExpired:
    p.kill()
    p.wait()
    code = None
fast = time.time() - started < 8
print(json.dumps({"code": code, "fast": fast, "stderr": p.stderr.read().decode() if p.stderr else ""}))
`;

/** Run `command` with `stalled` (stdout, stderr, or both) into a pipe nobody reads. */
export async function runIntoUnreadPipe(
  stalled: "stdout" | "stderr" | "both",
  command: string[],
  options: UnreadPipeOptions = {},
): Promise<UnreadPipeRun> {
  const { seconds, signal } = options.signalAfter ?? { seconds: 0, signal: "SIGTERM" };
  const args = [stalled, String(options.prefill ?? 0), String(seconds), signal];
  const child = Bun.spawn(["python3", "-c", SCRIPT, ...args, ...command], {
    stdout: "pipe",
    stderr: "inherit",
    env: { ...process.env, ...options.env },
  });
  let text = "";
  for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
    const before = text;
    text += chunk;
    const pid = /^pid (\d+)\n/.exec(text);
    if (pid && !/^pid (\d+)\n/.test(before)) options.started?.(Number(pid[1]));
  }
  await child.exited;
  return JSON.parse(text.replace(/^pid \d+\n/, ""));
}
