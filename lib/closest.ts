/**
 * "Did you mean ...?": the known names closest to a mistyped one.
 *
 * @module
 */

/**
 * Up to `limit` names from `known` closest to `name`: the nearest of those
 * within an edit distance of a third of its length (at least 1), or that
 * contain it or are contained in it.
 *
 * @example
 * ```ts
 * import { closestNames } from "./closest.ts";
 * closestNames("query-stauts", ["query-status", "query-kvm", "stop"]); // ["query-status"]
 * ```
 */
export function closestNames(name: string, known: Iterable<string>, limit = 3): string[] {
  const wanted = name.toLowerCase();
  const bound = Math.max(1, Math.floor(wanted.length / 3));
  const scored: [number, string][] = [];
  for (const candidate of known) {
    const lower = candidate.toLowerCase();
    let score = editDistance(wanted, lower, bound);
    if (score > bound && wanted.length >= 3 && (lower.includes(wanted) || wanted.includes(lower))) score = bound;
    if (score <= bound) scored.push([score, candidate]);
  }
  scored.sort((a, b) => a[0] - b[0] || a[1].localeCompare(b[1]));
  return scored.filter(([score]) => score === scored[0][0]).slice(0, limit).map(([, candidate]) => candidate);
}

/**
 * A hint for an error message: ` (did you mean a or b?)`, or "" when nothing
 * is close; `shown` writes each name as the message needs it (a dotted key's whole path).
 */
export function didYouMean(name: string, known: Iterable<string>, shown = (name: string) => name): string {
  const names = closestNames(name, known).map(shown);
  if (names.length === 0) return "";
  return ` (did you mean ${names.slice(0, -1).join(", ")}${names.length > 1 ? " or " : ""}${names.at(-1)}?)`;
}

/** Levenshtein distance, with transpositions counted as one edit; stops early past `bound`. */
function editDistance(a: string, b: string, bound: number): number {
  if (Math.abs(a.length - b.length) > bound) return bound + 1;
  let before = new Array<number>(b.length + 1).fill(0);
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    let rowMin = i;
    for (let j = 1; j <= b.length; j++) {
      let d = Math.min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d = Math.min(d, before[j - 2] + 1);
      current.push(d);
      rowMin = Math.min(rowMin, d);
    }
    if (rowMin > bound) return bound + 1;
    [before, previous] = [previous, current];
  }
  return previous[b.length];
}
