/**
 * The HMP shell: each line goes to QEMU's human monitor through
 * `human-monitor-command` and its text comes back as the monitor printed it.
 * `cpu N` is local (as in QEMU's python/qemu/qmp/qmp_shell.py, `qmp-shell
 * -H`): it sets the `cpu-index` of the lines that follow. Completion comes from QEMU's own `help` and
 * `info` text, read at the first TAB.
 *
 * @module
 */
import { hmpArguments, hmpText, parseCpuIndex } from "../../lib/hmp.ts";
import { type Completion, matching, wordsBefore } from "./completion.ts";
import { localError, type Outcome, type ShellContext, type ShellMode } from "./context.ts";
import { ArgumentError } from "../../lib/errors.ts";

const HMP_LOCAL_HELP = `Local to qmpctl shell --hmp:
  cpu N             run the following commands on CPU N (its cpu-index)
  events [on|off]   show QMP events as they arrive, or not
  quit, q, exit     leave the shell (QEMU keeps running: quit is not sent)`;

export class HmpMode implements ShellMode {
  readonly kind = "hmp";
  readonly #context: ShellContext;
  readonly #name: string;
  #cpu?: number;
  #names?: Promise<{ commands: string[]; infos: string[] }>;

  constructor(context: ShellContext, name: string) {
    this.#context = context;
    this.#name = name;
  }

  prompt(): string {
    return `(${this.#name}) `;
  }

  inTransaction(): boolean {
    return false;
  }

  cancel(): boolean {
    return false;
  }

  refuse(reason: string): Outcome {
    return localError(new ArgumentError(reason));
  }

  async run(line: string, signal: AbortSignal): Promise<Outcome> {
    const trimmed = line.trim();
    if (trimmed === "" || trimmed.startsWith("#")) return { kind: "none" };
    const words = trimmed.split(/\s+/);
    // q is the monitor's own short quit: here it leaves too, as quit does, rather than end QEMU.
    const local = this.#context.localCommand(words[0] === "q" && words.length === 1 ? ["quit"] : words);
    if (local) return local;
    if (words[0] === "cpu") return this.#selectCpu(words, signal);
    const outcome = await this.#send(trimmed, this.#cpu, signal);
    // At a terminal only: piped, the line's {"return": ...} is QEMU's text as it sent it.
    if (outcome.kind === "text" && trimmed === "help") outcome.note = `\n${HMP_LOCAL_HELP}\n`;
    return outcome;
  }

  async #send(commandLine: string, cpu: number | undefined, signal: AbortSignal): Promise<Outcome> {
    const outcome = await this.#context.execute("human-monitor-command", hmpArguments(commandLine, cpu), signal);
    return outcome.kind === "return" ? { kind: "text", text: hmpText(outcome.value) } : outcome;
  }

  /** `cpu N`: checked by running a harmless command on that CPU first, as qmp-shell does. */
  async #selectCpu(words: string[], signal: AbortSignal): Promise<Outcome> {
    const cpu = words.length === 2 ? parseCpuIndex(words[1]) : undefined;
    if (cpu === undefined) return localError(new ArgumentError("usage: cpu N (a CPU index)"));
    const check = await this.#send("info version", cpu, signal);
    if (check.kind === "error") return check;
    this.#cpu = cpu;
    return { kind: "none" };
  }

  async complete(before: string, signal: AbortSignal): Promise<Completion> {
    const { words, word, start } = wordsBefore(before, false); // a # is QEMU's to read
    const { commands, infos } = await this.#helpNames(signal);
    if (words.length === 0) return { start, candidates: matching(word, [...commands, "cpu", "events", "exit"]) };
    if (words.length === 1 && (words[0] === "info" || words[0] === "i")) {
      return { start, candidates: matching(word, infos) };
    }
    if (words.length === 1 && (words[0] === "help" || words[0] === "?")) {
      return { start, candidates: matching(word, commands) };
    }
    if (words.length === 1 && words[0] === "events") return { start, candidates: matching(word, ["off", "on"]) };
    return { start, candidates: [] };
  }

  /** Command and `info` names from QEMU's `help` and `info` text (fetched once). */
  #helpNames(signal: AbortSignal): Promise<{ commands: string[]; infos: string[] }> {
    this.#names ??= (async () => {
      const text = async (line: string) => {
        const outcome = await this.#send(line, undefined, signal);
        return outcome.kind === "text" ? outcome.text : "";
      };
      return { commands: parseHelpNames(await text("help")), infos: parseInfoNames(await text("info")) };
    })();
    this.#names.catch(() => (this.#names = undefined)); // try again at the next TAB
    return this.#names;
  }
}

/**
 * Names from HMP `help`: each command line starts with its names (`c|cont
 * -- resume emulation`); one-letter aliases are left out.
 */
export function parseHelpNames(help: string): string[] {
  const names: string[] = [];
  for (const line of help.split("\n")) {
    if (!/^[a-z_]/i.test(line)) continue;
    // A one-letter alias (quit|q) is left out, not a command of one letter (i, o, x).
    const aliases = line.split(/\s/, 1)[0].split("|");
    names.push(...aliases.length > 1 ? aliases.filter((name) => name.length > 1) : aliases);
  }
  return names;
}

/** Names from HMP `info`: lines such as `info status  -- show the current VM status`. */
export function parseInfoNames(info: string): string[] {
  return info.split("\n").flatMap((line) => {
    const match = /^info (\S+)/.exec(line);
    return match ? [match[1]] : [];
  });
}
