/**
 * Drawing the prompt and the line being typed on a terminal, and printing
 * text (results, events) above it without breaking it: the prompt block is
 * erased, the text printed, and the prompt and line drawn again below with
 * the cursor where it was. Lines longer than the terminal wrap; the screen
 * remembers on which row of its block the cursor stands.
 *
 * Text printed above the prompt comes from QEMU and the guest (results,
 * error text, the human monitor's text, events): its control characters are
 * escaped (cli/controls.ts), so it cannot move the cursor, recolour, retitle or
 * write the clipboard; only its line feeds and tabs act. So are those of the
 * line being typed (pasted, or recalled from history), as readline shows
 * them visibly: `\x85`, `\u202e`, `\x1b`, and a byte that is not UTF-8 as
 * `\xff`; the cursor goes by what is shown.
 *
 * @module
 */
import { escapeControls, escapeControlsKeepLines } from "../controls.ts";
import { showEscapedBytes } from "./bytes.ts";

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
  /** The width the block was drawn for. */
  #drawnColumns = 0;

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
    // A line that fills its last row left the cursor on the next row already (see #draw).
    const below = layout(drawn(shown).chars, Math.max(1, this.#columns())).fullRow && suffix === "";
    this.#shown = undefined;
    this.#cursorRow = 0;
    this.#write(out + suffix + (below ? "\r" : "\r\n"));
  }

  /** Erase the prompt and line drawn (the cursor at their start): what is written next takes their place. */
  hide(): void {
    this.#write(this.#erase());
  }

  /** Whether the prompt and a line are drawn (the shell waits for a key), or were left. */
  get showing(): boolean {
    return this.#shown !== undefined;
  }

  /** The window was resized: draw the line again for its new width. */
  resized(): void {
    if (this.#shown) this.show(this.#shown.prompt, this.#shown.text, this.#shown.cursor);
  }

  /** Clear the terminal and draw the prompt at its top. */
  clear(): void {
    const shown = this.#shown;
    this.#shown = undefined;
    this.#cursorRow = 0;
    this.#write(`${ESC}H${ESC}2J` + (shown ? this.#draw(shown) : ""));
  }

  /**
   * Move to the start of the drawn block and erase it down to the end of the
   * screen. After a resize (seen here, whether or not its event came first)
   * the terminal has reflowed the block to its new width, as tmux, VTE and
   * most others do: the cursor stands on the row the new width puts it on.
   */
  #erase(): string {
    const shown = this.#shown;
    if (!shown) return "";
    const columns = Math.max(1, this.#columns());
    if (columns !== this.#drawnColumns) {
      const { chars, cursor } = drawn(shown);
      const { starts, end } = layout(chars, columns);
      this.#cursorRow = (starts[cursor] ?? end).row;
    }
    const up = this.#cursorRow > 0 ? `${ESC}${this.#cursorRow}A` : "";
    this.#shown = undefined;
    this.#cursorRow = 0;
    return `${up}\r${ESC}J`;
  }

  /** Draw `shown` from the start of the block; `redraw` first goes back to that start. */
  #draw(shown: Shown, redraw = false): string {
    let out = redraw ? this.#erase() : "";
    const columns = Math.max(1, this.#columns());
    const { chars, cursor } = drawn(shown);
    const { starts, end, fullRow } = layout(chars, columns);
    out += chars.join("");
    // When the line ends on the last column the terminal holds the cursor
    // there: go to the next row, where the layout puts the end.
    if (fullRow) out += "\r\n";
    const at = starts[cursor] ?? end;
    if (end.row > at.row) out += `${ESC}${end.row - at.row}A`;
    out += "\r" + (at.column > 0 ? `${ESC}${at.column}C` : "");
    this.#shown = shown;
    this.#cursorRow = at.row;
    this.#drawnColumns = columns;
    return out;
  }
}

/**
 * The prompt and line as the terminal shows them, character by character,
 * and the index of the one the cursor stands on: the line's control
 * characters and bytes that are not UTF-8 shown as escapes (`visible`).
 */
function drawn(shown: Shown): { chars: string[]; cursor: number } {
  const line = [...shown.text];
  const before = [...shown.prompt, ...line.slice(0, shown.cursor).flatMap(visible)];
  return { chars: [...before, ...line.slice(shown.cursor).flatMap(visible)], cursor: before.length };
}

/** One character of the line as shown: itself, or the characters of its escape. */
function visible(char: string): string[] {
  return [...showEscapedBytes(escapeControls(char))];
}

interface Place {
  row: number;
  column: number;
}

/**
 * Where each character starts on a terminal `columns` wide, and where the
 * line ends: a character that does not fit in what is left of a row (a
 * wide one in the last column) goes to the next, as the terminal puts it.
 */
function layout(chars: readonly string[], columns: number): { starts: Place[]; end: Place; fullRow: boolean } {
  let row = 0, column = 0;
  const starts: Place[] = [];
  for (const char of chars) {
    const width = charWidth(char);
    if (column + width > columns) row++, column = 0;
    starts.push({ row, column });
    column += width;
  }
  const fullRow = column >= columns;
  return { starts, end: fullRow ? { row: row + 1, column: 0 } : { row, column }, fullRow };
}

/**
 * The columns a character takes on a terminal: none for a combining mark
 * or a format character (a joiner), two for East Asian wide and fullwidth
 * characters and most emoji (Markus Kuhn's ranges of wcwidth), else one.
 */
function charWidth(char: string): number {
  const code = char.codePointAt(0)!;
  if (code < 0x300) return 1;
  if (ZERO_WIDTH.test(char)) return 0;
  return (code >= 0x1100 && code <= 0x115f) || code === 0x2329 || code === 0x232a ||
      (code >= 0x2e80 && code <= 0xa4cf && code !== 0x303f) || (code >= 0xac00 && code <= 0xd7a3) ||
      (code >= 0xf900 && code <= 0xfaff) || (code >= 0xfe10 && code <= 0xfe19) ||
      (code >= 0xfe30 && code <= 0xfe6f) || (code >= 0xff00 && code <= 0xff60) ||
      (code >= 0xffe0 && code <= 0xffe6) || (code >= 0x1f300 && code <= 0x1f64f) ||
      (code >= 0x1f900 && code <= 0x1f9ff) || (code >= 0x20000 && code <= 0x3fffd)
    ? 2
    : 1;
}

const ZERO_WIDTH = /^[\p{Mn}\p{Me}\p{Cf}]$/u;

/** Line feeds as CR LF, whatever the terminal's output settings. */
function toTerminal(text: string): string {
  return text.replace(/\r?\n/g, "\r\n");
}
