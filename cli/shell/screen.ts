/**
 * Drawing the prompt and the line being typed on a terminal, and printing
 * text (results, events) above it without breaking it: the prompt block is
 * erased, the text printed, and the prompt and line drawn again below with
 * the cursor where it was. Lines longer than the terminal wrap; the screen
 * remembers on which row of its block the cursor stands.
 *
 * Text printed above the prompt comes from QEMU and the guest (results,
 * error text, the human monitor's text, events): its control characters are
 * escaped (cli/io.ts), so it cannot move the cursor, recolour, retitle or
 * write the clipboard; only its line feeds and tabs act.
 *
 * @module
 */
import { escapeControlsKeepLines } from "../io.ts";

const ESC = "\x1b[";

/** What is on the prompt line now. */
interface Shown {
  prompt: string;
  text: string;
  /** Cursor offset in `text`, in characters. */
  cursor: number;
}

export class Screen {
  readonly #write: (text: string) => void;
  readonly #columns: () => number;
  #shown?: Shown;
  /** Row of the cursor within the drawn block (0: the prompt's row). */
  #cursorRow = 0;

  /**
   * @param write sends bytes to the terminal, in order
   * @param columns the terminal's width now
   */
  constructor(write: (text: string) => void, columns: () => number) {
    this.#write = write;
    this.#columns = columns;
  }

  /** Draw (or redraw) the prompt and line, the cursor `cursor` characters into the line. */
  show(prompt: string, text: string, cursor: number): void {
    this.#write(this.#erase() + this.#draw({ prompt, text, cursor }));
  }

  /**
   * Print text (ending with a newline or not) above the prompt, then draw
   * the prompt again; control characters but line feeds and tabs are
   * escaped.
   */
  print(text: string): void {
    if (text === "") return;
    const shown = this.#shown;
    let out = this.#erase() + toTerminal(escapeControlsKeepLines(text.endsWith("\n") ? text : text + "\n"));
    if (shown) out += this.#draw(shown);
    this.#write(out);
  }

  /** Leave the line as it stands (Enter): the cursor goes below it and the prompt is no longer shown. */
  leave(suffix = ""): void {
    const shown = this.#shown;
    if (!shown) return;
    const end = [...shown.text].length;
    const out = shown.cursor === end ? "" : this.#draw({ ...shown, cursor: end }, true);
    this.#shown = undefined;
    this.#cursorRow = 0;
    this.#write(out + suffix + "\r\n");
  }

  /** Clear the terminal and draw the prompt at its top. */
  clear(): void {
    const shown = this.#shown;
    this.#shown = undefined;
    this.#cursorRow = 0;
    this.#write(`${ESC}H${ESC}2J` + (shown ? this.#draw(shown) : ""));
  }

  /** Move to the start of the drawn block and erase it down to the end of the screen. */
  #erase(): string {
    if (!this.#shown) return "";
    const up = this.#cursorRow > 0 ? `${ESC}${this.#cursorRow}A` : "";
    this.#shown = undefined;
    this.#cursorRow = 0;
    return `${up}\r${ESC}J`;
  }

  /** Draw `shown` from the start of the block; `redraw` first goes back to that start. */
  #draw(shown: Shown, redraw = false): string {
    const columns = Math.max(1, this.#columns());
    let out = "";
    if (redraw) {
      out += (this.#cursorRow > 0 ? `${ESC}${this.#cursorRow}A` : "") + `\r${ESC}J`;
    }
    const chars = [...shown.text];
    const promptWidth = [...shown.prompt].length;
    const total = promptWidth + chars.length;
    out += shown.prompt + shown.text;
    // At an exact multiple of the width the terminal holds the cursor on the
    // last column: go to the next row so that the arithmetic below holds.
    if (total > 0 && total % columns === 0) out += "\r\n";
    const endRow = Math.floor(total / columns);
    const position = promptWidth + shown.cursor;
    const row = Math.floor(position / columns);
    const column = position % columns;
    if (endRow > row) out += `${ESC}${endRow - row}A`;
    out += "\r" + (column > 0 ? `${ESC}${column}C` : "");
    this.#shown = shown;
    this.#cursorRow = row;
    return out;
  }
}

/** Line feeds as CR LF, whatever the terminal's output settings. */
function toTerminal(text: string): string {
  return text.replace(/\r?\n/g, "\r\n");
}
