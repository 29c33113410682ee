/** `qmpctl wait-event NAME [NAME ...] [--match KEY=VALUE ...] [--count N]`. @module */
import { exitStatusHelp } from "./exit_status.ts";
import { checkEventWait, printAwaitedEvents, readEventWait, subscribe } from "./event_output.ts";
import { UsageError } from "./options.ts";
import { type CommandContext, withClient } from "./session.ts";
import type { EventSubscription } from "../lib/events.ts";

export const help = (): string =>
  `Usage: qmpctl wait-event NAME [NAME ...] [--match KEY=VALUE ...] [options]

Wait for an event and print it as QEMU sent it (event, data, timestamp), one
JSON line, then exit 0. NAME is exact or a glob (BLOCK_JOB_*, POWER*); several
names mean any of them. --match KEY=VALUE must hold for the event's data (a
dotted KEY reaches inside; VALUE is compared as JSON where it parses, and as
text); several --match must all hold. --count N waits for N matching events
and prints each as it comes. A name QEMU does not know, or a --match that
none of the named events can meet (a KEY not in their data, a VALUE its
member never has: an enum's other values, on for a bool) exits 2 before
the wait.

Only events that QEMU sends after qmpctl has connected count. To catch the
event a command causes, run the command with 'qmpctl exec CMD --wait-event
NAME', which listens before it sends the command.

Examples:
  # wait until the guest has shut itself down, at most 10 minutes
  qmpctl wait-event SHUTDOWN --timeout 10m || virsh destroy vm1
  # ask the guest to power off and wait (listening before the request)
  qmpctl exec system_powerdown --wait-event SHUTDOWN --timeout 2m ||
    kill "$QEMU_PID"
  # wait for a block job to end, whichever way it ends
  qmpctl wait-event 'BLOCK_JOB_COMPLETED' 'BLOCK_JOB_CANCELLED' \\
    --match device=job0 --timeout 1h
  # the event after stop: subscribe before the command is sent
  # (a paused VM sends none)
  qmpctl exec stop --wait-event STOP --timeout 10s
  # two events: the guest paused, then resumed
  qmpctl wait-event STOP RESUME --count 2

${
    exitStatusHelp(["OK", "QEMU_ERROR", "USAGE", "CONNECTION", "OUTPUT", "TIMEOUT", "INTERRUPTED"], {
      OK: "the events arrived",
      QEMU_ERROR: "QEMU sent an error that answers no request (one it could not parse)",
      USAGE: "usage (also an event name QEMU does not know)",
      CONNECTION: "the connection closed first",
    })
  }`;

export async function run(context: CommandContext): Promise<number> {
  if (context.words.length === 0) {
    throw new UsageError("wait-event needs an event name (e.g. qmpctl wait-event SHUTDOWN)");
  }
  const wait = readEventWait(context, context.words, 1);
  // Subscribed before negotiation ends: events in the same read as its reply count too.
  let subscription!: EventSubscription;
  return await withClient(context, async (client) => {
    await checkEventWait(client, wait, context.signal, { closeEndsCheck: true });
    await printAwaitedEvents(context, client, subscription, wait);
    return 0;
  }, { subscribe: (c) => (subscription = subscribe(c, wait, context.signal)) });
}
