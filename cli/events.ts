/** `qmpctl events [NAME ...] [--match KEY=VALUE ...] [--count N]`: every event as NDJSON. @module */
import { TimeoutError } from "../lib/errors.ts";
import { printEvents, readEventWait, subscribe } from "./event_output.ts";
import { type CommandContext, withClient } from "./session.ts";

export const help = `Usage: qmpctl events [NAME ...] [--match KEY=VALUE ...] [--count N] [--timeout DURATION] [options]

Print every event QEMU sends as it arrives, as QEMU sent it (event, data,
timestamp), one JSON line each (NDJSON). It ends with status 0 when the
connection ends, after --count N events, when --timeout has passed, or when
the reader closes the pipe. NAME (exact or a glob such as BLOCK_JOB_*) and
--match KEY=VALUE keep only some events, as for wait-event.

Examples:
  qmpctl events                                  # watch everything, Ctrl-C to stop
  qmpctl events 'BLOCK_JOB_*' >> /var/log/vm1-jobs.ndjson
  qmpctl events --timeout 10m | jq -r .event     # ten minutes of events, by name
  qmpctl events --count 1                        # the next event, whatever it is
  qmpctl events | while read -r line; do ...; done

Exit status: 0 done, 2 usage (also an event name QEMU does not know), 3 connection
failed or broke, 130 interrupted.`;

export async function run(context: CommandContext): Promise<number> {
  const wait = readEventWait(context, context.words, Infinity);
  return await withClient(context, async (client) => {
    const subscription = subscribe(client, wait, context.signal);
    if (wait.names.length > 0) { // as wait-event: a name QEMU does not know is a usage error
      await (await import("../lib/schema.ts")).checkEventNames(client, wait.names, { signal: context.signal });
    }
    const { error } = await printEvents(context, subscription, wait);
    if (error !== undefined && !(error instanceof TimeoutError)) throw error; // --timeout is how long to listen
    return 0;
  });
}
