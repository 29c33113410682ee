/**
 * Following QEMU's jobs (backup, mirror, stream, commit, create, ...) to
 * their end. A job's life (qapi/job.json): created → running (⇄ paused,
 * ready) → waiting → pending → concluded → null (dismissed). Every change is
 * a JOB_STATUS_CHANGE event; block jobs also end with BLOCK_JOB_COMPLETED
 * (with `error` when they failed) or BLOCK_JOB_CANCELLED. A job started with
 * the default `auto-dismiss=true` is gone from `query-jobs` as soon as it
 * concludes, so its outcome is known only from those events: the watch
 * subscribes before it first queries (and, for `exec --wait-job`, before the
 * command that starts the job is sent).
 *
 * @module
 */
import type { QmpClient } from "./client.ts";
import { type JsonNumber, numberText, textOf } from "./exact_json.ts";
import { ArgumentError, DisconnectedError, excerpt, ProtocolError } from "./errors.ts";
import type { EventSubscription, QmpEvent } from "./events.ts";
import { EventTurns } from "./follow.ts";

/** A job as `query-jobs` describes it (JobInfo in qapi/job.json). */
export interface JobInfo {
  /** The job's id (`job-id` when it was started; a block job's events call it `device`). */
  id: string;
  /** Its JobType: `backup`, `mirror`, `stream`, `commit`, `create`, ...; "" while only JOB_STATUS_CHANGE told of it. */
  type: string;
  /** Its JobStatus: `created`, `running`, `paused`, `ready`, `pending`, `concluded`, ... */
  status: string;
  /** Bytes (uint64): past 2^53 kept exactly, not a `number` (`asDouble` reads it as one). */
  "current-progress": JsonNumber;
  /** The `current-progress` expected at the end, which may change while the job runs; kept exactly too. */
  "total-progress": JsonNumber;
  /** Present once a concluded job has failed or was cancelled. */
  error?: string;
  /** QEMU's other members, as it sent them. */
  [key: string]: unknown;
}

/** How a job ended: QEMU's last word on it, and qmpctl's reading of it. */
export interface JobOutcome extends JobInfo {
  /** `completed`, `failed` (it has an `error`) or `cancelled`. */
  result: "completed" | "failed" | "cancelled";
}

/** What `JobWatch.follow` found: the jobs that ended, and the ids that were not there to follow. */
export interface JobReport {
  /** One per followed job that concluded, in the order asked for (or QEMU's order). */
  concluded: JobOutcome[];
  /** Ids that are neither in `query-jobs` nor in an event since the watch began (dismissed, or never started). */
  gone: string[];
}

/** Options of `JobWatch.follow`. */
export interface FollowJobsOptions {
  /** Bounds the whole wait (TimeoutError / AbortedError); the jobs keep running in QEMU. */
  signal?: AbortSignal;
  /** Dismiss (`job-dismiss`) followed jobs that concluded and wait for it (`auto-dismiss=false`). */
  dismiss?: boolean;
  /** Called with the followed jobs that still run, after each `query-jobs` (every `progressIntervalMs`). */
  onProgress?: (jobs: JobInfo[]) => void;
  /** How often to query progress while `onProgress` is given. Default 250 ms. */
  progressIntervalMs?: number;
  /** Called with each followed job as it concludes (QEMU's record of it), before the others end; awaited. */
  onConcluded?: (job: JobOutcome) => void | Promise<void>;
  /** Called once QEMU has said which jobs there are, with the ids asked for that are not there (`gone`); awaited. */
  onGone?: (ids: string[]) => void | Promise<void>;
}

/** The events that tell a job's state. */
const JOB_EVENTS = ["JOB_STATUS_CHANGE", "BLOCK_JOB_COMPLETED", "BLOCK_JOB_CANCELLED"];

/**
 * SHUTDOWN's reasons (ShutdownCause in qapi/run-state.json) after which QEMU
 * exits whatever `-action shutdown=` says (`quit`, SIGTERM, the window
 * closed), cancelling the jobs that still run.
 */
const QUITTING = ["host-qmp-quit", "host-signal", "host-ui"];

interface Tracked {
  info: JobInfo;
  concluded: boolean;
  cancelled: boolean;
}

/**
 * A watch over the jobs of one QEMU: create it before the command that
 * starts a job, then `follow` the job, once. It queues job events from its
 * creation: `close()` it when the command fails and nothing is followed.
 *
 * @example
 * ```ts
 * import { QmpClient } from "./client.ts";
 * import { JobWatch } from "./jobs.ts";
 * const qmp = await QmpClient.connect("/run/vm1.qmp");
 * const watch = new JobWatch(qmp);
 * await qmp.execute("blockdev-backup", { "job-id": "b0", device: "disk0", target: "t0", sync: "full" });
 * const { concluded } = await watch.follow(["b0"], { signal: AbortSignal.timeout(3_600_000) });
 * console.log(concluded[0].result, concluded[0].error); // "failed" "Input/output error"
 * ```
 */
export class JobWatch {
  readonly #client: QmpClient;
  readonly #subscription: EventSubscription;
  readonly #jobs = new Map<string, Tracked>();
  #followed = false;
  /** The jobs the follow follows, once QEMU has answered its first query-jobs (undefined before). */
  #followedIds?: string[];
  /** The jobs that still ran when QEMU said it quits (undefined until it does). */
  #runningAtQuit?: Set<string>;

  /**
   * Subscribes to `client`'s job events (and SHUTDOWN) at once. Its queue
   * never pauses reading the socket: it holds every such event until
   * `follow` reads it or `close` ends the watch.
   */
  constructor(client: QmpClient) {
    this.#client = client;
    this.#subscription = client.events({ names: [...JOB_EVENTS, "SHUTDOWN"] }, { highWaterMark: Infinity });
  }

  /**
   * Follow the jobs `ids` (every job that exists now, when empty) until each
   * has concluded.
   * @throws {TimeoutError | AbortedError} when `signal` aborts first
   * @throws {DisconnectedError} when the connection ends first
   */
  async follow(ids: readonly string[], options: FollowJobsOptions = {}): Promise<JobReport> {
    // Its events are watched from its creation to the end of its one follow: a second would miss those between.
    if (this.#followed) throw new ArgumentError("a JobWatch follows once: create one before each command to follow");
    this.#followed = true;
    const { signal, onProgress } = options;
    try {
      let before = 0; // the events that came before the reply: older than what it says
      const first = await this.#query(signal, () => (before = this.#subscription.queued));
      // They tell of jobs that ended before the query; those that came after it (a mirror turned ready
      // in the same read) are newer than the reply, and go over it.
      if (before > 0) this.#apply(await this.#subscription.nextBatch(before));
      this.#snapshot(first);
      while (this.#subscription.queued > 0) this.#apply(await this.#subscription.nextBatch());
      const wanted = ids.length > 0 ? [...ids] : first.map((job) => job.id);
      const gone = wanted.filter((id) => !this.#jobs.has(id));
      const followed = wanted.filter((id) => this.#jobs.has(id));
      this.#followedIds = followed;
      if (gone.length > 0) await options.onGone?.(gone); // told now: the others may take hours
      const running = () => followed.filter((id) => !this.#jobs.get(id)!.concluded);
      const reported = new Set<string>();
      // Each job as it concludes: QEMU's own record of how it ended (its error), dismissed if asked, and
      // told. A QEMU that quit has told it already: quitting cancels its jobs, and the events say so before
      // the connection closes.
      const unreported = () => followed.filter((id) => this.#jobs.get(id)!.concluded && !reported.has(id));
      const reportConcluded = async () => {
        if (unreported().length === 0) return;
        const record = await this.#query(signal).catch((error) => {
          if (error instanceof DisconnectedError) return []; // and nothing left to dismiss
          throw error;
        });
        this.#snapshot(record);
        const ended = unreported(); // with those that concluded meanwhile: the record tells of them too
        for (const job of record) {
          if (options.dismiss && ended.includes(job.id) && job.status === "concluded") {
            await this.#client.execute("job-dismiss", { id: job.id }, { signal }).catch((error) => {
              if (!(error instanceof DisconnectedError)) throw error; // QEMU quit meanwhile: nothing left to dismiss
            });
          }
        }
        for (const id of ended) {
          reported.add(id);
          await options.onConcluded?.(outcome(this.#jobs.get(id)!));
        }
      };
      await reportConcluded(); // those that had ended before the follow
      const turns = new EventTurns(this.#subscription);
      const tickMs = onProgress ? options.progressIntervalMs ?? 250 : undefined;
      if (onProgress && running().length > 0) onProgress(running().map((id) => this.#jobs.get(id)!.info));
      while (running().length > 0) {
        const turn = await turns.next(tickMs, signal, `job ${running().join(", ")} to conclude`);
        if (turn === "tick") {
          this.#snapshot(await this.#query(signal));
          if (running().length > 0) onProgress?.(running().map((id) => this.#jobs.get(id)!.info));
        } else if (turn.length === 0) {
          throw new DisconnectedError(
            `${this.#client.address.text} closed the connection while job ${running().join(", ")} ran`,
          );
        } else this.#apply(turn);
        await reportConcluded();
      }
      return { concluded: followed.map((id) => outcome(this.#jobs.get(id)!)), gone };
    } finally {
      this.#subscription.close();
    }
  }

  /**
   * After a follow that ended early (its signal, or the connection):
   * whether QEMU had answered what jobs there are (`known`), the followed
   * jobs that had concluded by then, as `follow` reports them, and the last
   * known record of those still running (its `status` tells those that wait
   * for a command: `paused`, `standby`, `ready`, `pending`).
   */
  standing(): { known: boolean; concluded: JobOutcome[]; running: JobInfo[] } {
    const tracked = (this.#followedIds ?? []).map((id) => this.#jobs.get(id)!);
    return {
      known: this.#followedIds !== undefined,
      concluded: tracked.filter((job) => job.concluded).map(outcome),
      running: tracked.filter((job) => !job.concluded).map((job) => ({ ...job.info })),
    };
  }

  /**
   * Whether job `id` still ran when QEMU said it quits (a SHUTDOWN event
   * for `quit`, a signal, or its window closed): QEMU cancels such a job as
   * it exits, which is then why it was cancelled.
   */
  ranWhenQemuQuit(id: string): boolean {
    return this.#runningAtQuit?.has(id) ?? false;
  }

  /** Stop watching (also done when `follow` returns). */
  close(): void {
    this.#subscription.close();
  }

  async #query(signal?: AbortSignal, onReply?: () => void): Promise<JobInfo[]> {
    const jobs = await this.#client.execute("query-jobs", undefined, { signal, onReply });
    const isJob = (job: unknown) => typeof job === "object" && job !== null && typeof (job as JobInfo).id === "string";
    if (!Array.isArray(jobs) || !jobs.every(isJob)) {
      throw new ProtocolError(`query-jobs did not return a list of jobs: ${excerpt(jobs)}`);
    }
    return jobs;
  }

  #track(id: string): Tracked {
    let tracked = this.#jobs.get(id);
    if (!tracked) {
      tracked = {
        info: { id, type: "", status: "created", "current-progress": 0, "total-progress": 0 },
        concluded: false,
        cancelled: false,
      };
      this.#jobs.set(id, tracked);
    }
    return tracked;
  }

  /**
   * QEMU's current view. A reply to a query sent before the events that were
   * just read may be older than they are: once concluded, only QEMU's own
   * concluded record (with its error) replaces what the events said.
   */
  #snapshot(jobs: JobInfo[]): void {
    for (const job of jobs) {
      const tracked = this.#track(job.id);
      if (tracked.concluded && job.status !== "concluded") continue;
      tracked.info = { ...job };
      if (job.status === "concluded") tracked.concluded = true;
    }
  }

  #apply(events: QmpEvent[]): void {
    for (const { event, data = {} } of events) {
      if (event === "SHUTDOWN") {
        if (QUITTING.includes(textOf(data.reason)) && !this.#runningAtQuit) {
          this.#runningAtQuit = new Set([...this.#jobs].filter(([, job]) => !job.concluded).map(([id]) => id));
        }
      } else if (event === "JOB_STATUS_CHANGE") {
        const tracked = this.#track(textOf(data.id));
        if (tracked.concluded) continue;
        if (data.status === "concluded" || data.status === "null") {
          tracked.concluded = true;
          tracked.info.status = "concluded";
        } else tracked.info.status = textOf(data.status);
      } else { // BLOCK_JOB_COMPLETED / BLOCK_JOB_CANCELLED: `device` is the job's id
        const tracked = this.#track(textOf(data.device));
        const info = tracked.info;
        if (typeof data.type === "string") info.type = data.type;
        if (numberText(data.len) !== undefined) info["total-progress"] = data.len as number; // kept exact for output
        if (numberText(data.offset) !== undefined) info["current-progress"] = data.offset as number;
        if (typeof data.error === "string") info.error = data.error;
        if (event === "BLOCK_JOB_CANCELLED") tracked.cancelled = true;
      }
    }
  }
}

/**
 * QEMU's error for a cancelled job (strerror(ECANCELED)): all that
 * `query-jobs` tells of a cancel, for a job that ended before the watch began.
 */
const CANCELLED_ERROR = "Operation canceled";

function outcome({ info, cancelled }: Tracked): JobOutcome {
  const result = cancelled || info.error === CANCELLED_ERROR
    ? "cancelled"
    : info.error !== undefined
    ? "failed"
    : "completed";
  // One order of members, whether they came from query-jobs (QEMU's order is its hash table's) or from events.
  const { id, type, "current-progress": done, "total-progress": total, error, status: _, ...others } = info;
  return {
    id,
    type,
    status: "concluded",
    "current-progress": done,
    "total-progress": total,
    ...(error === undefined ? {} : { error }),
    ...others,
    result,
  };
}

/**
 * Follow jobs that already run (no command to send first).
 *
 * @example
 * ```ts
 * import { QmpClient } from "./client.ts";
 * import { followJobs } from "./jobs.ts";
 * const qmp = await QmpClient.connect("/run/vm1.qmp");
 * const { concluded, gone } = await followJobs(qmp, [], { signal: AbortSignal.timeout(60_000) });
 * ```
 */
export function followJobs(client: QmpClient, ids: readonly string[], options?: FollowJobsOptions): Promise<JobReport> {
  return new JobWatch(client).follow(ids, options);
}
