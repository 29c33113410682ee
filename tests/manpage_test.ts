/**
 * scripts/manpage.ts: qmpctl(1) made from the help texts, as `man -l` shows
 * it: headings are the lines that open a block, and a line that ends in ':' in
 * the middle of a paragraph stays prose, its colon kept.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { commandHelp, commandOwnHelp } from "../cli/help.ts";
import { COMMANDS } from "../cli/registry.ts";

const ROOT = resolve(import.meta.dir, "..");
const dir = mkdtempSync(join(tmpdir(), "qmpctl-manpage-"));
const page = join(dir, "qmpctl.1");
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function man(...args: string[]) {
  const result = Bun.spawnSync(["man", ...args, "-l", page], {
    env: { ...process.env, MANWIDTH: "80", LC_ALL: "C.UTF-8" },
    stdout: "pipe",
    stderr: "pipe",
  });
  return { code: result.exitCode, stdout: result.stdout.toString(), stderr: result.stderr.toString() };
}

/** The page's text as one line: words joined by single blanks, lines broken at a hyphen joined again. */
const flat = (text: string) => text.replace(/‐\n\s*/g, "").replace(/\s+/g, " ");

beforeAll(() => {
  const made = Bun.spawnSync([join(ROOT, "node_modules/.bin/bun"), "scripts/manpage.ts"], { cwd: ROOT });
  expect(made.exitCode).toBe(0);
  writeFileSync(page, made.stdout);
});

test("man -l renders the page without a groff warning", () => {
  const result = man("--warnings");
  expect(result.stderr).toBe("");
  expect(result.code).toBe(0);
});

test("ga exec's help line ending in 'an empty one:' keeps its colon on the page, in its sentence", () => {
  expect(flat(man().stdout)).toContain("(without it, an empty one: qmpctl's own stdin is not passed, unlike ssh's)");
});

test("every help line ending in ':' in the middle of a paragraph is on the page as it is, colon and all", async () => {
  const lines: string[] = [];
  for (const entry of Object.values(COMMANDS)) {
    const help = commandOwnHelp(entry, (await entry.load()).help()).split("\n");
    for (let i = 1; i < help.length; i++) {
      const [previous, line] = [help[i - 1], help[i]];
      if (line.endsWith(":") && !line.startsWith(" ") && previous !== "" && !previous.startsWith(" ")) {
        lines.push(line);
      }
    }
  }
  expect(lines.length).toBeGreaterThan(3);
  const text = flat(man().stdout);
  expect(lines.filter((line) => !text.includes(flat(line)))).toEqual([]);
});

/**
 * The entries of a help text's option tables (its "Options:" and "Global
 * options:" blocks), each as one line: an entry's first line names the option,
 * lines indented further continue its description.
 */
function optionEntries(help: string): string[] {
  const entries: string[] = [];
  let inTable = false;
  for (const line of help.split("\n")) {
    if (/^(Global o|O)ptions[^:]*:$/.test(line)) inTable = true;
    else if (line === "" || !line.startsWith(" ")) inTable = false;
    else if (inTable && /^ {2}(-\w, | {4})--/.test(line)) entries.push(line);
    else if (inTable && entries.length > 0) entries[entries.length - 1] += ` ${line}`;
  }
  return entries.map(flat).map((entry) => entry.trim());
}

test("every option line of every 'qmpctl help COMMAND' is on the page, global ones a command words its own way too", async () => {
  const text = flat(man().stdout);
  const missing: string[] = [];
  let count = 0;
  for (const [name, entry] of Object.entries(COMMANDS)) {
    // As `qmpctl help NAME` prints it: the command's own options, then the global ones as it takes them.
    const entries = optionEntries(commandHelp(entry, (await entry.load()).help()));
    count += entries.length;
    missing.push(...entries.filter((option) => !text.includes(option)).map((option) => `${name}: ${option}`));
  }
  expect(count).toBeGreaterThan(Object.keys(COMMANDS).length * 5);
  expect(missing).toEqual([]);
});
