/** `qmpctl events [NAME ...] [--match KEY=VALUE ...] [--count N]`: every event as NDJSON. @module */
import { exitStatusHelp } from "./exit_status.ts";
import { DisconnectedError, TimeoutError } from "../lib/errors.ts";
import { awaitedTimeout, checkEventWait, printEvents, readEventWait, subscribe } from "./event_output.ts";
import { type CommandContext, warn, withClient } from "./session.ts";
import type { EventSubscription } from "../lib/events.ts";

export const help = (): string =>
  `Usage: qmpctl events [NAME ...] [--match KEY=VALUE ...] [options]

Print every event QEMU sends as it arrives, as QEMU sent it (event, data,
timestamp), one JSON line each (NDJSON). It ends with status 0 when the
connection ends (of several sockets, each one that ends is said on stderr),
after --count N events, when --timeout has passed, or when the reader
closes the pipe; a connection cut in the middle of a message is status 3.
With --count, the N events are awaited as by wait-event: a connection that
ends before they came is status 3, and a --timeout that passes first is
status 124. NAME (exact or a glob such as BLOCK_JOB_*) and --match
KEY=VALUE keep only some events, as for wait-event.

Examples:
  qmpctl events 'BLOCK_JOB_*' >> /var/log/vm1-jobs.ndjson
  qmpctl events | while read -r line; do ...; done
  # watch everything, Ctrl-C to stop
  qmpctl events
  # ten minutes of events, by name
  qmpctl events --timeout 10m | jq -r .event
  # the next event, whatever it is
  qmpctl events --count 1

${
    exitStatusHelp(["OK", "QEMU_ERROR", "USAGE", "CONNECTION", "OUTPUT", "TIMEOUT", "INTERRUPTED"], {
      QEMU_ERROR: "QEMU sent an error that answers no request (one it could not parse)",
      USAGE: "usage (also an event name QEMU does not know)",
      CONNECTION: "connection failed or broke",
      TIMEOUT: "--timeout ran out before the reader of stdout took the events that came, or (with --count) " +
        "before the N events came",
    })
  }`;

export async function run(context: CommandContext): Promise<number> {
  const wait = readEventWait(context, context.words, Infinity);
  // A reader that leaves (| head -1) ends the stream within a second, not at the next event's write: cli.ts
  // aborts context.signal then, as for every command that waits, and ends the run quietly.
  // Subscribed before negotiation ends: events in the same read as its reply count too.
  let subscription!: EventSubscription;
  return await withClient(context, async (client) => {
    await checkEventWait(client, wait, context.signal, { closeEndsCheck: true }); // as wait-event
    const { printed, error } = await printEvents(context, subscription, wait);
    const counted = wait.count !== Infinity; // --count N: N were awaited, as by wait-event
    if (error instanceof TimeoutError && counted) throw awaitedTimeout(wait, printed);
    if (error !== undefined && !(error instanceof TimeoutError)) throw error; // else --timeout is how long to listen
    if (error === undefined && printed < wait.count && counted) {
      throw new DisconnectedError(
        `${client.address.text} closed the connection after ${printed} of ${wait.count} events (${wait.what})`,
      );
    }
    // One of several: the others' events go on, and a log of them would not show that this one's stopped.
    if (error === undefined && !counted && context.target) warn(context, "closed the connection: its events end here");
    return 0;
  }, { subscribe: (c) => (subscription = subscribe(c, wait, context.signal)) });
}
