/** The shell's pure parts: words, keys, the line editor, TAB, and HMP help parsing. */
import { describe, expect, test } from "bun:test";
import { applyCompletion, formatColumns, matching, wordsBefore } from "../cli/shell/completion.ts";
import { LineEditor } from "../cli/shell/editor.ts";
import { parseHelpNames, parseInfoNames } from "../cli/shell/hmp_mode.ts";
import { type KeyName, KeyParser } from "../cli/shell/keys.ts";
import { scanWords, splitWords } from "../cli/shell/words.ts";
import { showEscapedBytes } from "../cli/shell/bytes.ts";
import { ArgumentError } from "../lib/errors.ts";

describe("splitWords", () => {
  test("splits on blanks and drops quotes: single quotes literal, double quotes with backslash escapes", () => {
    expect(splitWords("  human-monitor-command   command-line='info  status'  ")).toEqual([
      "human-monitor-command",
      "command-line=info  status",
    ]);
    expect(splitWords(String.raw`a="x \"y\" \\z" b='c\d' e:='{"f": 1}'`)).toEqual([
      'a=x "y" \\z',
      "b=c\\d",
      'e:={"f": 1}',
    ]);
  });

  test("only ASCII blanks split: a no-break space or a line separator stays in its word", () => {
    expect(splitWords("device_del id=a\u00a0b\tx=c\u2028d\r")).toEqual(["device_del", "id=a\u00a0b", "x=c\u2028d"]);
  });

  test("a JSON array or object that starts a word or a value is taken as typed: its quotes and blanks kept", () => {
    expect(splitWords(String.raw`transaction actions:=[{"type": "x", "data": {"a b": "c\"]"}}] n=1`)).toEqual([
      "transaction",
      String.raw`actions:=[{"type": "x", "data": {"a b": "c\"]"}}]`,
      "n=1",
    ]);
    expect(splitWords(`a=[1, 2] b={"c": [3]}`)).toEqual(["a=[1, 2]", 'b={"c": [3]}']);
    expect(splitWords(`{"x": 1}`)).toEqual(['{"x": 1}']);
    // Not a value's start: the usual rules.
    expect(splitWords(`name=a["b c"]`)).toEqual(["name=a[b c]"]);
    // Left open at the end of the line: read by the usual rules, as before.
    expect(splitWords(`a=[ "b c" d`)).toEqual(["a=[", "b c", "d"]);
    expect(scanWords(`a=["b`).open).toBe('"');
    // KEY:=JSON's value is JSON: left open, it is the rest of the line, for the JSON parser to refuse.
    expect(splitWords(`t a:=[{"b": 1} c=1`)).toEqual(["t", `a:=[{"b": 1} c=1`]);
  });

  test('backslashes as sh takes them: outside quotes the next character as it is; in double quotes before $ ` " \\', () => {
    expect(splitWords(String.raw`human-monitor-command command-line=info\ status`)).toEqual([
      "human-monitor-command",
      "command-line=info status",
    ]);
    expect(splitWords('a=\\\'\\"\\\\\\$\\x \\  "b\\c\\$\\`\\"\\\\" \'d\\e\'')).toEqual([
      String.raw`a='"\$x`,
      " ",
      'b\\c$`"\\',
      "d\\e",
    ]);
    // A backslash that ends the line stays (as in sh -c); a backslash-newline is dropped, in or out of double quotes.
    expect(splitWords("a=b\\")).toEqual(["a=b\\"]);
    expect(splitWords('a \\\nb c\\\nd "e\\\nf"')).toEqual(["a", "b", "cd", "ef"]);
    // An escaped bracket is a character, not a JSON value's start; JSON values keep their backslashes.
    expect(splitWords(String.raw`a=\[1 2]`)).toEqual(["a=[1", "2]"]);
    expect(splitWords(String.raw`x:='{"a":"b\\c"}' y:={"a":"q\"r"} z:=["\\ "]`)).toEqual([
      String.raw`x:={"a":"b\\c"}`,
      String.raw`y:={"a":"q\"r"}`,
      String.raw`z:=["\\ "]`,
    ]);
  });

  test("an unterminated quote is an ArgumentError", () => {
    expect(() => splitWords("set_password password='oops")).toThrow(ArgumentError);
    expect(scanWords('a "b').open).toBe('"');
  });
});

describe("wordsBefore", () => {
  test("gives the words before the one being completed, and where it starts", () => {
    expect(wordsBefore("blockdev-add driver=null-co no")).toEqual({
      words: ["blockdev-add", "driver=null-co"],
      word: "no",
      start: 28,
    });
    expect(wordsBefore("query-status ")).toEqual({ words: ["query-status"], word: "", start: 13 });
    expect(wordsBefore("")).toEqual({ words: [], word: "", start: 0 });
    // A quoted or escaped blank does not end the word.
    expect(wordsBefore(String.raw`x command-line=info\ `)).toEqual({
      words: ["x"],
      word: "command-line=info ",
      start: 2,
    });
    expect(wordsBefore(`x a="b `)).toEqual({ words: ["x"], word: "a=b ", start: 2 });
    // In a comment: nothing to complete; without comments (HMP's lines) a # is a character.
    expect(wordsBefore("qom-list # p")).toMatchObject({ inComment: true });
    expect(wordsBefore("info # p", false)).toEqual({ words: ["info", "#"], word: "p", start: 7 });
  });
});

describe("applyCompletion", () => {
  test("one candidate replaces the word, with a blank after a finished word but not after KEY= or KEY.", () => {
    expect(applyCompletion("query-na", { start: 0, candidates: ["query-name"] })).toEqual({
      kind: "replace",
      count: 8,
      text: "query-name ",
    });
    expect(applyCompletion("blockdev-add no", { start: 13, candidates: ["node-name="] })).toEqual({
      kind: "replace",
      count: 2,
      text: "node-name=",
    });
    expect(applyCompletion("x fi", { start: 2, candidates: ["file."] })).toMatchObject({ text: "file." });
  });

  test("several extend to their common prefix, or are listed when it adds nothing; none do nothing", () => {
    const candidates = ["query-stats", "query-stats-schemas", "query-status"];
    expect(applyCompletion("query-sta", { start: 0, candidates })).toEqual({
      kind: "replace",
      count: 9,
      text: "query-stat",
    });
    expect(applyCompletion("query-stat", { start: 0, candidates })).toEqual({ kind: "list", candidates });
    expect(applyCompletion("nothing", { start: 0, candidates: [] })).toEqual({ kind: "none" });
    // A word typed with quotes or escapes is extended as it reads, not by the length it is typed with.
    for (const typed of ['"query-st"', "qu\\e\\r\\y-st"]) {
      expect(applyCompletion(typed, { start: 0, candidates })).toEqual({
        kind: "replace",
        count: typed.length,
        text: "query-stat",
      });
    }
  });

  test("matching leaves out a name with a control character: TAB never puts one into the line", () => {
    expect(matching("query-", ["query-status", "query-\u001b[2Jx", "query-\u009bname", "stop"])).toEqual([
      "query-status",
    ]);
  });

  test("formatColumns lays candidates out down columns that fit the width, as readline does", () => {
    expect(formatColumns(["a", "bbb", "cc", "d", "e"], 13)).toEqual(["a    cc   e", "bbb  d"]);
    expect(formatColumns(["a", "bbb", "cc", "d", "e"], 12)).toEqual(["a    d", "bbb  e", "cc"]);
    // Three fit in a row, but seven in three columns take three rows: the last column is the short one.
    expect(formatColumns(["a", "b", "c", "d", "e", "f", "g"], 7)).toEqual(["a  d  g", "b  e", "c  f"]);
    expect(formatColumns(["a-long-name"], 5)).toEqual(["a-long-name"]);
  });
});

describe("KeyParser", () => {
  test("reads text, control keys and escape sequences, even split across chunks", () => {
    const parser = new KeyParser();
    expect(parser.push("ab\t\x1b[A\x03\r")).toEqual([
      { name: "text", text: "ab" },
      { name: "tab" },
      { name: "up" },
      { name: "interrupt" },
      { name: "enter" },
    ]);
    expect(parser.push("x\x1b[")).toEqual([{ name: "text", text: "x" }]);
    expect(parser.push("3~\x1bOH\x1b[1;5D")).toEqual([{ name: "delete" }, { name: "home" }, { name: "word-left" }]);
    expect(parser.push("a\r\nb")).toEqual([{ name: "text", text: "a" }, { name: "enter" }, {
      name: "text",
      text: "b",
    }]);
  });

  test("an escape sequence that waits can be given up (a lone Esc): the next key is a key of its own", () => {
    const parser = new KeyParser();
    expect(parser.push("\x1b")).toEqual([]);
    expect(parser.waiting).toBe(true);
    expect(parser.abandonEscape()).toEqual([{ name: "escape" }]); // the Esc key (it stops a --More-- listing)
    expect(parser.waiting).toBe(false);
    expect(parser.push("b")).toEqual([{ name: "text", text: "b" }]);
    expect(parser.push("\x1bb")).toEqual([{ name: "word-left" }]); // Alt-b, sent in one write
    expect(parser.push("\x1b[1;")).toEqual([]);
    expect(parser.abandonEscape()).toEqual([]); // a sequence cut short is no key
  });

  test("Alt-Backspace (ESC DEL, or ESC Ctrl-H) is backward-kill-word; Ctrl-W is unix-word-rubout", () => {
    const parser = new KeyParser();
    expect(parser.push("\x1b\x7f\x1b\b\x17\x1bf")).toEqual([
      { name: "backward-kill-word" },
      { name: "backward-kill-word" },
      { name: "unix-word-rubout" },
      { name: "word-right" },
    ]);
  });

  test("in a bracketed paste all is text but line ends and the paste's end, even one split across chunks", () => {
    const parser = new KeyParser();
    expect(parser.push("\x1b[200~a\x1bb\x03\x1a\x00\x7f\tc\r\nd\x1b[2")).toEqual([
      { name: "text", text: "a\x1bb\x03\x1a\x00\x7f c" },
      { name: "enter" },
      { name: "text", text: "d" },
    ]);
    expect(parser.waiting).toBe(true); // maybe the paste's end
    expect(parser.push("01~\x03")).toEqual([{ name: "interrupt" }]); // it was: keys again
    // The end split over a slow link, its halves more than ESCAPE_TIMEOUT_MS apart: still the end.
    parser.push("\x1b[200~x\x1b[");
    parser.abandonEscape();
    expect(parser.waiting).toBe(true);
    expect(parser.push("201~\x03")).toEqual([{ name: "interrupt" }]);
    // What looked like the start of the end, and was not: text, once what follows tells.
    parser.push("\x1b[200~x\x1b[");
    parser.abandonEscape();
    expect(parser.push("9z\x1b[201~\x01")).toEqual([{ name: "text", text: "\x1b[9z" }, { name: "home" }]);
  });

  test("decodes UTF-8 split across chunks", () => {
    const parser = new KeyParser();
    const bytes = new TextEncoder().encode("é");
    expect(parser.push(bytes.slice(0, 1))).toEqual([]);
    expect(parser.push(bytes.slice(1))).toEqual([{ name: "text", text: "é" }]);
  });

  test("keeps each byte that is not UTF-8 as a lone surrogate, U+DC00 + the byte, for the shell to refuse", () => {
    const parser = new KeyParser();
    const text = (...bytes: number[]) => parser.push(new Uint8Array(bytes));
    expect(text(0x61, 0xff, 0x62)).toEqual([{ name: "text", text: "a\udcffb" }]);
    expect(text(0xe2, 0x82)).toEqual([]); // a character begun: its rest may come
    expect(text(0x0d)).toEqual([{ name: "text", text: "\udce2\udc82" }, { name: "enter" }]); // it did not
    expect(text(0xc0, 0xaf, 0xed, 0xa0, 0x80, 0xf4, 0x90, 0x80, 0x80)).toEqual([{ // overlong, surrogate, too high
      name: "text",
      text: "\udcc0\udcaf\udced\udca0\udc80\udcf4\udc90\udc80\udc80",
    }]);
    expect(text(0xf0, 0x9f, 0x98, 0x80)).toEqual([{ name: "text", text: "\u{1f600}" }]);
    expect(showEscapedBytes("a\udcffb \u{1f480}")).toBe("a\\xffb \u{1f480}"); // an emoji's second half is no byte
  });
});

describe("LineEditor", () => {
  const type = (editor: LineEditor, text: string) => editor.key({ name: "text", text });

  test("edits at the cursor: insert, move, delete, kill", () => {
    const editor = new LineEditor([]);
    type(editor, "query-name");
    editor.key({ name: "home" });
    type(editor, "x");
    expect([editor.text, editor.cursor]).toEqual(["xquery-name", 1]);
    editor.key({ name: "backspace" });
    editor.key({ name: "word-right" });
    expect(editor.beforeCursor).toBe("query"); // readline's word: letters and digits
    editor.key({ name: "end" });
    editor.key({ name: "unix-word-rubout" });
    expect(editor.text).toBe("");
    type(editor, "a b c");
    editor.key({ name: "left" });
    editor.key({ name: "kill-end" });
    expect(editor.text).toBe("a b ");
    editor.key({ name: "word-left" });
    expect(editor.beforeCursor).toBe("a ");
    editor.key({ name: "kill-start" });
    expect([editor.text, editor.cursor]).toEqual(["b ", 0]);
    editor.key({ name: "delete" });
    expect(editor.text).toBe(" ");
  });

  /** Type `text`, press each key in turn: the line after each, with `|` at the cursor. */
  const afterEach = (text: string, keys: KeyName[]) => {
    const editor = new LineEditor([]);
    type(editor, text);
    return keys.map((name) => {
      editor.key({ name });
      return `${editor.beforeCursor}|${editor.text.slice(editor.beforeCursor.length)}`;
    });
  };

  test("Alt-B/F/Backspace take readline's words, runs of letters and digits of any script; Ctrl-W goes to a blank", () => {
    const keys: KeyName[] = ["backward-kill-word", "word-left", "word-left", "home", "word-right", "word-right"];
    expect(afterEach("set_link name=n0 up=on", [...keys, "end", "unix-word-rubout", "unix-word-rubout"])).toEqual([
      "set_link name=n0 up=|",
      "set_link name=n0 |up=",
      "set_link name=|n0 up=",
      "|set_link name=n0 up=",
      "set|_link name=n0 up=",
      "set_link| name=n0 up=",
      "set_link name=n0 up=|",
      "set_link name=n0 |",
      "set_link |",
    ]);
    // Letters beyond ASCII are letters (an accent goes with its letter); an emoji is not one.
    expect(afterEach("id=cafe\u0301 x=\u{1F600}na\u00efve2\u{1F600}", [
      "word-left",
      "word-left",
      "word-left",
      "word-right",
      "end",
      "backward-kill-word",
    ])).toEqual([
      "id=cafe\u0301 x=\u{1F600}|na\u00efve2\u{1F600}",
      "id=cafe\u0301 |x=\u{1F600}na\u00efve2\u{1F600}",
      "id=|cafe\u0301 x=\u{1F600}na\u00efve2\u{1F600}",
      "id=cafe\u0301| x=\u{1F600}na\u00efve2\u{1F600}",
      "id=cafe\u0301 x=\u{1F600}na\u00efve2\u{1F600}|",
      "id=cafe\u0301 x=\u{1F600}|",
    ]);
    // Nothing but separators before (or after) the cursor: to the line's start (or end).
    expect(afterEach("  = ", ["word-left", "word-right", "backward-kill-word"])).toEqual(["|  = ", "  = |", "|"]);
  });

  test("keeps characters whole: the cursor moves over an emoji as one", () => {
    const editor = new LineEditor([]);
    type(editor, "a😀b");
    editor.key({ name: "left" });
    editor.key({ name: "backspace" });
    expect(editor.text).toBe("ab");
  });

  test("Ctrl-D is end of input only on an empty line; Enter, TAB and Ctrl-C are for the shell", () => {
    const editor = new LineEditor([]);
    expect(editor.key({ name: "eof" })).toBe("eof");
    type(editor, "ab");
    editor.key({ name: "home" });
    expect(editor.key({ name: "eof" })).toBeUndefined();
    expect(editor.text).toBe("b");
    expect(editor.key({ name: "enter" })).toBe("submit");
    expect(editor.key({ name: "tab" })).toBe("complete");
    expect(editor.key({ name: "interrupt" })).toBe("interrupt");
  });

  test("Up and Down walk the history and come back to the line being typed; history may grow meanwhile", () => {
    const history = ["one", "two"];
    const editor = new LineEditor(history);
    type(editor, "dra");
    editor.key({ name: "up" });
    expect(editor.text).toBe("two");
    editor.key({ name: "up" });
    editor.key({ name: "up" }); // nothing older
    expect(editor.text).toBe("one");
    editor.key({ name: "down" });
    editor.key({ name: "down" });
    expect(editor.text).toBe("dra");
    history.push("three");
    editor.reset();
    editor.key({ name: "up" });
    expect(editor.text).toBe("three");
  });

  test("a recalled line, edited, stays edited while Up and Down walk past it, until Enter (as in readline)", () => {
    const editor = new LineEditor(["one", "two"]);
    type(editor, "new");
    editor.key({ name: "up" });
    type(editor, "!");
    editor.key({ name: "up" });
    expect(editor.text).toBe("one");
    editor.key({ name: "down" });
    expect(editor.text).toBe("two!");
    editor.key({ name: "down" });
    expect(editor.text).toBe("new");
    editor.reset(); // Enter: the history is as it was
    editor.key({ name: "up" });
    expect(editor.text).toBe("two");
  });
});

describe("HMP help parsing", () => {
  test("command names from help, long names of aliases only (a one-letter command kept); info topics from info", () => {
    const help = "announce_self [interfaces] [id] -- Trigger GARP/RARP announcements\n" +
      "i /fmt addr -- I/O port read\n" +
      "block_job_cancel [-f] device -- stop an active background block operation (use -f\n" +
      "\t\t\t if you want to abort the operation immediately\n" +
      "cont|c  -- resume emulation\n" +
      "q|quit  -- quit the emulator\n";
    expect(parseHelpNames(help)).toEqual(["announce_self", "i", "block_job_cancel", "cont", "quit"]);
    const info = "info balloon  -- show balloon information\n" +
      "info block [-n] [-v] [device] -- show info of one block device or all block devices\n";
    expect(parseInfoNames(info)).toEqual(["balloon", "block"]);
  });
});
