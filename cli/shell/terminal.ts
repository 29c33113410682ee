/**
 * The terminal of an interactive shell: stdin in raw mode, read as keys, and
 * stdout written in order (every write goes through one queue, so a redraw
 * never overtakes the text printed before it).
 *
 * @module
 */
import { writeStdout } from "../io/output.ts";
import { onStopSignal, stopSelf } from "../io/process.ts";
import { dieOf, type FatalSignal, onFatalSignal } from "../io/signals.ts";
import {
  onTerminalResize,
  readStdinChunks,
  refreshTerminalSize,
  setRawMode,
  terminalColumns,
  terminalRows,
} from "../io/terminal.ts";
import { ESCAPE_TIMEOUT_MS, type Key, KeyParser } from "./keys.ts";

/**
 * Bracketed paste: the terminal marks pasted text (ESC [200~ ... ESC [201~),
 * so that a TAB in it is not taken for completion (cli/shell/keys.ts).
 */
const BRACKETED_PASTE_ON = "\x1b[?2004h";
const BRACKETED_PASTE_OFF = "\x1b[?2004l";

/** How long a fatal signal waits for the terminal to take the last output. */
const FATAL_FLUSH_MS = 100;

export class Terminal {
  readonly #parser = new KeyParser();
  readonly #keys: Key[] = [];
  #waiter?: (key: Key) => void;
  #onInterrupt?: () => void;
  #output: Promise<void> = Promise.resolve();
  #stopReading?: () => void;
  #releaseSignals?: () => void;
  #releaseStopSignal?: () => void;
  #onSuspend?: () => (() => void) | undefined;
  #stopping = false;
  #escapeTimer?: ReturnType<typeof setTimeout>;
  readonly #onData = (chunk: Uint8Array) => {
    clearTimeout(this.#escapeTimer);
    const keys = this.#parser.push(chunk);
    if (this.#parser.waiting) {
      this.#escapeTimer = setTimeout(() => this.#parser.abandonEscape().forEach(this.#deliver), ESCAPE_TIMEOUT_MS);
    }
    keys.forEach(this.#deliver);
  };

  /** A key to whoever waits for one, or to the queue; Ctrl-Z and (while a command runs) Ctrl-C act at once. */
  readonly #deliver = (key: Key) => {
    if (key.name === "suspend") this.#suspend();
    else if (key.name === "interrupt" && this.#onInterrupt) {
      this.#keys.length = 0; // what was typed while waiting goes too, as a terminal's own Ctrl-C flushes it
      this.#onInterrupt();
    } else if (this.#waiter) {
      const waiter = this.#waiter;
      this.#waiter = undefined;
      waiter(key);
    } else this.#keys.push(key);
  };

  /** SIGTERM or SIGHUP: give the terminal back, then die of the signal as if we had not caught it. */
  readonly #onFatalSignal = (signal: FatalSignal) => {
    this.#releaseSignals?.();
    this.write(BRACKETED_PASTE_OFF + "\r\n"); // the line left as typed: what comes next starts below it
    try {
      setRawMode(false);
    } catch {
      // After a hangup the terminal is gone: nothing to give back.
    }
    // Once that has gone out; a terminal that takes no output (after a hangup, or Ctrl-S) does not hold the end.
    const die = () => dieOf(signal);
    setTimeout(die, FATAL_FLUSH_MS);
    void this.#output.then(die);
  };

  /**
   * Ctrl-Z or SIGTSTP: give the terminal back as it was, once the output has
   * gone out, and stop; the shell that started qmpctl takes the terminal.
   * Once continued (`fg`), or at once where nothing could continue it (see
   * stopSelf), raw mode again, the size read again (the window may have been
   * resized meanwhile), and the line drawn again where the terminal now stands.
   */
  readonly #suspend = () => {
    if (this.#stopping) return; // a second Ctrl-Z before the stop: the first one's redraw stands
    this.#stopping = true;
    const afterStop = this.#onSuspend?.();
    this.write(BRACKETED_PASTE_OFF);
    void this.#output.then(() => {
      try {
        setRawMode(false);
        stopSelf(this.#suspend);
        setRawMode(true);
      } catch {
        return; // the terminal is gone (a hangup while stopped): its signal ends the shell
      }
      refreshTerminalSize(); // resized while stopped: its SIGWINCH went to the shell that had the terminal
      this.#stopping = false;
      this.write(BRACKETED_PASTE_ON);
      afterStop?.();
    });
  };

  /** Put stdin in raw mode and start reading keys. */
  open(): void {
    setRawMode(true);
    this.write(BRACKETED_PASTE_ON);
    this.#releaseSignals = onFatalSignal(this.#onFatalSignal, true); // nohup or not: a hangup ends the session
    this.#releaseStopSignal = onStopSignal(this.#suspend);
    this.#stopReading = readStdinChunks(this.#onData);
  }

  /** Give the terminal back as it was, once everything written has gone out. */
  async close(): Promise<void> {
    clearTimeout(this.#escapeTimer);
    this.#releaseSignals?.();
    this.#releaseStopSignal?.();
    this.#stopReading?.();
    this.write(BRACKETED_PASTE_OFF);
    setRawMode(false);
    await this.#output;
  }

  /** The width in columns, as the last resize left it. */
  get columns(): number {
    return terminalColumns();
  }

  /** The height in rows, as the last resize left it. */
  get rows(): number {
    return terminalRows();
  }

  /** Read the size again (Ctrl-L): a change is a resize, as SIGWINCH makes it. */
  refreshSize(): void {
    refreshTerminalSize();
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

  /** Call `handler` when the window is resized; the returned function stops it. */
  onResize(handler: () => void): () => void {
    return onTerminalResize(handler);
  }

  /**
   * Before a stop (Ctrl-Z), `handler` leaves the screen as the terminal will
   * show it meanwhile; what it returns is called once continued (`fg`).
   */
  onSuspend(handler: () => (() => void) | undefined): void {
    this.#onSuspend = handler;
  }

  /** While set, Ctrl-C calls `handler` at once (to stop a running command) instead of queueing. */
  onInterrupt(handler: (() => void) | undefined): void {
    this.#onInterrupt = handler;
  }
}
