/**
 * The terminal of an interactive shell: stdin in raw mode, read as keys, and
 * stdout written in order (every write goes through one queue, so a redraw
 * never overtakes the text printed before it).
 *
 * @module
 */
import { writeStdout } from "../io.ts";
import { type Key, KeyParser } from "./keys.ts";

export class Terminal {
  readonly #parser = new KeyParser();
  readonly #keys: Key[] = [];
  #waiter?: (key: Key) => void;
  #onInterrupt?: () => void;
  #output: Promise<void> = Promise.resolve();
  readonly #onData = (chunk: Uint8Array) => {
    for (const key of this.#parser.push(chunk)) {
      if (key.name === "interrupt" && this.#onInterrupt) this.#onInterrupt();
      else if (this.#waiter) {
        const waiter = this.#waiter;
        this.#waiter = undefined;
        waiter(key);
      } else this.#keys.push(key);
    }
  };

  /** SIGTERM or SIGHUP: give the terminal back, then die of the signal as if we had not caught it. */
  readonly #onFatalSignal = (signal: NodeJS.Signals) => {
    this.#releaseSignals();
    try {
      process.stdin.setRawMode(false);
    } catch {
      // After a hangup the terminal is gone: nothing to give back.
    }
    process.kill(process.pid, signal);
  };

  /** Put stdin in raw mode and start reading keys. */
  open(): void {
    process.stdin.setRawMode(true);
    process.on("SIGTERM", this.#onFatalSignal);
    process.on("SIGHUP", this.#onFatalSignal);
    process.stdin.on("data", this.#onData);
    process.stdin.resume();
  }

  /** Give the terminal back as it was, once everything written has gone out. */
  async close(): Promise<void> {
    this.#releaseSignals();
    process.stdin.off("data", this.#onData);
    process.stdin.setRawMode(false);
    process.stdin.pause();
    await this.#output;
  }

  #releaseSignals(): void {
    process.off("SIGTERM", this.#onFatalSignal);
    process.off("SIGHUP", this.#onFatalSignal);
  }

  /** The width in columns. */
  get columns(): number {
    return process.stdout.columns || 80;
  }

  /** Queue text for the terminal. */
  write = (text: string): void => {
    // A terminal that is gone (hangup) ends the session by signal; nothing to report here.
    this.#output = this.#output.then(() => writeStdout(text)).catch(() => {});
  };

  /** The next key typed (keys typed earlier wait in order). */
  nextKey(): Promise<Key> {
    const key = this.#keys.shift();
    return key ? Promise.resolve(key) : new Promise((resolve) => (this.#waiter = resolve));
  }

  /** While set, Ctrl-C calls `handler` at once (to stop a running command) instead of queueing. */
  onInterrupt(handler: (() => void) | undefined): void {
    this.#onInterrupt = handler;
  }
}
