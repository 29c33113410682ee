/**
 * The piped shell's output: lines printed while a write is under way go out
 * together in the next one, and a note about a line goes to stderr once the
 * write holding that line has ended. A write that fails (the reader has
 * gone: `| head -1`) ends the run, as for cat or jq: no more lines are sent.
 *
 * @module
 */

export class BatchedOutput {
  readonly #write: (text: string) => Promise<void>;
  readonly #writeNote: (line: string) => void;
  /** The writes (and notes) chained so far, the last one last. */
  #written: Promise<void> = Promise.resolve();
  /** The lines of the write chained last, not begun yet (later lines join it). */
  #unwritten: { text: string } | undefined;
  #broken = false;
  #error: unknown;
  readonly #failure = Promise.withResolvers<never>();

  /** `write` takes the lines, `writeNote` a note's line (for stderr). */
  constructor(write: (text: string) => Promise<void>, writeNote: (line: string) => void) {
    this.#write = write;
    this.#writeNote = writeNote;
    this.#failure.promise.catch(() => {}); // raced by the run
  }

  /** Settles once all printed so far is written; rejects with a write's failure. */
  get written(): Promise<void> {
    return this.#written;
  }

  /** Rejects with the error of the first write that failed: the run ends. */
  get failure(): Promise<never> {
    return this.#failure.promise;
  }

  /** A write failed: what is printed now goes nowhere. */
  get broken(): boolean {
    return this.#broken;
  }

  /** What the write that failed threw. */
  get error(): unknown {
    return this.#error;
  }

  /**
   * Print `text`, a line or more; `note`, a line for stderr about it, goes out
   * once the write holding that text has ended (so that `2>&1` keeps their
   * order), and the lines printed after it in a later write.
   */
  print(text: string, note?: string): void {
    if (!this.#unwritten) {
      const lines = this.#unwritten = { text: "" };
      this.#written = this.#written.then(() => {
        if (this.#unwritten === lines) this.#unwritten = undefined; // begun: later lines go in the next write
        return this.#write(lines.text);
      });
      this.#written.catch((error) => this.#failed(error));
    }
    this.#unwritten.text += text;
    if (note === undefined) return;
    this.#unwritten = undefined;
    this.#written = this.#written.then(() => this.#writeNote(note)); // not after a failed write: the run ends with that failure
    this.#written.catch(() => {}); // told by the write's own catch
  }

  #failed(error: unknown): void {
    this.#broken = true;
    this.#error = error;
    this.#failure.reject(error);
  }
}
