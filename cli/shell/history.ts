/**
 * Shell history kept across sessions: one file per monitor kind under
 * `$XDG_STATE_HOME/qmpctl/` (default `~/.local/state/qmpctl/`), the last
 * 1000 lines, created 0600 in a 0700 directory (a line may hold a password).
 * Each line is appended as it is entered, so two shells at once lose
 * nothing; a shell that starts and finds the file over 2000 lines cuts it
 * back to its last 1000 (a rewrite: a line another shell appends in that
 * moment is lost, so it is done once per 1000 lines, not at every start).
 *
 * The path comes from the environment, which root may have taken from
 * another user (`sudo -E`, `su -m`): so the directory must be this user's,
 * not reached through a symlink nor created in another user's tree, and the
 * file a regular file of this user's, or a link of this user's to one on a
 * path no one else can change that no one else may read or write (never
 * chmod-ed: cli/private_dir.ts), and only the file's last
 * MAX_HISTORY_BYTES are read. When a check (or a write) fails, history is
 * off for the rest of the session, said once on stderr.
 *
 * @module
 */
import { writeStderrLine } from "../io/output.ts";
import { baseDir } from "../../lib/private_dir.ts";
import { env } from "../io/process.ts";
import { openPrivateDir, type PrivateDir } from "../private_dir.ts";

/** Lines kept. */
const HISTORY_SIZE = 1000;
/** Lines the file may grow to before a shell that starts cuts it back to HISTORY_SIZE. */
const HISTORY_CUT_AT = 2 * HISTORY_SIZE;

/** The most read of a history file, from its end: 1000 lines of 1 KiB (a file cut by the limit is rewritten). */
const MAX_HISTORY_BYTES = 1024 * 1024;

/**
 * The history file of `kind`.
 * @throws {Error} saying why there is none: HOME unset or not an absolute path, and no XDG_STATE_HOME
 */
export function historyPath(kind: "qmp" | "hmp"): string {
  const home = baseDir(env("HOME"));
  const state = baseDir(env("XDG_STATE_HOME")) ?? (home === undefined ? undefined : `${home}/.local/state`);
  if (state === undefined) {
    const why = (name: string) => env(name) ? `${name} (${env(name)}) is not an absolute path` : `${name} is not set`;
    throw new Error(`${why("HOME")}, and ${why("XDG_STATE_HOME")}`);
  }
  return `${state}/qmpctl/${kind}_history`;
}

export class History {
  /** Oldest first. */
  readonly lines: string[] = [];
  readonly #path?: string;
  /** Where the file is written; undefined when there is none, or once history is off. */
  #dir?: PrivateDir;

  private constructor(path?: string) {
    this.#path = path;
  }

  /** Read the history of `kind` (none yet: empty; unsafe or unreadable: empty and off, with a warning). */
  static async load(kind: "qmp" | "hmp"): Promise<History> {
    let path: string;
    try {
      path = historyPath(kind);
    } catch (error) {
      writeStderrLine(
        `qmpctl: cannot keep shell history: ${(error as Error).message}; history is off for this session`,
      );
      return new History();
    }
    const history = new History(path);
    let dir: PrivateDir, tail: Awaited<ReturnType<PrivateDir["readTail"]>>;
    try {
      dir = await openPrivateDir(path.slice(0, path.lastIndexOf("/")));
      tail = await dir.readTail(history.#name, MAX_HISTORY_BYTES);
    } catch (error) {
      history.#turnOff(error);
      return history;
    }
    history.#dir = dir;
    const lines = tail?.text.split("\n").filter((line) => line !== "") ?? [];
    history.lines.push(...lines.slice(-HISTORY_SIZE));
    if (lines.length > HISTORY_CUT_AT || tail?.cut) {
      await dir.replace(history.#name, history.lines.join("\n") + "\n").catch((error) => history.#turnOff(error));
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
    if (!this.#dir) return;
    try {
      await this.#dir.append(this.#name, line + "\n");
    } catch (error) {
      this.#turnOff(error);
    }
  }

  /** The file's name in its directory. */
  get #name(): string {
    return this.#path!.slice(this.#path!.lastIndexOf("/") + 1);
  }

  /** Stop writing history for this session, saying why (once: nothing is tried after). */
  #turnOff(error: unknown): void {
    this.#dir = undefined;
    const reason = (error as Error).message;
    writeStderrLine(`qmpctl: cannot save shell history in ${this.#path}: ${reason}; history is off for this session`);
  }
}
