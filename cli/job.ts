/** `qmpctl job wait [ID ...]`, and what `exec ... --wait-job` runs after its command. @module */
import type { QmpClient } from "../lib/client.ts";
import { AbortedError, TimeoutError } from "../lib/errors.ts";
import { asDouble } from "../lib/exact_json.ts";
import { type JobInfo, type JobOutcome, type JobReport, JobWatch } from "../lib/jobs.ts";
import { EXIT, exitStatusHelp } from "./exit_status.ts";
import { OutputError } from "./io/output.ts";
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
  `Usage: qmpctl job wait [ID ...] [--dismiss] [--timeout D] [options]

Follow QEMU's jobs (backup, mirror, stream, commit, blockdev-create, ...)
until each has concluded; without ID, every job that exists when it starts.
qmpctl listens to JOB_STATUS_CHANGE and BLOCK_JOB_COMPLETED/CANCELLED before
its first query-jobs, so no change is missed. To start a job and follow it in
one go, use 'qmpctl exec CMD ... --wait-job' (see 'qmpctl help exec').

On stdout, one JSON line per job when it has concluded: QEMU's query-jobs
record (id, type, status, current-progress, total-progress, error when it
failed) and "result": "completed", "failed" or "cancelled". A job that QEMU
dismissed on concluding (auto-dismiss, the default) is described from its
BLOCK_JOB_* event. --dismiss dismisses (job-dismiss) the followed jobs that
concluded and wait to be dismissed (started with auto-dismiss=false).

A job that is still running in the "ready" state (mirror) or "pending"
(auto-finalize=false) waits for you (job-complete, job-finalize): qmpctl
keeps following it, and when --timeout runs out says what it waits for.

Progress: on a terminal, stderr shows one line that is redrawn in place
(percentage, bytes done and total, rate, time left) and erased at the end;
NO_COLOR turns its colour off. Nothing of it when stderr is not a terminal
(cron, a pipe, a file); --progress draws it anyway (without colour, and
for one target only), --no-progress never.
--progress-json writes instead one JSON object a line on stderr, every 250ms
while a job runs (stdout is the same as without it):
  {"progress":"job","id":"b0","type":"backup","status":"running",
   "done":268435456,"total":1073741824,"percent":25,
   "bytes-per-second":268435456,"seconds-left":3}
(one line each; bytes-per-second and seconds-left once they can be
measured). Lines that do not start with { are qmpctl's messages.

Examples:
  qmpctl job wait               # every job there is now
  qmpctl job wait nightly --timeout 4h || mail -s 'backup failed' root
  qmpctl job wait b0 --dismiss  # a job started with auto-dismiss=false
  qmpctl job wait b0 --progress-json 2>&1 >/dev/null |
    jq -R 'fromjson? | .percent'

${
    exitStatusHelp(["OK", "QEMU_ERROR", "USAGE", "CONNECTION", "GONE", "OUTPUT", "TIMEOUT", "INTERRUPTED"], {
      OK: "every job concluded without error",
      QEMU_ERROR: "a job failed or was cancelled (its error on stderr), and every job named was there",
      GONE: "a job named is not there (it concluded and was dismissed before qmpctl could see it, or it never " +
        "existed; the others are still followed)",
      TIMEOUT: "--timeout ran out (the jobs keep running in QEMU)",
    })
  }`;

export async function run(context: CommandContext): Promise<number> {
  const [verb, ...ids] = context.words;
  if (verb !== "wait") {
    throw new UsageError(
      verb === undefined ? "job needs a verb: job wait [ID ...]" : `unknown job verb '${verb}' (job wait)`,
    );
  }
  if (ids.includes("")) throw new UsageError("a job ID cannot be empty: job wait [ID ...]");
  const mode = progressMode(context);
  const client = await connect(context);
  try {
    return await followAndPrint(context, new JobWatch(client), [...new Set(ids)], mode); // one line per job
  } finally {
    client.close();
  }
}

/**
 * For `exec CMD ... --wait-job`: read the job's id from the command's
 * arguments and start listening (before the command is sent); the returned
 * function follows the job after the command's return line was printed.
 * @throws {UsageError} when the arguments name no job
 */
export function followAfterExec(
  context: CommandContext,
  client: QmpClient,
  command: string,
  args: Record<string, unknown> | undefined,
): () => Promise<number> {
  // A command that starts a job names it job-id (or device, for older block jobs); job-cancel and the others
  // that act on one name it id.
  if (command === "job-dismiss") { // the job is gone once dismissed: nothing to follow, nothing true to say
    throw new UsageError("--wait-job does not go with job-dismiss: a dismissed job is gone (job wait ID follows one)");
  }
  const key = args?.["job-id"] !== undefined ? "job-id" : command.startsWith("job-") ? "id" : "device";
  const id = args?.[key];
  if (id !== undefined && typeof id !== "string") { // QEMU would refuse it: a job's id is a string
    throw new UsageError(`--wait-job: ${command}'s ${key} is ${JSON.stringify(id)}, not a job's id (a string)`);
  }
  if (id === undefined) {
    if (command === "transaction") { // its jobs are named inside its actions, each a command of its own
      throw new UsageError("--wait-job follows the job of one command, not transaction's: job wait ID follows them");
    }
    const names = command.startsWith("job-") ? "id=ID" : "job-id=ID, or device=ID";
    throw new UsageError(`--wait-job needs the job's id in the arguments of ${command} (${names})`);
  }
  const mode = progressMode(context);
  const watch = new JobWatch(client);
  const namedAfterDevice = args?.["job-id"] === undefined && !command.startsWith("job-") &&
    !command.startsWith("block-job-");
  if (!namedAfterDevice) return () => followAndPrint(context, watch, [id], mode);
  // A command that starts a job without job-id: QEMU names the job after the device's BlockBackend, and
  // device may name the node at its root (device=node0 starts job "drive0"): query-block tells which,
  // asked before the command (QEMU answers in order), as a backup then puts its filter over that root.
  const backend = backendOf(client, id, context.signal).catch(() => id);
  return async () => followAndPrint(context, watch, [await backend], mode);
}

/** The BlockBackend named `device`, or the one whose root node it names; `device` itself when none is. */
async function backendOf(client: QmpClient, device: string, signal: AbortSignal): Promise<string> {
  const backends = await client.execute("query-block", undefined, { signal });
  if (!Array.isArray(backends)) return device;
  type Backend = { device?: unknown; inserted?: { "node-name"?: unknown } };
  if (backends.some((b: Backend) => b?.device === device)) return device;
  const backend = backends.find((b: Backend) => b?.inserted?.["node-name"] === device) as Backend | undefined;
  return typeof backend?.device === "string" && backend.device !== "" ? backend.device : device;
}

function followAndPrint(
  context: CommandContext,
  watch: JobWatch,
  ids: string[],
  mode: ReturnType<typeof progressMode>,
): Promise<number> {
  return withProgress(context, mode, (context, progress) => followWith(context, progress, watch, ids));
}

async function followWith(
  context: CommandContext,
  progress: ProgressReporter,
  watch: JobWatch,
  ids: string[],
): Promise<number> {
  const told = new Set<string>();
  // Each job's line as it concludes (the progress line erased first), and on stderr how it failed.
  const tell = async (job: JobOutcome) => {
    told.add(job.id);
    await progress.finish(context.signal);
    await write(context, formatJson(labelled(context, job), context.global.pretty)).catch((error) => {
      // The line is lost, and QEMU may no longer have the record (--dismiss, or auto-dismiss): how it ended, said.
      if (error instanceof OutputError) {
        const dismissed = context.options.has("dismiss") ? "; --dismiss removed it from QEMU" : "";
        error.message += ` (job ${job.id} ${job.result}${job.error ? `: ${job.error}` : ""}${dismissed})`;
      }
      throw error;
    });
    if (job.result === "completed") return;
    // QEMU cancels the jobs that run as it quits: said, lest a person be thought to have cancelled it.
    const why = job.result === "cancelled" && watch.ranWhenQemuQuit(job.id) ? " (QEMU is shutting down)" : "";
    warn(context, `job ${job.id} ${job.result}${why}${job.error ? `: ${job.error}` : ""}`);
  };
  let report: JobReport;
  try {
    report = await watch.follow(ids, {
      signal: context.signal,
      dismiss: context.options.has("dismiss"),
      onProgress: !progress.shown ? undefined : (jobs) => progress.update(jobs.map(jobSample)),
      onConcluded: (job) => tell(job),
      onGone: async (gone) => {
        for (const id of gone) {
          await reportFailure(
            context,
            `job ${id} is not there to follow: it concluded and was dismissed before qmpctl looked, or it never existed`,
          );
        }
      },
    });
  } catch (error) {
    await progress.finish(context.signal);
    if (!(error instanceof TimeoutError || error instanceof AbortedError)) throw error;
    // The jobs that ended before the bound or Ctrl-C and are not told yet (an auto-dismissed one's end is
    // known only now): told too, though the bound has passed (each write has its grace, see writeStdout).
    const { known, concluded, running } = watch.standing();
    for (const job of concluded) if (!told.has(job.id)) await tell(job);
    // Before QEMU said which jobs there are, or after they all ended, the wait was for an answer (query-jobs,
    // job-dismiss), as the error says.
    if (!known || running.length === 0) throw error;
    if (error instanceof AbortedError) { // Ctrl-C, SIGTERM: no error, but not taken for a cancel of the work
      // Whatever its state: job-cancel stops a paused or ready job too.
      const cancel = `; job-cancel stops ${running.length === 1 ? "it" : "one"}`;
      await warnInPassing(context, `stopped: ${named(running)} ${standing(running)}${cancel}`);
      throw error;
    }
    throw new TimeoutError(timedOut(running));
  } finally {
    watch.close();
  }
  await progress.finish(context.signal);
  // A job not there says more than one that failed (a mistyped ID, a script's assumption broken), and goes first
  // as it does across targets (cli/fanout.ts): a script that tests for 4 sees it whatever else ended.
  if (report.gone.length > 0) return EXIT.GONE;
  return report.concluded.some((job) => job.result !== "completed") ? EXIT.QEMU_ERROR : EXIT.OK;
}

/** What a job waits for, in the states it leaves only on a command: said when qmpctl stops following it. */
const PAUSED = "(an I/O error with on-source-error/on-target-error=stop, or job-pause: job-resume goes on)";
const WAITS_FOR_A_COMMAND = new Map([
  ["paused", PAUSED],
  ["standby", PAUSED], // paused once ready
  ["ready", "(in sync with its target: job-complete ends it)"],
  ["pending", "(auto-finalize=false: job-finalize ends it)"],
]);

/** The timeout's message: the jobs still running, and those among them that wait for a command. */
function timedOut(running: JobInfo[]): string {
  const they = running.length === 1 ? "it" : "they";
  return `timed out waiting for ${named(running)} to conclude; ${they} ${standing(running)}`;
}

/** `job ID` or `jobs ID, ID`. */
function named(jobs: JobInfo[]): string {
  return `${jobs.length === 1 ? "job" : "jobs"} ${jobs.map((job) => job.id).join(", ")}`;
}

/**
 * What the jobs still running do in QEMU once qmpctl stops following them (its bound, Ctrl-C), said of
 * them: `keeps running in QEMU`, or, for those that wait for a command, what they wait for.
 */
function standing(running: JobInfo[]): string {
  const one = running.length === 1;
  // standby is told as paused: one group for both.
  const stateOf = (job: JobInfo) => job.status === "standby" ? "paused" : job.status;
  const waiting = Map.groupBy(running.filter((job) => WAITS_FOR_A_COMMAND.has(job.status)), stateOf);
  const [first] = waiting.keys();
  const why = (state: string) => WAITS_FOR_A_COMMAND.get(state)!;
  return waiting.size === 1 && waiting.get(first)!.length === running.length
    ? `${one ? "is" : "are"} ${first} in QEMU ${why(first)}`
    : `${one ? "keeps" : "keep"} running in QEMU` +
      [...waiting].map(([state, jobs]) => `, ${jobs.map((job) => job.id).join(", ")} ${state} ${why(state)}`).join("");
}

function jobSample(job: JobInfo): ProgressSample {
  return {
    label: `${job.type || "job"} ${job.id}`,
    done: asDouble(job["current-progress"]) ?? 0, // a uint64 beyond 2^53 arrives as its text (lib/exact_json.ts)
    total: asDouble(job["total-progress"]) ?? 0,
    exact: { done: job["current-progress"], total: job["total-progress"] },
    notes: job.status === "running" ? [] : [job.status],
    phase: job.status,
    // Paused (standby: paused once ready), nothing moves: no rate fading from before, no time left growing.
    ...(job.status === "paused" || job.status === "standby" ? { rate: 0 } : {}),
    json: { progress: "job", id: job.id, type: job.type, status: job.status },
  };
}
