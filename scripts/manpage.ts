/**
 * Write qmpctl(1) in roff from the help texts themselves (cli/help.ts and each
 * command's `help`), so `man qmpctl` and `--help` say the same things.
 *   bun scripts/manpage.ts > dist/qmpctl.1
 *
 * A help text is blocks of lines separated by blank lines. A block's first
 * line, when it ends in ':', is a heading (a line ending in ':' in the middle
 * of a paragraph is prose, its colon kept); indented lines are kept as they are (tables,
 * examples), and so is a command's Usage line with the lines aligned under
 * it; other lines are prose, filled by man, neither hyphenated nor justified
 * (names such as --connect-timeout are copied from the page).
 */
import { commandGlobalOptions, commandOwnHelp, generalHelp } from "../cli/help.ts";
import { setTableWidth } from "../cli/exit_status.ts";
import { formatOptions } from "../cli/options.ts";
import { type CommandEntry, COMMANDS, GLOBAL_OPTIONS } from "../cli/registry.ts";
import { VERSION } from "../cli/version.ts";

/** General-help headings that become sections of their own. */
const SECTIONS: Record<string, string> = {
  "Exit status": "EXIT STATUS",
  "Environment": "ENVIRONMENT",
  "Files": "FILES",
  "Examples": "EXAMPLES",
};

/** Text made safe for roff: backslashes, and a leading '.' or "'" that would read as a request. */
function escape(line: string): string {
  const text = line.replaceAll("\\", "\\e").replaceAll("-", "\\-");
  return /^[.']/.test(text) ? `\\&${text}` : text;
}

interface Block {
  heading?: string;
  lines: string[];
}

/** Split a help text into blocks, each under the heading line that opened it, if any. */
function blocks(text: string): Block[] {
  const result: Block[] = [];
  let current: Block = { lines: [] };
  const flush = () => {
    if (current.heading !== undefined || current.lines.length > 0) result.push(current);
  };
  let previous = "";
  for (const line of text.split("\n")) {
    // Only a line that starts a block: after a blank line, or first.
    const heading = previous === "" ? /^([A-Z][^:]*):$/.exec(line) : null;
    previous = line;
    if (heading) {
      flush();
      current = { heading: heading[1], lines: [] };
    } else if (line === "" && current.lines.length > 0 && !current.lines[0].startsWith(" ")) {
      flush(); // a blank line ends a prose paragraph; indented blocks may hold blank lines
      current = { lines: [] };
    } else if (line !== "" || current.lines.length > 0) {
      current.lines.push(line);
    }
  }
  flush();
  return result;
}

/** One block's body: runs of indented lines kept as they are, other lines filled. */
function body(lines: string[]): string[] {
  const out: string[] = [];
  let preformatted = false;
  for (const line of lines) {
    const indented: boolean = line.startsWith(" ") || (preformatted && line === "");
    if (indented !== preformatted) {
      out.push(indented ? ".PP\n.nf\n.RS 2" : ".RE\n.fi\n.PP");
      preformatted = indented;
    } else if (!indented && line === "") {
      out.push(".PP");
      continue;
    }
    if (line !== "" || preformatted) out.push(preformatted ? escape(line.replace(/^ {1,2}/, "")) : escape(line));
  }
  while (out.at(-1) === "") out.pop();
  if (preformatted) out.push(".RE\n.fi");
  return out;
}

/** A help text as roff, headings as bold lead-ins (sections and subsections are taken by the page's outline). */
function render(text: string): string[] {
  return blocks(text).flatMap(renderBlock);
}

function renderBlock(block: Block): string[] {
  return [
    ".PP",
    ...(block.heading === undefined ? [] : [`.B ${escape(block.heading)}`, ".br"]),
    ...body(keptUsage(block.lines)),
  ];
}

/**
 * A block's lines, with a leading "Usage:" line that has lines aligned under
 * it indented as they are, so that body() keeps them together as typed (a
 * Usage line alone stays prose, wrapped to the page).
 */
function keptUsage(lines: string[]): string[] {
  if (!lines[0]?.startsWith("Usage: ")) return lines;
  let end = 1;
  while (end < lines.length && lines[end].startsWith(" ".repeat("Usage: ".length))) end++;
  return end === 1 ? lines : [...lines.slice(0, end).map((line) => `  ${line}`), ...lines.slice(end)];
}

/**
 * A command's section: its own help and options, as commandOwnHelp gives them,
 * and then the global options it words its own way (ga's -s names the guest
 * agent's socket): the page lists the global options once, and would drop
 * those lines of the command's help.
 */
function commandSection(entry: CommandEntry, help: string): string {
  const differing = commandGlobalOptions(entry).filter((option) => !GLOBAL_OPTIONS.includes(option));
  const own = commandOwnHelp(entry, help);
  return differing.length === 0 ? own : `${own}\n\nGlobal options that differ here:\n${formatOptions(differing)}`;
}

async function page(): Promise<string> {
  setTableWidth(71); // the page sets its preformatted lines 9 columns in, less the help's own 2: 78 in all
  const general = blocks(generalHelp());
  const [usage, ...rest] = general;
  const described = rest.filter((b) => !(b.heading !== undefined && b.heading in SECTIONS));
  const sections = rest.filter((b) => b.heading !== undefined && b.heading in SECTIONS);
  const lines = [
    // The date of the commit it was built from (build.sh), so that a rebuild makes the same page.
    `.TH QMPCTL 1 "${escape(process.env.QMPCTL_MAN_DATE ?? "")}" "qmpctl ${escape(VERSION)}" "User Commands"`,
    ".nh",
    ".ad l",
    ".SH NAME",
    "qmpctl \\- QEMU Monitor Protocol client for scripts and people",
    ".SH SYNOPSIS",
    ...body(usage.lines.map((l) => `  ${l.replace(/^Usage: /, "")}`)),
    ".SH DESCRIPTION",
    ...described.flatMap(renderBlock),
    ".SH COMMANDS",
  ];
  for (const [name, entry] of Object.entries(COMMANDS)) {
    lines.push(`.SS ${escape(name)}`, ...render(commandSection(entry, (await entry.load()).help())));
  }
  for (const section of sections) lines.push(`.SH ${SECTIONS[section.heading!]}`, ...body(section.lines));
  lines.push(".SH SEE ALSO", "qemu(1), jq(1), socat(1)");
  return lines.join("\n").replace(/\n\.PP\n\.PP\n/g, "\n.PP\n") + "\n";
}

await Bun.write(Bun.stdout, await page());
