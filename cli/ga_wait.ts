/** `qmpctl ga wait`: wait until the guest agent answers. @module */
import { abortable } from "../lib/abort.ts";
import { ConnectionError, DisconnectedError } from "../lib/errors.ts";
import { agentAddress, connectAgent } from "./ga_connect.ts";
import { UsageError } from "./options.ts";
import { type CommandContext, warn } from "./session.ts";

const FIRST_RETRY_MS = 50;
const LONGEST_RETRY_MS = 1000;

/**
 * Retry until the agent answers the sync: a socket that is missing or
 * refused (QEMU not started yet), closed, or an agent that stays silent for
 * --connect-timeout (the guest still booting) is tried again after a pause
 * that grows to a second. Only --timeout and SIGINT end the wait.
 */
export async function run(context: CommandContext): Promise<number> {
  if (context.words.length > 0) throw new UsageError(`ga wait takes no words (got '${context.words[0]}')`);
  const what = `the guest agent at ${agentAddress(context)} to answer`;
  for (let pause = FIRST_RETRY_MS;; pause = Math.min(pause * 2, LONGEST_RETRY_MS)) {
    try {
      await (await connectAgent(context)).close();
      return 0;
    } catch (error) {
      if (!(error instanceof ConnectionError || error instanceof DisconnectedError)) throw error;
      if (context.global.verbose) warn(context, `${error.message}; trying again`);
    }
    await abortable(new Promise((resolve) => setTimeout(resolve, pause)), context.signal, what);
  }
}
