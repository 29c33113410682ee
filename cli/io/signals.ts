/**
 * The signals that end qmpctl from outside (SIGTERM, SIGHUP; SIGINT for
 * what waits), for the commands that handle them: one ignored at start
 * stays ignored (`nohup`, a script's background job), and dying of one
 * works as PID 1 too (lib/fatal_signals.ts). Loaded by those commands only:
 * a one-shot exec dies of them by their default action.
 *
 * @module
 */
import { dieOf, ignoredAtStart, rememberIgnoredAtStart } from "../../lib/fatal_signals.ts";
export { dieOf, standInAsPid1 } from "../../lib/fatal_signals.ts";
import type { CommandContext } from "../session.ts";
import { bun } from "../../lib/bun_api.ts";

/**
 * Whether SIGINT was set to be ignored when qmpctl started (a shell ignores
 * it for a script's background jobs), by /proc/self/status's SigIgn mask
 * (kept for the other signals' asks: lib/fatal_signals.ts); false where that
 * cannot be read. Asked before `onInterrupt`, which replaces the disposition.
 */
export async function sigintIgnoredAtStart(): Promise<boolean> {
  // Under Bun read on its thread pool, without loading node:fs (its cost at start-up); elsewhere, on the ask.
  if (bun) rememberIgnoredAtStart(await bun.file("/proc/self/status").text().catch(() => ""));
  return ignoredAtStart("SIGINT");
}

/** The signals that end a terminal session from outside: the window closed (SIGHUP), or a kill (SIGTERM). */
export type FatalSignal = "SIGHUP" | "SIGTERM";

/**
 * Call `handler` on SIGHUP and SIGTERM instead of dying, but for one ignored
 * when qmpctl started (`nohup`), which stays ignored, unless `evenIgnored`
 * (a terminal session: its terminal gone, it must end all the same); the
 * returned function removes it again.
 */
export function onFatalSignal(handler: (signal: FatalSignal) => void, evenIgnored = false): () => void {
  const signals = (["SIGTERM", "SIGHUP"] as const).filter((signal) => evenIgnored || !ignoredAtStart(signal));
  for (const signal of signals) process.on(signal, handler);
  return () => {
    for (const signal of signals) process.off(signal, handler);
  };
}

/**
 * Run `work` with a context whose signal also aborts on SIGTERM (what
 * timeout(1) and systemd send) and SIGHUP, for work that leaves something to
 * clean up (a temporary file, a guest's file handle): it ends as on SIGINT,
 * cleaning up, and then qmpctl dies of that signal, as it would have at once.
 */
export async function cleaningUpOnFatalSignal<T>(
  context: CommandContext,
  work: (context: CommandContext) => Promise<T>,
): Promise<T> {
  const fatal = new AbortController();
  let caught: FatalSignal | undefined;
  const release = onFatalSignal((signal) => {
    caught ??= signal;
    fatal.abort(new Error(signal));
  });
  try {
    return await work({ ...context, signal: AbortSignal.any([context.signal, fatal.signal]) });
  } finally {
    release();
    if (caught) dieOf(caught);
  }
}
