/**
 * `qmpctl completions bash|zsh|fish`: a completion script for the shell; and
 * `qmpctl completions complete -- WORD...`, what the scripts call on TAB: the
 * candidates for the last word of a command line (the words after `qmpctl`),
 * one per line, or FILES_DIRECTIVE when the word is a local file name (the
 * shell completes those itself; after -s unix:, the name after the unix:). QMP names come from the schema
 * cache, so a TAB costs a connection and `query-target`, not a schema fetch;
 * the guest agent's names come from the built-in table, with no connection.
 *
 * @module
 */
import { exitStatusHelp } from "./exit_status.ts";
import type { QmpClient } from "../lib/client.ts";
import { AGENT_COMMANDS, agentSchemaDigest } from "../lib/agent_schema.ts";
import { isGlob } from "../lib/glob.ts";
import { completeArgumentWord, loadSchema, Schema, type SchemaScope } from "../lib/schema/mod.ts";
import { COMPLETION_SCRIPTS, FILES_DIRECTIVE } from "./completion_scripts.ts";
import { agentForm, formRefuses } from "./ga_forms.ts";
import { writeStdout } from "./io/output.ts";
import { env } from "./io/process.ts";
import { findOption, type OptionSpec, type OptionTable, refusedNames, tableOptions, UsageError } from "./options.ts";
import { type CommandContext, withClient } from "./session.ts";

export const help = (): string =>
  `Usage: qmpctl completions bash|zsh|fish

Print a completion script for the shell. It completes qmpctl's commands and
options and, when a socket is known (-s on the line, or QMPCTL_SOCKET), the
QMP command names after 'exec', their arguments (exec blockdev-add dri<TAB>
gives driver=), enum and bool values after '=', and event names after
'wait-event', 'events' and --wait-event. After 'ga' it completes exec, cp,
wait and the guest agent's commands and their arguments (from the agent's
schema built into qmpctl: no connection); 'job' and 'migrate' complete to
wait, 'job wait' to the ids of QEMU's jobs (query-jobs); local file names
where a file goes (-s PATH or unix:PATH, ga --stdin, ga cp, batch, proxy
--listen); and nothing in the QEMU command line of 'proxy' or the program's
of 'ga exec', which are yours. QMP names come from the schema cache (see
'qmpctl help describe'): a TAB connects and reads the cache, and fetches the
schema only the first time for a QEMU build.

Install (mkdir -p the directory first: a fresh account has none):
  bash  qmpctl completions bash \\
          > ~/.local/share/bash-completion/completions/qmpctl
        (or add  source <(qmpctl completions bash)  to ~/.bashrc)
  zsh   qmpctl completions zsh > ~/.zfunc/_qmpctl
        with  fpath+=(~/.zfunc)  before compinit in ~/.zshrc
        (or: source <(qmpctl completions zsh)  after compinit)
  fish  qmpctl completions fish \\
          > ~/.config/fish/completions/qmpctl.fish

${exitStatusHelp(["OK", "USAGE", "OUTPUT"])}`;

/**
 * What a candidate may hold: the shells insert it into the line as it is, so a name from a hostile QEMU with
 * `$(...)`, a quote or a newline in it would run when Enter is pressed; no real QMP name holds one.
 */
const SHELL_SAFE = /^[\w.:=,/+@%-]+$/;

/** How long a TAB may wait for QEMU (a monitor serves one client at a time). */
const COMPLETION_CONNECT_MS = 1000;

export async function run(context: CommandContext): Promise<number> {
  const [what, ...line] = context.words;
  if (what === "complete") {
    const candidates = (await complete(context, line).catch(() => [])) // a TAB never prints errors
      .filter((candidate) => SHELL_SAFE.test(candidate));
    if (candidates.length > 0) await writeStdout(candidates.join("\n") + "\n");
    return 0;
  }
  const script = what !== undefined && line.length === 0 && Object.hasOwn(COMPLETION_SCRIPTS, what)
    ? COMPLETION_SCRIPTS[what]
    : undefined;
  if (script === undefined) throw new UsageError("completions takes one of: bash, zsh, fish");
  await writeStdout(script);
  return 0;
}

/** What the words before the one being completed say. */
interface LineState {
  /** Words that are neither options nor their values: the command and its words. */
  positionals: string[];
  /**
   * The -s value as the shell will read it, then as given: zsh and fish hand
   * their words over read already, where a quote, \ or $ is the name's own.
   */
  sockets?: string[];
  /** The option whose value is being completed, if any. */
  pendingOption?: OptionSpec;
  /** After `--`: no more options. */
  ended: boolean;
  /** The options given, by name: one that is not repeatable is not offered again. */
  given: string[];
}

function readLine(table: OptionTable, words: readonly string[]): LineState {
  const specs = tableOptions(table);
  const state: LineState = { positionals: [], ended: false, given: [] };
  const takeValue = (spec: OptionSpec | undefined, value: string | undefined, i: number): number => {
    if (spec) state.given.push(spec.name);
    if (!spec?.value) return i;
    if (value === undefined && i + 1 >= words.length) state.pendingOption = spec;
    const ownWord = value === undefined; // a shell expands ~ only at the start of a word
    if (ownWord) value = words[++i];
    if (spec.name === "socket" && value !== undefined) {
      state.sockets = [...new Set([asTheShellReadsIt(value, ownWord), value])];
    }
    return i;
  };
  let lineFlags = false; // an HMP line's single-dash words are its own, as in parsing
  for (let i = 0; i < words.length; i++) {
    const word = words[i];
    if (state.ended || word === "-" || !word.startsWith("-") || (lineFlags && !word.startsWith("--"))) {
      state.positionals.push(word);
      // ga exec's PROG: the words after it are PROG's, as in parsing (nothing of qmpctl's to complete).
      const start = table.commandLine?.(state.positionals);
      if (start === "all") state.ended = true;
      lineFlags = start === "short";
    } else if (word === "--") state.ended = true;
    else if (word.startsWith("--")) {
      const eq = word.indexOf("=");
      const spec = findOption(specs, "name", word.slice(2, eq < 0 ? undefined : eq));
      i = takeValue(spec, eq < 0 ? undefined : word.slice(eq + 1), i);
    } else {
      for (let j = 1; j < word.length; j++) {
        const spec = findOption(specs, "short", word[j]);
        if (!spec?.value) {
          if (spec) state.given.push(spec.name); // a flag: -p, -v
          continue;
        }
        i = takeValue(spec, j + 1 < word.length ? word.slice(j + 1) : undefined, i);
        break;
      }
    }
  }
  return state;
}

/** The candidates for the last of `line` (the words after `qmpctl`, the last one being typed). */
async function complete(context: CommandContext, line: readonly string[]): Promise<string[]> {
  const current = line.at(-1) ?? "";
  const table = context.optionTable;
  const state = readLine(table, line.slice(0, -1));
  const [command, ...words] = state.positionals;
  const entry = command !== undefined && Object.hasOwn(table.commands, command) ? table.commands[command] : undefined;
  const matching = (names: readonly string[]) => names.filter((n) => n.startsWith(current));

  if (state.pendingOption) {
    if (state.pendingOption.name === "wait-event") return matching(await qmpNames(context, state, "events"));
    return filesFor(state.pendingOption.value, "", current);
  }
  const refused = refusedNames(entry?.refuses);
  const options = [...table.global.filter((s) => !refused.includes(s.name)), ...(entry?.options ?? [])];
  const assigned = state.ended ? null : /^--([\w-]+)=(.*)$/.exec(current); // --NAME=VALUE: its value
  if (assigned) {
    const [, name, value] = assigned;
    const spec = findOption(options, "name", name);
    if (name === "wait-event") {
      return (await qmpNames(context, state, "events")).filter((n) => n.startsWith(value)).map((n) => `--${name}=${n}`);
    }
    return filesFor(spec?.value, `--${name}=`, value);
  }
  if (current.startsWith("-") && !state.ended) {
    // ga's options of one form only where its first word makes that form (ga exec: --stdin, not --args).
    const form = command === "ga" && words.length > 0 ? agentForm(words[0]) : undefined;
    const offered = options.filter((s) =>
      (!s.form || !form || s.form === form) && !(form && formRefuses(form, s.name, state.given.includes("json"))) &&
      (s.repeatable || !state.given.includes(s.name))
    );
    return matching(offered.map((s) => `--${s.name}`)); // not one given already, unless it may be repeated
  }
  if (command === undefined) return matching([...Object.keys(table.commands), "help"]);
  if (command === "help" || (command === "completions" && words.length === 0)) {
    return matching(
      command === "help" ? (words.length === 0 ? Object.keys(table.commands) : []) : ["bash", "fish", "zsh"],
    );
  }
  switch (command) {
    case "exec":
      if (words.length === 0) return matching(await qmpNames(context, state, "commands"));
      return await withLineSchema(
        context,
        state,
        { command: words[0] },
        (schema) => completeArgumentWord(schema, words[0], words.slice(1), current),
      ) ?? [];
    case "wait-event":
    case "events": // events NAME...: the names to print
      return matching(await qmpNames(context, state, "events"));
    case "batch": // batch FILE
      return words.length === 0 ? [FILES_DIRECTIVE] : [];
    case "describe":
      return words.length === 0 ? matching(await qmpNames(context, state, "both")) : [];
    case "ga":
      return completeAgentWord(words, current);
    case "job": // job wait ID...: the jobs QEMU has, each once
      if (words.length === 0) return matching(["wait"]);
      return words[0] === "wait" ? matching(await jobIds(context, state)).filter((id) => !words.includes(id)) : [];
    case "migrate":
      return words.length === 0 ? matching(["wait"]) : [];
    default:
      return [];
  }
}

/**
 * The answer for the value of an option whose placeholder is `placeholder`,
 * typed as `value` after `before` (`--socket=`, or nothing for a word of its
 * own): a local file, or none. A socket (ADDR, proxy's --listen PATH) may be
 * written unix:PATH, whose PATH is the file; a TCP or ssh:// address names none.
 */
function filesFor(placeholder: string | undefined, before: string, value: string): string[] {
  if (placeholder === "FILE") return filesAfter(before);
  if (placeholder !== "ADDR" && placeholder !== "PATH") return [];
  if (value.startsWith("unix:")) return filesAfter(`${before}unix:`);
  return /^(?:tcp:|ssh:|\[)/.test(value) ? [] : filesAfter(before);
}

/** FILES_DIRECTIVE, with what comes before the file's name in the word when anything does. */
const filesAfter = (before: string): string[] => before === "" ? [FILES_DIRECTIVE] : [FILES_DIRECTIVE, before];

/** The words of `ga` (after it, up to the one being typed): forms, agent commands and their arguments. */
function completeAgentWord(words: readonly string[], current: string): string[] {
  const [form, ...rest] = words;
  if (form === undefined) {
    return ["cp", "exec", "wait", ...Object.keys(AGENT_COMMANDS)].filter((n) => n.startsWith(current));
  }
  // ga cp SRC DST: a local file, or :/path in the guest (which the agent cannot list).
  if (form === "cp") return rest.length < 2 && !current.startsWith(":") ? [FILES_DIRECTIVE] : [];
  if (!Object.hasOwn(AGENT_COMMANDS, form)) return []; // exec and wait take no words of theirs; PROG is the guest's
  return completeArgumentWord(new Schema(agentSchemaDigest()), form, rest, current);
}

async function qmpNames(context: CommandContext, state: LineState, which: "commands" | "events" | "both") {
  return await withLineSchema(context, state, "names", (schema) => [
    ...(which === "events" ? [] : schema.commandNames()),
    ...(which === "commands" ? [] : schema.eventNames()),
  ]) ?? [];
}

/** Load the schema (scope) of the QEMU the line names, briefly connected; undefined when none is named. */
async function withLineSchema<T>(
  context: CommandContext,
  state: LineState,
  scope: SchemaScope,
  use: (schema: Awaited<ReturnType<typeof loadSchema>>) => T,
): Promise<T | undefined> {
  return await withConnection(
    context,
    state,
    async (client, signal) => use(await loadSchema(client, { signal, scope })),
  );
}

/** The ids of QEMU's jobs (query-jobs), for `job wait ID...`; none when no socket is named. */
async function jobIds(context: CommandContext, state: LineState): Promise<string[]> {
  return await withConnection(context, state, async (client, signal) => {
    const jobs = await client.execute("query-jobs", undefined, { signal }) as { id: string }[];
    return jobs.map((job) => job.id);
  }) ?? [];
}

/**
 * A word of the line as the shell will pass it when the line runs: bash's
 * script hands it over as typed (`read -ra` keeps quotes, none expands ~),
 * so `-s ~/vm1.qmp`, `-s "$HOME/vm1.qmp"` and `-s '/run/vm1.qmp'` name the
 * sockets they will name then (zsh's and fish's come read already, but for
 * ~ and $: see LineState.sockets). Only what a socket path needs: quotes,
 * \ escapes, a leading ~ (`tilde`: when the value is a word of its own, not
 * after `--socket=`), $NAME and ${NAME} from the environment (a shell
 * variable that is not exported is not seen); not $'...'. bash splits a
 * quoted value with a blank in it before qmpctl sees it.
 */
export function asTheShellReadsIt(word: string, tilde = true): string {
  const variable = (braced?: string, bare?: string) => env(braced ?? bare ?? "") ?? "";
  let read = "";
  for (const { groups: part, index } of word.matchAll(SHELL_WORD_PART)) {
    const { single, double, escaped, braced, bare, text } = part!;
    if (single !== undefined) read += single;
    else if (double !== undefined) { // in double quotes a \ escapes only $ ` " \ and a newline
      read += double.replace(/\\([$`"\\\n])|\$(?:\{(\w+)\}|(\w+))/g, (_, escape, b, n) => escape ?? variable(b, n));
    } else if (escaped !== undefined) read += escaped;
    else if (text === undefined) read += variable(braced, bare);
    // ~ alone, or before an unquoted /: not ~\/ nor ~$X/, and ~user is not looked up (left as typed)
    else if (tilde && index === 0 && (text.startsWith("~/") || (text === "~" && word === "~"))) {
      read += (env("HOME") ?? "") + text.slice(1);
    } else read += text;
  }
  return read;
}

/** One part of a word as typed: quoted (maybe not closed yet), an escaped character, a variable, or plain text. */
const SHELL_WORD_PART =
  /'(?<single>[^']*)'?|"(?<double>(?:[^"\\]|\\[\s\S])*)"?|\\(?<escaped>[\s\S]?)|\$(?:\{(?<braced>\w+)\}|(?<bare>\w+))|(?<text>[^'"\\$]+|\$)/g;

/** Run `use` on a brief connection to the QEMU the line names (bounded); undefined when none is named. */
async function withConnection<T>(
  context: CommandContext,
  state: LineState,
  use: (client: QmpClient, signal: AbortSignal) => Promise<T>,
): Promise<T | undefined> {
  const named = state.sockets ?? [env("QMPCTL_SOCKET") ?? ""];
  if (!named[0]) return undefined;
  // Several VMs (a glob): the names of the first that answers (the VMs of one fleet run one QEMU build, mostly).
  const sockets = isGlob(named[0])
    ? await (await import("./targets.ts")).expandTargets([named[0]]).catch(() => []) ?? []
    : named;
  const signal = AbortSignal.any([context.signal, AbortSignal.timeout(3 * COMPLETION_CONNECT_MS)]);
  for (const [i, one] of sockets.entries()) {
    const global = { ...context.global, socket: one, connectTimeoutMs: COMPLETION_CONNECT_MS, verbose: false };
    try {
      return await withClient({ ...context, global, signal }, (client) => use(client, signal));
    } catch (error) {
      if (i === sockets.length - 1 || signal.aborted) throw error; // a stale or busy one: the next
    }
  }
}
