/** What a word that looks like a socket, where a command or KEY=VALUE goes, most likely is. @module */

/**
 * `-s vm*.sock` unquoted: the shell gives -s the first socket, and the others stand where the command or its
 * KEY=VALUE words go. For such a word (a path, or a socket's usual name), the hint that says so; else "".
 */
export function unquotedGlobHint(word: string): string {
  return word.includes("/") || /\.(?:sock|socket|qmp)$/.test(word)
    ? " (a socket? a glob after -s must be quoted, or the shell expands it: -s 'vm*.sock')"
    : "";
}
