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
import type { EventSubscription } from "./events.ts";
import type { JsonNumber } from "./exact_json.ts";
import { EventTurns } from "./follow.ts";

/**
 * What `query-migrate` returns; empty (no `status`) when no migration was
 * ever started. Its numbers are as QEMU wrote them: a double of 17 digits
 * (`mbps`) or a count past 2^53 is kept exactly, not as a `number` (read
 * one with `asDouble` for arithmetic).
 */
export interface MigrationInfo {
  status?: string;
  "error-desc"?: string;
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

  constructor(client: QmpClient) {
    this.#client = client;
    this.#subscription = client.events({ names: ["MIGRATION", "MIGRATION_PASS"] }, { highWaterMark: Infinity });
  }

  /**
   * The final `query-migrate` answer once the migration has ended, or
   * undefined when no migration was ever started. A destination whose
   * source has not connected yet (started with `-incoming`, run state
   * `inmigrate`, no migration status) is waited for.
   * @throws {TimeoutError | AbortedError} when `signal` aborts first
   * @throws {DisconnectedError} when the connection ends first
   */
  async follow(options: FollowMigrationOptions = {}): Promise<MigrationInfo | undefined> {
    const { signal, onProgress } = options;
    const turns = new EventTurns(this.#subscription);
    try {
      for (;;) {
        const answer = await this.#client.execute("query-migrate", undefined, { signal });
        if (typeof answer !== "object" || answer === null || Array.isArray(answer)) {
          throw new ProtocolError(`query-migrate did not return an object: ${excerpt(answer)}`);
        }
        const info = answer as MigrationInfo;
        if (info.status === undefined && !(await this.#awaitsSource(signal))) return undefined;
        this.#underWay = true;
        this.#awaitingSource = info.status === undefined;
        if (info.status !== undefined && MIGRATION_END_STATES.includes(info.status)) return info;
        onProgress?.(info);
        const turn = await turns.next(options.intervalMs ?? 250, signal, "the migration to end");
        if (Array.isArray(turn) && turn.length === 0) {
          throw new DisconnectedError(`${this.#client.address.text} closed the connection while migrating`);
        }
      }
    } finally {
      this.#subscription.close();
    }
  }

  /** Whether this QEMU waits for an incoming migration (`-incoming`) that has not begun. */
  async #awaitsSource(signal?: AbortSignal): Promise<boolean> {
    const { status } = await this.#client.execute("query-status", undefined, { signal }) as { status?: string };
    return status === "inmigrate";
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
