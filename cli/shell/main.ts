/**
 * `qmpctl shell [--hmp]`: connect, pick the QMP or HMP shell, and run it on
 * the terminal or over piped stdin.
 *
 * @module
 */
import type { QmpClient } from "../../lib/client.ts";
import { formatDuration } from "../../lib/duration.ts";
import { ConnectTimeoutError } from "../../lib/errors.ts";
import { escapeControls } from "../controls.ts";
import { writeStderrLine } from "../io/output.ts";
import { stdinIsTerminal, stdoutIsTerminal } from "../io/terminal.ts";
import { type CommandContext, withClient } from "../session.ts";
import { ShellContext } from "./context.ts";
import { HmpMode } from "./hmp_mode.ts";
import { runInteractive } from "./interactive.ts";
import { runPiped } from "./piped.ts";
import { QmpMode } from "./qmp_mode.ts";

export async function runShell(context: CommandContext): Promise<number> {
  const hmp = context.options.flag("hmp");
  const interactive = stdinIsTerminal() && stdoutIsTerminal();
  if (stdinIsTerminal() && !interactive) { // 'qmpctl shell | tee log': a person types, with no prompt to see
    writeStderrLine(
      "qmpctl: stdout is not a terminal: no prompt, line editing or completion; each line runs as typed " +
        "and prints one JSON line (Ctrl-D ends)",
    );
  }
  const { global, signal } = context;
  // On a terminal, -v shows each command sent above its result; the wire log
  // on stderr would break the line being typed whenever an event came in.
  const quiet = interactive ? { ...context, global: { ...global, verbose: false } } : context;
  return await withClient(quiet, async (client) => {
    const name = interactive ? await vmName(client, signal, global.connectTimeoutMs) : "QEMU"; // for the prompt
    const shell = new ShellContext(client, interactive);
    const mode = hmp ? new HmpMode(shell, name) : new QmpMode(shell, name);
    if (!interactive) return await runPiped({ client, shell, mode, pretty: global.pretty, signal });
    const { major, minor, micro } = client.greeting.version;
    const banner = `Connected to QEMU ${major}.${minor}.${micro} at ${client.address.text}` +
      ` (${hmp ? "human monitor" : "QMP"}); 'help' lists local commands.`;
    return await runInteractive({
      client,
      shell,
      mode,
      banner,
      pretty: global.pretty,
      raw: global.raw,
      verbose: global.verbose,
      signal,
    });
  });
}

/** The VM's name (`-name`) for the prompt, its control characters escaped; "QEMU" when it has none. */
async function vmName(client: QmpClient, signal: AbortSignal, connectTimeoutMs: number): Promise<string> {
  // Part of starting the shell, so bounded as connecting is: through a proxy, a
  // stopped QEMU's monitor greets and negotiates, then answers nothing.
  const limit = connectTimeoutMs > 0 ? AbortSignal.timeout(connectTimeoutMs) : undefined;
  const bound = limit ? AbortSignal.any([signal, limit]) : signal;
  const answer = await client.execute("query-name", undefined, { signal: bound }).catch((error) => {
    if (signal.aborted) throw error; // --timeout or Ctrl-C ends the shell before it starts
    if (limit?.aborted) {
      throw new ConnectTimeoutError(
        `no answer to query-name from ${client.address.text} within ${formatDuration(connectTimeoutMs)} ` +
          "(the shell asks it for its prompt): QEMU may be stopped or hung",
      );
    }
    return undefined; // no name to show
  });
  const name = (answer as { name?: unknown } | undefined)?.name;
  return typeof name === "string" && name !== "" ? escapeControls(name) : "QEMU";
}
