/**
 * The human monitor (HMP) through QMP: `human-monitor-command` runs one HMP
 * command line, on the monitor's current CPU or on `cpu-index`, and returns
 * the text the monitor printed (QEMU's QMP reference, "human-monitor-command").
 * The monitor ends lines with CRLF; the text here has LF.
 *
 * @module
 */
import type { QmpClient } from "./client.ts";
import { excerpt, ProtocolError } from "./errors.ts";

/**
 * A CPU index as a user writes it (`--cpu 1`, `cpu 1`): decimal digits, up
 * to 2^31 - 1 (QEMU keeps the index in 32 bits: 4294967296 would run on CPU
 * 0); undefined for anything else.
 */
export function parseCpuIndex(text: string): number | undefined {
  if (!/^\d+$/.test(text)) return undefined;
  const index = Number(text);
  return index <= 0x7fff_ffff ? index : undefined;
}

/**
 * The arguments of `human-monitor-command` for `commandLine`, on CPU
 * `cpuIndex` when one is given.
 *
 * @example
 * ```ts
 * import { hmpArguments } from "./hmp.ts";
 * hmpArguments("info registers", 1); // { "command-line": "info registers", "cpu-index": 1 }
 * ```
 */
export function hmpArguments(commandLine: string, cpuIndex?: number): Record<string, unknown> {
  return cpuIndex === undefined
    ? { "command-line": commandLine }
    : { "command-line": commandLine, "cpu-index": cpuIndex };
}

/**
 * The text of a `human-monitor-command` return value, with LF line ends.
 *
 * @example
 * ```ts
 * import { hmpText } from "./hmp.ts";
 * hmpText("VM status: running\r\n"); // "VM status: running\n"
 * ```
 * @param from the address it came from, for the error's message (as the client's other protocol errors name it)
 * @throws {ProtocolError} for a value that is no text (QEMU's is always)
 */
export function hmpText(value: unknown, from?: string): string {
  if (typeof value !== "string") { // QEMU's human-monitor-command returns text, always
    throw new ProtocolError(
      `${from === undefined ? "" : `${from}: `}received ${excerpt(value)} as the human monitor's text`,
    );
  }
  return value.replaceAll("\r\n", "\n");
}

/**
 * Run one HMP command line and return its text (with LF). The monitor has no
 * error status: its complaints are part of the text.
 *
 * @example
 * ```ts
 * import { QmpClient } from "./client.ts";
 * import { humanMonitorCommand } from "./hmp.ts";
 *
 * const qmp = await QmpClient.connect("/run/vm1.qmp");
 * try {
 *   console.log(await humanMonitorCommand(qmp, "info status", { signal: AbortSignal.timeout(5000) }));
 * } finally {
 *   await qmp.close();
 * }
 * ```
 * @throws {CommandError} when QEMU rejects the call itself (a CPU index that does not exist)
 */
export async function humanMonitorCommand(
  client: QmpClient,
  commandLine: string,
  options: { cpuIndex?: number; signal?: AbortSignal } = {},
): Promise<string> {
  const args = hmpArguments(commandLine, options.cpuIndex);
  return hmpText(await client.execute("human-monitor-command", args, { signal: options.signal }), client.address.text);
}
