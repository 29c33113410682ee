/**
 * Split a command line into words as a POSIX shell would, without running a
 * shell: blanks separate words, `'...'` keeps everything literally, `"..."`
 * keeps everything but `\` before `"`, `\`, `$`, `` ` `` or a newline, and a
 * `\` outside quotes takes the next character literally (POSIX.1-2017,
 * Shell Command Language 2.2 "Quoting"). No expansion of any kind: `$HOME`
 * and `~` stay as written, because nothing evaluates the line.
 *
 * @module
 */

/** A command line whose quoting does not close. */
export class ShellWordsError extends Error {
  override name = "ShellWordsError";
}

/**
 * The words of `line`.
 *
 * @example
 * ```ts
 * splitShellWords(`ssh -F "./my config" -o 'ProxyJump=a b'`); // ["ssh", "-F", "./my config", "-o", "ProxyJump=a b"]
 * ```
 * @throws {ShellWordsError} for an unterminated quote or a trailing backslash
 */
export function splitShellWords(line: string): string[] {
  const words: string[] = [];
  let word = "";
  let inWord = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (c === " " || c === "\t" || c === "\n") {
      if (inWord) words.push(word);
      word = "";
      inWord = false;
      continue;
    }
    inWord = true;
    if (c === "'") {
      const end = line.indexOf("'", i + 1);
      if (end < 0) throw new ShellWordsError(`unterminated ' in: ${line}`);
      word += line.slice(i + 1, end);
      i = end;
    } else if (c === '"') {
      i++;
      for (; i < line.length && line[i] !== '"'; i++) {
        if (line[i] === "\\" && i + 1 < line.length && '"\\$`\n'.includes(line[i + 1])) {
          i++;
          if (line[i] !== "\n") word += line[i]; // backslash-newline continues the line
        } else {
          word += line[i];
        }
      }
      if (i >= line.length) throw new ShellWordsError(`unterminated " in: ${line}`);
    } else if (c === "\\") {
      if (i + 1 >= line.length) throw new ShellWordsError(`trailing \\ in: ${line}`);
      i++;
      if (line[i] !== "\n") word += line[i];
      else if (word === "") inWord = false; // a backslash-newline alone makes no word
    } else {
      word += c;
    }
  }
  if (inWord) words.push(word);
  return words;
}
