/** Run the qmpctl binary as a user would, and collect what they would see. */
import { resolve } from "node:path";

/** The binary under test: dist/qmpctl unless QMPCTL_BIN names another. */
export const QMPCTL = process.env.QMPCTL_BIN ?? resolve(import.meta.dir, "../../dist/qmpctl");

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
  /** Wall time of the whole process in ms. */
  ms: number;
}

export interface CliOptions {
  stdin?: string | Uint8Array<ArrayBuffer>;
  env?: Record<string, string | undefined>;
  /** Kill the process after this long (a test safety net, not the behaviour under test). */
  killAfterMs?: number;
}

export async function qmpctl(args: string[], options: CliOptions = {}): Promise<CliResult> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries({ ...process.env, QMPCTL_SOCKET: undefined, ...options.env })) {
    if (v !== undefined) env[k] = v;
  }
  const started = performance.now();
  const child = Bun.spawn([QMPCTL, ...args], {
    stdin: options.stdin === undefined ? "ignore" : new Blob([options.stdin]),
    stdout: "pipe",
    stderr: "pipe",
    env,
  });
  const killer = setTimeout(() => child.kill("SIGKILL"), options.killAfterMs ?? 20_000);
  const [stdout, stderr, code] = await Promise.all([
    new Response(child.stdout).text(),
    new Response(child.stderr).text(),
    child.exited,
  ]);
  clearTimeout(killer);
  return { code, stdout, stderr, ms: performance.now() - started };
}
