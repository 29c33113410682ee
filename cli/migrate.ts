/** `qmpctl migrate wait`, and what `exec migrate ... --wait-migration` runs after its command. @module */
import type { QmpClient } from "../lib/client.ts";
import { AbortedError, TimeoutError } from "../lib/errors.ts";
import { DESTINATION_EXITS, MIGRATION_COMMANDS, type MigrationInfo, MigrationWatch } from "../lib/migration.ts";
import { asDouble, textOf, wholeDifference } from "../lib/exact_json.ts";
import { EXIT, exitStatusHelp } from "./exit_status.ts";
import { UsageError } from "./options.ts";
import { progressMode, type ProgressReporter, type ProgressSample, withProgress } from "./progress.ts";
import {
  type CommandContext,
  connect,
  formatJson,
  labelled,
  reportFailure,
  warn,
  warnInPassing,
  write,
} from "./session.ts";

export const help = (): string =>
  `Usage: qmpctl migrate wait [--timeout D] [options]

Follow the migration of this QEMU (query-migrate, woken early by MIGRATION and
MIGRATION_PASS events when the 'events' capability is on) until it has
completed, failed or been cancelled, and print the final query-migrate
object as one JSON line. A migration that has already ended is reported at
once (QEMU keeps its state until the next one starts). On a destination
(-incoming) it waits for the source to come, then follows. A migration
paused before the switchover (the pause-before-switchover capability) waits
for you ('migrate-continue state=pre-switchover'): qmpctl keeps following it,
and when --timeout runs out says so. To start a migration and follow it in
one go: 'qmpctl exec migrate uri=... --wait-migration'.

Progress: on a terminal, stderr shows one line redrawn in place: RAM
percentage, bytes done (sent, or zero pages skipped) and total, the rate
they are done at, time left (remaining RAM at that rate), the pass
(dirty-sync-count) and the dirty-page rate; it is
erased at the end. --progress, --no-progress, --progress-json and NO_COLOR
as for 'qmpctl job wait'; the JSON lines look like
  {"progress":"migration","status":"active","pass":1,
   "dirty-pages-rate":0,"done":33570803,"total":67108864,
   "percent":50,"bytes-per-second":33554432,"seconds-left":1}
Where query-migrate tells no RAM figures (on a destination; on a source in
setup), the line shows the status alone and the JSON lines have no figures:
{"progress":"migration","status":"active"}. "status" is QEMU's, or
"waiting-for-source" on a destination whose source has not connected yet.

Examples:
  qmpctl exec migrate-set-parameters max-bandwidth=67108864
  qmpctl exec migrate uri=tcp:dst:4444 --wait-migration --timeout 30m \\
    && qmpctl exec quit
  # a migration started by someone else
  qmpctl migrate wait --timeout 10m

${
    exitStatusHelp(["OK", "QEMU_ERROR", "USAGE", "CONNECTION", "GONE", "OUTPUT", "TIMEOUT", "INTERRUPTED"], {
      OK: "completed",
      QEMU_ERROR: "failed or cancelled (QEMU's error-desc on stderr)",
      GONE: "no migration was ever started",
      TIMEOUT: "--timeout ran out (the migration keeps going)",
    })
  }`;

export async function run(context: CommandContext): Promise<number> {
  const [verb, ...rest] = context.words;
  if (verb !== "wait") {
    throw new UsageError(
      verb === undefined ? "migrate needs a verb: migrate wait" : `unknown migrate verb '${verb}' (migrate wait)`,
    );
  }
  if (rest.length > 0) throw new UsageError(`migrate wait takes no words (got '${rest[0]}')`);
  const mode = progressMode(context);
  const client = await connect(context);
  try {
    return await followAndPrint(context, new MigrationWatch(client), mode);
  } finally {
    client.close();
  }
}

/**
 * `--wait-migration` goes with the commands that start or drive a migration:
 * after any other, what would be followed is the end of an older one.
 * @throws {UsageError} for any other command
 */
export function checkStartsMigration(command: string): void {
  if (!MIGRATION_COMMANDS.includes(command)) {
    throw new UsageError(
      `--wait-migration follows the migration a command starts, and ${command} starts none ` +
        `(it goes with ${MIGRATION_COMMANDS.join(", ")})`,
    );
  }
}

/**
 * For `exec migrate ... --wait-migration`: start listening before the
 * command is sent; the returned function follows the migration afterwards.
 */
export function followAfterExec(context: CommandContext, client: QmpClient, command: string): () => Promise<number> {
  const mode = progressMode(context);
  const watch = new MigrationWatch(client);
  return () => followAndPrint(context, watch, mode, command);
}

/** Follow the migration and print its end; `command`: the one that exec ran before (none for migrate wait). */
function followAndPrint(
  context: CommandContext,
  watch: MigrationWatch,
  mode: ReturnType<typeof progressMode>,
  command?: string,
): Promise<number> {
  return withProgress(context, mode, (context, progress) => followWith(context, progress, watch, command));
}

async function followWith(
  context: CommandContext,
  progress: ProgressReporter,
  watch: MigrationWatch,
  command: string | undefined,
): Promise<number> {
  let end: MigrationInfo | undefined;
  try {
    end = await watch.follow({
      signal: context.signal,
      onProgress: !progress.shown ? undefined : (info) => progress.update(migrationSample(info)),
    });
  } catch (error) {
    await progress.finish(context.signal);
    // Before QEMU said there is a migration, the wait was for its answer (query-migrate), as the error says.
    if (error instanceof TimeoutError && watch.underWay) throw new TimeoutError(timedOut(watch, command));
    if (error instanceof AbortedError && watch.underWay && !watch.awaitingSource) { // Ctrl-C, SIGTERM: not a cancel
      await warnInPassing(
        context,
        watch.incoming
          ? "stopped: the incoming migration keeps going in QEMU; migrate_cancel on its source stops it"
          : "stopped: the migration keeps going in QEMU; migrate_cancel stops it",
      );
    }
    throw error;
  } finally {
    watch.close();
  }
  await progress.finish(context.signal);
  if (!end) {
    await reportFailure(context, "no migration to follow: none was started since QEMU started");
    return EXIT.GONE;
  }
  await write(context, formatJson(labelled(context, end), context.global.pretty));
  if (end.status === "completed") return EXIT.OK;
  warn(context, `migration ${end.status}${howItEnded(end, watch)}`);
  return EXIT.QEMU_ERROR;
}

/**
 * What the migration was doing when the bound ran out, and what moves it on when it waits for someone
 * (`command`: the one exec ran before following it).
 */
function timedOut(watch: MigrationWatch, command: string | undefined): string {
  if (watch.awaitingSource) { // a destination (-incoming) whose source has not connected
    // After migrate-incoming itself, the advice to run it first would mislead.
    const deferred = command === "migrate-incoming" ? "" : "; with -incoming defer, migrate-incoming first";
    return `timed out waiting for the incoming migration to begin (its source to connect${deferred}); ` +
      "QEMU keeps waiting for it";
  }
  const state = watch.status === "pre-switchover"
    ? "it is paused in QEMU before the switchover (the pause-before-switchover capability: " +
      "migrate-continue state=pre-switchover goes on)"
    : "it keeps going in QEMU";
  return `timed out waiting for the migration to end; ${state}`;
}

/** QEMU's error-desc; or, when QEMU closed the connection after its MIGRATION event told the end, that. */
function howItEnded(end: MigrationInfo, watch: MigrationWatch): string {
  if (end["error-desc"]) return `: ${end["error-desc"]}`;
  if (!watch.closedAtEnd) return "";
  return ` (QEMU then closed the connection${
    watch.incoming && end.status === "failed" ? `: ${DESTINATION_EXITS}` : ""
  })`;
}

function migrationSample(info: MigrationInfo): ProgressSample[] {
  const ram = info.ram;
  // A destination has no status before its source connects: a word of qmpctl's, documented in the help.
  const status = info.status ?? "waiting-for-source";
  const json = { progress: "migration", status };
  if (!ram) { // a destination's query-migrate has no RAM counters (nor has a source's in setup): the status alone
    const state = info.status === undefined ? "waiting for its source" : textOf(info.status);
    return [{ label: `migration ${state}`, done: 0, total: 0, statusOnly: true, json }];
  }
  // Numbers QEMU prints with more digits than a double keeps arrive as their text (lib/exact_json.ts).
  const pass = ram["dirty-sync-count"], dirty = ram["dirty-pages-rate"];
  // The RAM done, zero pages too (sent as a few bytes each), and the rate measured from it: QEMU's mbps
  // counts only bytes on the wire, and time left from it was off by hundreds of times for a mostly-zero RAM.
  const difference = wholeDifference(ram.total, ram.remaining);
  const done = (asDouble(difference) ?? 0) > 0 ? difference : 0;
  return [{
    label: "migration",
    done: asDouble(done) ?? 0,
    total: asDouble(ram.total) ?? 0,
    exact: { done, total: ram.total },
    notes: [
      `pass ${textOf(pass)}`,
      `dirty ${textOf(dirty)} pages/s`,
      ...(info.status === "active" ? [] : [textOf(info.status)]),
    ],
    phase: info.status,
    json: { ...json, pass, "dirty-pages-rate": dirty },
  }];
}
