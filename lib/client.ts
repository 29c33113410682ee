/**
 * QmpClient: the QEMU Monitor Protocol over one connection.
 *
 * A small state machine, as in QEMU's docs/interop/qmp-spec: the server
 * speaks first with a greeting (spec 2.2), the client negotiates with
 * `qmp_capabilities` (spec 4), then commands and their replies (spec 2.3,
 * 2.4) interleave with asynchronous events (spec 2.5). Replies are matched to
 * calls by `id`, unique to the process and the client (see ID_PREFIX); a
 * reply whose id no call waits for (its caller gave up, or it is an earlier
 * client's) is dropped; an error without an id ends the session (see dispatch).
 *
 * @module
 */
import { abortable, eitherAborts, timeoutSignal } from "./abort.ts";
import { type Address, parseAddress } from "./address.ts";
import {
  AbortedError,
  abortErrorFor,
  ArgumentError,
  type AwaitedStep,
  awaitedStep,
  CommandError,
  ConnectionError,
  DisconnectedError,
  excerpt,
  GreetingClosedError,
  GreetingError,
  malformedErrorReply,
  MessageTooLargeError,
  NegotiationError,
  notAQmpServer,
  notReadyError,
  ProtocolError,
  type QmpError,
  UnparsedRequestError,
} from "./errors.ts";
import { isRawNumber, requestJson } from "./exact_json.ts";
import { awaitedEvents, type EventFilter, EventSubscription, type QmpEvent, type SubscribeOptions } from "./events.ts";
import { DEFAULT_MAX_MESSAGE_BYTES, JsonFramer } from "./framing.ts";
import { refusedByQemuParser, surelyParsed } from "./parser_limits.ts";
import { connectTransport, type Transport, type TransportOptions } from "./transport.ts";

/** The server's version and capabilities, from its greeting. */
export interface Greeting {
  /** `{ major, minor, micro }`; from a v0.1 server's `"0.12.50"` string too (`package` "" when it gives none). */
  version: { major: number; minor: number; micro: number; package: string };
  /** The capabilities the server offered (e.g. `["oob"]`). */
  capabilities: string[];
  /** The greeting object as received. */
  raw: Record<string, unknown>;
}

/** The default bound on connecting, the greeting and negotiation, in milliseconds. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;

/** Options of `QmpClient.connect`. */
export interface ConnectOptions {
  /** Aborts connecting, the greeting and negotiation. */
  signal?: AbortSignal;
  /**
   * Milliseconds allowed for connecting, the greeting and negotiation; 0 or Infinity for no bound (see
   * `timeoutSignal`). Default `DEFAULT_CONNECT_TIMEOUT_MS` (10 s).
   */
  connectTimeout?: number;
  /** Bound on one incoming message, in bytes. Default 64 MiB. */
  maxMessageBytes?: number;
  /** Called with each message as it crosses the wire, compact JSON on one line. */
  log?: (direction: "send" | "receive", json: string) => void;
  /**
   * Called with the client before it connects, to subscribe (`client.events`)
   * from the very start. QEMU may send events right behind its answer to
   * `qmp_capabilities`, in the same read: they are handed out before
   * `connect` returns, so a subscription made after it would miss them.
   *
   * @example
   * ```ts
   * import { QmpClient } from "./client.ts";
   * import type { EventSubscription } from "./events.ts";
   * const subscriptions: EventSubscription[] = [];
   * await QmpClient.connect("/run/vm1.qmp", { subscribe: (c) => void subscriptions.push(c.events()) });
   * for await (const event of subscriptions[0]) console.log(event.event); // from the very first one
   * ```
   */
  subscribe?: (client: QmpClient) => void;
  /**
   * Resolve as soon as `qmp_capabilities` is sent, not when it is answered:
   * commands then go out right behind it, which saves a round trip. QEMU runs
   * in-band commands in the order it receives them (qmp-spec, "Out-of-band
   * execution"), so they run after negotiation. A call made before the
   * answer still fails with negotiation's error when negotiation fails;
   * `connectTimeout` and `signal` go on bounding negotiation. exec-oob waits
   * until negotiation has enabled `oob`. Not over TCP, where QEMU's Nagle
   * would hold the second reply for the first's delayed ACK (~40 ms).
   */
  pipeline?: boolean;
}

/** Options of one command. */
export interface ExecuteOptions {
  /** Abort the wait for the reply; a reply that comes later is dropped. */
  signal?: AbortSignal;
  /**
   * The id to send (any JSON value); by default one of the client's own
   * (`qmpctl-<tag>-<n>`: `<tag>` the process's, `<n>` counting the calls of
   * all its clients; one a caller's call waits on is skipped). An id a call
   * still waits on is refused (ArgumentError). A reply to a caller's id that
   * comes before `qmp_capabilities` is answered (`pipeline`) is dropped: an
   * earlier client's reply may carry the same id.
   */
  id?: unknown;
  /** Send as `exec-oob` (needs the `oob` capability, which connect enables when offered). */
  oob?: boolean;
  /**
   * Send without an id and take the next id-less reply: QEMU answers a
   * monitor's in-band commands in the order it received them (qmp-spec 2.3).
   * For many pipelined commands: a shorter message is less for QEMU to parse.
   * Ignored with `id` or `oob`.
   */
  inOrder?: boolean;
  /**
   * Called as the reply is read, before any message that came after it:
   * a subscription's `queued` then counts the events that came before the
   * reply, which are older than what it says, and no later one. It gets the
   * whole response object, every member as QEMU sent it, in its order
   * (without the id, unless the caller gave `id`).
   */
  onReply?: (response: Record<string, unknown>) => void;
}

interface PendingCall {
  command: string;
  /** Its id is one of the client's own (ID_PREFIX): no earlier client's reply can carry it. */
  ownId: boolean;
  resolve: (response: Record<string, unknown>) => void;
  reject: (error: QmpError) => void;
}

type Phase = "connecting" | "greeting" | "negotiating" | "running" | "closed";

/**
 * A connected, negotiated QMP client.
 *
 * @example
 * ```ts
 * import { QmpClient } from "./client.ts";
 * const qmp = await QmpClient.connect("/run/vm1.qmp", { connectTimeout: 5000 });
 * const signal = AbortSignal.timeout(10_000); // the command and the wait (a paused VM sends no STOP)
 * const stops = qmp.events({ names: ["STOP"] }, { signal, limit: 1 }); // subscribe before the command
 * await qmp.execute("stop", {}, { signal });
 * for await (const event of stops) console.log(event.timestamp);
 * await qmp.close();
 * ```
 */
export class QmpClient {
  // TypeScript's `private`, not `#private`: cheaper for a one-shot run (README, Development).
  /** Where the client is connected. */
  readonly address: Address;
  private greetingMessage?: Greeting;
  private enabledCapabilities: string[] = [];
  private transport?: Transport;
  private readonly framer: JsonFramer;
  private readonly log?: ConnectOptions["log"];
  private readonly pending = new Map<string, PendingCall>();
  /** The keys of the calls sent without an id (`inOrder`), oldest first; an abandoned one stays until its reply. */
  private inOrder: string[] = [];
  /**
   * The subscriptions, as a Map's keys. Not a Set: a process's first use of
   * one costs ~0.05 M instructions (the runtime makes its constructor then).
   * Not an array: one that ends while the others are offered events is
   * removed without the loop skipping the next, as in a Set.
   */
  private readonly subscriptions = new Map<EventSubscription, true>();
  /** Reading is paused because a subscriber's queue is full (see updateFlow). */
  private paused = false;
  private phase: Phase = "connecting";
  /** Until the greeting: its promise's functions, and how many bytes came meanwhile (for a greeting that stalls). */
  private greetingWaiter?: { resolve: (greeting: Greeting) => void; reject: (error: QmpError) => void; bytes: number };
  /** Settles when negotiation has: awaited by calls made before it ends (with `pipeline`). */
  private negotiated?: Promise<void>;
  /** Our qmp_capabilities' id, from the greeting until it is answered: the one reply taken till then. */
  private capabilitiesId?: string;
  private capabilitiesSent = Promise.withResolvers<void>();
  private failure?: QmpError;
  /** close() ended the session (see notGreeted). */
  private closedByCaller = false;
  /** connect(2) said EAGAIN: the server's listen queue was full (for the timeout message). */
  private listenQueueFull = false;
  /** The start of the first chunk the peer sent that was not all blanks (a getty may send a blank line first). */
  private firstBytes?: Uint8Array;
  private readonly whenClosed: Promise<QmpError | undefined>;
  private markClosed!: (failure: QmpError | undefined) => void;

  private constructor(address: Address, options: ConnectOptions) {
    this.address = address;
    this.framer = new JsonFramer(options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES);
    this.log = options.log;
    // Promises on the one-shot path come from Promise.withResolvers (see lib/abort.ts).
    const closed = Promise.withResolvers<QmpError | undefined>();
    this.whenClosed = closed.promise;
    this.markClosed = closed.resolve;
  }

  /**
   * Connect to a QMP server, read its greeting and negotiate capabilities
   * (`oob` is enabled when the server offers it).
   *
   * @example
   * ```ts
   * import { QmpClient } from "./client.ts";
   * const qmp = await QmpClient.connect("tcp:[::1]:4444", { signal: AbortSignal.timeout(3000) });
   * ```
   * @throws {AddressError | ConnectionError | ConnectTimeoutError | GreetingError | NegotiationError}
   * @throws {TimeoutError | AbortedError} when `signal` ends it first (not a ConnectionError: `connectTimeout`'s bound is)
   * @throws {DisconnectedError} when the client is closed (from `subscribe`) before it is ready, as its calls are
   */
  static async connect(address: string | Address, options: ConnectOptions = {}): Promise<QmpClient> {
    const client = new QmpClient(typeof address === "string" ? parseAddress(address) : address, options);
    options.subscribe?.(client);
    const limitMs = options.connectTimeout ?? DEFAULT_CONNECT_TIMEOUT_MS;
    const limit = timeoutSignal(limitMs);
    const signal = eitherAborts(options.signal, limit);
    // Which bound ran out decides the error: the caller's signal's, else ConnectTimeoutError.
    const abortError = () => notReadyError(client.awaitedStep(), limitMs, options.signal);
    // Bounded until negotiation is answered, also when `pipeline` returns before that.
    const negotiated = abortable(client.open({ signal, connectTimeout: limitMs }), signal, abortError);
    negotiated.catch(() => {}); // awaited below
    // Not over TCP: QEMU's socket has Nagle's algorithm on (its chardev's nodelay=off), so its reply to a
    // command sent behind qmp_capabilities waits for our ACK of the first reply, which Linux delays ~40 ms;
    // a command sent once that reply came carries the ACK, and costs one round trip instead.
    const pipeline = options.pipeline && client.address.kind !== "tcp";
    try {
      await (pipeline ? firstOf(client.capabilitiesSent.promise, negotiated) : negotiated);
    } catch (error) {
      client.shutdown(error as QmpError);
      throw error;
    }
    // With `pipeline`, negotiation goes on behind the caller's first commands: its failure ends the session.
    if (pipeline) negotiated.catch((error: QmpError) => client.shutdown(error));
    return client;
  }

  /** The server's greeting. */
  get greeting(): Greeting {
    return this.greetingMessage!;
  }

  /** The capabilities enabled by negotiation. */
  get capabilities(): readonly string[] {
    return this.enabledCapabilities;
  }

  /**
   * Settles when the connection has ended: with the error that ended it, or
   * undefined when it ended in order, between messages: closed by this
   * client, or by QEMU (it quit, or died: the socket closes the same way;
   * calls still pending then reject with DisconnectedError). While a full
   * subscription holds up reading (see `events`), the end is seen only once
   * reading resumes: read that subscription, or close it.
   */
  get closed(): Promise<QmpError | undefined> {
    return this.whenClosed;
  }

  /** What `JSON.stringify` shows of a client: its address (not its private state). */
  toJSON(): { address: Address } {
    return { address: this.address };
  }

  /**
   * Run a command and return its `return` value.
   *
   * @example
   * ```ts
   * import { QmpClient } from "./client.ts";
   * const qmp = await QmpClient.connect("/run/vm1.qmp");
   * const status = await qmp.execute("query-status", undefined, { signal: AbortSignal.timeout(1000) });
   * ```
   * @throws {CommandError} when QEMU answers with an error (its whole response is on `.response`);
   *   an UnparsedRequestError (an error without an id) also ends the session
   * @throws {DisconnectedError | ProtocolError | TimeoutError | AbortedError}
   */
  async execute(command: string, args?: Record<string, unknown>, options: ExecuteOptions = {}): Promise<unknown> {
    // An aborted signal sends nothing (call says so): the wait below would say the command was sent.
    if (this.phase !== "negotiating" || options.signal?.aborted) {
      return (await this.call(command, args, options)).return;
    }
    // The caller's signal bounds the wait for negotiation too, which is then what was waited for.
    const negotiated = abortable(
      this.negotiated ?? Promise.resolve(),
      options.signal,
      `the answer to qmp_capabilities from ${this.address.text} (${command} was sent behind it: QEMU may run it)`,
    );
    if (options.oob) await negotiated; // exec-oob would overtake qmp_capabilities
    const reply = this.call(command, args, options); // sent now, behind qmp_capabilities
    reply.catch(() => {}); // negotiation's error comes first
    await negotiated;
    return (await reply).return;
  }

  /**
   * Subscribe to events. Subscribe before sending the command that causes
   * them: events are queued for each subscriber from this call on. A
   * subscriber that does not read holds up the socket once its queue is
   * full (`highWaterMark`), except while a command waits for its reply.
   * When the connection ends, a `for await` still gets the queued events,
   * then ends: quietly after a clean close, unless the subscription has a
   * `limit` not yet reached: then it throws DisconnectedError.
   *
   * @example
   * ```ts
   * import { QmpClient } from "./client.ts";
   * const qmp = await QmpClient.connect("/run/vm1.qmp");
   * const signal = AbortSignal.timeout(60_000);
   * for await (const event of qmp.events({ names: ["BLOCK_JOB_*"] }, { signal })) console.log(event);
   * ```
   */
  events(filter: EventFilter = {}, options: SubscribeOptions = {}): EventSubscription {
    const subscription = new EventSubscription(filter, {
      ended: (s) => {
        this.subscriptions.delete(s);
        this.updateFlow();
      },
      drained: () => this.updateFlow(),
    }, options);
    if (this.phase === "closed") {
      subscription.disconnected(this.failure, `the connection to ${this.address.text} had ended`);
    } else if (!subscription.ended) this.subscriptions.set(subscription, true);
    return subscription;
  }

  /**
   * Wait for the first event that passes `filter`. The subscription starts
   * when this is called, so call it before sending the command that causes
   * the event (QEMU sends STOP before its reply to `stop`).
   *
   * @example
   * ```ts
   * import { QmpClient } from "./client.ts";
   * const qmp = await QmpClient.connect("/run/vm1.qmp");
   * const stopped = qmp.waitForEvent({ names: ["STOP"] }, { signal: AbortSignal.timeout(5000) });
   * await qmp.execute("stop");
   * console.log((await stopped).timestamp);
   * ```
   * @throws {DisconnectedError} when the connection ends first
   * @throws {TimeoutError | AbortedError} when `signal` aborts first
   */
  async waitForEvent(filter: EventFilter = {}, options: { signal?: AbortSignal } = {}): Promise<QmpEvent> {
    const subscription = this.events(filter, { signal: options.signal, limit: 1 });
    const [event] = await subscription.nextBatch();
    if (event) return event;
    const what = awaitedEvents(filter.names);
    throw this.failure ?? new DisconnectedError(`the connection to ${this.address.text} ended before ${what}`);
  }

  /**
   * Close the connection; pending calls fail with DisconnectedError, and so
   * does a `connect` still under way (closed from `subscribe`); subscriptions end.
   */
  close(): Promise<QmpError | undefined> {
    if (this.phase !== "closed") this.closedByCaller = true;
    this.shutdown(undefined, "the client closed the connection");
    return this.whenClosed;
  }

  /**
   * Connect, read the greeting and send `qmp_capabilities` (enabling `oob`
   * when offered); settles when negotiation has. `connect` bounds it.
   */
  private async open(options: TransportOptions): Promise<void> {
    const { promise: greeting, resolve, reject } = Promise.withResolvers<Greeting>();
    this.greetingWaiter = { resolve, reject, bytes: 0 };
    greeting.catch(() => {}); // awaited below unless connecting fails or is abandoned first
    const transport = await connectTransport(this.address, {
      data: (chunk) => this.receive(chunk),
      close: (error) => this.peerClosed(error),
    }, { ...options, onBusy: () => (this.listenQueueFull = true) }).catch((error) => {
      // A reset while connecting means the server had taken the connection
      // (one nobody listens for is refused) and dropped it before the runtime
      // reported it open: the same event, for the user, as a close before the
      // greeting, which is what a server killed a moment later looks like.
      if ((error.cause as { code?: string } | undefined)?.code !== "ECONNRESET") throw error;
      throw new GreetingClosedError(this.closedReason(), { cause: error.cause });
    });
    if (this.phase === "closed") { // the wait was abandoned, or the peer failed, while connecting
      transport.close();
      // Under Deno and Node the peer's first bytes (not a greeting) can come before this continuation runs.
      throw this.failure ?? this.notGreeted();
    }
    this.transport = transport;
    // The greeting may already have arrived: node:net can report data before
    // this continuation runs.
    if (this.phase === "connecting") this.phase = "greeting";
    this.greetingMessage = await greeting;
    const enable: string[] = []; // not ["oob"]: a constant array takes a block of JavaScriptCore's heap
    if (this.greetingMessage.capabilities.includes("oob")) enable.push("oob");
    const id = this.capabilitiesId;
    this.negotiated = this.call("qmp_capabilities", enable.length > 0 ? { enable } : undefined, { id }).then(
      () => {
        this.enabledCapabilities = enable;
        if (this.phase === "negotiating") this.phase = "running";
      },
      (error) => {
        if (error instanceof CommandError) {
          throw new NegotiationError(`${this.address.text} refused qmp_capabilities: ${error.message}`, {
            cause: error,
          });
        }
        throw error;
      },
    );
    this.negotiated.catch(() => {}); // awaited below and by early calls
    this.capabilitiesSent.resolve();
    await this.negotiated;
  }

  /**
   * Send one command; resolves to its whole response, or rejects with a
   * CommandError for `{"error": ...}`. What cannot be sent (the session is
   * closed, exec-oob without `oob`, an id still waited on, JSON QEMU's
   * parser would refuse) is refused before anything is sent or recorded.
   */
  private call(
    command: string,
    args: Record<string, unknown> | undefined,
    options: ExecuteOptions,
  ): Promise<Record<string, unknown>> {
    const { signal } = options;
    const what = `the reply to ${command} from ${this.address.text}`; // which VM, in a loop's log
    if (signal?.aborted) return Promise.reject(abortErrorFor(what)(signal)); // before anything is sent
    if (this.phase === "closed") {
      return Promise.reject(this.failure ?? new DisconnectedError(`the connection to ${this.address.text} is closed`));
    }
    if (options.oob && !this.enabledCapabilities.includes("oob")) {
      return Promise.reject(
        new NegotiationError(`exec-oob needs the oob capability, which ${this.address.text} did not offer`),
      );
    }
    const inOrder = options.inOrder === true && options.id === undefined && !options.oob;
    const id = options.id === undefined ? this.unusedId() : options.id;
    const key = inOrder ? `#${id}` : idKey(id); // "#..." is no JSON text: no clash with an id's key
    if (this.pending.has(key)) return Promise.reject(new ArgumentError(`id ${key} is already waiting for a reply`));
    const message: Record<string, unknown> = { [options.oob ? "exec-oob" : "execute"]: command };
    if (args !== undefined) message.arguments = args;
    if (!inOrder) message.id = id;
    let json: string;
    try { // before anything is recorded: a call that cannot be sent must leave no trace to take a reply
      json = requestJson(command, message);
    } catch (error) {
      return Promise.reject(error);
    }
    // A lone surrogate, too deep a nesting: QEMU's answer would carry no id, which ends the session.
    const refused = surelyParsed(json) ? undefined : refusedByQemuParser(message);
    if (refused !== undefined) {
      return Promise.reject(new ArgumentError(`${command}: QEMU's parser would refuse it: ${refused}`));
    }
    if (inOrder) this.inOrder.push(key);
    const { promise: reply, resolve, reject } = Promise.withResolvers<Record<string, unknown>>();
    this.pending.set(key, {
      command,
      ownId: options.id === undefined,
      resolve: (response: Record<string, unknown>) => {
        if (options.id === undefined) delete response.id;
        options.onReply?.(response);
        if ("error" in response) reject(new CommandError(response, command));
        else resolve(response);
      },
      reject,
    });
    try {
      this.updateFlow(); // the reply may sit behind events a full subscriber has not read
      this.send(json);
    } catch (error) { // the call fails, as a throw in a Promise executor would make it
      reject(error);
    }
    return abortable(reply, signal, what).catch((error) => {
      // Aborted: forget the id, so a reply that comes later has no caller and is dropped.
      if (signal?.aborted && this.pending.delete(key)) this.updateFlow();
      throw error;
    });
  }

  /** One of the client's own ids (ID_PREFIX) that no call waits on: a caller may have chosen one in its form. */
  private unusedId(): string {
    let id: string;
    do id = ID_PREFIX + ++idCount; while (this.pending.has(idKey(id)));
    return id;
  }

  /** Write one message as a line, after logging it. */
  private send(json: string): void {
    this.log?.("send", json);
    this.transport!.write(json + "\n");
  }

  /**
   * A chunk from the transport: its messages are framed, events offered to
   * the subscriptions and the rest dispatched; a fault ends the session.
   */
  private receive(chunk: Uint8Array): void {
    if (this.phase === "closed") return;
    if (this.greetingWaiter) this.greetingWaiter.bytes += chunk.length;
    if (this.firstBytes === undefined) { // what a peer that is no QMP server is quoted by
      const start = firstNonBlank(chunk);
      if (start >= 0) this.firstBytes = chunk.slice(start, start + 256);
    }
    // The events are offered together (one call per subscriber, not one per
    // event): before the next other message and at the end of the chunk, so
    // everything still reaches its receiver in the order it came.
    let events: QmpEvent[] = [];
    const offerEvents = () => {
      const batch = events;
      events = [];
      for (const subscription of this.subscriptions.keys()) subscription.offerAll(batch);
    };
    try {
      // Each message is dispatched as it completes: those before a fault in
      // the same chunk count, then the fault ends the session. Events can
      // come even before the greeting: QEMU broadcasts them to a monitor
      // whose greeting it has not sent yet (RESUME at start-up).
      this.framer.push(chunk, (message) => {
        this.log?.("receive", JSON.stringify(message));
        if (isEvent(message)) events.push(message);
        else {
          if (events.length > 0) offerEvents();
          this.dispatch(message);
        }
      });
      if (events.length > 0) offerEvents();
      this.updateFlow();
    } catch (error) {
      if (events.length > 0) offerEvents(); // the events before the fault still count
      this.shutdown(this.named(error as QmpError));
    }
  }

  /**
   * A fault in what the peer sent, naming the peer. Before a greeting the
   * peer is no QMP server at all (an HMP monitor, a serial console, sshd):
   * a GreetingError quoting the start of what it sent.
   */
  private named(failure: QmpError): QmpError {
    if (!(failure instanceof ProtocolError)) return failure;
    const address = this.address.text;
    if ((this.phase === "connecting" || this.phase === "greeting") && !(failure instanceof MessageTooLargeError)) {
      return notAQmpServer(address, this.firstBytes ?? new Uint8Array(), failure);
    }
    failure.message = `${address}: ${failure.message}`;
    return failure;
  }

  /**
   * Backpressure: stop reading while some subscriber's queue is full, so the
   * kernel and then QEMU hold the backlog; but never while a call waits, since
   * its reply may be queued behind the events (such a backlog is bounded by
   * what QEMU sends before the reply).
   */
  private updateFlow(): void {
    let pause = false;
    for (const s of this.pending.size === 0 ? this.subscriptions.keys() : []) pause ||= s.congested;
    if (pause === this.paused || !this.transport || this.phase === "closed") return;
    this.paused = pause;
    if (pause) this.transport.pause();
    else this.transport.resume();
  }

  /**
   * One message that is no event: the first is the greeting, the rest
   * replies, each to the call of its id (or, without one, the oldest
   * `inOrder` call); one whose call is gone is dropped. Anything else throws
   * (an error without an id: UnparsedRequestError), which ends the session.
   */
  private dispatch(message: unknown): void {
    if (typeof message !== "object" || message === null || Array.isArray(message)) {
      throw new ProtocolError(`received ${JSON.stringify(message)}, not a QMP message`);
    }
    const m = message as Record<string, unknown>;
    if (this.phase === "connecting" || this.phase === "greeting") {
      this.phase = "negotiating"; // only the first other message may be the greeting
      this.capabilitiesId = this.unusedId(); // from now on (below): a reply may follow in this very read
      const greeting = parseGreeting(m, this.address.text), waiter = this.greetingWaiter!;
      this.greetingWaiter = undefined; // settled: closing makes no error for it
      return waiter.resolve(greeting);
    }
    if (!("return" in m) && !("error" in m)) {
      throw new ProtocolError(`received a message that is neither reply nor event: ${excerpt(m)}`);
    }
    if ("error" in m) {
      const malformed = malformedErrorReply(m);
      if (malformed) throw malformed;
    }
    // Before the answer to qmp_capabilities, QEMU may send an earlier client's replies: to the commands it was
    // still running when that client left (cut short by --timeout or Ctrl-C). Such a reply without an id (batch
    // and the piped shell send none), or with a caller's (alike from run to run), is dropped; one with an id of
    // our own (ID_PREFIX: no earlier client had it) is ours, from a peer that answers out of order.
    if (this.capabilitiesId !== undefined) {
      // Answered: the replies in the same read come before any continuation.
      if (m.id === this.capabilitiesId) this.capabilitiesId = undefined;
      else if (!("id" in m && this.pending.get(idKey(m.id))?.ownId)) return;
    }
    if ("id" in m) {
      const key = idKey(m.id);
      const call = this.pending.get(key);
      if (!call) return; // its caller gave up, or it was never ours (qmp-spec: unknown ids are dropped)
      this.pending.delete(key);
      call.resolve(m);
      return;
    }
    if (this.inOrder.length > 0) { // the reply to the oldest command sent without an id
      const key = this.inOrder.shift()!;
      const call = this.pending.get(key);
      if (call) {
        this.pending.delete(key);
        call.resolve(m);
      }
      return;
    }
    if (!("error" in m)) throw new ProtocolError(`received a reply without an id: ${excerpt(m)}`);
    // An error without an id ends the session, as in QEMU's python/qemu/qmp
    // (qmp_client.py raises ServerParseError and disconnects). QEMU sends one
    // only when it could not parse a request into an object with an id
    // (qmp-spec 2.4.2 "Error"), so it answers no call that can be named:
    // giving it to the oldest pending call could blame the wrong command, and
    // QEMU reads the rest of a request it could not parse as more requests
    // (one nested too deep drew 1027 such errors from QEMU 7.2).
    // Every pending call and subscription ends with this one error: QEMU's
    // error (a CommandError), not a fault of the connection.
    throw new UnparsedRequestError(m, this.address.text);
  }

  /**
   * The transport closed. The session ends: with the transport's own
   * ConnectionError or AbortedError when it gives one, else with a failure
   * only when the close came before the greeting or within a message.
   */
  private peerClosed(error?: Error): void {
    if (this.phase === "closed") return;
    // A transport that knows why the connection ended (ssh's own reason, or ssh taking a terminal's Ctrl-C)
    // reports it: it is the failure.
    if (error instanceof ConnectionError || error instanceof AbortedError) return this.shutdown(error);
    const reason = this.closedReason();
    // A close in the middle of a message is a failure even for an event stream, which an orderly close ends.
    const failure = this.phase === "greeting"
      ? new GreetingClosedError(reason, { cause: error })
      : this.framer.partial
      ? new DisconnectedError(reason, { cause: error })
      : undefined;
    this.shutdown(failure, reason, error);
  }

  /** How the peer's close reads, by what it cut short (while connecting: the greeting, see open). */
  private closedReason(): string {
    const where = this.framer.partial ? " in the middle of a message" : "";
    const what = this.phase === "greeting" || this.phase === "connecting"
      ? " before its QMP greeting"
      : this.phase === "negotiating"
      ? " during capabilities negotiation"
      : "";
    return `${this.address.text} closed the connection${where}${what}`;
  }

  /** End everything: `failure` is the error that broke the session, if one did. */
  private shutdown(
    failure: QmpError | undefined,
    reason = failure?.message ?? "connection closed",
    cause?: Error,
  ): void {
    if (this.phase === "closed") return;
    this.phase = "closed";
    this.failure = failure;
    this.greetingWaiter?.reject(failure ?? this.notGreeted());
    this.transport?.close();
    const closed = failure === undefined || failure instanceof DisconnectedError; // each call says what it awaited
    for (const call of this.pending.values()) {
      call.reject(closed ? new DisconnectedError(`${reason} before the reply to ${call.command}`, { cause }) : failure);
    }
    this.pending.clear();
    this.inOrder = [];
    for (const subscription of this.subscriptions.keys()) subscription.disconnected(failure, reason);
    this.markClosed(failure);
  }

  /**
   * Why a connect() that has no greeting yet fails when the session ended
   * without a fault: the caller closed it (a DisconnectedError, as its calls
   * get, not retried by connectWhenReady), or the peer did.
   */
  private notGreeted(): QmpError {
    const address = this.address.text;
    return this.closedByCaller
      ? new DisconnectedError(`the client closed the connection before the QMP greeting from ${address}`)
      : new GreetingClosedError(`${address} closed the connection before its QMP greeting`);
  }

  /** What connect() waits for now, for its timeout messages. */
  private awaitedStep(): AwaitedStep {
    const phase = this.phase === "greeting" || this.phase === "negotiating" ? this.phase : "connecting";
    // A greeting begun but unfinished: the peer is no silent busy monitor.
    const begun = phase === "greeting" && this.framer.partial ? this.greetingWaiter?.bytes : 0;
    return awaitedStep(phase, this.address.text, this.listenQueueFull, begun, this.address.kind === "tcp");
  }
}

/** Read a greeting: today's form, v0.1's (`"qemu": "0.12.50"`), or an old server's plain string (`"version": "0.12.5"`). */
function parseGreeting(message: Record<string, unknown>, address: string): Greeting {
  const qmp = message.QMP as Record<string, unknown> | undefined;
  let version = qmp?.version as Record<string, unknown> | string | undefined;
  if (typeof version === "string") version = { qemu: version }; // read as v0.1's "qemu" string, package ""
  if (typeof qmp !== "object" || qmp === null || typeof version !== "object" || version === null) {
    const what = typeof qmp === "object" && qmp !== null
      ? "sent a QMP greeting without its version"
      : "did not send a QMP greeting";
    throw new GreetingError(`${address} ${what}: ${excerpt(message)}`);
  }
  const qemu = version.qemu;
  let parts: unknown[] = [];
  if (typeof qemu === "string") { for (const text of qemu.split(".")) parts.push(Number(text)); }
  else if (typeof qemu === "object" && qemu !== null) {
    const q = qemu as Record<string, unknown>;
    parts = [q.major, q.minor, q.micro];
  }
  const part = (i: number) => {
    const n = parts[i];
    return typeof n === "number" && Number.isFinite(n) ? n : 0;
  };
  const capabilities: string[] = [];
  if (Array.isArray(qmp.capabilities)) {
    for (const c of qmp.capabilities) if (typeof c === "string") capabilities.push(c);
  }
  return {
    version: { major: part(0), minor: part(1), micro: part(2), package: String(version.package ?? "") },
    capabilities,
    raw: message,
  };
}

/**
 * What starts each id of the process's clients (unusedId): `qmpctl-`, then the
 * process's start (performance.timeOrigin) in microseconds, base 36. With the
 * count after it, the process's and not a client's, no earlier client had an
 * id of ours: neither another run's nor one this process closed (QEMU sends
 * their replies to the next client, see dispatch). Not Math nor crypto: the
 * first use of either costs a one-shot run (README, Development).
 */
const startMicroseconds = performance.timeOrigin * 1000;
const ID_PREFIX = `qmpctl-${(startMicroseconds - (startMicroseconds % 1)).toString(36)}-`; // `% 1`: the fraction
/** The ids ID_PREFIX has started so far, in all of the process's clients. */
let idCount = 0;

/**
 * The key that matches a reply's id to its call. QEMU echoes an object id
 * with its members in another order (its dictionaries are hash tables), so
 * members are sorted before comparing.
 */
function idKey(id: unknown): string {
  if (typeof id === "bigint") return JSON.stringify(Number(id)); // as a kept number's, below
  if (typeof id !== "object" || id === null) return JSON.stringify(id); // qmpctl's own ids: strings
  return JSON.stringify(
    id,
    (_key, value: unknown) =>
      isRawNumber(value) || typeof value === "bigint" // a number kept as written: matched as its double
        ? Number(isRawNumber(value) ? value.rawJSON : value)
        : typeof value === "object" && value !== null && !Array.isArray(value)
        ? Object.fromEntries(Object.entries(value).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
        : value,
  );
}

/** An event: an object with a string `event` (anything else goes to dispatch, which checks it). */
function isEvent(message: unknown): message is QmpEvent {
  return typeof message === "object" && message !== null && typeof (message as QmpEvent).event === "string" &&
    !Array.isArray(message);
}

/** Settles as the first of `a` and `b` does (Promise.race without its first-use cost at start-up). */
function firstOf<T>(a: Promise<T>, b: Promise<T>): Promise<T> {
  const { promise, resolve, reject } = Promise.withResolvers<T>();
  a.then(resolve, reject);
  b.then(resolve, reject);
  return promise;
}

/** Where the first byte of `bytes` that is no blank (space, tab, CR, LF) is; -1 for none. */
function firstNonBlank(bytes: Uint8Array): number {
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i];
    if (b !== 0x20 && b !== 0x09 && b !== 0x0d && b !== 0x0a) return i;
  }
  return -1;
}
