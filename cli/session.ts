/**
 * What a command runs with: its words and options, the signal built from
 * `--timeout` and SIGINT, a connected client, and JSON output.
 *
 * @module
 */
import { QmpClient } from "../lib/client.ts";
import { CommandError } from "../lib/errors.ts";
import { env, writeStderrLine, writeStdout } from "./io.ts";
import { UsageError } from "./options.ts";

/** The global options, read and checked. */
export interface GlobalOptions {
  socket?: string;
  /** Bound on the whole run in ms; 0 for none. */
  timeoutMs: number;
  connectTimeoutMs: number;
  pretty: boolean;
  raw: boolean;
  verbose: boolean;
}

/** Everything a command module gets. */
export interface CommandContext {
  /** The words after the command name. */
  words: string[];
  /** Every option given, by long name. */
  options: Map<string, string | true | string[]>;
  global: GlobalOptions;
  /** Aborts on SIGINT and when `--timeout` runs out. */
  signal: AbortSignal;
}

/**
 * Connect and negotiate, with `-s` or `$QMPCTL_SOCKET`; `pipeline`: commands
 * go out before negotiation is answered (see ConnectOptions.pipeline).
 */
export function connect(context: CommandContext, options: { pipeline?: boolean } = {}): Promise<QmpClient> {
  const address = context.global.socket ?? env("QMPCTL_SOCKET");
  if (!address) throw new UsageError("no address: give -s/--socket ADDR or set QMPCTL_SOCKET");
  return QmpClient.connect(address, {
    signal: context.signal,
    connectTimeout: context.global.connectTimeoutMs,
    pipeline: options.pipeline,
    log: context.global.verbose
      ? (direction, json) => writeStderrLine(`${direction === "send" ? ">" : "<"} ${json}`)
      : undefined,
  });
}

/** One JSON value as a line: compact, or indented with `--pretty`. */
export function formatJson(value: unknown, pretty: boolean): string {
  return JSON.stringify(value, null, pretty ? 2 : undefined) + "\n";
}

/** Print one JSON value on stdout. */
export function printJson(context: CommandContext, value: unknown): Promise<void> {
  return writeStdout(formatJson(value, context.global.pretty));
}

/** An option's single value, or undefined. */
export function optionValue(context: CommandContext, name: string): string | undefined {
  const value = context.options.get(name);
  return typeof value === "string" ? value : undefined;
}

/**
 * Run one command and print `render(return)`; with `--raw`, the whole
 * response object instead, an error response too (the CommandError is still
 * thrown, for exit 1).
 */
export async function executeAndPrint(
  context: CommandContext,
  client: QmpClient,
  command: string,
  args: Record<string, unknown> | undefined,
  render: (value: unknown) => string,
): Promise<void> {
  let value: unknown;
  try {
    value = await client.execute(command, args, { signal: context.signal });
  } catch (error) {
    if (context.global.raw && error instanceof CommandError) await printJson(context, error.response);
    throw error;
  }
  return context.global.raw ? printJson(context, { return: value }) : writeStdout(render(value));
}
