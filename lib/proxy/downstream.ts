/**
 * One client of the proxy, as QEMU's monitor would treat it: it gets the
 * greeting, must negotiate with `qmp_capabilities` (answered here, spec
 * section 4), and then its commands go to QEMU while events come to it.
 * Commands that rely on the monitor connection's own state are refused here
 * with a clear error instead of acting on the proxy's shared connection.
 *
 * @module
 */
import { JsonFramer, MAX_NESTING, NOT_AN_OBJECT } from "../framing.ts";
import type { AcceptedTransport, TransportEvents } from "../transport.ts";
import { duplicateKey, measureJson, NESTING_REFUSAL, refusedByQemuParser } from "../parser_limits.ts";

const NEWLINE = 0x0a;

/**
 * Commands bound to one monitor connection: `getfd`, `add-fd` and
 * `get-win32-socket` take a file descriptor passed with the command on that
 * connection (SCM_RIGHTS), which the proxy does not forward; `closefd`
 * closes a descriptor that a `getfd` on the same connection named.
 */
const PER_CONNECTION_COMMANDS: Readonly<Record<string, string>> = {
  "getfd": "it takes a file descriptor passed on the monitor connection, which the proxy does not forward",
  "add-fd": "it takes a file descriptor passed on the monitor connection, which the proxy does not forward",
  "get-win32-socket": "it takes a socket passed on the monitor connection, which the proxy does not forward",
  "closefd": "it closes a descriptor named by getfd on the same monitor connection",
};

/** What a client asks of the proxy. */
export interface DownstreamOwner {
  /** Forward `message` (a parsed command) for `client`. */
  forward(client: Downstream, message: Record<string, unknown>): void;
  /** The client's connection ended (`reason` when the proxy ended it). */
  left(client: Downstream, reason?: string): void;
  /** Log a message as it crosses the wire. */
  log?(client: Downstream, direction: "send" | "receive", json: string): void;
}

/** Limits on one client. */
export interface DownstreamLimits {
  /** Bytes queued for a client that does not read before it is disconnected. */
  maxQueuedBytes: number;
  /** Commands awaiting their reply before the proxy stops reading the client. */
  maxInFlight: number;
  maxMessageBytes: number;
}

/** One connected client. */
export class Downstream {
  /** A short name for logs: `client 3`. */
  readonly label: string;
  /** Whether the client enabled `oob`. */
  oob = false;
  running = false;
  closed = false;
  #paused = false;
  #reported = false;
  /** The client half-closed: it sends nothing more, but reads the answers still due. */
  #inputEnded = false;
  /** Commands forwarded, and replies to them sent back: a local answer waits for the replies before it. */
  #forwarded = 0;
  #answered = 0;
  readonly #held: { after: number; json: string }[] = [];
  /** The held answers' length (UTF-16 units, near enough bytes): they count toward the bytes queued for the client. */
  #heldBytes = 0;
  readonly #transport: AcceptedTransport;
  #framer: JsonFramer;
  /** Malformed input's line goes on past the chunk: the next chunks are dropped up to its end. */
  #skippingLine = false;
  readonly #owner: DownstreamOwner;
  readonly #limits: DownstreamLimits;
  readonly #offersOob: boolean;

  constructor(
    label: string,
    transport: AcceptedTransport,
    owner: DownstreamOwner,
    limits: DownstreamLimits,
    greeting: Record<string, unknown>,
    offersOob: boolean,
  ) {
    this.label = label;
    this.#transport = transport;
    this.#owner = owner;
    this.#limits = limits;
    this.#offersOob = offersOob;
    this.#framer = this.#newFramer();
    this.sendText(JSON.stringify(greeting));
  }

  /** The events its transport reports. */
  get transportEvents(): TransportEvents {
    return {
      data: (chunk) => this.#receive(chunk),
      close: () => this.#end(),
      end: () => {
        this.#inputEnded = true;
        this.#closeWhenAnswered();
      },
    };
  }

  /** Queue one serialized message for the client; disconnect it when it has stopped reading. */
  sendText(json: string): void {
    if (this.closed || !this.#withinQueueBound()) return;
    this.#owner.log?.(this, "send", json);
    this.#transport.write(json + "\n");
  }

  /**
   * Disconnect the client when more is queued for it than the limit allows,
   * as a new message comes: the bound is on what it left unread, so one
   * message larger than the limit still reaches a client that reads.
   */
  #withinQueueBound(): boolean {
    if (this.#transport.queuedBytes() + this.#heldBytes <= this.#limits.maxQueuedBytes) return true;
    this.#end(`did not read (more than ${this.#limits.maxQueuedBytes} bytes queued for it): disconnected`);
    this.#transport.abort();
    return false;
  }

  /** A reply for the client arrived (its command left the in-flight count). */
  replied(json: string): void {
    this.#answered++;
    if (this.#paused && this.#forwarded - this.#answered < this.#limits.maxInFlight) {
      this.#paused = false;
      this.#transport.resume();
    }
    this.sendText(json);
    while (this.#held.length > 0 && this.#held[0].after <= this.#answered) {
      const { json } = this.#held.shift()!;
      this.#heldBytes -= json.length + 1;
      this.sendText(json);
    }
    this.#closeWhenAnswered();
  }

  #closeWhenAnswered(): void {
    if (this.#inputEnded && this.#answered === this.#forwarded && this.#held.length === 0) this.close();
  }

  /** Close the client's connection (the proxy is ending). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.#transport.close();
  }

  #receive(chunk: Uint8Array): void {
    if (this.closed) return;
    if (this.#skippingLine) { // the rest of a malformed line that went on past its chunk
      const end = chunk.indexOf(NEWLINE);
      if (end < 0) return;
      this.#skippingLine = false;
      chunk = chunk.subarray(end + 1);
    }
    try {
      // Each message as it completes: those before a malformed one in the same chunk run too.
      this.#framer.push(chunk, (message) => {
        if (this.closed) return;
        this.#owner.log?.(this, "receive", JSON.stringify(message));
        this.#handle(message);
      });
    } catch (error) {
      // QEMU answers unparsable input with an id-less error and reads on; so does the proxy, from the line
      // after the one where the fault was found (what a person at socat typed) with a fresh framer: a
      // message over several lines is one error, and no line before the fault is read twice.
      const at = Math.max(0, this.#framer.faultAt);
      const end = chunk.indexOf(NEWLINE, at);
      // QEMU's parser takes any JSON value, and answers one that is not an object ([1], "text") so.
      const notAnObject = end >= 0 && (error as Error).message.startsWith(NOT_AN_OBJECT) &&
        isJsonButNoObject(chunk.subarray(at, end));
      const message = notAnObject ? "QMP input must be a JSON object" : `JSON parse error, ${(error as Error).message}`;
      this.#error(undefined, "GenericError", message);
      this.#framer = this.#newFramer();
      if (end < 0) this.#skippingLine = true;
      else this.#receive(chunk.subarray(end + 1));
    }
  }

  /**
   * A framer for this client's input. Deeper than QEMU's bound is answered
   * with the client's id (see the refusal below); far deeper is malformed.
   */
  #newFramer(): JsonFramer {
    return new JsonFramer(this.#limits.maxMessageBytes, 4 * MAX_NESTING, duplicateKey, true, true);
  }

  #handle(message: unknown): void { // the framer's messages are JSON objects
    const m = message as Record<string, unknown>;
    const command = m.execute ?? m["exec-oob"];
    // QEMU reads no id it cannot parse: its parser refuses the whole message, before negotiation or any
    // command is looked at, and answers without an id; so does the proxy (a nesting too deep, found first, named).
    const badId = refusedId(m);
    if (badId) {
      const refused = refusedByQemuParser(m);
      return this.#error(undefined, "GenericError", refused === NESTING_REFUSAL ? refused : badId);
    }
    if (!this.running) { // answered here, as QEMU would answer it (after negotiation QEMU answers itself)
      const malformed = malformedRequest(m);
      if (malformed) return this.#error(m, "GenericError", malformed);
      if (command !== "qmp_capabilities") {
        return this.#error(m, "CommandNotFound", "Expecting capabilities negotiation with 'qmp_capabilities'");
      }
      return this.#negotiate(m);
    }
    if (command === "qmp_capabilities") {
      return this.#error(m, "CommandNotFound", "Capabilities negotiation is already complete, command ignored");
    }
    if (typeof command === "string" && Object.hasOwn(PER_CONNECTION_COMMANDS, command)) {
      return this.#error(
        m,
        "GenericError",
        `'${command}' is not available through qmpctl proxy: ${PER_CONNECTION_COMMANDS[command]}; ` +
          "use QEMU's monitor directly",
      );
    }
    if ("exec-oob" in m && !this.oob) {
      return this.#error(m, "GenericError", "QMP input member 'exec-oob' is unexpected");
    }
    const refused = refusedByQemuParser(m);
    if (refused) return this.#error(m, "GenericError", refused);
    if (++this.#forwarded - this.#answered >= this.#limits.maxInFlight && !this.#paused) {
      this.#paused = true; // the client pipelines faster than QEMU answers: let the kernel hold the rest
      this.#transport.pause();
    }
    this.#owner.forward(this, m);
  }

  #negotiate(m: Record<string, unknown>): void {
    const unexpected = Object.keys(m.arguments ?? {}).find((name) => name !== "enable");
    if (unexpected !== undefined) return this.#error(m, "GenericError", `Parameter '${unexpected}' is unexpected`);
    const enable = (m.arguments as { enable?: unknown } | undefined)?.enable ?? [];
    if (!Array.isArray(enable)) {
      return this.#error(m, "GenericError", "Invalid parameter type for 'enable', expected: array");
    }
    for (const capability of enable) {
      if (capability !== "oob") {
        return this.#error(m, "GenericError", `Parameter 'enable' does not accept value '${capability}'`);
      }
      if (!this.#offersOob) return this.#error(m, "GenericError", "Capability 'oob' not available");
    }
    this.oob = enable.length > 0;
    this.running = true;
    this.#reply(m, { return: {} });
  }

  #error(request: Record<string, unknown> | undefined, errorClass: string, desc: string): void {
    this.#reply(request, { error: { class: errorClass, desc } });
  }

  /** Answer `request` here, with its id as the client sent it (QEMU echoes the id when there is one). */
  #reply(request: Record<string, unknown> | undefined, response: Record<string, unknown>): void {
    if (request && "id" in request) response.id = request.id;
    const json = JSON.stringify(response);
    // Keep the client's order: after the replies to the commands it sent before this one.
    // A client that keeps a command pending and floods refusals is bounded as one that does not read.
    if (this.#answered < this.#forwarded) {
      if (!this.#withinQueueBound()) return;
      this.#held.push({ after: this.#forwarded, json });
      this.#heldBytes += json.length + 1;
    } else this.sendText(json);
  }

  /** Report the client gone, once: `reason` when the proxy sends it away. */
  #end(reason?: string): void {
    if (this.#reported) return;
    this.#reported = true;
    this.closed = true;
    this.#owner.left(this, reason);
  }
}

/**
 * What QEMU's dispatcher (qapi/qmp-dispatch.c, before negotiation, when
 * exec-oob is not allowed) says of a request's members, or undefined when
 * they are well formed.
 */
function malformedRequest(m: Record<string, unknown>): string | undefined {
  let hasExecute = false;
  for (const [name, value] of Object.entries(m)) {
    if (name === "execute") {
      if (typeof value !== "string") return "QMP input member 'execute' must be a string";
      hasExecute = true;
    } else if (name === "arguments") {
      if (typeof value !== "object" || value === null || Array.isArray(value)) {
        return "QMP input member 'arguments' must be an object";
      }
    } else if (name !== "id") return `QMP input member '${name}' is unexpected`;
  }
  return hasExecute ? undefined : "QMP input lacks member 'execute'";
}

/**
 * Why QEMU's parser refuses a client's id, which refusedByQemuParser leaves
 * out (the proxy's own id goes to QEMU in its place): a lone surrogate or a
 * noncharacter in it. Undefined when there is none. QEMU names the first
 * lone surrogate of the whole message, the arguments' if they come first.
 */
function refusedId(m: Record<string, unknown>): string | undefined {
  if (typeof m.id !== "string" && (typeof m.id !== "object" || m.id === null)) return undefined;
  const id = measureJson(m.id);
  if (id.loneSurrogate === undefined && !id.noncharacter) return undefined;
  const lone = measureJson(m).loneSurrogate;
  return lone === undefined
    ? "JSON parse error, invalid UTF-8 sequence in string"
    : `JSON parse error, \\u${lone.toString(16)} is not a valid Unicode character`;
}

/** Whether `line` is one JSON value other than an object (which QEMU's parser takes, to refuse it). */
function isJsonButNoObject(line: Uint8Array): boolean {
  try {
    const value = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(line));
    return typeof value !== "object" || value === null || Array.isArray(value);
  } catch {
    return false;
  }
}
