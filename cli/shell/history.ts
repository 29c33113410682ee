/**
 * Shell history kept across sessions: one file per monitor kind under
 * `$XDG_STATE_HOME/qmpctl/` (default `~/.local/state/qmpctl/`), the last
 * 1000 lines, created 0600 in a 0700 directory (a line may hold a password).
 * Each line is appended as it is entered, so two shells at once lose
 * nothing; the file is cut back to its last 1000 lines when a shell starts.
 *
 * @module
 */
import { env, readTextFile, renameFile, writeStderrLine, writeTextFile } from "../io.ts";

/** Lines kept. */
export const HISTORY_SIZE = 1000;

/** The history file of `kind`. */
export function historyPath(kind: "qmp" | "hmp"): string | undefined {
  const home = env("HOME");
  // The XDG Base Directory spec: a relative path is invalid and must be ignored
  // (else history would land wherever the shell was started).
  const xdg = env("XDG_STATE_HOME");
  const state = xdg?.startsWith("/") ? xdg : home ? `${home}/.local/state` : undefined;
  return state ? `${state}/qmpctl/${kind}_history` : undefined;
}

export class History {
  /** Oldest first. */
  readonly lines: string[];
  readonly #path?: string;
  #warned = false;

  private constructor(lines: string[], path?: string) {
    this.lines = lines;
    this.#path = path;
  }

  /** Read the history of `kind` (none yet, or unreadable: empty). */
  static async load(kind: "qmp" | "hmp"): Promise<History> {
    const path = historyPath(kind);
    if (!path) return new History([]);
    let lines: string[] = [];
    try {
      lines = (await readTextFile(path)).split("\n").filter((line) => line !== "");
    } catch {
      return new History([], path);
    }
    const history = new History(lines.slice(-HISTORY_SIZE), path);
    if (lines.length > HISTORY_SIZE) {
      const temporary = `${path}.${crypto.randomUUID()}.tmp`;
      await writeTextFile(temporary, history.lines.join("\n") + "\n", { mode: 0o600 })
        .then(() => renameFile(temporary, path))
        .catch((error) => history.#warn(error));
    }
    return history;
  }

  /**
   * Remember a line: not a blank one, not the same as the last, and not one
   * typed with a leading space (as in bash, a way to keep a secret out).
   */
  async add(typed: string): Promise<void> {
    const line = typed.trimEnd();
    if (line === "" || line.startsWith(" ") || line === this.lines.at(-1)) return;
    this.lines.push(line);
    if (this.lines.length > HISTORY_SIZE) this.lines.shift();
    if (!this.#path) return;
    try {
      await writeTextFile(this.#path, line + "\n", { mode: 0o600, append: true });
    } catch (error) {
      this.#warn(error);
    }
  }

  #warn(error: unknown): void {
    if (this.#warned) return;
    this.#warned = true;
    writeStderrLine(`qmpctl: cannot save shell history in ${this.#path}: ${(error as Error).message}`);
  }
}
