/**
 * QmpProxy: many QMP clients over the one connection a QEMU monitor allows.
 *
 * Each client sees a normal QEMU (the upstream greeting replayed, negotiation
 * answered locally). Its commands go upstream with the proxy's own ids, and
 * each reply goes back to the client that sent the command, with the id that
 * client gave (any JSON value, or none). QEMU runs one monitor's in-band
 * commands in order, so each client's replies keep its order. Events go to
 * every negotiated client.
 *
 * @module
 */
import { abortable, eitherAborts, timeoutSignal } from "../abort.ts";
import { type Address, parseAddress } from "../address.ts";
import { DEFAULT_CONNECT_TIMEOUT_MS } from "../client.ts";
import { awaitedStep, notReadyError, type QmpError, TimeoutError } from "../errors.ts";
import { type AcceptedTransport, connectTransport, type Listener } from "../transport.ts";
import { listenTransport, spareDescriptorCheck } from "../transport_listen.ts";
import { describeSystemError } from "../transport_socket.ts";
import { Downstream, type DownstreamLimits, type DownstreamOwner } from "./downstream.ts";
import { Upstream } from "./upstream.ts";

/** Options of `QmpProxy.share` and `QmpProxy.start`. */
export interface ProxyOptions {
  /** The listening socket's permissions (default 0o600). */
  mode?: number;
  /** Bytes queued for a client that does not read before it is disconnected (default 8 MiB). */
  maxQueuedBytes?: number;
  /** Commands of one client awaiting replies before the proxy stops reading it (default 1024). */
  maxInFlight?: number;
  /** Bound on one message from a client (default 64 MiB). */
  maxMessageBytes?: number;
  /** Bound on the upstream greeting and negotiation, ms (0: none). */
  connectTimeoutMs?: number;
  /** Aborts the upstream negotiation. */
  signal?: AbortSignal;
  /**
   * Aborts to stop accepting clients: the listening socket is closed (its file removed), while the clients
   * connected are served on until the proxy ends (a launched QEMU being stopped: they see it go). Aborted
   * before the proxy listens (while it negotiates), it never does: no socket is made.
   */
  stopAccepting?: AbortSignal;
  /** One line for each client that comes or goes. */
  notice?: (line: string) => void;
  /** Each message as it crosses a client's connection (`client` is `client 3`, or `upstream` for QEMU's). */
  wire?: (client: string, direction: "send" | "receive", json: string) => void;
}

/** How the proxy ended. */
export interface ProxyEnd {
  /**
   * `shutdown`: QEMU went away after a SHUTDOWN event; `quit`: after a client
   * sent `quit`, or `quit()`; `lost`: QEMU went away otherwise; `closed`: `close()` was called.
   */
  reason: "shutdown" | "quit" | "lost" | "closed";
  /** The error that broke the upstream connection, if one did. */
  error?: QmpError;
  /** The clients connected when it ended: the end closed their connections. */
  clients: number;
}

interface Pending {
  client: Downstream;
  id: unknown;
  hasId: boolean;
  /** Sent as exec-oob: QEMU may answer it before older commands. */
  oob: boolean;
  /** A `quit`: QEMU going away after accepting it is no loss. */
  quit: boolean;
}

/**
 * In-band commands at QEMU at once. QEMU queues 8 a monitor itself
 * (QMP_REQ_QUEUE_LEN_MAX) and stops reading beyond that; the rest wait in
 * the proxy, one client's after another's in turn, so a client that floods
 * delays the others by one command a round, and one that leaves takes its
 * unsent commands along.
 */
const UPSTREAM_WINDOW = 8;

/** What the proxy's ids are made of: 64 characters that JSON leaves as they are. */
const ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/**
 * The proxy's ids for the commands it forwards: 8 random characters (48
 * bits), drawn in batches. Clients never see them, and cannot name them: the
 * in-order check below drops a reply that skips an older in-band command,
 * but a reply forged through a client's message (a hole in QEMU's parser
 * that refusedByQemuParser does not know of) could still name the oldest
 * one if ids were a counter, and reach another client as its answer.
 * Independent draws, not a random start: an id that leaked would tell
 * nothing of the next. Short, because QEMU reads a monitor byte by byte:
 * 11 bytes more on a `query-status` cost it a quarter more time.
 */
class RandomIds {
  static readonly LENGTH = 8;
  readonly #pool = new Uint8Array(RandomIds.LENGTH * 256);
  #used = this.#pool.length;

  next(): string {
    if (this.#used === this.#pool.length) {
      crypto.getRandomValues(this.#pool);
      this.#used = 0;
    }
    let id = "";
    for (let i = 0; i < RandomIds.LENGTH; i++) id += ID_ALPHABET[this.#pool[this.#used++] & 63];
    return id;
  }
}

/**
 * A running proxy.
 *
 * @example
 * ```ts
 * const proxy = await QmpProxy.share("/run/vm1.qmp", "/run/vm1.shared.qmp", { notice: console.error });
 * console.log((await proxy.ended).reason); // "shutdown" once the guest has powered off
 * ```
 */
export class QmpProxy {
  readonly #upstream: Upstream;
  readonly #options: ProxyOptions;
  readonly #limits: DownstreamLimits;
  readonly #clients = new Set<Downstream>();
  readonly #pending = new Map<string, Pending>();
  /** Each client's in-band commands not yet sent to QEMU; the map's order is the turn. */
  readonly #waiting = new Map<Downstream, Record<string, unknown>[]>();
  #inBandAtQemu = 0;
  #listener?: Listener;
  /** Settles once the listening socket is closed (see #stopListening). */
  #listenerClosed?: Promise<void>;
  readonly #ids = new RandomIds();
  #nextClient = 1;
  /** Undefined while one more descriptor can be opened, else why not (see spareDescriptorCheck). */
  #noSpareDescriptor: () => string | undefined = () => undefined;
  /**
   * While clients are turned away for want of descriptors: how many were
   * connected when it began. It ends once fewer are, after an accept: one
   * client that leaves and one that takes its place is the same episode.
   */
  #fullAt?: number;
  #sawShutdown = false;
  /** A client's quit that QEMU accepted (answered with a return: one it refused changes nothing). */
  #quitAccepted = false;
  /** The id of the proxy's own quit (`quit()`), once sent. */
  #ownQuitId?: string;
  #end?: ProxyEnd;
  #markEnded!: (end: ProxyEnd) => void;
  /** Settles once, when the proxy has ended. */
  readonly ended: Promise<ProxyEnd>;

  private constructor(upstream: Upstream, options: ProxyOptions) {
    this.#upstream = upstream;
    this.#options = options;
    this.#limits = {
      maxQueuedBytes: options.maxQueuedBytes ?? 8 * 1024 * 1024,
      maxInFlight: options.maxInFlight ?? 1024,
      maxMessageBytes: options.maxMessageBytes ?? 64 * 1024 * 1024,
    };
    this.ended = new Promise((resolve) => (this.#markEnded = resolve));
  }

  /**
   * Connect to the monitor at `address` (within `connectTimeoutMs`), then
   * serve it on the UNIX socket `path` as `start` does.
   * @throws {AddressError | ConnectionError | ConnectTimeoutError | GreetingError | NegotiationError}
   */
  static async share(address: string | Address, path: string, options: ProxyOptions = {}): Promise<QmpProxy> {
    const parsed = typeof address === "string" ? parseAddress(address) : address;
    const wire = options.wire;
    const upstream = new Upstream(parsed.text, {
      log: wire && ((direction, json) => wire("upstream", direction, json)),
    });
    const limitMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    const limit = timeoutSignal(limitMs);
    const signal = eitherAborts(options.signal, limit);
    // A full listen queue (the monitor held, other clients waiting their turn) is waited out within the
    // bound, as a client's connect waits it out.
    let listenQueueFull = false;
    const connecting = connectTransport(parsed, upstream.transportEvents, {
      signal,
      connectTimeout: limitMs,
      onBusy: () => (listenQueueFull = true),
    });
    try {
      upstream.attach(await abortable(connecting, signal, `a connection to ${parsed.text}`));
    } catch (error) {
      connecting.then((transport) => transport.close(), () => {}); // one that connects after all is not kept
      if (error instanceof TimeoutError && limit?.aborted) {
        throw notReadyError(awaitedStep("connecting", parsed.text, listenQueueFull), limitMs);
      }
      throw error;
    }
    return await QmpProxy.start(upstream, path, options);
  }

  /**
   * Negotiate with `upstream` (already attached to its transport), then serve
   * clients on the UNIX socket `path`.
   * @throws {ConnectTimeoutError | GreetingError | NegotiationError | DisconnectedError | ConnectionError}
   */
  static async start(upstream: Upstream, path: string, options: ProxyOptions = {}): Promise<QmpProxy> {
    const proxy = new QmpProxy(upstream, options);
    await upstream.negotiate(
      {
        message: (m) => proxy.#fromUpstream(m),
        closed: (error) => proxy.#upstreamClosed(error),
      },
      options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
      options.signal,
    );
    const stopAccepting = options.stopAccepting;
    if (stopAccepting?.aborted) return proxy;
    proxy.#noSpareDescriptor = await spareDescriptorCheck();
    try {
      proxy.#listener = await listenTransport(path, { accept: (t) => proxy.#accept(t) }, { mode: options.mode });
    } catch (error) {
      upstream.close();
      throw error;
    }
    if (proxy.#end || stopAccepting?.aborted) await proxy.#stopListening(); // QEMU went away, or a stop came, meanwhile
    else stopAccepting?.addEventListener("abort", proxy.#stopListening, { once: true });
    return proxy;
  }

  /** Stop: close every client, the listening socket (its file removed) and the upstream connection. */
  async close(): Promise<void> {
    await this.#finish("closed");
  }

  /**
   * Ask QEMU to quit, as the proxy itself (no client's command: its reply goes to no one), and wait until
   * QEMU has closed the connection, or `signal` aborts: how the proxy ended. Clients see QEMU go as after
   * a client's quit: its SHUTDOWN event, then their connection closed. For a proxy whose QEMU must go
   * (one it started, being stopped); sent once, however often called.
   * @throws {AbortedError | TimeoutError} when `signal` aborts first (the proxy serves on meanwhile)
   */
  quit(options: { signal?: AbortSignal } = {}): Promise<ProxyEnd> {
    if (!this.#end && this.#ownQuitId === undefined) {
      this.#ownQuitId = this.#freshId(); // not a forwarded command's: those are in #pending, this never is
      this.#upstream.send({ execute: "quit", id: this.#ownQuitId });
    }
    return abortable(this.ended, options.signal, `${this.#upstream.name} closing the connection after quit`);
  }

  /** An id for a request to QEMU that no request under way has (the proxy's quit included). */
  #freshId(): string {
    let id = this.#ids.next();
    while (this.#pending.has(id) || id === this.#ownQuitId) id = this.#ids.next();
    return id;
  }

  #accept(transport: AcceptedTransport) {
    const full = this.#end ? undefined : this.#noSpareDescriptor();
    if (full) return this.#turnAway(transport, full);
    if (this.#fullAt !== undefined && this.#clients.size + 1 < this.#fullAt) this.#fullAt = undefined;
    const label = `client ${this.#nextClient++}`;
    const wire = this.#options.wire;
    const owner: DownstreamOwner = {
      forward: (client, message) => this.#forward(client, message),
      left: (client, reason) => {
        this.#clients.delete(client);
        this.#waiting.delete(client); // its commands not yet sent are not sent
        if (!this.#end) this.#notice(`${client.label} ${reason ?? "left"} (${this.#clients.size} connected)`);
      },
      log: wire && ((client, direction, json) => wire(client.label, direction, json)),
    };
    const client = new Downstream(label, transport, owner, this.#limits, this.#upstream.greeting, this.#upstream.oob);
    if (this.#end) client.close();
    else {
      this.#clients.add(client);
      this.#notice(`${label} connected (${this.#clients.size} connected)`);
    }
    return client.transportEvents;
  }

  /**
   * Close a connection accepted with the last descriptor, before its
   * greeting (a client with --wait-socket tries again), so that the next
   * accept has one; said once for each time the proxy fills up.
   */
  #turnAway(transport: AcceptedTransport, code: string) {
    transport.abort();
    if (this.#fullAt === undefined) {
      this.#fullAt = this.#clients.size;
      this.#notice(
        `cannot accept clients: ${describeSystemError({ code })}; new ones are turned away until some of the ` +
          `${this.#clients.size} connected leave`,
      );
    }
    return { data() {}, close() {} };
  }

  #forward(client: Downstream, message: Record<string, unknown>): void {
    if ("exec-oob" in message) return this.#send(client, message); // out of band: at once, as QEMU takes it
    const queue = this.#waiting.get(client);
    if (queue) queue.push(message);
    else this.#waiting.set(client, [message]);
    this.#pump();
  }

  /** Send waiting commands while QEMU has room: one of each client's in turn. */
  #pump(): void {
    while (this.#inBandAtQemu < UPSTREAM_WINDOW && this.#waiting.size > 0) {
      const [client, queue] = this.#waiting.entries().next().value!;
      this.#waiting.delete(client);
      const message = queue.shift()!;
      if (queue.length > 0) this.#waiting.set(client, queue); // to the back of the turn
      this.#inBandAtQemu++;
      this.#send(client, message);
    }
  }

  #send(client: Downstream, message: Record<string, unknown>): void {
    const id = this.#freshId();
    const quit = (message.execute ?? message["exec-oob"]) === "quit";
    this.#pending.set(id, { client, id: message.id, hasId: "id" in message, oob: "exec-oob" in message, quit });
    message.id = id;
    this.#upstream.send(message);
  }

  #fromUpstream(message: Record<string, unknown>): void {
    if (typeof message.event === "string") {
      // With -no-shutdown a SHUTDOWN only stops the guest: a RESUME after it means QEMU goes on (and a later
      // close is a loss, not the end of a shutdown).
      if (message.event === "SHUTDOWN") this.#sawShutdown = true;
      else if (message.event === "RESUME") this.#sawShutdown = false;
      const json = JSON.stringify(message);
      for (const client of this.#clients) if (client.running) client.sendText(json);
      return;
    }
    if (message.id === this.#ownQuitId && this.#ownQuitId !== undefined) {
      if ("return" in message) this.#quitAccepted = true;
      return;
    }
    // Every forwarded command carries an id; QEMU answers without one only
    // input it could not parse (a JSON parser limit such as nesting depth),
    // and it runs one monitor's commands in order: that is the oldest one.
    const key = "id" in message ? message.id : this.#pending.keys().next().value;
    const pending = typeof key === "string" ? this.#pending.get(key) : undefined;
    if (!pending) return; // not a reply to a forwarded command: nobody to give it to
    // QEMU answers a monitor's in-band commands in order: a reply that skips an
    // older one answers no command in the order this proxy sent them (one
    // hidden in a client's message, say), and must not reach the client it names.
    if (!pending.oob && key !== this.#oldestInBand()) return this.#notice(`dropped a reply out of turn (id ${key})`);
    this.#pending.delete(key as string);
    if (pending.quit && "return" in message) this.#quitAccepted = true;
    if (!pending.oob) {
      this.#inBandAtQemu--;
      this.#pump();
    }
    if (pending.client.closed) return; // the client left mid-command
    if (pending.hasId) message.id = pending.id;
    else delete message.id;
    pending.client.replied(JSON.stringify(message));
  }

  /** The id of the oldest forwarded command that is not exec-oob. */
  #oldestInBand(): string | undefined {
    for (const [id, pending] of this.#pending) if (!pending.oob) return id;
    return undefined;
  }

  #upstreamClosed(error?: QmpError): void {
    // A quit a client sent comes first: QEMU then also sends SHUTDOWN (reason host-qmp-quit).
    const reason = this.#quitAccepted ? "quit" : this.#sawShutdown ? "shutdown" : "lost";
    void this.#finish(reason, error);
  }

  async #finish(reason: ProxyEnd["reason"], error?: QmpError): Promise<void> {
    if (this.#end) return this.ended.then(() => {});
    const end = this.#end = { reason, error, clients: this.#clients.size };
    for (const client of this.#clients) client.close();
    this.#clients.clear();
    this.#pending.clear();
    this.#waiting.clear();
    this.#upstream.close();
    await this.#stopListening();
    this.#markEnded(end);
  }

  /**
   * Close the listening socket, its file removed, once (a stop to accepting, then the end); clients stay.
   * A bound function: the listener of `stopAccepting`, removed at the end (the caller's signal may outlive it).
   */
  readonly #stopListening = (): Promise<void> => {
    this.#options.stopAccepting?.removeEventListener("abort", this.#stopListening);
    if (!this.#listener) return Promise.resolve(); // not listening yet: start() closes it if the end came meanwhile
    return this.#listenerClosed ??= this.#listener.close();
  };

  #notice(line: string): void {
    this.#options.notice?.(line);
  }
}
