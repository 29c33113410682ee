/**
 * GuestAgent: the QEMU guest agent protocol (qemu-ga) over one connection.
 *
 * The agent speaks QMP's JSON without a greeting or negotiation, through a
 * channel (a virtio-serial port) that outlives its clients: replies to a
 * client that died mid-command, and half a request it sent, may still sit
 * in it. So the client resynchronises first, as qga/qapi-schema.json
 * describes for `guest-sync-delimited`: send a 0xFF byte (the agent's JSON
 * parser drops any partial input on it), then `guest-sync-delimited` with a
 * random id; the agent writes a 0xFF byte before that reply. Everything up
 * to a 0xFF is stale, and every reply after it that is not `{"return": id}`
 * is too. Then commands run one after another; replies carry the `id` sent.
 *
 * @module
 */
import { abortable, eitherAborts, timeoutSignal } from "./abort.ts";
import { type Address, parseAddress } from "./address.ts";
import { DEFAULT_CONNECT_TIMEOUT_MS } from "./client.ts";
import { formatDuration } from "./duration.ts";
import {
  AbortedError,
  abortErrorFor,
  CommandError,
  ConnectionError,
  ConnectTimeoutError,
  DisconnectedError,
  malformedErrorReply,
  ProtocolError,
  type QmpError,
} from "./errors.ts";
import { requestJson } from "./exact_json.ts";
import { DEFAULT_MAX_MESSAGE_BYTES, JsonFramer } from "./framing.ts";
import { connectTransport, type Transport, type TransportOptions } from "./transport.ts";

/** Commands the agent does not answer when they succeed (`success-response: false` in guest-info). */
export const AGENT_COMMANDS_WITHOUT_REPLY: ReadonlySet<string> = new Set([
  "guest-shutdown",
  "guest-suspend-disk",
  "guest-suspend-ram",
  "guest-suspend-hybrid",
]);

const DELIMITER = 0xff;
/** How much of the first bytes is looked at for a QMP greeting. */
const MONITOR_SNIFF_CHARS = 16;
/**
 * How long close() waits for replies still owed to calls given up. qemu-ga
 * serving its own socket (`-m unix-listen`) quits when a client closes with
 * a reply unread (the kernel then resets the connection), so a Ctrl-C must
 * not end it. Closed while nothing comes, the socket holds nothing unread
 * (a reply written later only fails to be sent, which the agent survives);
 * while a reply is coming (16 MB of a program's output take a while), the
 * wait goes on as long as bytes keep coming, up to a bound.
 */
const OWED_REPLIES_SILENCE_MS = 300; // qemu-ga took 114 ms to build a 22 MB reply here
const OWED_REPLIES_MAX_MS = 1000; // beyond a run's --timeout or Ctrl-C: kept short

/**
 * The default bound on one message from the agent: its largest reply, a
 * `guest-file-read` of the most it reads at once (48 MiB), is 64 MiB in
 * base64 with the JSON around it, just over QMP's bound.
 */
const AGENT_MAX_MESSAGE_BYTES = DEFAULT_MAX_MESSAGE_BYTES + 64 * 1024;

/** Options of `GuestAgent.connect`. */
export interface AgentConnectOptions {
  /** Aborts connecting and the sync. */
  signal?: AbortSignal;
  /**
   * Milliseconds allowed for connecting and the agent's answer to the sync; 0
   * or Infinity for no bound (see `timeoutSignal`). Default 10 000. When it runs out, a reply on its way is
   * still read off the channel (up to 300 ms of silence, 1 s at most), so that
   * the next client does not take it for its own: the rejection comes that much later.
   */
  connectTimeout?: number;
  /** Bound on one incoming message, in bytes. Default 64 MiB and 64 KiB: qemu-ga's largest reply fits. */
  maxMessageBytes?: number;
  /** Called with each message as it crosses the wire, compact JSON on one line. */
  log?: (direction: "send" | "receive", json: string) => void;
}

/**
 * The peer closed the connection before the agent answered the sync: a
 * socket that is there but whose agent is not yet (a QEMU or relay starting),
 * or something else on it. `--wait-socket` retries it, as a monitor's close
 * before its greeting (GreetingClosedError).
 */
export class SyncClosedError extends DisconnectedError {
  /** `"SyncClosedError"`; its `code` is DisconnectedError's, `DISCONNECTED`: test `instanceof` to tell it apart. */
  override name = "SyncClosedError";
}

/**
 * The peer greeted as a QMP monitor does: it is a monitor, not a guest
 * agent, and would never answer the sync. Its code and name are
 * ProtocolError's.
 */
export class MonitorNotAgentError extends ProtocolError {}

interface PendingCall {
  command: string;
  resolve: (response: Record<string, unknown>) => void;
  reject: (error: QmpError) => void;
}

/**
 * A connected, synchronised guest agent.
 *
 * @example
 * ```ts
 * const agent = await GuestAgent.connect("/run/vm1.ga", { connectTimeout: 5000 });
 * try {
 *   console.log(await agent.execute("guest-get-osinfo", undefined, { signal: AbortSignal.timeout(5000) }));
 * } finally {
 *   await agent.close();
 * }
 * ```
 */
export class GuestAgent {
  /** Where the agent is reached. */
  readonly address: Address;
  #transport?: Transport;
  readonly #maxBytes: number;
  readonly #log?: AgentConnectOptions["log"];
  /** The framer of the current segment; during the sync, a new one after each 0xFF (none before the first). */
  #framer?: JsonFramer;
  #syncId = 0;
  /** The first characters received before any 0xFF, to recognise a QMP monitor's greeting. */
  #head = "";
  /** Bytes received while syncing: a peer that floods without answering is no agent (bounded as a message is). */
  #syncingBytes = 0;
  #syncWaiter?: { resolve: () => void; reject: (error: QmpError) => void };
  /** Connecting found the listen queue full (EAGAIN) and waited: said if the connect timeout runs out so. */
  #listenQueueFull = false;
  #phase: "syncing" | "running" | "closed" = "syncing";
  #failure?: QmpError;
  readonly #pending = new Map<string, PendingCall>();
  #nextId = 1;
  /** Requests sent whose reply has not come, abandoned ones too (see OWED_REPLIES_SILENCE_MS). */
  #owed = 0;
  #allAnswered?: () => void;
  /** While close() waits for owed replies: bytes came, so the wait goes on. */
  #replyComing?: () => void;

  private constructor(address: Address, options: AgentConnectOptions) {
    this.address = address;
    this.#maxBytes = options.maxMessageBytes ?? AGENT_MAX_MESSAGE_BYTES;
    this.#log = options.log;
  }

  /**
   * Connect and resynchronise the channel.
   * @throws {AddressError | ConnectionError} when the socket cannot be connected
   * @throws {ConnectTimeoutError} when no agent answered the sync within `connectTimeout`
   * @throws {SyncClosedError} (a DisconnectedError) when the peer closed before the agent answered
   * @throws {MonitorNotAgentError} (a ProtocolError) when the peer greeted as a QMP monitor
   * @throws {TimeoutError | AbortedError} when `signal` aborts first
   */
  static async connect(address: string | Address, options: AgentConnectOptions = {}): Promise<GuestAgent> {
    const agent = new GuestAgent(typeof address === "string" ? parseAddress(address) : address, options);
    const limitMs = options.connectTimeout ?? DEFAULT_CONNECT_TIMEOUT_MS;
    const limit = timeoutSignal(limitMs);
    const signal = eitherAborts(options.signal, limit);
    const where = agent.address.text;
    const timedOut = new ConnectTimeoutError(
      `no guest agent answered at ${where} within ${formatDuration(limitMs)} ` +
        "(the guest may still be booting, or run no qemu-ga; or another client is using the agent, " +
        "which answers one at a time)",
    );
    const aborted = abortErrorFor(`the guest agent at ${where} to answer`);
    const failure = () =>
      limit?.aborted && !options.signal?.aborted ? agent.#timedOut(timedOut, limitMs) : aborted(options.signal!);
    try {
      await abortable(agent.#open({ signal, connectTimeout: limitMs }), signal, failure);
      return agent;
    } catch (error) {
      await agent.#awaitOwedReplies(); // the sync's reply, on its way when the bound ran out: read, not left
      agent.#shutdown(error as QmpError);
      throw error;
    }
  }

  /**
   * Run an agent command and return its `return` value. A command the agent
   * answers only when it fails (AGENT_COMMANDS_WITHOUT_REPLY: guest-shutdown,
   * guest-suspend-*) resolves to undefined once a guest-ping sent after it is
   * answered, or the connection ends (the guest went down), or `settleMs`
   * passes without either (a suspending guest freezes its agent): the agent
   * handles requests in order, so its error, if any, would have come first.
   * @throws {CommandError} when the agent answers with an error
   * @throws {DisconnectedError | ProtocolError | TimeoutError | AbortedError}
   */
  async execute(
    command: string,
    args?: Record<string, unknown>,
    options: {
      signal?: AbortSignal;
      /** For a command without reply: how long its guest-ping may go unanswered (ms; 0 or none: no bound). */
      settleMs?: number;
    } = {},
  ): Promise<unknown> {
    if (!AGENT_COMMANDS_WITHOUT_REPLY.has(command)) return await this.#request(command, args, options);
    let failure: unknown;
    // On success no reply ever comes: this call stays pending until the connection closes, when it is dropped.
    // An agent that echoes no ids gives the ping's reply to the oldest call waiting, this one: that is the ping's
    // answer, and the ping's own call is then given up (else it would take the next reply).
    const tookAReply = this.#request(command, args, options).then(() => true, (error) => {
      failure = error;
      return false;
    });
    const giveUp = new AbortController();
    const signal = options.signal ? AbortSignal.any([options.signal, giveUp.signal]) : giveUp.signal;
    const ping = this.#request(
      "guest-ping",
      undefined,
      { signal },
      `the guest agent at ${this.address.text} to take ${command} (a guest-ping after it)`,
    );
    const tookPing = tookAReply.then((took) => took ? giveUp.abort() : new Promise<never>(() => {}));
    let settleTimer: ReturnType<typeof setTimeout> | undefined;
    const settled = new Promise<void>((resolve) => {
      if (options.settleMs) settleTimer = setTimeout(() => resolve(giveUp.abort()), options.settleMs);
    });
    try {
      await Promise.race([ping, tookPing, settled]);
    } catch (error) {
      if (!(error instanceof DisconnectedError)) throw error;
    } finally {
      clearTimeout(settleTimer);
    }
    if (failure instanceof CommandError) throw failure;
    return undefined;
  }

  async #request(
    command: string,
    args: Record<string, unknown> | undefined,
    options: { signal?: AbortSignal },
    awaited = `the guest agent's reply to ${command} from ${this.address.text}`, // what a timeout or abort says
  ) {
    const { signal } = options;
    const abortError = abortErrorFor(awaited);
    if (signal?.aborted) throw abortError(signal);
    if (this.#phase === "closed") {
      throw this.#failure ?? new DisconnectedError(`the connection to ${this.address.text} is closed`);
    }
    // The sync's random id in every id: a reply to an earlier client's request is never taken for one of ours.
    const id = `qmpctl-${this.#syncId}-${this.#nextId}`;
    // Before anything is recorded: a call that cannot be sent leaves no trace.
    const json = requestJson(command, { execute: command, ...(args === undefined ? {} : { arguments: args }), id });
    this.#nextId++;
    const { promise: reply, resolve, reject } = Promise.withResolvers<Record<string, unknown>>();
    this.#pending.set(id, { command, resolve, reject });
    this.#send(json);
    const response = await abortable(reply, signal, () => {
      this.#pending.delete(id); // given up: a reply that comes later is dropped
      return abortError(signal!);
    });
    if ("error" in response) {
      delete response.id;
      throw new CommandError(response, command);
    }
    return response.return;
  }

  /**
   * Close the connection once the replies still owed (to calls pending or
   * given up) have come, or nothing has come for 300 ms (at most 1 s while
   * bytes keep coming). A pending call whose reply comes during that wait
   * gets it; those still pending after it fail with DisconnectedError.
   */
  async close(): Promise<void> {
    await this.#awaitOwedReplies();
    this.#shutdown(undefined, "the client closed the connection");
  }

  /** Resolves when no reply is owed, the connection has ended, or the wait is over (see OWED_REPLIES_SILENCE_MS). */
  async #awaitOwedReplies(): Promise<void> {
    if (this.#owed === 0 || this.#phase === "closed" || !this.#transport) return;
    const deadline = performance.now() + OWED_REPLIES_MAX_MS;
    let timer: ReturnType<typeof setTimeout> | undefined;
    await new Promise<void>((resolve) => {
      this.#allAnswered = resolve;
      this.#replyComing = () => {
        clearTimeout(timer);
        timer = setTimeout(resolve, Math.min(OWED_REPLIES_SILENCE_MS, Math.max(0, deadline - performance.now())));
      };
      this.#replyComing();
    });
    clearTimeout(timer);
    this.#allAnswered = this.#replyComing = undefined;
  }

  /**
   * The reply to the request with `id` came. The agent answers in order, so
   * the requests before it are done too, answered or not (guest-shutdown is
   * answered only when it fails).
   */
  #answered(id: unknown): void {
    const prefix = `qmpctl-${this.#syncId}-`;
    const sequence = typeof id === "string" && id.startsWith(prefix) ? Number(id.slice(prefix.length)) : NaN;
    this.#owed = Number.isInteger(sequence) ? this.#nextId - 1 - sequence : Math.max(0, this.#owed - 1);
    if (this.#owed === 0) this.#allAnswered?.();
  }

  /**
   * The connect timeout's error: `timedOut` as it was made (at the caller), or, when it ran out while the
   * socket's listen queue was full, one that says so.
   */
  #timedOut(timedOut: ConnectTimeoutError, limitMs: number): ConnectTimeoutError {
    if (this.#transport || !this.#listenQueueFull) return timedOut;
    timedOut.message = `no connection to ${this.address.text} within ${formatDuration(limitMs)}: ` +
      "its listen queue stayed full (EAGAIN): another client may be using the agent, which answers one at a " +
      "time, while others wait their turn, or too many clients are connecting at once";
    return timedOut;
  }

  /** `options.signal` bounds connecting, waiting out a full listen queue too (as a monitor's is). */
  async #open(options: TransportOptions): Promise<void> {
    const synced = new Promise<void>((resolve, reject) => (this.#syncWaiter = { resolve, reject }));
    synced.catch(() => {}); // awaited below unless connecting fails or is abandoned first
    const transport = await connectTransport(this.address, {
      data: (chunk) => this.#receive(chunk),
      close: (error) => this.#peerClosed(error),
    }, { ...options, onBusy: () => (this.#listenQueueFull = true) }).catch((error) => {
      // A reset while connecting: the server had taken the connection and dropped it before the runtime
      // reported it open; for the user the same as a close before the sync's answer (QmpClient does likewise).
      if ((error.cause as { code?: string } | undefined)?.code !== "ECONNRESET") throw error;
      throw this.#closedBeforeSync(error.cause);
    });
    if (this.#phase === "closed") { // the wait was abandoned, or the peer failed, while connecting
      transport.close();
      // Under Deno and Node the peer's first bytes (not an agent's) can come before this continuation runs.
      throw this.#failure ?? this.#closedBeforeSync();
    }
    this.#transport = transport;
    // A random id, so that the reply to an earlier client's sync is not taken for ours.
    this.#syncId = 1 + Math.floor(Math.random() * 0x7fff_fffe);
    transport.write(Uint8Array.of(DELIMITER));
    this.#send(JSON.stringify({ execute: "guest-sync-delimited", arguments: { id: this.#syncId } }));
    await synced;
  }

  /** A getter, so the check reads the phase as it is now, after calls that change it. */
  get #running(): boolean {
    return this.#phase === "running";
  }

  #send(json: string): void {
    this.#log?.("send", json);
    this.#owed++;
    this.#transport!.write(json + "\n");
  }

  #receive(chunk: Uint8Array): void {
    if (this.#phase === "closed") return;
    this.#replyComing?.();
    try {
      // The agent puts a 0xFF before the reply to a guest-sync-delimited, ours or a caller's; it is never in
      // JSON text (no UTF-8 holds it): a delimiter to skip.
      if (this.#phase === "running") return this.#take(this.#framer!.push(withoutDelimiters(chunk)));
      this.#syncingBytes += chunk.length;
      if (this.#syncingBytes > this.#maxBytes) {
        throw new ProtocolError(
          `${this.address.text} sent more than ${this.#maxBytes} bytes without answering the sync ` +
            "(guest-sync-delimited): is it a guest agent?",
        );
      }
      let from = 0;
      while (from <= chunk.length && this.#phase === "syncing") {
        const at = chunk.indexOf(DELIMITER, from);
        const end = at < 0 ? chunk.length : at;
        this.#takeWhileSyncing(chunk.subarray(from, end));
        if (at < 0) return;
        if (this.#phase === "syncing") this.#framer = new JsonFramer(this.#maxBytes);
        from = at + 1;
      }
      if (this.#running && from < chunk.length) this.#take(this.#framer!.push(withoutDelimiters(chunk.subarray(from))));
    } catch (error) {
      this.#shutdown(this.#named(error as QmpError));
    }
  }

  /** A fault in what the agent sent, naming it (as the QMP client names a monitor). */
  #named(failure: QmpError): QmpError {
    const address = this.address.text;
    if (failure instanceof ProtocolError && !failure.message.startsWith(`${address} `)) {
      failure.message = `${address}: ${failure.message}`;
    }
    return failure;
  }

  /** Bytes of one segment between 0xFF bytes: stale until the reply to our sync is among them. */
  #takeWhileSyncing(bytes: Uint8Array): void {
    if (!this.#framer) return this.#checkNotMonitor(bytes);
    if (bytes.length === 0) return;
    let messages: unknown[];
    try {
      messages = this.#framer.push(bytes);
    } catch {
      this.#framer = undefined; // stale garbage: wait for the next 0xFF
      return;
    }
    const ours = messages.findIndex((m) => (m as Record<string, unknown> | null)?.return === this.#syncId);
    for (const message of messages.slice(0, ours < 0 ? undefined : ours + 1)) {
      this.#log?.("receive", JSON.stringify(message));
    }
    if (ours < 0) return;
    this.#owed = 0; // nothing is sent before the sync but the 0xFF, which gets no reply
    this.#phase = "running";
    this.#syncWaiter?.resolve();
    this.#take(messages.slice(ours + 1));
  }

  /**
   * The bytes before the first 0xFF are stale agent output, except from a
   * QMP monitor given by mistake: QEMU greets every client with {"QMP": ...}
   * at once and never sends a 0xFF, so the sync would only time out.
   */
  #checkNotMonitor(bytes: Uint8Array): void {
    if (this.#head.length >= MONITOR_SNIFF_CHARS) return;
    this.#head += new TextDecoder().decode(bytes.subarray(0, MONITOR_SNIFF_CHARS));
    if (/^\s*\{\s*"QMP"\s*:/.test(this.#head)) {
      throw new MonitorNotAgentError(`${this.address.text} is a QMP monitor, not a guest agent`);
    }
  }

  #take(messages: unknown[]): void {
    for (const message of messages) {
      this.#log?.("receive", JSON.stringify(message));
      this.#dispatch(message);
    }
  }

  #dispatch(message: unknown): void {
    if (typeof message !== "object" || message === null || Array.isArray(message)) {
      throw new ProtocolError(`received ${JSON.stringify(message)}, not a guest agent reply`);
    }
    const m = message as Record<string, unknown>;
    if (!("return" in m) && !("error" in m)) {
      throw new ProtocolError(`received a message that is not a reply: ${JSON.stringify(m).slice(0, 200)}`);
    }
    if ("error" in m) {
      const malformed = malformedErrorReply(m);
      if (malformed) throw malformed;
    }
    // A reply without an id (an agent that does not echo ids, or an error for a request it could not parse)
    // answers the oldest call still waiting: the agent answers in order. A reply with an id no call waits
    // for is from a call that gave up: dropped.
    const id = "id" in m ? m.id : this.#pending.keys().next().value;
    this.#answered(id);
    const call = typeof id === "string" ? this.#pending.get(id) : undefined;
    if (!call) return;
    this.#pending.delete(id as string);
    call.resolve(m);
  }

  #peerClosed(error?: Error): void {
    if (this.#phase === "closed") return;
    // A transport that knows why the connection ended (ssh: no socket there yet, or its Ctrl-C) reports it.
    if (error instanceof ConnectionError || error instanceof AbortedError) return this.#shutdown(error);
    const failure = this.#phase === "syncing"
      ? this.#closedBeforeSync(error)
      : new DisconnectedError(`${this.address.text} closed the connection`, { cause: error });
    this.#shutdown(failure);
  }

  #closedBeforeSync(cause?: unknown): SyncClosedError {
    return new SyncClosedError(`${this.address.text} closed the connection before the guest agent answered`, { cause });
  }

  #shutdown(failure: QmpError | undefined, reason = failure?.message ?? "connection closed"): void {
    if (this.#phase === "closed") return;
    const wasSyncing = this.#phase === "syncing";
    this.#phase = "closed";
    this.#failure = failure;
    this.#allAnswered?.();
    this.#transport?.close();
    for (const call of this.#pending.values()) {
      call.reject(failure ?? new DisconnectedError(`${reason} before the reply to ${call.command}`));
    }
    this.#pending.clear();
    if (wasSyncing) this.#syncWaiter?.reject(failure ?? new DisconnectedError(reason));
  }
}

/** `bytes` without the agent's 0xFF delimiters (the same array when it holds none). */
function withoutDelimiters(bytes: Uint8Array): Uint8Array {
  return bytes.includes(DELIMITER) ? bytes.filter((byte) => byte !== DELIMITER) : bytes;
}
