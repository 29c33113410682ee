/**
 * Control characters in text for a terminal: which ones act unseen, and the
 * same text with them written as escapes (stderr's lines, the human
 * monitor's text, the shell's results). No runtime call: text in, text out.
 *
 * @module
 */

/**
 * Whether character code `c` acts on a terminal or moves text unseen, C0
 * aside: DEL and the C1 controls (U+0080..U+009F, which some terminals
 * obey), the line and paragraph separators (a line break to some viewers)
 * and the bidirectional marks, embeddings, overrides and isolates (they
 * reorder what a terminal shows). Stdout's JSON escapes these (session.ts);
 * stderr, C0 too.
 */
export function isUnseenControl(c: number): boolean {
  return (c >= 0x7f && c <= 0x9f) || c === 0x61c || c === 0x200e || c === 0x200f ||
    (c >= 0x2028 && c <= 0x202e) || (c >= 0x2066 && c <= 0x2069);
}

const controlPatterns = new Map<string, RegExp>();

/**
 * A global regular expression for the characters of `isUnseenControl` and
 * the C0 ranges `c0` ("" for none), built on first use: most runs need none,
 * and building one costs start-up.
 */
export function controlPattern(c0: string): RegExp {
  let pattern = controlPatterns.get(c0);
  if (!pattern) {
    pattern = new RegExp(`[${c0}\\u007f-\\u009f\\u061c\\u200e\\u200f\\u2028-\\u202e\\u2066-\\u2069]`, "g");
    controlPatterns.set(c0, pattern);
  }
  return pattern;
}

const C0 = "\\u0000-\\u001f";

const NAMED: Record<string, string> = { "\n": "\\n", "\r": "\\r", "\t": "\\t" };

/** Whether `text` holds a control character (C0, DEL, C1, a separator or a bidirectional control). */
export function hasControl(text: string): boolean {
  const control = controlPattern(C0);
  control.lastIndex = 0; // global: test() starts from lastIndex
  return control.test(text);
}

/** `text` with each control character written as `\n`, `\r`, `\t`, `\xHH` or `\uHHHH`. */
export function escapeControls(text: string): string {
  // A short line (an error message) is searched by a loop: a process's first regex costs ~0.1 M instructions.
  let found = text.length > 4096;
  for (let i = 0; i < text.length && !found; i++) {
    const c = text.charCodeAt(i);
    found = c < 0x20 || isUnseenControl(c);
  }
  return found ? text.replace(controlPattern(C0), escapeOne) : text;
}

/**
 * Text of many lines for a terminal (the shell's results, QEMU's error
 * text, the human monitor's text): control characters escaped as
 * `escapeControls` does, but line feeds and tabs kept, so that what QEMU
 * or a guest wrote lays out as lines and never acts as an escape sequence.
 */
export function escapeControlsKeepLines(text: string): string {
  return text.replace(controlPattern("\\u0000-\\u0008\\u000b-\\u001f"), escapeOne); // C0 but line feeds and tabs
}

function escapeOne(c: string): string {
  const code = c.charCodeAt(0);
  return NAMED[c] ??
    (code > 0xff ? `\\u${code.toString(16).padStart(4, "0")}` : `\\x${code.toString(16).padStart(2, "0")}`);
}
