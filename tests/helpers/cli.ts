/** Run the qmpctl binary as a user would, and collect what they would see. */
import { readdirSync, statSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { catchesSigint, firstChildOf, hasConnectedUnixSocket, waitUntil } from "./process_state.ts";
import { scratchDir } from "./scratch.ts";

/** The binary under test: dist/qmpctl unless QMPCTL_BIN names another. */
export const QMPCTL = process.env.QMPCTL_BIN ?? resolve(import.meta.dir, "../../dist/qmpctl");

if (!process.env.QMPCTL_BIN) ensureFreshBinary();

/**
 * Rebuild dist/qmpctl when any source it is built from is newer (or it is
 * missing), so running one test file after an edit never tests a stale binary.
 */
function ensureFreshBinary(): void {
  const root = resolve(import.meta.dir, "../..");
  const built = statSync(QMPCTL, { throwIfNoEntry: false })?.mtimeMs ?? 0;
  const sources = ["cli.ts", "package.json", "cli", "lib"].flatMap((entry) => {
    const path = join(root, entry);
    if (!statSync(path).isDirectory()) return [path];
    return readdirSync(path, { recursive: true, encoding: "utf8" }).map((file) => join(path, file));
  });
  const newer = sources.find((file) => statSync(file).mtimeMs > built);
  if (newer === undefined) return;
  console.error(`tests: ${relative(root, newer)} is newer than dist/qmpctl: rebuilding it`);
  const build = Bun.spawnSync([join(root, "scripts/build.sh")], { stdout: "inherit", stderr: "inherit" });
  if (build.exitCode !== 0) throw new Error(`scripts/build.sh failed (${build.exitCode}): not testing a stale binary`);
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
  /** The signal that killed the process (e.g. "SIGKILL"), or null when it exited by itself. */
  signal: ReturnType<typeof Bun.spawn>["signalCode"];
  /** Wall time of the whole process in ms. */
  ms: number;
}

export interface CliOptions {
  stdin?: string | Uint8Array<ArrayBuffer>;
  /** Give the process a stdin pipe that stays open (for `startQmpctl`; `child.stdin` writes to it). */
  holdStdin?: boolean;
  env?: Record<string, string | undefined>;
  /** Kill the process after this long (a test safety net, not the behaviour under test). */
  killAfterMs?: number;
  /** Called with each piece of stderr as it arrives (to wait for a line while the process runs). */
  onStderr?: (text: string) => void;
  /** Run as this uid (and gid), through setpriv: for permission errors, since tests run as root. */
  runAs?: number;
  /**
   * Run with this real uid, the effective uid (root's) kept, through setpriv
   * --ruid: as a setuid program runs, whose files are its effective uid's.
   */
  realUid?: number;
  /** The working directory (default: the test runner's). */
  cwd?: string;
  /**
   * Started by a parent that ignores these signals (SIGCHLD: some daemons and
   * container entrypoints; SIGHUP: nohup): the ignoring is passed on through
   * exec, as to any program.
   */
  ignoring?: ("SIGCHLD" | "SIGHUP" | "SIGTERM")[];
  /** Run with this umask (octal digits, "277"), set by sh just before qmpctl starts. */
  umask?: string;
  /**
   * Run as PID 1 of a new PID namespace (`unshare --pid --fork`), as a
   * container's first process: `child` is then unshare, qmpctl its child.
   */
  asPid1?: boolean;
}

/** A parent that ignores `signals`, then runs the rest of its argv; Python's own ignored SIGPIPE and SIGXFSZ set back. */
function ignoringParent(signals: string[]): string[] {
  const ignore = signals.map((signal) => `s.signal(s.${signal}, s.SIG_IGN); `).join("");
  return [
    "python3",
    "-c",
    `import os, signal as s, sys; s.signal(s.SIGPIPE, s.SIG_DFL); s.signal(s.SIGXFSZ, s.SIG_DFL); ${ignore}` +
    "os.execvp(sys.argv[1], sys.argv[1:])",
  ];
}

/** A qmpctl process still running: `child` to signal it, `result` when it has ended. */
export interface RunningCli {
  child: ReturnType<typeof Bun.spawn>;
  result: Promise<CliResult>;
}

let home: string | undefined;

/** A cache and state directory for the qmpctl runs of this test process, so tests never touch the user's ~/.cache or history. */
function isolatedHome(): string {
  return home ??= scratchDir("qmpctl-home-");
}

export function qmpctl(args: string[], options: CliOptions = {}): Promise<CliResult> {
  return startQmpctl(args, options).result;
}

/**
 * Press Ctrl-C (SIGINT) once `running` handles it (its handler is installed:
 * every wait from then on, or already begun, ends with exit 130) and, when
 * given, `ready` has resolved (the test's sign that it is in the wait):
 * its result, and how long it took to exit after the signal.
 */
export async function interrupt(
  running: RunningCli,
  ready?: Promise<unknown>,
): Promise<CliResult & { exitedAfterMs: number }> {
  await waitUntil(() => catchesSigint(running.child.pid), "qmpctl handles SIGINT");
  await ready;
  const sent = performance.now();
  running.child.kill("SIGINT");
  const result = await running.result;
  return { ...result, exitedAfterMs: performance.now() - sent };
}

/**
 * Run `script` with sh, the binary as its `$0` and `args` as `$1`...: for a pipeline around qmpctl (a slow
 * producer, `yes |`). Its exit status, stdout and stderr.
 */
export async function qmpctlInShell(
  script: string,
  ...args: string[]
): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = Bun.spawn(["sh", "-c", script, QMPCTL, ...args], { stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, code] = await Promise.all([
    new Response(child.stdout).text(),
    new Response(child.stderr).text(),
    child.exited,
  ]);
  return { code, stdout, stderr };
}

/** Start qmpctl without waiting for it, e.g. to send it SIGINT while it waits. */
export function startQmpctl(args: string[], options: CliOptions = {}): RunningCli {
  const env: Record<string, string> = {};
  const isolated = { XDG_CACHE_HOME: join(isolatedHome(), "cache"), XDG_STATE_HOME: join(isolatedHome(), "state") };
  for (const [k, v] of Object.entries({ ...process.env, QMPCTL_SOCKET: undefined, ...isolated, ...options.env })) {
    if (v !== undefined) env[k] = v;
  }
  const runAs = options.runAs !== undefined
    ? ["setpriv", `--reuid=${options.runAs}`, `--regid=${options.runAs}`, "--clear-groups", "--"]
    : options.realUid !== undefined
    ? ["setpriv", `--ruid=${options.realUid}`, "--"]
    : [];
  const started = performance.now();
  const parent = [
    ...options.asPid1 ? ["unshare", "--pid", "--fork", "--mount-proc"] : [],
    ...options.ignoring ? ignoringParent(options.ignoring) : [],
  ];
  const umask = options.umask !== undefined ? ["sh", "-c", `umask ${options.umask} && exec "$@"`, "sh"] : [];
  const child = Bun.spawn([...parent, ...runAs, ...umask, QMPCTL, ...args], {
    stdin: options.holdStdin ? "pipe" : options.stdin === undefined ? "ignore" : new Blob([options.stdin]),
    stdout: "pipe",
    stderr: "pipe",
    env,
    cwd: options.cwd,
  });
  const killer = setTimeout(() => child.kill("SIGKILL"), options.killAfterMs ?? 20_000);
  const result = Promise.all([
    new Response(child.stdout).text(),
    options.onStderr
      ? readText(child.stderr as ReadableStream<Uint8Array>, options.onStderr)
      : new Response(child.stderr).text(),
    child.exited,
  ]).then(([stdout, stderr, code]) => {
    clearTimeout(killer);
    return { code, stdout, stderr, signal: child.signalCode, ms: performance.now() - started };
  });
  return { child, result };
}

/** All of `stream` as text, calling `each` with every piece as it arrives. */
async function readText(stream: ReadableStream<Uint8Array>, each: (text: string) => void): Promise<string> {
  const decoder = new TextDecoder();
  let text = "";
  for await (const chunk of stream) {
    const piece = decoder.decode(chunk, { stream: true });
    text += piece;
    each(piece);
  }
  return text;
}

/** The pid of a qmpctl started `asPid1` (unshare's child), once it is connected to its peer. */
export async function connectedPid1(running: RunningCli): Promise<number> {
  let pid = 0;
  await waitUntil(
    () => (pid = firstChildOf(running.child.pid)) > 0 && hasConnectedUnixSocket(pid),
    "qmpctl, PID 1 of its namespace, connected",
  );
  return pid;
}

let pidNamespaces: boolean | undefined;

/** Whether this machine lets the tests make a PID namespace (`asPid1`): root with CAP_SYS_ADMIN, not in a plain container. */
export function unsharesPid(): boolean {
  pidNamespaces ??= Bun.spawnSync(["unshare", "--pid", "--fork", "--mount-proc", "true"]).exitCode === 0;
  if (!pidNamespaces) console.warn("tests: unshare --pid is not allowed here: the PID-1 tests are skipped");
  return pidNamespaces;
}
