/**
 * Progress of long work on stderr. For people, one line that is redrawn in
 * place (carriage return, then erase to the end of the line), cut to the
 * terminal's width, coloured on a terminal unless NO_COLOR is set (not in a
 * file that `--progress` draws it into), and erased at the end
 * so that only the final lines remain. For programs (`--progress-json`),
 * one JSON object per line on stderr; stdout stays as it is without it.
 * By default the line is drawn only when stderr is a terminal: nothing of it
 * reaches a log file, a pipe or cron's mail.
 *
 * @module
 */
import { escapeControls } from "./controls.ts";
import { boundedWrite, writeStderr } from "./io/output.ts";
import { env } from "./io/process.ts";
import { dumbTerminal, stderrColumns, stderrIsTerminal } from "./io/terminal.ts";
import { UsageError } from "./options.ts";
import { cleaningUpOnFatalSignal } from "./io/signals.ts";
import { type CommandContext, formatJson } from "./session.ts";

/** The options that choose the progress form (declared in cli/registry.ts). */
const PROGRESS_OPTIONS = ["progress", "no-progress", "progress-json"];

// JSON lines stderr has not taken yet beyond which samples are dropped (memory stays bounded).
const MAX_UNWRITTEN_JSON = 100;
/** How far back the rate looks: long enough to even out QEMU's steps, short enough to follow a change. */
const RATE_WINDOW_MS = 10_000;

/** How progress is shown. */
export type ProgressMode = "off" | "line" | "json";

/**
 * The mode the options ask for: the line on a terminal by default.
 * @throws {UsageError} for two of them at once
 */
export function progressMode(context: CommandContext): ProgressMode {
  const given = PROGRESS_OPTIONS.filter((name) => context.options.has(name)).map((name) => `--${name}`);
  if (given.length > 1) throw new UsageError(`${given.join(" and ")} exclude each other`);
  if (context.options.has("progress-json")) return "json";
  // The line is one target's: several would draw over one another.
  if (context.target || context.options.has("no-progress")) return "off";
  return context.options.has("progress") || stderrIsTerminal() ? "line" : "off";
}

/** One piece of work at one moment. */
export interface ProgressSample {
  /** For the line: `backup b0`, `migration`. */
  label: string;
  done: number;
  total: number;
  /** Bytes per second as the work reports it; else measured from the samples. */
  rate?: number;
  /** Seconds left when not (total - done) / rate: several jobs end when the last one does. */
  secondsLeft?: number;
  /** Short words for the end of the line (`pass 2`). */
  notes?: string[];
  /**
   * The work's state (`running`, `ready`): when it changes, the rate is measured over again, not across it
   * (a mirror turned ready copies only what the guest writes; the bulk copy's rate would fade for 10 s).
   */
  phase?: string;
  /** What the JSON line says besides the counters (`progress`, `id`, `status`, ...). */
  json: Record<string, unknown>;
  /** `done` and `total` for the JSON line, as QEMU wrote them (a uint64 beyond 2^53 kept as its digits). */
  exact?: { done: unknown; total: unknown };
  /**
   * QEMU tells no figures of this work (a destination's query-migrate has no RAM counters): the line
   * shows the label and notes, the JSON line `json` alone; `done` and `total` are not shown.
   */
  statusOnly?: boolean;
}

/**
 * Run `follow` with a reporter for `mode`. SIGTERM and SIGHUP (timeout(1),
 * systemd, a closed window) end the work as Ctrl-C does (a line drawn is
 * erased, the follow says what goes on), then qmpctl dies of the signal.
 */
export function withProgress<T>(
  context: CommandContext,
  mode: ProgressMode,
  follow: (context: CommandContext, progress: ProgressReporter) => Promise<T>,
): Promise<T> {
  const progress = new ProgressReporter(mode, context.target?.label);
  // In every mode: the follow says, on SIGTERM and SIGHUP as on Ctrl-C, that the work goes on in QEMU.
  return cleaningUpOnFatalSignal(context, (guarded) => follow(guarded, progress));
}

/** Draws samples in the chosen mode. */
export class ProgressReporter {
  readonly #mode: ProgressMode;
  /** The target's address, first in each JSON line when several run. */
  readonly #socket?: string;
  readonly #color: boolean;
  /** TERM=dumb: no escapes at all, blanks erase what was drawn. */
  readonly #dumb: boolean;
  /** Per job, the samples of the last RATE_WINDOW_MS (and the one just before, at its edge), and the rate last told. */
  readonly #measured = new Map<string, { points: { at: number; done: number }[]; rate?: number; phase?: string }>();
  #written: Promise<void> = Promise.resolve();
  /** Writes not yet taken by stderr (a reader may have stopped reading). */
  #unwritten = 0;
  /** A finish gave up waiting for stderr (past the bound): later ones do not wait again. */
  #gaveUp = false;
  #drawn = false;

  constructor(mode: ProgressMode, socket?: string) {
    this.#mode = mode;
    this.#socket = socket;
    this.#dumb = dumbTerminal();
    this.#color = mode === "line" && stderrIsTerminal() && (env("NO_COLOR") ?? "") === "" && !this.#dumb;
  }

  /** Whether progress is shown at all (else the samples need not be made). */
  get shown(): boolean {
    return this.#mode !== "off";
  }

  /** Show the work now under way (one sample per job). */
  update(samples: ProgressSample[]): void {
    if (this.#mode === "off" || samples.length === 0) return;
    // While stderr does not take them, the line is not redrawn, and JSON lines stop queueing at a bound.
    if (this.#unwritten >= (this.#mode === "line" ? 1 : MAX_UNWRITTEN_JSON)) return;
    // A rate given (0: paused) is the job's own; measuring starts over after it, not across the pause.
    for (const s of samples) if (s.rate !== undefined) this.#measured.delete(s.label);
    const measured = samples.map((s) => s.statusOnly ? s : { ...s, rate: s.rate ?? this.#measure(s) });
    if (this.#mode === "json") {
      const socket = this.#socket === undefined ? {} : { socket: this.#socket };
      this.#write(measured.map((s) => formatJson({ ...socket, ...progressJson(s) }, false)).join(""));
      return;
    }
    const one = measured.length === 1 ? measured[0] : combine(measured);
    const width = this.#width();
    const line = progressLine(one, width, this.#color);
    this.#write(this.#dumb ? `\r${line.padEnd(width)}` : `\r${line}\x1b[K`);
    this.#drawn = true;
  }

  /**
   * Erase the line (if drawn); resolves once stderr has taken everything, so
   * later lines come after, or a moment after `signal` aborted (--timeout,
   * SIGINT, SIGTERM) while it has not: a reader that stopped reading does not
   * hold the run past its bound.
   */
  finish(signal: AbortSignal): Promise<void> {
    if (this.#drawn) this.#write(this.#dumb ? `\r${" ".repeat(this.#width())}\r` : "\r\x1b[K");
    this.#drawn = false;
    if (this.#gaveUp) return Promise.resolve(); // its grace is had once, not once a job
    return boundedWrite(this.#written, signal, "stderr").catch(() => {
      this.#gaveUp = true;
    });
  }

  /**
   * The line's width: room for the cursor and for the ^C a terminal echoes on
   * Ctrl-C (a line that filled the row would wrap with it, and the erase at
   * the end would take only the second row).
   */
  #width(): number {
    return Math.max(0, stderrColumns() - 3);
  }

  #write(text: string): void {
    this.#unwritten++;
    this.#written = this.#written.then(() => writeStderr(text)).catch(() => {}).finally(() => this.#unwritten--);
  }

  /**
   * Bytes per second over the last RATE_WINDOW_MS. QEMU counts some work in
   * steps (a backup at 1 MiB/s moves 1 MiB once a second): a rate from the
   * last polls alone swung 2x on a steady job, and the time left with it.
   */
  #measure(sample: ProgressSample): number | undefined {
    const now = performance.now();
    const known = this.#measured.get(sample.label);
    const measured = known && known.phase === sample.phase ? known : { points: [], phase: sample.phase };
    this.#measured.set(sample.label, measured);
    const { points } = measured;
    // A migration's done count falls when QEMU sends pages dirtied again: the window starts over there,
    // showing the last rate meanwhile.
    if (points.length > 0 && sample.done < points[points.length - 1].done) points.length = 0;
    while (points.length > 1 && now - points[1].at >= RATE_WINDOW_MS) points.shift();
    points.push({ at: now, done: sample.done });
    const seconds = (now - points[0].at) / 1000;
    if (seconds >= 0.05) measured.rate = Math.max(0, (sample.done - points[0].done) / seconds);
    return measured.rate;
  }
}

/** Several jobs as one line: their sums, and the time left of the last to end. */
export function combine(samples: ProgressSample[]): ProgressSample {
  const sum = (f: (s: ProgressSample) => number) => samples.reduce((n, s) => n + f(s), 0);
  const rates = samples.map((s) => s.rate);
  const lefts = samples.map(secondsLeft);
  return {
    label: `${samples.length} jobs`,
    done: sum((s) => s.done),
    total: sum((s) => s.total),
    rate: rates.every((r) => r !== undefined) ? sum((s) => s.rate!) : undefined,
    secondsLeft: lefts.every((l) => l !== undefined) ? Math.max(...lefts as number[]) : undefined,
    json: {},
  };
}

function percentOf({ done, total }: ProgressSample): number {
  return total > 0 ? Math.min(100, (100 * done) / total) : 0;
}

function secondsLeft(sample: ProgressSample): number | undefined {
  if (sample.secondsLeft !== undefined) return sample.secondsLeft;
  if (!sample.rate || sample.rate <= 0) return undefined;
  return Math.max(0, sample.total - sample.done) / sample.rate;
}

/** The JSON form of a sample: its own members, then the counters. */
export function progressJson(sample: ProgressSample): Record<string, unknown> {
  if (sample.statusOnly) return sample.json;
  const left = secondsLeft(sample);
  return {
    ...sample.json,
    done: sample.exact?.done ?? sample.done,
    total: sample.exact?.total ?? sample.total,
    percent: Math.floor(percentOf(sample) * 10) / 10,
    ...(sample.rate === undefined ? {} : { "bytes-per-second": Math.round(sample.rate) }),
    ...(left === undefined ? {} : { "seconds-left": Math.ceil(left) }),
  };
}

/**
 * The line for a sample, at most `width` characters wide: parts that do not
 * fit are left out from the end (notes, time left, rate, amounts), and the
 * bar only when none of them is left; then the label is cut (ending in `…`),
 * so that the percentage stays. Without figures, the label and notes.
 * The label and notes hold QEMU's words (a job's id and type, a status):
 * their control characters are escaped, as on every stderr line.
 */
export function progressLine(sample: ProgressSample, width: number, color: boolean): string {
  if (sample.statusOnly) {
    return [sample.label, ...sample.notes ?? []].map(escapeControls).join("  ").slice(0, Math.max(0, width));
  }
  const percent = percentOf(sample);
  const left = secondsLeft(sample);
  const label = escapeControls(sample.label), percentText = `${percent.toFixed(0).padStart(3)}%`;
  const head = `${label} ${percentText}`;
  const amounts = `${formatBytes(sample.done)}/${formatBytes(sample.total)}`;
  const rate = sample.rate === undefined ? undefined : `${formatBytes(sample.rate)}/s`;
  const eta = left === undefined ? undefined : `${formatSeconds(left)} left`;
  const notes = (sample.notes ?? []).map(escapeControls);
  const optional = [amounts, rate, eta, ...notes].filter((p): p is string => p !== undefined);
  // Drop from the end until head + parts + a bar of at least 10 cells fit; then the bar too.
  for (let keep = optional.length; keep >= 0; keep--) {
    const text = [head, ...optional.slice(0, keep)].join("  ");
    const room = width - text.length - 3;
    if (room >= 10) return `${bar(percent, Math.min(room, 20), color)} ${text}`;
  }
  if (head.length <= width) return head;
  const labelRoom = width - percentText.length - 2; // the cut label, its `…` and a blank
  return labelRoom > 0
    ? `${label.slice(0, labelRoom)}… ${percentText}`
    : percentText.trim().slice(0, Math.max(0, width));
}

function bar(percent: number, cells: number, color: boolean): string {
  const filled = Math.round((percent / 100) * cells);
  const done = "#".repeat(filled), rest = "-".repeat(cells - filled);
  return color && filled > 0 ? `[\x1b[32m${done}\x1b[0m${rest}]` : `[${done}${rest}]`;
}

/** Bytes as people read them: 512 B, 1.5 KiB, 256.0 MiB, 1.0 GiB. */
export function formatBytes(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
  let value = bytes, unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${Math.round(value)} B` : `${value.toFixed(1)} ${units[unit]}`;
}

/** Seconds as people read them: 42s, 3m05s, 1h02m. */
export function formatSeconds(seconds: number): string {
  const s = Math.ceil(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}
