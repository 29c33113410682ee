/** Durations on the command line: `500ms`, `30s`, `2m`, `1h`, `1d`, or a bare number of seconds. @module */
import { UsageError } from "./options.ts";

export { formatDuration } from "../lib/duration.ts";

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * Milliseconds in `text`; 0 means "no bound", as for timeout(1), and so
 * does `inf` or `infinity`, which timeout(1) takes too (as it takes 1e3).
 * @throws {UsageError} naming the option when `text` is not a duration
 */
export function parseDuration(text: string, option: string): number {
  const trimmed = text.trim();
  const lower = trimmed.toLowerCase();
  if (lower === "inf" || lower === "infinity") return 0;
  const match = /^((?:\d+(?:\.\d+)?|\.\d+)(?:[eE][+-]?\d+)?)(ms|s|m|h|d)?$/.exec(trimmed);
  if (!match) {
    throw new UsageError(
      `${option} '${text}' is not a duration (like 500ms, 30s, 2m, 1d or a number of seconds; 0 or inf: no bound)`,
    );
  }
  const ms = Number(match[1]) * UNIT_MS[match[2] ?? "s"];
  // A timer holds 2^31-1 ms (596h 31m 23.647s): whole hours, as said; 0 is the way to wait without a bound.
  if (!Number.isFinite(ms) || ms > 596 * UNIT_MS.h) {
    throw new UsageError(`${option} '${text}' is too long (at most 596h; 0 or inf: no bound)`);
  }
  return ms > 0 ? Math.max(1, Math.round(ms)) : 0; // 0.1ms is a bound, not "no bound"
}
