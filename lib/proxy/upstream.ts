/**
 * The proxy's one connection to QEMU's monitor, kept as raw messages: the
 * greeting as QEMU sent it (to replay to every client), negotiation (`oob`
 * when offered, as QEMU's docs/interop/qmp-spec section 4 allows), then every
 * reply and event handed to the proxy unchanged.
 *
 * @module
 */
import { eitherAborts, timeoutSignal } from "../abort.ts";
import {
  AbortedError,
  awaitedStep,
  ConnectionError,
  DisconnectedError,
  GreetingError,
  NegotiationError,
  notAQmpServer,
  notReadyError,
  type QmpError,
  type ReadyStep,
} from "../errors.ts";
import { DEFAULT_MAX_MESSAGE_BYTES, JsonFramer } from "../framing.ts";
import type { Transport, TransportEvents } from "../transport.ts";

/** What the upstream reports once negotiated. */
export interface UpstreamHandlers {
  /** A reply or an event from QEMU. */
  message(message: Record<string, unknown>): void;
  /** The connection ended; `error` when it broke (protocol error, reset). */
  closed(error?: QmpError): void;
}

const NEGOTIATION_ID = "qmpctl-proxy-negotiation";

/** One QMP connection held as messages, for the proxy. */
export class Upstream {
  /** Where it is connected, for messages. */
  readonly name: string;
  /** The greeting object exactly as QEMU sent it. */
  greeting: Record<string, unknown> = {};
  /** Whether QEMU offered (and the proxy enabled) out-of-band execution. */
  oob = false;
  /** The events to give the transport this upstream reads. */
  readonly transportEvents: TransportEvents;
  readonly #framer: JsonFramer;
  readonly #log?: (direction: "send" | "receive", json: string) => void;
  #transport?: Transport;
  #handlers?: UpstreamHandlers;
  /** Resolves with each message while negotiating. */
  #waiter?: { resolve: (message: Record<string, unknown>) => void; reject: (error: QmpError) => void };
  /** Messages received while negotiating that no one has read yet. */
  #early: Record<string, unknown>[] = [];
  #ended = false;
  /** How many bytes QEMU sent (for the timeout message of a greeting that stalls unfinished). */
  #bytesIn = 0;

  constructor(
    name: string,
    options: { maxMessageBytes?: number; log?: (direction: "send" | "receive", json: string) => void } = {},
  ) {
    this.name = name;
    this.#framer = new JsonFramer(options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES);
    this.#log = options.log;
    this.transportEvents = { data: (chunk) => this.#receive(chunk), close: (error) => this.#peerClosed(error) };
  }

  /** Use `transport` (opened with `transportEvents`). */
  attach(transport: Transport): void {
    this.#transport = transport;
  }

  /**
   * Read the greeting and negotiate, within `connectTimeoutMs` (0: no bound)
   * and until `signal` aborts; then hand every message to `handlers`.
   * @throws {ConnectTimeoutError | GreetingError | NegotiationError | DisconnectedError}
   */
  async negotiate(handlers: UpstreamHandlers, connectTimeoutMs: number, signal?: AbortSignal): Promise<void> {
    const bound = eitherAborts(signal, timeoutSignal(connectTimeoutMs));
    let phase: ReadyStep = "greeting"; // which of the two ran out, named as the client names it
    const failure = () => {
      const begun = phase === "greeting" && this.#framer.partial ? this.#bytesIn : 0; // as the client says it
      return notReadyError(awaitedStep(phase, this.name, false, begun), connectTimeoutMs, signal);
    };
    const onAbort = () => this.#waiter?.reject(failure());
    bound?.addEventListener("abort", onAbort, { once: true });
    try {
      if (bound?.aborted) throw failure(); // aborted already: no wait to reject yet
      let greeting = await this.#next();
      while (typeof greeting.event === "string") greeting = await this.#next(); // events may precede it
      if (typeof greeting.QMP !== "object" || greeting.QMP === null) {
        throw new GreetingError(`${this.name} did not send a QMP greeting: ${JSON.stringify(greeting).slice(0, 200)}`);
      }
      this.greeting = greeting;
      const offered = (greeting.QMP as { capabilities?: unknown }).capabilities;
      this.oob = Array.isArray(offered) && offered.includes("oob");
      phase = "negotiating";
      this.send({ execute: "qmp_capabilities", arguments: { enable: this.oob ? ["oob"] : [] }, id: NEGOTIATION_ID });
      let reply = await this.#next();
      while (reply.id !== NEGOTIATION_ID) reply = await this.#next(); // an event: no client to give it to yet
      if ("error" in reply) {
        throw new NegotiationError(`${this.name} refused qmp_capabilities: ${JSON.stringify(reply.error)}`);
      }
      this.#handlers = handlers;
      for (const message of this.#early.splice(0)) handlers.message(message); // events sent meanwhile
    } catch (error) {
      this.close();
      throw error;
    } finally {
      bound?.removeEventListener("abort", onAbort);
      this.#waiter = undefined;
    }
  }

  /** Send one message to QEMU. */
  send(message: Record<string, unknown>): void {
    this.sendText(JSON.stringify(message));
  }

  /** Send one message already serialized. */
  sendText(json: string): void {
    this.#log?.("send", json);
    this.#transport?.write(json + "\n");
  }

  /** Close the connection to QEMU. */
  close(): void {
    this.#transport?.close();
  }

  #next(): Promise<Record<string, unknown>> {
    const early = this.#early.shift();
    if (early) return Promise.resolve(early);
    if (this.#ended) return Promise.reject(new DisconnectedError(`${this.name} closed the connection`));
    return new Promise((resolve, reject) => (this.#waiter = { resolve, reject }));
  }

  #receive(chunk: Uint8Array): void {
    if (this.#ended) return;
    this.#bytesIn += chunk.length;
    let messages: unknown[];
    try {
      messages = this.#framer.push(chunk);
    } catch (error) {
      // As the client names them: before a greeting, a peer that is no QMP server; after, the peer.
      const failure = error as QmpError;
      if (!("QMP" in this.greeting)) this.#end(notAQmpServer(this.name, chunk, failure));
      else {
        failure.message = `${this.name}: ${failure.message}`;
        this.#end(failure);
      }
      this.close();
      return;
    }
    for (const message of messages) {
      if (typeof message !== "object" || message === null) continue;
      this.#log?.("receive", JSON.stringify(message));
      const m = message as Record<string, unknown>;
      if (this.#handlers) this.#handlers.message(m);
      else if (this.#waiter) {
        const waiter = this.#waiter;
        this.#waiter = undefined;
        waiter.resolve(m);
      } else this.#early.push(m);
    }
  }

  #peerClosed(error?: Error): void {
    // A transport that knows why the connection ended (ssh's own reason: the remote socket missing) reports
    // it: it is the failure, as for the client (and --wait-socket retries it as the client's).
    if (error instanceof ConnectionError || error instanceof AbortedError) return this.#end(error);
    const during = this.#handlers ? "" : " before the greeting and negotiation ended";
    this.#end(
      error || !this.#handlers
        ? new DisconnectedError(`${this.name} closed the connection${during}`, { cause: error })
        : undefined,
    );
  }

  #end(error?: QmpError): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#waiter?.reject(error ?? new DisconnectedError(`${this.name} closed the connection`));
    this.#handlers?.closed(error);
  }
}
