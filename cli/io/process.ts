/**
 * The process: its environment and command line, signals (SIGINT, the fatal
 * ones, job control), watches on its parent, a child with the caller's own
 * stdio, and the JIT policy. `process` is a global in Bun, Deno 2 and Node.
 *
 * @module
 */
import { bun } from "./runtime.ts";

/** An environment variable. */
export function env(name: string): string | undefined {
  return process.env[name];
}

/** The command-line words after the program name. */
export function argv(): string[] {
  return process.argv.slice(2);
}

/**
 * The last `count` command-line words as the bytes the caller passed;
 * "not granted" where the runtime will not let us read them (Deno without
 * --allow-all), undefined where they cannot be had otherwise. The runtime
 * has already decoded argv, replacing bytes that are not UTF-8 by U+FFFD;
 * Linux keeps the bytes in /proc/self/cmdline (words ended by NUL).
 */
export async function argvBytes(count: number): Promise<Uint8Array[] | "not granted" | undefined> {
  const words = await procWords("/proc/self/cmdline");
  if (words === "not granted") return words;
  return words && words.length >= count ? words.slice(words.length - count) : undefined;
}

/**
 * The value of environment variable `name` as the bytes the caller passed;
 * "not granted" or undefined where they cannot be had, as for argvBytes
 * (Linux's /proc/self/environ; Bun has replaced bytes that are not UTF-8 by
 * U+FFFD, Deno throws InvalidData).
 */
export async function envBytes(name: string): Promise<Uint8Array | "not granted" | undefined> {
  const prefix = new TextEncoder().encode(`${name}=`);
  const words = await procWords("/proc/self/environ");
  if (words === "not granted") return words;
  return words?.find((word) => prefix.every((byte, i) => word[i] === byte))?.subarray(prefix.length);
}

/**
 * The NUL-ended words of a /proc file; "not granted" when Deno's
 * permissions refuse it (its NotCapable: /proc needs --allow-all), undefined
 * when it cannot be read otherwise (no /proc: macOS).
 */
async function procWords(path: string): Promise<Uint8Array[] | "not granted" | undefined> {
  let bytes: Uint8Array;
  try {
    bytes = bun ? await bun.file(path).bytes() : new Uint8Array((await import("node:fs")).readFileSync(path));
  } catch (error) {
    return (error as Error)?.name === "NotCapable" ? "not granted" : undefined;
  }
  const words: Uint8Array[] = [];
  let start = 0;
  for (let i = 0; i < bytes.length; i++) {
    if (bytes[i] === 0) {
      words.push(bytes.subarray(start, i));
      start = i + 1;
    }
  }
  return words;
}

/** How many /proc/PID/cmdline files commandLineNamed reads at once. */
const CMDLINE_BATCH = 64;

/**
 * How long after finding no process that names a text commandLineNamed looks
 * again: a process in execve(2) (a wrapper's child becoming QEMU) has an
 * empty command line for that instant (~1 ms here, more on a loaded machine).
 */
const EXEC_INSTANT_MS = 50;

/**
 * Whether a living process has `text` in its command line (Linux's
 * /proc/PID/cmdline, one read of each, CMDLINE_BATCH at a time), on one look
 * or, when none has, on a second EXEC_INSTANT_MS later: undefined where there
 * is no /proc to ask (macOS) or Deno's permissions refuse it. A process gone
 * while read is passed over; a zombie's command line reads empty, so one
 * names nothing.
 */
export async function commandLineNamed(text: string): Promise<boolean | undefined> {
  const { readdir, readFile } = await import("node:fs/promises"); // not on the one-shot path
  const needle = new TextEncoder().encode(text);
  const names = (pid: string) => readFile(`/proc/${pid}/cmdline`).then((line) => line.includes(needle), () => false);
  const look = async () => {
    const pids = await readdir("/proc").then((names) => names.filter((name) => /^\d+$/.test(name)), () => undefined);
    if (!pids) return undefined;
    for (let i = 0; i < pids.length; i += CMDLINE_BATCH) {
      if ((await Promise.all(pids.slice(i, i + CMDLINE_BATCH).map(names))).includes(true)) return true;
    }
    return false;
  };
  const first = await look();
  if (first !== false) return first;
  await new Promise((resolve) => setTimeout(resolve, EXEC_INSTANT_MS));
  return await look();
}

// Whether a SIGINT came (a Ctrl-C): an exit 130 is then death by that signal (output.ts `exit`).
let sigintCame = false;

/** Whether a SIGINT came since `onInterrupt` was set. */
export function interruptedBySigint(): boolean {
  return sigintCame;
}

/** Call `handler` on SIGINT (instead of dying). */
export function onInterrupt(handler: () => void): void {
  process.on("SIGINT", () => {
    sigintCame = true;
    handler();
  });
}

/**
 * A signal aborted once this process's parent is gone (it was given another,
 * as an orphan), looked at every second: for a process its runner may be
 * killed under without the signal passed on, and that would otherwise go on
 * waiting, holding a monitor no one else can open.
 */
export function parentGoneSignal(): AbortSignal {
  const parent = process.ppid;
  return watchedSignal(() =>
    process.ppid === parent ? undefined : new Error(`the process that ran qmpctl (pid ${parent}) is gone`)
  );
}

/**
 * A signal aborted with the reason `check` gives the first time it gives
 * one, asked every second (a timer that never keeps the process alive).
 */
export function watchedSignal(check: () => Error | undefined): AbortSignal {
  const controller = new AbortController();
  const timer = setInterval(() => {
    const reason = check();
    if (reason === undefined) return;
    clearInterval(timer);
    controller.abort(reason);
  }, 1000);
  timer.unref();
  return controller.signal;
}

/** Whether qmpctl is PID 1 (a container's first process): the kernel takes no default action on its signals. */
export function isPid1(): boolean {
  return process.pid === 1;
}

/** Call `handler` on SIGTSTP (`kill -TSTP`; Ctrl-Z is a key in raw mode); the returned function removes it. */
export function onStopSignal(handler: () => void): () => void {
  process.on("SIGTSTP", handler);
  return () => process.off("SIGTSTP", handler);
}

/**
 * Stop as Ctrl-Z stops a program: SIGTSTP with its default action, sent to
 * our whole process group, as the terminal would (a `bash -c` wrapping
 * qmpctl stops too, so the shell that started the job gets the terminal
 * back); `handler`, ours for it, is set aside meanwhile. Returns once
 * continued (`fg`), or at once where the kernel ignores it: in a process
 * group no job-control shell started (`ssh -t host qmpctl shell`), which
 * nothing would ever continue (SIGSTOP would stop it for good there).
 */
export function stopSelf(handler: () => void): void {
  process.off("SIGTSTP", handler);
  try {
    process.kill(0, "SIGTSTP"); // 0: our process group
  } finally {
    process.on("SIGTSTP", handler);
  }
}

/** A child process whose stdio is the caller's own. */
export interface PassthroughChild {
  /** Its exit status; 128 + the signal's number when a signal ended it, as a shell reports it. */
  exited: Promise<number>;
  /** How it ended, in words: "exited with status 1", "was killed by SIGSEGV". */
  ended: Promise<string>;
  kill(signal: "SIGTERM" | "SIGINT" | "SIGKILL"): void;
}

/** The part of Deno's API that spawnPassthrough calls (typed here: Bun's type-check has no Deno types). */
interface DenoCommands {
  Command: new (
    program: string,
    options: { args: string[]; stdin: "inherit"; stdout: "inherit"; stderr: "inherit" },
  ) => {
    spawn(): { status: Promise<{ code: number; signal: string | null }>; kill(signal: string): void };
  };
}

const deno = (globalThis as { Deno?: DenoCommands }).Deno;

/**
 * Start `command` with stdin, stdout and stderr passed through; a file that
 * is no program (ENOEXEC) with /bin/sh, as env(1) runs it.
 * @throws when the program cannot be started (not found, not executable)
 */
export async function spawnPassthrough(command: string[]): Promise<PassthroughChild> {
  // This platform's numbers (a QEMU that crashes: SIGSEGV is 11 on Linux; SIGBUS 7 there, 10 on macOS).
  const { signals } = (await import("node:os")).constants as { signals: Record<string, number> };
  const statusOf = (ending: Ending) => ending.signal ? 128 + (signals[ending.signal] ?? 0) : ending.code ?? 0;
  const words = (ending: Ending) =>
    ending.signal ? `was killed by ${ending.signal}` : `exited with status ${ending.code}`;
  const child = await spawnWithStdio(command).catch((error) => {
    if ((error as { code?: string }).code !== "ENOEXEC") throw error;
    // A file the kernel does not take for a program (a script without #!): run by the shell, as execvp(3),
    // so env(1), runs it. The shell's exec finds it as the spawn did (PATH) and, as POSIX asks of a shell,
    // reads it as a script on ENOEXEC.
    return spawnWithStdio(["/bin/sh", "-c", 'exec "$0" "$@"', ...command]);
  });
  const ended = child.ending.then(words);
  ended.catch(() => {}); // awaited on some paths only: a failure is the caller's through `exited`
  return { exited: child.ending.then(statusOf), ended, kill: child.kill };
}

/**
 * The #! interpreter of `program` when that program is a script found (a path, or in PATH as a spawn
 * searches it): a spawn's ENOENT then means its interpreter is missing, not the script. Undefined otherwise.
 */
export async function scriptInterpreter(program: string): Promise<string | undefined> {
  const { open } = await import("node:fs/promises");
  // As execvp(3) searches: each PATH entry (empty: the current directory; PATH unset: the default path) for an
  // executable regular file, skipping any other file of that name.
  const path = env("PATH") ?? "/usr/local/bin:/bin:/usr/bin";
  const dirs = program.includes("/") ? [""] : path.split(":").map((dir) => `${dir || "."}/`);
  for (const dir of dirs) {
    const file = await open(`${dir}${program}`).catch(() => undefined);
    if (!file) continue;
    try {
      const stat = await file.stat();
      if (!stat.isFile() || (stat.mode & 0o111) === 0) continue;
      const { buffer, bytesRead } = await file.read({ buffer: new Uint8Array(256), position: 0 });
      const line = new TextDecoder().decode(buffer.subarray(0, bytesRead)).split("\n")[0];
      return /^#!\s*(\S+)/.exec(line)?.[1];
    } catch {
      continue; // unreadable: the next one of that name
    } finally {
      await file.close();
    }
  }
  return undefined;
}

/** How a child ended: its exit code, or the signal that killed it. */
type Ending = { code: number | null; signal?: string | null };

/** `command` started with the caller's stdio, under the runtime there is; how it ended once it has. */
async function spawnWithStdio(command: string[]): Promise<{
  ending: Promise<Ending>;
  kill: (signal: "SIGTERM" | "SIGINT" | "SIGKILL") => void;
}> {
  if (bun) {
    (await import("../../lib/transport_process.ts")).makeChildrenWaitable(); // not on the one-shot path
    const child = bun.spawn(command, { stdin: "inherit", stdout: "inherit", stderr: "inherit" });
    return {
      ending: child.exited.then((code) => ({
        code,
        signal: child.signalCode === null ? null : String(child.signalCode),
      })),
      kill: (signal) => child.kill(signal),
    };
  }
  if (deno) { // Deno's node:child_process says a child it sent SIGTERM was ended by it, though it exited 0 on it
    const child = new deno.Command(command[0], {
      args: command.slice(1),
      stdin: "inherit",
      stdout: "inherit",
      stderr: "inherit",
    }).spawn(); // throws NotFound (code ENOENT), PermissionDenied (EACCES), NotCapable
    return {
      ending: child.status,
      kill: (signal) => {
        try {
          child.kill(signal);
        } catch { // it has exited (Deno throws where Bun and Node do nothing): nothing to signal
        }
      },
    };
  }
  const { spawn } = await import("node:child_process");
  const child = spawn(command[0], command.slice(1), { stdio: "inherit" });
  await new Promise<void>((resolve, reject) => {
    child.once("spawn", resolve);
    child.once("error", reject);
  });
  return {
    ending: new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal }))),
    kill: (signal) => void child.kill(signal),
  };
}

/**
 * The normal JIT policy again, for a loop that runs long (an event stream):
 * the binary starts with tier-up delayed (scripts/build.sh), which suits
 * run-once start-up code. Elsewhere nothing to do.
 */
export function normalJit(): void {
  bun?.unsafe.setJITPolicy?.(1);
}
