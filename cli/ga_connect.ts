/** Connecting to the guest agent for the `ga` commands: `-s` or `$QMPCTL_GA_SOCKET`. @module */
import { GuestAgent, MonitorNotAgentError, SyncClosedError } from "../lib/agent_client.ts";
import { isNotReady, isRemote, retryWhileNotReady } from "../lib/connect_ready.ts";
import { ConnectionError, type QmpError } from "../lib/errors.ts";
import { UsageError } from "./options.ts";
import { type CommandContext, givenAddress, noAddress, wireLog } from "./session.ts";

/** The agent's address, or a usage error when none is given. */
export function agentAddress(context: CommandContext): string {
  const address = givenAddress(context, "QMPCTL_GA_SOCKET");
  if (address === undefined) throw new UsageError(noAddress("guest agent address", "QMPCTL_GA_SOCKET"));
  return address;
}

/**
 * Not ready, for an agent: as a monitor's socket (missing, refused), or
 * closed before the agent answered the sync, the agent's equivalent of a
 * monitor's close before its greeting.
 */
function agentNotReady(error: unknown): boolean {
  return isNotReady(error) || error instanceof SyncClosedError;
}

/**
 * Connect and resynchronise, bounded by --connect-timeout, --timeout and
 * SIGINT; with --wait-socket, retried while `notReady` says the agent is not
 * there yet (by default: the socket is missing, refuses, or closes before
 * the agent answers).
 */
export function connectAgent(
  context: CommandContext,
  connectTimeoutMs = context.global.connectTimeoutMs,
  notReady = agentNotReady,
): Promise<GuestAgent> {
  const address = agentAddress(context);
  const connect = () =>
    GuestAgent.connect(address, {
      signal: context.signal,
      connectTimeout: connectTimeoutMs,
      log: wireLog(context),
    });
  const remote = isRemote(address);
  return retryWhileNotReady(connect, context.global.waitSocketMs ?? 0, context.signal, { notReady, remote })
    .catch((error) => {
      if (error instanceof MonitorNotAgentError) error.message += " (qmpctl exec talks to a monitor)";
      // An address from the environment, refused or not reached: said, as for a monitor's $QMPCTL_SOCKET.
      const fromVariable = context.global.socket === undefined;
      if (fromVariable && (error instanceof ConnectionError || (error as QmpError).code === "ADDRESS")) {
        error.message += " (the address is $QMPCTL_GA_SOCKET's)";
      }
      throw error;
    });
}
