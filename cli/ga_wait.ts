/** `qmpctl ga wait`: wait until the guest agent answers. @module */
import { sleep } from "../lib/abort.ts";
import { isNotReady } from "../lib/connect_ready.ts";
import { AbortedError, abortErrorFor, ConnectTimeoutError, DisconnectedError, TimeoutError } from "../lib/errors.ts";
import { agentAddress, connectAgent } from "./ga_connect.ts";
import { UsageError } from "./options.ts";
import { type CommandContext, warn } from "./session.ts";

const FIRST_RETRY_MS = 50;
const LONGEST_RETRY_MS = 1000;
/** How long the first sync is given before it is sent again; each later one twice as long, up to --connect-timeout. */
const FIRST_SYNC_MS = 1000;

/**
 * Whether a try's failure may pass with time, and so is tried again: the socket missing or refused (QEMU not
 * started yet; over ssh, its sshd too), closed before the agent answered, or an agent silent (the guest still
 * booting). Not the rest, which waiting cannot change: not a socket, permission denied, an ssh login refused
 * (a host key, a key), no agent's answer; as --wait-socket (connect_ready.ts) tells them apart.
 */
function mayPass(error: unknown): boolean {
  return isNotReady(error) || error instanceof ConnectTimeoutError || error instanceof DisconnectedError;
}

/**
 * Retry until the agent answers the sync, while a try fails as `mayPass`
 * says, after a pause that grows to a second. A silent agent gets a new sync
 * after 1 s, then 2 s, 4 s, ... up to --connect-timeout: an agent that opens
 * its port later never sees a sync sent before (qemu-ga drops what came
 * before it opened it), and a slow one gets time to answer. Only --timeout
 * and SIGINT end the wait (their message says why the last try failed), and
 * --wait-socket that for the socket to be there; any other failure ends it at once.
 */
export async function run(context: CommandContext): Promise<number> {
  if (context.words.length > 0) throw new UsageError(`ga wait takes no words (got '${context.words[0]}')`);
  const what = `the guest agent at ${agentAddress(context)} to answer`;
  const longestSync = context.global.connectTimeoutMs > 0 ? context.global.connectTimeoutMs : Infinity;
  let syncMs = Math.min(FIRST_SYNC_MS, longestSync);
  let last: Error | undefined;
  const cutShort = (signal: AbortSignal) =>
    abortErrorFor(last ? `${what}; the last try: ${last.message}` : what)(signal);
  for (let pause = FIRST_RETRY_MS;; pause = Math.min(pause * 2, LONGEST_RETRY_MS)) {
    try {
      // A socket that closes before the agent answers is there: retried below as long as the wait lasts,
      // --wait-socket bounding only the wait for a socket to be there.
      await (await connectAgent(context, syncMs, isNotReady)).close();
      return 0;
    } catch (error) {
      // A try cut short by --timeout or SIGINT: said as between tries, with the last try's reason.
      if (context.signal.aborted && (error instanceof TimeoutError || error instanceof AbortedError)) {
        throw cutShort(context.signal);
      }
      if (!mayPass(error)) throw error;
      // --wait-socket bounds the wait for the socket: connecting retried it that long, and it is still not there.
      if (context.global.waitSocketMs && isNotReady(error)) throw error;
      last = error as Error;
      if (context.global.verbose) warn(context, `${last.message}; trying again`);
      if (error instanceof ConnectTimeoutError) syncMs = Math.min(syncMs * 2, longestSync);
    }
    await sleep(pause, context.signal, cutShort);
  }
}
