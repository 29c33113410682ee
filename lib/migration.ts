/**
 * Following a migration to its end. `query-migrate` (MigrationInfo in
 * qapi/migration.json) tells the state and the RAM counters; the state
 * stays readable after the end (`completed`, `failed` with `error-desc`,
 * `cancelled`) until the next migration starts. MIGRATION and MIGRATION_PASS
 * events come only when the `events` migration capability is on, so they
 * only wake the watch early: it also queries on a clock.
 *
 * @module
 */
import type { QmpClient } from "./client.ts";
import { DisconnectedError, excerpt, ProtocolError } from "./errors.ts";
import type { EventSubscription, QmpEvent } from "./events.ts";
import type { JsonNumber } from "./exact_json.ts";
import { EventTurns } from "./follow.ts";

/**
 * What `query-migrate` returns; empty (no `status`) when no migration was
 * ever started. Its numbers are as QEMU wrote them: a double of 17 digits
 * (`mbps`) or a count past 2^53 is kept exactly, not as a `number` (read
 * one with `asDouble` for arithmetic).
 */
export interface MigrationInfo {
  /** Its MigrationStatus: `setup`, `active`, `completed`, `failed`, `cancelled`, ... */
  status?: string;
  /** Why it failed, with `failed` (QEMU 2.7 and later). */
  "error-desc"?: string;
  /**
   * The RAM counters (MigrationStats), while it runs and once completed: `total`, `transferred` and
   * `remaining` in bytes, `mbps` the throughput in megabits per second.
   */
  ram?: {
    total: JsonNumber;
    transferred: JsonNumber;
    remaining: JsonNumber;
    mbps: JsonNumber;
    "dirty-sync-count": JsonNumber;
    "dirty-pages-rate": JsonNumber;
    "page-size": JsonNumber;
    [key: string]: unknown;
  };
  /** QEMU's other members, as it sent them (`total-time`, `expected-downtime`, ...). */
  [key: string]: unknown;
}

/**
 * The commands that start a migration or drive one on: what a caller may
 * follow to the end after sending. After any other command, `query-migrate`
 * still tells the end of the last migration, which that command did not cause.
 */
export const MIGRATION_COMMANDS = [
  "migrate",
  "migrate-incoming",
  "migrate-recover",
  "migrate-continue",
  "migrate-start-postcopy",
];

/** The states in which a migration has ended. */
export const MIGRATION_END_STATES = ["completed", "failed", "cancelled"];

/** How long the events read before a close may take to come out of the subscription's queue. */
const CLOSED_EVENTS_MS = 100;

/** Why a destination's connection closes when its migration ends badly: QEMU's incoming side exits on failure. */
export const DESTINATION_EXITS = "a destination QEMU exits when its incoming migration fails";

/** Options of `MigrationWatch.follow`. */
export interface FollowMigrationOptions {
  /** Bounds the whole wait (TimeoutError / AbortedError); the migration keeps running. */
  signal?: AbortSignal;
  /** Called with each `query-migrate` answer while the migration runs. */
  onProgress?: (info: MigrationInfo) => void;
  /** How often to query. Default 250 ms. */
  intervalMs?: number;
}

/**
 * A watch over the migration of one QEMU: create it before sending
 * `migrate`, then `follow`.
 *
 * @example
 * ```ts
 * import { QmpClient } from "./client.ts";
 * import { MigrationWatch } from "./migration.ts";
 * const qmp = await QmpClient.connect("/run/vm1.qmp");
 * const watch = new MigrationWatch(qmp);
 * await qmp.execute("migrate", { uri: "exec:cat > /tmp/vm1.state" });
 * const end = await watch.follow({ signal: AbortSignal.timeout(600_000) });
 * console.log(end?.status); // "completed"
 * ```
 */
export class MigrationWatch {
  readonly #client: QmpClient;
  readonly #subscription: EventSubscription;
  #underWay = false;
  #awaitingSource = false;
  /** Whether this QEMU's run state, when last asked, was `inmigrate`: a destination (`-incoming`). */
  #incoming?: boolean;
  /** The status last told: by `query-migrate`, or by a MIGRATION event read since. */
  #status?: string;
  #closedAtEnd = false;
  /** Whether QEMU said it shuts down (a SHUTDOWN event): a close then is QEMU exiting, which ends the migration. */
  #shutDown = false;

  /**
   * Subscribes to `client`'s MIGRATION, MIGRATION_PASS and SHUTDOWN events
   * at once. Its queue never pauses reading the socket: it holds every such
   * event until `follow` reads it or `close` ends the watch.
   */
  constructor(client: QmpClient) {
    this.#client = client;
    const names = ["MIGRATION", "MIGRATION_PASS", "SHUTDOWN"];
    this.#subscription = client.events({ names }, { highWaterMark: Infinity });
  }

  /**
   * The final `query-migrate` answer once the migration has ended, or
   * undefined when no migration was ever started. A destination whose
   * source has not connected yet (started with `-incoming`, run state
   * `inmigrate`, no migration status) is waited for. When QEMU closes the
   * connection after a MIGRATION event told the end (a destination exits
   * when its incoming migration fails), that event's data is the answer.
   * @throws {TimeoutError | AbortedError} when `signal` aborts first
   * @throws {DisconnectedError} when the connection ends first
   */
  async follow(options: FollowMigrationOptions = {}): Promise<MigrationInfo | undefined> {
    const turns = new EventTurns(this.#subscription);
    try {
      return await this.#follow(turns, options);
    } catch (error) {
      if (!(error instanceof DisconnectedError)) throw error;
      return await this.#endBeforeClose(turns, error);
    } finally {
      this.#subscription.close();
    }
  }

  async #follow(turns: EventTurns, options: FollowMigrationOptions): Promise<MigrationInfo | undefined> {
    const { signal, onProgress } = options;
    for (;;) {
      const info = await this.#query(signal);
      // Asked once, and again while QEMU shows no migration: a destination waits for its source then.
      if (info.status === undefined || this.#incoming === undefined) this.#incoming = await this.#inmigrate(signal);
      if (info.status === undefined && !this.#incoming) return undefined;
      this.#underWay = true;
      this.#awaitingSource = info.status === undefined;
      this.#status = info.status;
      if (info.status !== undefined && MIGRATION_END_STATES.includes(info.status)) return info;
      onProgress?.(info);
      const turn = await turns.next(options.intervalMs ?? 250, signal, "the migration to end");
      if (Array.isArray(turn) && turn.length === 0) {
        throw new DisconnectedError(`${this.#client.address.text} closed the connection while migrating`);
      }
      if (Array.isArray(turn)) this.#read(turn);
    }
  }

  async #query(signal?: AbortSignal): Promise<MigrationInfo> {
    const answer = await this.#client.execute("query-migrate", undefined, { signal });
    if (typeof answer !== "object" || answer === null || Array.isArray(answer)) {
      throw new ProtocolError(`query-migrate did not return an object: ${excerpt(answer)}`);
    }
    return answer as MigrationInfo;
  }

  /** Whether this QEMU waits for, or takes, an incoming migration (`-incoming`: run state `inmigrate`). */
  async #inmigrate(signal?: AbortSignal): Promise<boolean> {
    const { status } = await this.#client.execute("query-status", undefined, { signal }) as { status?: string };
    return status === "inmigrate";
  }

  #read(events: QmpEvent[]): void {
    for (const { event, data } of events) {
      if (event === "MIGRATION" && typeof data?.status === "string") this.#status = data.status;
      else if (event === "SHUTDOWN") this.#shutDown = true;
    }
  }

  /**
   * After the connection closed: the end a MIGRATION event told before it
   * (events queued, or read by a turn still pending, are read first), else
   * `closed`, said of the migration once one was under way.
   */
  async #endBeforeClose(turns: EventTurns, closed: DisconnectedError): Promise<MigrationInfo> {
    for (;;) {
      // Those events are queued already (the client offers them before it closes): a short tick bounds the read.
      const turn = await turns.next(CLOSED_EVENTS_MS, undefined, "the events before the close").catch(() => []);
      if (turn === "tick" || turn.length === 0) break;
      this.#read(turn);
    }
    if (this.#status !== undefined && MIGRATION_END_STATES.includes(this.#status)) {
      this.#closedAtEnd = true;
      return { status: this.#status };
    }
    if (!this.#underWay) { // closed before its first answer: what it told of the close is said all the same
      if (!this.#shutDown) throw closed;
      throw new DisconnectedError(`${closed.message} (QEMU is shutting down)`, { cause: closed });
    }
    // The likely cause, said for lack of the event that would tell it (the `events` capability is off).
    const why = this.#shutDown ? " (QEMU is shutting down)" : this.#incoming ? ` (${DESTINATION_EXITS})` : "";
    throw new DisconnectedError(`${this.#client.address.text} closed the connection while migrating${why}`, {
      cause: closed,
    });
  }

  /** Whether this QEMU was a destination (`-incoming`) when last asked. */
  get incoming(): boolean {
    return this.#incoming === true;
  }

  /** Whether `follow` told the end from a MIGRATION event alone, QEMU having closed the connection after it. */
  get closedAtEnd(): boolean {
    return this.#closedAtEnd;
  }

  /** The migration's status when last told (`pre-switchover`: it waits for `migrate-continue`). */
  get status(): string | undefined {
    return this.#status;
  }

  /** Whether QEMU has said there is a migration to follow (a wait that ended before did not know). */
  get underWay(): boolean {
    return this.#underWay;
  }

  /** Whether, when last asked, this QEMU waited for the source of an incoming migration to connect. */
  get awaitingSource(): boolean {
    return this.#awaitingSource;
  }

  /** Stop watching (also done when `follow` returns). */
  close(): void {
    this.#subscription.close();
  }
}
