/**
 * The command line: options before or after the command and its words, `--`
 * ending the options, every unknown option an error. A small parser of our
 * own: it takes each value as the user typed it (`--args -`, `--match
 * id=0010`), which minimist-style parsers coerce or misread.
 *
 * @module
 */
import { formatTable } from "./exit_status.ts";

/** A usage error: the command line cannot be run as written (exit 2). */
export class UsageError extends Error {
  override name = "UsageError";
  readonly code = "USAGE";
}

/**
 * `--NAME` (or `-N`) that no command takes, met after the words `before` (the command's name first, when it
 * came first): for a "did you mean" among the names that command takes, or else where its options are
 * listed (cli.ts adds either).
 */
export class UnknownOptionError extends UsageError {
  constructor(readonly option: string, readonly before: readonly string[], readonly dashes: "-" | "--" = "--") {
    super(`unknown option ${dashes}${option}`);
  }
}

/** One option: its long name, an optional one-letter alias, whether it takes a value. */
export interface OptionSpec {
  name: string;
  short?: string;
  value?: string; // the value's placeholder in help text; absent for a flag
  repeatable?: boolean;
  /**
   * Given twice, the last counts (a setting: an alias's default, then the command line's own, as curl and
   * timeout(1) take theirs); any other option with a value given twice is a usage error.
   */
  lastWins?: true;
  help: string;
  /** Taken by one form of its command only (ga: `exec`, or an agent command): see cli/ga_forms.ts. */
  form?: string;
  /** Given, it makes its command wait (exec --wait-event), as a command that waits does (CommandEntry.waits). */
  waits?: true;
}

/** Global options a command refuses (a usage error when given; left out of its help and completion), and why. */
export interface RefusedOptions {
  /**
   * Their names, separated by blanks (read with `refusedNames`): a string, since a constant array in the
   * option table takes a block of JavaScriptCore's heap on every start (see the README's speed notes).
   */
  names: string;
  /** What the command does instead, after its name: "runs on every target at once". */
  why: string;
}

/** The names of the options `refuses` lists (none without it). */
export function refusedNames(refuses: RefusedOptions | undefined): string[] {
  return refuses ? refuses.names.split(" ") : [];
}

/**
 * Which options exist, for the parser and for completion: the global ones,
 * and each command's own.
 */
export interface OptionTable {
  global: readonly OptionSpec[];
  commands: Readonly<Record<string, { readonly options: readonly OptionSpec[]; readonly refuses?: RefusedOptions }>>;
  /** Where the words become another program's command line (for completion, as for parsing). */
  commandLine?: CommandLineStart;
}

/** Every option of a table, each once (a command's spec wins over a global one of the same name). */
export function tableOptions(table: OptionTable): OptionSpec[] {
  // Plain loops: this runs at every start, and the first use of an array or
  // Map builtin (map, a spread, Map.forEach) costs a fresh process ~0.2-1 ms.
  const all: OptionSpec[] = [], at = new Map<string, number>();
  const add = (s: OptionSpec) => {
    const i = at.get(s.name);
    if (i === undefined) at.set(s.name, all.push(s) - 1);
    else all[i] = s;
  };
  for (const s of table.global) add(s);
  for (const entry of Object.values(table.commands)) for (const s of entry.options) add(s);
  return all;
}

/**
 * The options given, by long name: a flag maps to `true`, a value option to
 * its value, a repeatable one to every value. Read them by kind with `text`,
 * `list` and `flag` rather than casting what `get` returns.
 */
export class ParsedOptions extends Map<string, string | true | string[]> {
  /** The value of a value option, or undefined when it was not given. */
  text(name: string): string | undefined {
    const value = this.get(name);
    return typeof value === "string" ? value : undefined;
  }

  /** Every value of a repeatable option, in order; empty when it was not given. */
  list(name: string): string[] {
    const value = this.get(name);
    return Array.isArray(value) ? value : [];
  }

  /** Whether a flag (or any option) was given. */
  flag(name: string): boolean {
    return this.has(name);
  }
}

/** What was parsed: words in order, and each option's value(s). */
export interface ParsedArgs {
  words: string[];
  options: ParsedOptions;
}

/**
 * Where the words become another program's command line, after the words so
 * far: "all" (ga exec's PROG: every word after it is PROG's, as after ssh's
 * command), "short" (an HMP line: its flags are single-dash, `info block -v`;
 * qmpctl's long options still count), or undefined.
 */
export type CommandLineStart = (words: readonly string[]) => "all" | "short" | undefined;

/**
 * The spec whose long name (`key` "name") or letter ("short") is `value`:
 * the last of them, where several are (a command's over a global one).
 * Searched for each option given, not made into maps: a command line names
 * a few of the ~60 specs, and maps of all cost a one-shot exec ~0.15 M
 * instructions (~2%).
 */
export function findOption(
  specs: readonly OptionSpec[],
  key: "name" | "short",
  value: string,
): OptionSpec | undefined {
  for (let i = specs.length - 1; i >= 0; i--) if (specs[i][key] === value) return specs[i];
}

/**
 * Parse `argv` against `specs`; where two specs share a name or a letter,
 * the later one counts.
 */
export function parseArgs(
  argv: readonly string[],
  specs: readonly OptionSpec[],
  commandLine: CommandLineStart = () => undefined,
): ParsedArgs {
  const words: string[] = [];
  const options = new ParsedOptions();

  const set = (spec: OptionSpec, value: string | true) => {
    if (spec.repeatable) options.set(spec.name, [...options.list(spec.name), value as string]);
    else if (options.has(spec.name) && spec.value && !spec.lastWins) throw new UsageError(`--${spec.name} given twice`);
    else options.set(spec.name, value);
  };

  let mode: ReturnType<CommandLineStart>;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--") {
      words.push(...argv.slice(i + 1));
      break;
    }
    if (mode === "all") {
      words.push(...argv.slice(i));
      break;
    }
    if (mode === "short" && arg.startsWith("-") && !arg.startsWith("--")) {
      words.push(arg);
      continue;
    }
    if (arg.startsWith("--")) {
      const eq = arg.indexOf("=");
      const name = arg.slice(2, eq < 0 ? undefined : eq);
      const spec = findOption(specs, "name", name);
      if (!spec) throw new UnknownOptionError(name, words);
      if (!spec.value) {
        if (eq >= 0) throw new UsageError(`--${name} takes no value`);
        set(spec, true);
      } else if (eq >= 0) set(spec, arg.slice(eq + 1));
      else if (i + 1 < argv.length) set(spec, argv[++i]);
      else throw new UsageError(`--${name} needs a value (${spec.value})`);
    } else if (arg.startsWith("-") && arg.length > 1) {
      for (let j = 1; j < arg.length; j++) {
        const spec = findOption(specs, "short", arg[j]);
        if (!spec) throw new UnknownOptionError(arg[j], words, "-");
        if (!spec.value) {
          set(spec, true);
          continue;
        }
        if (j + 1 < arg.length) set(spec, arg.slice(j + 1));
        else if (i + 1 < argv.length) set(spec, argv[++i]);
        else throw new UsageError(`-${arg[j]} needs a value (${spec.value})`);
        break;
      }
    } else {
      words.push(arg);
      mode = commandLine(words);
    }
  }
  return { words, options };
}

/** Help lines for a list of options, aligned. */
export function formatOptions(specs: readonly OptionSpec[]): string {
  return formatTable(
    specs.map((s) => [`${s.short ? `-${s.short}, ` : "    "}--${s.name}${s.value ? ` ${s.value}` : ""}`, s.help]),
  );
}
