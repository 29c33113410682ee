/**
 * The error tree of the QMP library. Every error the library throws is a
 * `QmpError` with a stable string `code` that callers branch on (never parse
 * `message`: it is for people). (Under Deno, a permission the program was
 * not granted is Deno's own `NotCapable` error; when connecting a UNIX or
 * TCP socket it comes wrapped in a ConnectionError, as its cause.)
 *
 * ```text
 * QmpError                  code QMP           itself: a subscription's `where` filter threw (the cause)
 * ├── AddressError          code ADDRESS       the address string has no known form
 * ├── ArgumentError         code ARGUMENT      a KEY=VALUE word or an arguments object's JSON is malformed
 * │   └── NotKeyValueError  code ARGUMENT    a word that should be KEY=VALUE has no `=` (its `word`)
 * ├── ConnectionError       code CONNECTION    cannot connect (ENOENT, ECONNREFUSED, EACCES, ...)
 * │   └── ConnectTimeoutError  code CONNECT_TIMEOUT  no connection/greeting/negotiation in time
 * ├── GreetingError         code GREETING      the first message is not a QMP greeting, or not JSON at all
 * │   └── GreetingClosedError  code GREETING_CLOSED  the peer closed the connection before its greeting
 * ├── NegotiationError      code NEGOTIATION   qmp_capabilities was refused
 * ├── ProtocolError         code PROTOCOL      the peer broke the protocol (not JSON, a reply without id)
 * │   └── MessageTooLargeError code TOO_LARGE  one message exceeded the size limit
 * ├── DisconnectedError     code DISCONNECTED  the connection ended before the awaited answer
 * ├── CommandError          code COMMAND       QEMU answered {"error": {class, desc}}
 * │   └── UnparsedRequestError code UNPARSED_REQUEST  an error without an id: QEMU could not parse a request
 * ├── TimeoutError          code TIMEOUT       the caller's signal timed out (AbortSignal.timeout)
 * └── AbortedError          code ABORTED       the caller's signal was aborted for another reason
 * ```
 *
 * @module
 */
import { formatDuration } from "./duration.ts";

/** A value as JSON, for a message about what a peer sent: cut after 200 characters. */
export function excerpt(value: unknown): string {
  const text = JSON.stringify(value);
  return text.length > 200 ? `${text.slice(0, 200)}...` : text;
}

/**
 * Root of every error the library throws. Thrown as itself only when a
 * subscription's `where` filter throws: that ends the subscription, with
 * the filter's error as `cause`.
 */
export class QmpError extends Error {
  /** A stable identifier of the condition, for programs. */
  readonly code: string = "QMP";
  /** The class's name, for people: stack traces and `String(error)` show it. Each subclass sets its own. */
  override name = "QmpError";
  /**
   * True when a connection's bound ran out, or its signal aborted, while no
   * QMP greeting had begun: the peer may be no QMP monitor at all (a guest
   * agent, which `GuestAgent` talks to). A caller may say how to reach one.
   */
  noGreeting?: boolean;
}

/**
 * An address string that is none of the accepted forms (`parseAddress`, and
 * so `connect`), or an `ssh://` one that ssh cannot be given as it is (a `:`
 * or `${` in its path or in TMPDIR, a TMPDIR too long for its socket).
 */
export class AddressError extends QmpError {
  /** `"ADDRESS"`. */
  override readonly code = "ADDRESS";
  /** `"AddressError"`. */
  override name = "AddressError";
}

/**
 * A malformed `KEY=VALUE` word or arguments object, a name or value the
 * schema does not know, or a request qmpctl refuses before sending it (an
 * id that a call still waits on, NaN, JSON that QEMU's parser would refuse).
 */
export class ArgumentError extends QmpError {
  /** `"ARGUMENT"`. */
  override readonly code = "ARGUMENT";
  /** `"ArgumentError"`. */
  override name = "ArgumentError";
}

/**
 * A word that should be `KEY=VALUE` has no `=`: a caller may say what such a
 * word meant (`word`). Its code and name are ArgumentError's.
 */
export class NotKeyValueError extends ArgumentError {
  /** The word, as given. */
  readonly word: string;
  /** For `word`, with `message` saying what is wrong with it. */
  constructor(word: string, message: string) {
    super(message);
    this.word = word;
  }
}

/**
 * The socket could not be connected (for the proxy, listened on), or an ssh
 * connection was lost. `cause`, when there is one, holds the system error
 * (its `code`: ENOENT, ECONNREFUSED, ...).
 */
export class ConnectionError extends QmpError {
  /** `"CONNECTION"`; a ConnectTimeoutError has its own, so test `instanceof` to take both. */
  override readonly code: string = "CONNECTION";
  /** `"ConnectionError"`. */
  override name = "ConnectionError";
}

/**
 * Connecting, the greeting or negotiation did not finish within the connect
 * timeout. A QEMU monitor serves one client at a time, so a missing greeting
 * usually means another client holds it.
 */
export class ConnectTimeoutError extends ConnectionError {
  /** `"CONNECT_TIMEOUT"`. */
  override readonly code = "CONNECT_TIMEOUT";
  /** `"ConnectTimeoutError"`. */
  override name = "ConnectTimeoutError";
}

/**
 * Why a QMP greeting may not come: the monitor is busy (a second client
 * connects but waits unserved), or the socket is no QMP monitor at all (a
 * guest agent accepts a connection and waits for a request in silence: the
 * error's `noGreeting` lets a caller say what talks to one).
 */
export const NO_GREETING_HINT =
  "another client may hold the monitor (QEMU serves one client at a time), QEMU may be stopped or hung, or it is no QMP monitor";

/** The steps of a connection before it is ready: connect(2), the greeting, the answer to qmp_capabilities. */
export type ReadyStep = "connecting" | "greeting" | "negotiating";

/** What a connection waits for, and why it may not come: see awaitedStep. */
export interface AwaitedStep {
  step: string;
  hint: string;
  noGreeting?: boolean;
}

/**
 * The error of a connection that was not ready when a bound ran out while it
 * waited for `awaited`: the caller's `signal`, when that aborted
 * (TimeoutError or AbortedError, as every wait of the library), else the
 * connect timeout of `limitMs` (ConnectTimeoutError). It keeps `noGreeting`.
 */
export function notReadyError(awaited: AwaitedStep, limitMs: number, signal?: AbortSignal): QmpError {
  const { step, hint } = awaited;
  const error = signal?.aborted
    ? abortErrorFor(`the ${step}${hint}`)(signal)
    : new ConnectTimeoutError(`no ${step} within ${formatDuration(limitMs)}${hint}`);
  if (awaited.noGreeting) error.noGreeting = true;
  return error;
}

/**
 * What a connection at `address` waits for in `phase`, and why that may not
 * come (`hint`, empty or starting with ": "), for the messages of a bound
 * that ran out: `no ${step} within 10s${hint}`. `listenQueueFull`: connect(2)
 * said EAGAIN. `tcp`: the address is a TCP one, whose connect(2) a full
 * listen queue leaves unanswered rather than refused. `greetingBytes`: how many bytes came before a greeting begun
 * stalled unfinished (0: none came, or no greeting was begun). A monitor held
 * by another client sends nothing, so that hint would mislead: the message
 * says what came instead. `noGreeting`: true when the hint is NO_GREETING_HINT,
 * for the error's field of that name.
 */
export function awaitedStep(
  phase: ReadyStep,
  address: string,
  listenQueueFull = false,
  greetingBytes = 0,
  tcp = false,
): AwaitedStep {
  switch (phase) {
    case "greeting":
      return greetingBytes > 0
        ? { step: `whole QMP greeting from ${address}`, hint: `: it had sent ${greetingBytes} bytes of it` }
        : { step: `QMP greeting from ${address}`, hint: `: ${NO_GREETING_HINT}`, noGreeting: true };
    case "negotiating":
      return { step: `answer to qmp_capabilities from ${address}`, hint: "" };
    case "connecting":
      return {
        step: `connection to ${address}`,
        hint: listenQueueFull
          ? ": its listen queue stayed full (EAGAIN): another client may hold the monitor while others wait " +
            "their turn (QEMU serves one client at a time), QEMU may be stopped or hung, or too many clients are " +
            "connecting at once"
          : address.startsWith("ssh://")
          ? ": ssh did not get through (its sshd does not answer, or ssh waits for an answer: try ssh HOST once; " +
            "one of many sockets on a host may also still have waited for its turn to log in, a few at a time)"
          : tcp // a SYN unanswered: a full queue (QEMU's backlog is small) and a firewall look alike
          ? ": the host accepted none: another client may hold the monitor while others fill its listen queue " +
            "(QEMU serves one client at a time), QEMU may be stopped or hung, or a firewall drops the packets"
          : "",
      };
  }
}

/**
 * The first message was not a QMP greeting, or what came first was not JSON
 * at all (no QMP server: the message quotes it, and `cause` is the
 * ProtocolError).
 */
export class GreetingError extends QmpError {
  /** `"GREETING"`; a GreetingClosedError has its own, so test `instanceof` to take both. */
  override readonly code: string = "GREETING";
  /** `"GreetingError"`. */
  override name = "GreetingError";
}

/**
 * The error for a peer whose first bytes are not JSON: no QMP server at all
 * (an HMP monitor, a serial console, sshd). It quotes the first line of what
 * came, at most 60 characters of it (whole characters, an emoji too).
 */
export function notAQmpServer(address: string, bytes: Uint8Array, cause: Error): GreetingError {
  const text = new TextDecoder().decode(bytes.subarray(0, 256)).trimStart();
  const line = [...text.split(/[\r\n]/, 1)[0]];
  const shown = line.length > 60 ? line.slice(0, 60).join("") + "..." : line.join("");
  return new GreetingError(`${address} is not a QMP server: it sent ${JSON.stringify(shown)}`, { cause });
}

/**
 * The peer closed the connection before its greeting: a QEMU still starting
 * (its socket exists before it serves it), or something else on the socket.
 */
export class GreetingClosedError extends GreetingError {
  /** `"GREETING_CLOSED"`. */
  override readonly code = "GREETING_CLOSED";
  /** `"GreetingClosedError"`. */
  override name = "GreetingClosedError";
}

/**
 * The server refused `qmp_capabilities` (QmpClient gives its CommandError
 * as `cause`), or a command asked for `exec-oob` from a server that did not
 * offer `oob`.
 */
export class NegotiationError extends QmpError {
  /** `"NEGOTIATION"`. */
  override readonly code = "NEGOTIATION";
  /** `"NegotiationError"`. */
  override name = "NegotiationError";
}

/**
 * The peer sent something QMP does not allow: bytes that are not JSON, a
 * message that is neither reply nor event, a reply without an id, an answer
 * of the wrong shape (`query-jobs` that is no list). A fault in the stream
 * itself ends the session.
 */
export class ProtocolError extends QmpError {
  /** `"PROTOCOL"`; a MessageTooLargeError has its own, so test `instanceof` to take both. */
  override readonly code: string = "PROTOCOL";
  /** `"ProtocolError"`. */
  override name = "ProtocolError";
}

/**
 * The ProtocolError for `reply` (a message with an `error` member), unless
 * it is one: an error reply holds no `return`, and its error is
 * `{"class": ..., "desc": ...}`, both strings (qmp-spec 2.4.2), as QEMU's and
 * qemu-ga's are. Read as QEMU's refusal (exit 1), another would blame the
 * command for what is the peer's fault (exit 3).
 */
export function malformedErrorReply(reply: Record<string, unknown>): ProtocolError | undefined {
  const error = reply.error as Record<string, unknown> | null;
  const wellFormed = !("return" in reply) && typeof error === "object" && error !== null &&
    typeof error.class === "string" && typeof error.desc === "string";
  if (wellFormed) return undefined;
  const what = "return" in reply ? "both return and error" : 'an error that is not {"class": ..., "desc": ...}';
  return new ProtocolError(`received a reply with ${what}: ${excerpt(reply)}`);
}

/** One incoming message grew past the configured limit (`maxMessageBytes`). */
export class MessageTooLargeError extends ProtocolError {
  /** `"TOO_LARGE"`. */
  override readonly code = "TOO_LARGE";
  /** `"MessageTooLargeError"`. */
  override name = "MessageTooLargeError";
}

/**
 * The connection ended while an answer or event was awaited: QEMU closed it
 * (it quit, or died), or the caller did. GuestAgent's SyncClosedError is one.
 */
export class DisconnectedError extends QmpError {
  /** `"DISCONNECTED"`. */
  override readonly code = "DISCONNECTED";
  /** `"DisconnectedError"`. */
  override name = "DisconnectedError";
}

/** QEMU answered a command with `{"error": {"class": ..., "desc": ...}}`. */
export class CommandError extends QmpError {
  /** `"COMMAND"`; an UnparsedRequestError has its own, so test `instanceof` to take both. */
  override readonly code: string = "COMMAND";
  /** `"CommandError"`. */
  override name = "CommandError";
  /** QEMU's error class, e.g. `CommandNotFound`, `GenericError`. */
  readonly errorClass: string;
  /** QEMU's human description. */
  readonly desc: string;
  /** The whole `{"error": ...}` response, without the id qmpctl added. */
  readonly response: Record<string, unknown>;
  /** The command that failed, when known (an id-less error answers none). */
  readonly command?: string;

  /**
   * From QEMU's `{"error": ...}` response to `command`; an `error` without a
   * string `class` reads as GenericError.
   */
  constructor(response: Record<string, unknown>, command?: string) {
    const error = (response.error ?? {}) as Record<string, unknown>;
    const errorClass = typeof error.class === "string" ? error.class : "GenericError";
    const desc = typeof error.desc === "string" ? error.desc : JSON.stringify(error);
    super(`${errorClass}: ${desc}`);
    this.errorClass = errorClass;
    this.desc = desc;
    this.response = response;
    this.command = command;
  }
}

/**
 * QEMU answered `{"error": ...}` without an id: it could not parse a request
 * into an object with an id (qmp-spec "Error"), so the error answers no call
 * it can name. The client's session ends with it (see QmpClient).
 */
export class UnparsedRequestError extends CommandError {
  /** `"UNPARSED_REQUEST"`. */
  override readonly code = "UNPARSED_REQUEST";
  /** `"UnparsedRequestError"`. */
  override name = "UnparsedRequestError";

  /** From the id-less `response` of the server at `address` (which the message names); no `command`. */
  constructor(response: Record<string, unknown>, address: string) {
    super(response);
    this.message = `${address} could not parse a request (an error without an id): ${this.message}`;
  }
}

/**
 * The caller's signal timed out (its reason is a `TimeoutError`, as
 * `AbortSignal.timeout` makes) while waiting: the message says for what.
 * The work may go on in QEMU.
 */
export class TimeoutError extends QmpError {
  /** `"TIMEOUT"`. */
  override readonly code = "TIMEOUT";
  /** `"TimeoutError"`, as the DOMException `AbortSignal.timeout` aborts with: test `instanceof` or `code`. */
  override name = "TimeoutError";
}

/**
 * The caller's signal was aborted (not by a timeout) while waiting (`cause`:
 * the signal's reason), or ssh was interrupted by the terminal's Ctrl-C.
 */
export class AbortedError extends QmpError {
  /** `"ABORTED"`. */
  override readonly code = "ABORTED";
  /** `"AbortedError"`. */
  override name = "AbortedError";
}

/**
 * The error to throw when `signal` aborts a wait for `what`. It is made
 * when the signal aborts, not when the wait begins: an error captures a
 * stack as it is made, which every wait would pay for.
 */
export function abortErrorFor(what: string): (signal: AbortSignal) => QmpError {
  return (signal) => {
    const reason = signal.reason as { name?: string } | undefined;
    if (reason?.name === "TimeoutError") return new TimeoutError(`timed out waiting for ${what}`);
    return new AbortedError(`aborted while waiting for ${what}`, { cause: reason });
  };
}
