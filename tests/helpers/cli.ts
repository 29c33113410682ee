/** Run the qmpctl binary as a user would, and collect what they would see. */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

/** The binary under test: dist/qmpctl unless QMPCTL_BIN names another. */
export const QMPCTL = process.env.QMPCTL_BIN ?? resolve(import.meta.dir, "../../dist/qmpctl");

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
}

/** A qmpctl process still running: `child` to signal it, `result` when it has ended. */
export interface RunningCli {
  child: ReturnType<typeof Bun.spawn>;
  result: Promise<CliResult>;
}

let home: string | undefined;

/** A cache and state directory for this test file's runs, so tests never touch the user's ~/.cache or history. */
function isolatedHome(): string {
  if (!home) {
    const dir = mkdtempSync(join(tmpdir(), "qmpctl-home-"));
    process.on("exit", () => rmSync(dir, { recursive: true, force: true }));
    home = dir;
  }
  return home;
}

export function qmpctl(args: string[], options: CliOptions = {}): Promise<CliResult> {
  return startQmpctl(args, options).result;
}

/**
 * Let `running` get into its wait for `afterMs`, then press Ctrl-C (SIGINT):
 * its result, and how long it took to exit after the signal.
 */
export async function interrupt(running: RunningCli, afterMs = 1000): Promise<CliResult & { exitedAfterMs: number }> {
  await Bun.sleep(afterMs);
  const sent = performance.now();
  running.child.kill("SIGINT");
  const result = await running.result;
  return { ...result, exitedAfterMs: performance.now() - sent };
}

/** Start qmpctl without waiting for it, e.g. to send it SIGINT while it waits. */
export function startQmpctl(args: string[], options: CliOptions = {}): RunningCli {
  const env: Record<string, string> = {};
  const isolated = { XDG_CACHE_HOME: join(isolatedHome(), "cache"), XDG_STATE_HOME: join(isolatedHome(), "state") };
  for (const [k, v] of Object.entries({ ...process.env, QMPCTL_SOCKET: undefined, ...isolated, ...options.env })) {
    if (v !== undefined) env[k] = v;
  }
  const runAs = options.runAs === undefined
    ? []
    : ["setpriv", `--reuid=${options.runAs}`, `--regid=${options.runAs}`, "--clear-groups", "--"];
  const started = performance.now();
  const child = Bun.spawn([...runAs, QMPCTL, ...args], {
    stdin: options.holdStdin ? "pipe" : options.stdin === undefined ? "ignore" : new Blob([options.stdin]),
    stdout: "pipe",
    stderr: "pipe",
    env,
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
