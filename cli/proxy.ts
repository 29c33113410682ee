/** `qmpctl proxy -s UPSTREAM --listen PATH` and `qmpctl proxy --listen PATH -- qemu-system-... ARGS`. @module */
import { within } from "../lib/abort.ts";
import { type Address, parseAddress } from "../lib/address.ts";
import { AbortedError, AddressError, ConnectionError, DisconnectedError, GreetingError } from "../lib/errors.ts";
import { isRemote, retryWhileNotReady } from "../lib/connect_ready.ts";
import { type ProxyOptions, QmpProxy } from "../lib/proxy/proxy.ts";
import { Upstream } from "../lib/proxy/upstream.ts";
import type { AcceptedTransport } from "../lib/transport.ts";
import { checkListenPath, listenTransport } from "../lib/transport_listen.ts";
import { formatDuration } from "./duration.ts";
import { EXIT, exitStatusHelp, PROGRAM } from "./exit_status.ts";
import { makePrivateDir, removeDir } from "./io/files.ts";
import { logStderrOffMainThread, writeStderrLine } from "./io/output.ts";
import { onInterrupt, type PassthroughChild, spawnPassthrough } from "./io/process.ts";
import { type FatalSignal, onFatalSignal } from "./io/signals.ts";
import { UsageError } from "./options.ts";
import { type CommandContext, escapeJsonControls, givenAddress, noAddress, withAgentHint } from "./session.ts";

export const help = (): string =>
  `Usage: qmpctl proxy -s UPSTREAM --listen PATH [options]
       qmpctl proxy --listen PATH [options]
         -- qemu-system-x86_64 ARGS...

Share one QMP monitor: hold the one connection QEMU allows and serve any
number of QMP clients on the UNIX socket PATH (or unix:PATH, as -s reads
it; not TCP), mode 0600 unless --listen-mode says otherwise; a stale socket
file there is replaced. Each client sees a normal QEMU: its greeting,
qmp_capabilities answered by the proxy, its own ids on its replies, and
every event. Runs in the foreground and logs clients coming and going on
stderr (-v: every message too). Out of file descriptors (ulimit -n), it
says so once and closes new connections before their greeting until some
clients leave (--wait-socket retries those).

Given a QEMU command line (after --, or from its program on: every word
after the program is QEMU's), the proxy starts QEMU itself with a private
monitor that it owns from the first instant, forwards SIGTERM and SIGINT to
it (SIGTERM for SIGHUP), and exits with QEMU's exit status; QEMU's stdin,
stdout and stderr are the proxy's own. Once asked to stop (a signal,
--timeout), it takes no new clients (PATH is removed) and serves those
connected until QEMU has exited; QEMU gets SIGKILL if it has not exited
${formatDuration(QEMU_EXIT_GRACE_MS)} later (as timeout -k), or at once on a second signal.

Not available through the proxy (each is refused with an error): getfd,
add-fd, closefd and get-win32-socket (they pass file descriptors on the
monitor connection itself). qmp_capabilities is answered by the proxy.

Examples:
  # share a running VM's monitor
  qmpctl proxy -s /run/vm1.qmp --listen /run/vm1.shared.qmp
  qmpctl -s /run/vm1.shared.qmp wait-event SHUTDOWN &  # blocks no one
  qmpctl -s /run/vm1.shared.qmp exec query-status
  # start a VM whose monitor is shared from birth; open a shell on it
  qmpctl proxy --listen vm.sock -- qemu-system-x86_64 -m 1G disk.img &
  qmpctl -s vm.sock --wait-socket 10s shell

${
    exitStatusHelp(["OK", "USAGE", "CONNECTION", "TIMEOUT", "INTERRUPTED"], {
      OK: "after QEMU's SHUTDOWN event or a client's quit, or on SIGTERM/SIGHUP",
      CONNECTION: "the connection to QEMU failed or was lost otherwise",
    })
  }
Launch mode: QEMU's own exit status (128 + the number of a signal that
killed it; 130 after a Ctrl-C, once QEMU has stopped); 0 after SIGTERM or
SIGHUP when QEMU died of the signal sent to stop it (the one passed on, or
the SIGKILL after the grace or a second signal); 127 when it is not found,
126 when it cannot be run (as env(1)); 3 when it does not connect its
monitor within --connect-timeout (it is then stopped); 124 when --timeout
runs out (QEMU gets SIGTERM, and SIGKILL ${formatDuration(QEMU_EXIT_GRACE_MS)} later if it has not
exited, as timeout -k), whether it exited or was killed.`;

/**
 * How long a launched QEMU may take to exit after its monitor connection has
 * gone, or after the signal that stops it (a stop asked for, --timeout, a failed start): then
 * SIGKILL, as `timeout -k` sends it. QEMU may be slow to stop (I/O it waits
 * for at shutdown) or ignore SIGTERM.
 */
const QEMU_EXIT_GRACE_MS = 10_000;
/** How long a launched QEMU whose monitor failed before the proxy could serve it is given to exit by itself. */
const QEMU_FAILING_START_MS = 2000;

export async function run(context: CommandContext): Promise<number> {
  // First of all: a SIGTERM or SIGHUP is the proxy's to handle before it makes anything (the socket, its private
  // directory, QEMU's), so none is left behind whenever one comes. Before this, it dies of it with nothing made.
  const stop = watchForStop(context);
  const listen = context.options.text("listen");
  const launch = context.words;
  if (!listen) {
    const given = launch.some((word) => word === "--listen" || word.startsWith("--listen="));
    const late = given ? ", before the QEMU command line (its words are QEMU's)" : "";
    throw new UsageError(`proxy needs --listen PATH (the socket to serve)${late}`);
  }
  const path = listenPath(listen);
  if (launch.length > 0 && context.global.socket) {
    throw new UsageError(`proxy takes either -s UPSTREAM or a QEMU command line (${launch[0]} ...), not both`);
  }
  const upstream = launch.length === 0 ? givenAddress(context, "QMPCTL_SOCKET") : undefined;
  if (launch.length === 0 && !upstream) {
    throw new UsageError(`${noAddress("upstream", "QMPCTL_SOCKET")}, or a QEMU command line`);
  }
  const settings = readSettings(context, path);
  logStderrOffMainThread(); // a reader of its log that stops reading must not stop the serving
  // Before QEMU is touched or started: a path another proxy serves, or in a directory not there, is an error at once.
  await checkListenPath(path);
  return launch.length > 0
    ? await runLaunched(context, settings, launch, stop)
    : await runShared(context, settings, upstream!, stop);
}

/**
 * --listen's socket path: PATH, or unix:PATH as -s reads it (QEMU's options
 * after the path ignored). What -s would read as TCP or ssh:// is refused,
 * not made a file of that name.
 */
function listenPath(text: string): string {
  let address: Address | undefined;
  try {
    address = parseAddress(text);
  } catch (error) {
    if (!(error instanceof AddressError)) throw error;
  }
  if (address?.kind === "unix") return address.path;
  const what = address?.kind === "tcp"
    ? "is a TCP address"
    : address?.kind === "ssh"
    ? "is an ssh:// address (the proxy serves on this host)"
    : `is neither (./${text} names a file of that name)`;
  throw new UsageError(`--listen takes a UNIX socket path (unix:PATH or a path): '${text}' ${what}`);
}

interface Settings {
  listen: string;
  mode: number;
  maxQueuedBytes?: number;
}

function readSettings(context: CommandContext, listen: string): Settings {
  const modeText = context.options.text("listen-mode") ?? "0600";
  // As chmod reads an octal mode: 1 to 3 digits (0 is 000: only root may connect), leading zeros allowed.
  if (!/^0*[0-7]{1,3}$/.test(modeText)) {
    const special = /^[0-7]{4,}$/.test(modeText) ? " (setuid, setgid and sticky bits mean nothing on a socket)" : "";
    throw new UsageError(`--listen-mode wants an octal mode like 0660, not '${modeText}'${special}`);
  }
  const queueText = context.options.text("max-queue");
  return {
    listen,
    mode: parseInt(modeText, 8),
    maxQueuedBytes: queueText === undefined ? undefined : parseSize(queueText),
  };
}

/** `64k`, `8M`, `1G` or a number of bytes. */
function parseSize(text: string): number {
  const match = /^(\d+)([kKmMgG]?)i?[bB]?$/.exec(text);
  if (!match) throw new UsageError(`--max-queue wants a size like 512k or 8M, not '${text}'`);
  const unit = { "": 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[match[2].toLowerCase()]!;
  // 0 would not mean "no bound": a client would be disconnected as soon as one byte waits for it.
  if (Number(match[1]) === 0) throw new UsageError(`--max-queue takes at least 1 byte, not '${text}' (default 8M)`);
  return Number(match[1]) * unit;
}

function notice(line: string): void {
  writeStderrLine(`qmpctl: proxy: ${line}`);
}

function proxyOptions(context: CommandContext, settings: Settings): ProxyOptions {
  return {
    mode: settings.mode,
    maxQueuedBytes: settings.maxQueuedBytes,
    connectTimeoutMs: context.global.connectTimeoutMs,
    signal: context.signal,
    notice,
    wire: context.global.verbose
      ? (who, direction, json) =>
        writeStderrLine(`${who} ${direction === "send" ? ">" : "<"} ${escapeJsonControls(json)}`)
      : undefined,
  };
}

/** What asks the proxy to stop: SIGINT, SIGTERM, SIGHUP (its terminal or ssh session closed), or --timeout. */
type StopReason = "SIGINT" | FatalSignal | "timeout";

/** A stop asked for, watched from the proxy's first instant. */
interface StopWatch {
  /** Resolves with what asked first. */
  requested: Promise<StopReason>;
  /** What asked first, once something has: set as the signal is handled. */
  readonly reason: StopReason | undefined;
  /** Aborts as a stop is asked for (with the run's own reason for SIGINT and --timeout): bounds the start. */
  signal: AbortSignal;
}

/**
 * Handle SIGTERM and SIGHUP from now on (but one ignored at start, as under
 * nohup), and watch the run's signal (SIGINT, --timeout): a stop that comes
 * while the proxy starts cuts the start short, and what it has made is
 * removed on the way out, as when it serves.
 */
function watchForStop(context: CommandContext): StopWatch {
  const { promise, resolve } = Promise.withResolvers<StopReason>();
  let reason: StopReason | undefined;
  const stop = (why: StopReason) => resolve(reason ??= why);
  const fatal = new AbortController();
  onFatalSignal((signal) => {
    stop(signal);
    if (!fatal.signal.aborted) fatal.abort(new AbortedError(`stopped by ${signal}`));
  });
  const onAbort = () =>
    stop((context.signal.reason as { name?: string })?.name === "TimeoutError" ? "timeout" : "SIGINT");
  if (context.signal.aborted) onAbort();
  else context.signal.addEventListener("abort", onAbort, { once: true });
  return {
    requested: promise,
    get reason() {
      return reason;
    },
    signal: AbortSignal.any([context.signal, fatal.signal]),
  };
}

/**
 * The exit status of a stop asked for (stopStatus), said as `REASON: what` (`SIGTERM: stopped sharing`), as
 * every end of the proxy is, for a unit's journal.
 */
function stoppedStatus(context: CommandContext, reason: StopReason, what: string): number {
  notice(`${stopName(context, reason)}: ${what}`);
  return stopStatus(reason);
}

/**
 * The exit status of a stop asked for: 0 for SIGTERM and SIGHUP (a service stopped), 130 for SIGINT (a Ctrl-C
 * ends a shell loop running the proxy too), 124 for --timeout.
 */
function stopStatus(reason: StopReason): number {
  return reason === "SIGINT" ? EXIT.INTERRUPTED : reason === "timeout" ? EXIT.TIMEOUT : EXIT.OK;
}

/** A stop's reason as its log line names it: the signal, or `--timeout 1s ran out`. */
function stopName(context: CommandContext, reason: StopReason): string {
  return reason === "timeout" ? `--timeout ${formatDuration(context.global.timeoutMs)} ran out` : reason;
}

/** ` (2 clients disconnected)`: the clients a stop closed, if any. */
function disconnected(count: number): string {
  return count === 0 ? "" : ` (${count} ${count === 1 ? "client" : "clients"} disconnected)`;
}

/** Share the monitor at `address` until QEMU goes away or a signal stops the proxy. */
async function runShared(
  context: CommandContext,
  settings: Settings,
  address: string,
  stop: StopWatch,
): Promise<number> {
  const options = { ...proxyOptions(context, settings), signal: stop.signal };
  const share = () => QmpProxy.share(address, settings.listen, options);
  let proxy: QmpProxy;
  try {
    // --wait-socket: QEMU may still be starting (the socket served only once QEMU has greeted).
    const remote = isRemote(address);
    proxy = await retryWhileNotReady(share, context.global.waitSocketMs ?? 0, stop.signal, { remote });
  } catch (error) {
    // A signal while it connected: a service stopped, or a Ctrl-C (--timeout fails as any command's wait).
    const reason = stop.reason;
    if (reason === undefined || reason === "timeout") throw withAgentHint(error);
    return stoppedStatus(context, reason, `stopped before sharing ${parseAddress(address).text}`);
  }
  const name = parseAddress(address).text;
  notice(`sharing ${name} on ${settings.listen}`);
  const first = await Promise.race([proxy.ended, stop.requested]); // one asked for as it started: at once
  if (typeof first === "string") {
    const clients = proxy.clientCount;
    await proxy.close();
    return stoppedStatus(context, first, `stopped sharing${disconnected(clients)}`);
  }
  if (first.reason !== "lost") {
    notice(`${name} closed the connection after ${first.reason === "quit" ? "a quit" : "a SHUTDOWN event"}: stopped`);
    return EXIT.OK;
  }
  // Why, when it is more than the close itself (a broken message); a plain close said it already.
  const why = first.error && !(first.error instanceof DisconnectedError) ? ` (${first.error.message})` : "";
  notice(`${name} closed the connection without a SHUTDOWN event or a quit${why}`);
  return EXIT.CONNECTION;
}

/**
 * Start QEMU with a monitor the proxy owns from the first instant: the proxy
 * listens on a socket in a private (0700) directory and QEMU connects to it
 * as a client (`-chardev socket,server=off`), which QEMU does while it
 * creates its chardevs, before the machine exists and before any event. A
 * socket path rather than a passed descriptor, because neither Bun nor
 * Deno can create the socket pair that passing one would need; the private
 * directory keeps other users from connecting first.
 */
async function runLaunched(
  context: CommandContext,
  settings: Settings,
  command: string[],
  stop: StopWatch,
): Promise<number> {
  refuseDaemonize(command);
  const monitor = await listenForMonitor(proxyOptions(context, settings).wire);
  if (stop.reason !== undefined) { // asked to stop before QEMU was started: it is not
    await monitor.close();
    return stoppedStatus(context, stop.reason, `stopped before ${command[0]} was started`);
  }
  let qemu: PassthroughChild;
  try {
    qemu = await spawnWithMonitor(command, monitor.path);
  } catch (error) {
    await monitor.close();
    return await cannotStart(command[0], error);
  }
  return await new LaunchedQemu(context, stop, qemu, command[0]).run(monitor, settings);
}

/**
 * Refuse -daemonize: QEMU's launcher would exit at once and leave QEMU with a
 * monitor whose other end is gone with the proxy.
 */
function refuseDaemonize(command: string[]): void {
  const daemonize = command.find((word) => word === "-daemonize" || word === "--daemonize");
  if (daemonize) {
    throw new UsageError(
      `proxy runs QEMU as its child: leave out ${daemonize} (run the proxy in the background instead)`,
    );
  }
}

/** The socket a launched QEMU connects its monitor to, in a private directory, and the one connection it takes. */
interface MonitorSocket {
  /** Where QEMU is to connect. */
  path: string;
  /** The monitor connection, once QEMU has made it. */
  upstream: Upstream;
  /** Resolves as QEMU connects. */
  connected: Promise<void>;
  /** Stop listening and remove the private directory (a connection made stays). */
  close(): Promise<void>;
}

/** Listen for QEMU's monitor in a new private directory: the first connection is the monitor, any other is cut. */
async function listenForMonitor(wire: ProxyOptions["wire"]): Promise<MonitorSocket> {
  const dir = await makePrivateDir("qmpctl-proxy-", "QEMU's monitor socket").catch((error) => {
    throw new ConnectionError((error as Error).message, { cause: error });
  });
  const path = `${dir}/monitor.sock`;
  const upstream = new Upstream("QEMU's monitor", {
    log: wire && ((direction, json) => wire("upstream", direction, json)),
  });
  const { promise: connected, resolve } = Promise.withResolvers<void>();
  let taken = false;
  const listener = await listenTransport(path, {
    accept(transport: AcceptedTransport) {
      if (taken) { // only the QEMU started here may be the monitor
        transport.abort();
        return { data() {}, close() {} };
      }
      taken = true;
      upstream.attach(transport);
      resolve();
      return upstream.transportEvents;
    },
  }).catch(async (error) => {
    await removeDir(dir);
    throw error;
  });
  const close = async () => {
    await listener.close();
    await removeDir(dir);
  };
  return { path, upstream, connected, close };
}

/** Start `command` with a QMP monitor that connects to `monitorPath` as QEMU starts. */
function spawnWithMonitor(command: string[], monitorPath: string): Promise<PassthroughChild> {
  return spawnPassthrough([
    ...command,
    "-chardev",
    `socket,id=qmpctl-proxy,path=${monitorPath.replaceAll(",", ",,")},server=off`, // QEMU's options escape ',' as ',,'
    "-mon",
    "chardev=qmpctl-proxy,mode=control",
  ]);
}

/** Why `program` could not be started, in qmpctl's words; the exit status env(1) gives (127 not found, else 126). */
async function cannotStart(program: string, error: unknown): Promise<number> {
  if ((error as Error).name === "NotCapable") throw error; // Deno without --allow-run: a usage error, saying so
  const { fileErrorWords } = await import("./file_errors.ts"); // "no such file or directory (ENOENT)"
  notice(`cannot start ${program}: ${fileErrorWords(error) ?? (error as Error).message}`);
  return (error as { code?: string }).code === "ENOENT" ? PROGRAM.NOT_FOUND : PROGRAM.NOT_RUNNABLE;
}

/** How the wait for a launched QEMU's monitor ended. */
type MonitorWait = "connected" | "exited" | "timeout" | "late";

/**
 * A QEMU the proxy started, from then to the run's exit status: the stops
 * asked for passed on to it, the one grace it has to exit, and what each way
 * it ends means.
 */
class LaunchedQemu {
  readonly #context: CommandContext;
  readonly #stop: StopWatch;
  readonly #qemu: PassthroughChild;
  /** Its program, as the log names it. */
  readonly #name: string;
  /** One grace for this QEMU, from the first reason to stop it (a second would say the kill twice). */
  #ending: Promise<number> | undefined;
  /** Whether the proxy has sent it SIGKILL (after the grace, or at a second stop): its end is said then. */
  #killed = false;
  /** Whether it has exited: a second stop then has nothing left to kill. */
  #exited = false;

  constructor(context: CommandContext, stop: StopWatch, qemu: PassthroughChild, name: string) {
    this.#context = context;
    this.#stop = stop;
    this.#qemu = qemu;
    this.#name = name;
    void qemu.exited.then(() => (this.#exited = true));
  }

  /** Wait for QEMU's monitor, then serve it until QEMU ends: the run's exit status. */
  async run(monitor: MonitorSocket, settings: Settings): Promise<number> {
    this.#forwardStops();
    const early = await this.#awaitMonitor(monitor.connected);
    await monitor.close();
    if (early !== "connected") return await this.#unconnected(early);
    // A stop asked for closes the socket to new clients (who would talk to a QEMU on its way out); those
    // connected see QEMU's end (its SHUTDOWN event) as it comes.
    const options = { ...proxyOptions(this.#context, settings), stopAccepting: this.#stop.signal };
    let proxy: QmpProxy;
    try {
      proxy = await QmpProxy.start(monitor.upstream, settings.listen, options);
    } catch (error) {
      return await this.#failedToServe(error);
    }
    notice(`serving QEMU's monitor on ${settings.listen}`);
    return await this.#serve(proxy);
  }

  /**
   * Pass a stop asked for on to QEMU (SIGTERM for SIGHUP and --timeout), bounded as timeout -k bounds it: a
   * QEMU that does not act on it (a shutdown stuck on I/O, a wrapper that traps it) is killed after the
   * grace, and at once on a second stop asked for, whose sender does not mean to wait.
   */
  #forwardStops(): void {
    void this.#stop.requested.then((reason) => {
      const signal = reason === "SIGINT" ? "SIGINT" : "SIGTERM";
      const how = reason === "SIGHUP" ? " (with SIGTERM)" : "";
      notice(`${stopName(this.#context, reason)}: stopping ${this.#name}${how}`);
      this.#qemu.kill(signal);
      void this.#exitedOrKilled(`of ${signal}`);
      const again = (second: StopReason) => {
        if (this.#exited) return; // the proxy is ending: nothing left to kill
        notice(`${second}${second === reason ? " again" : ""}: killing ${this.#name} (SIGKILL)`);
        void this.#kill();
      };
      onFatalSignal(again);
      onInterrupt(() => again("SIGINT"));
    });
  }

  /**
   * Wait for QEMU to connect its monitor, which it does as it starts, in well under a second: --connect-timeout
   * bounds the wait, unless --timeout runs out first (QEMU is then being stopped, and the run ends when it has).
   */
  async #awaitMonitor(connected: Promise<void>): Promise<MonitorWait> {
    const bound = this.#context.global.connectTimeoutMs;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const early = await Promise.race([
      connected.then(() => "connected" as const),
      this.#qemu.exited.then(() => "exited" as const),
      this.#stop.requested.then((signal) => signal === "timeout" ? "timeout" as const : new Promise<never>(() => {})),
      ...(bound > 0 ? [new Promise<"late">((resolve) => (timer = setTimeout(() => resolve("late"), bound)))] : []),
    ]);
    clearTimeout(timer);
    return early;
  }

  /** The run's exit status when QEMU did not connect its monitor: it exited, --timeout stopped it, or it was late. */
  async #unconnected(early: Exclude<MonitorWait, "connected">): Promise<number> {
    if (early === "late") {
      const bound = formatDuration(this.#context.global.connectTimeoutMs);
      notice(`${this.#name} did not connect its monitor within ${bound} (--connect-timeout): stopped`);
      await this.#kill();
      return EXIT.CONNECTION;
    }
    await this.#sayEnd(" before it connected its monitor");
    return await this.#status(await this.#qemu.exited);
  }

  /**
   * A QEMU that fails as it starts (a bad -device, a disk not there) has connected its monitor and closes it as
   * it exits, having said why: its exit status is the run's. Else QEMU is stopped, and `error` thrown.
   */
  async #failedToServe(error: unknown): Promise<number> {
    const closedByQemu = error instanceof DisconnectedError || error instanceof GreetingError;
    const status = closedByQemu ? await within(this.#qemu.exited, QEMU_FAILING_START_MS) : undefined;
    if (status !== undefined) {
      await this.#sayEnd(); // as #serve says an end by itself: QEMU said why, this says how it ended
      return await this.#status(status);
    }
    this.#qemu.kill("SIGTERM");
    await this.#exitedOrKilled("of SIGTERM");
    throw error; // no guest agent's hint: the peer is the QEMU started here
  }

  /** Serve QEMU's monitor until QEMU exits or the connection ends: QEMU's exit status. */
  async #serve(proxy: QmpProxy): Promise<number> {
    const first = await Promise.race([this.#qemu.exited, proxy.ended.then(() => undefined)]);
    // The monitor connection ended first: QEMU is exiting, or is stopped after a grace period (said then).
    const status = first ?? await this.#exitedOrKilled("of closing its monitor");
    await proxy.close();
    await this.#sayEnd();
    return await this.#status(status);
  }

  /**
   * QEMU's exit status once it has exited: by itself, or killed (SIGKILL) when it has not within
   * QEMU_EXIT_GRACE_MS of now, saying so; one grace for all the reasons to stop it.
   */
  #exitedOrKilled(since: string): Promise<number> {
    return this.#ending ??= (async () => {
      const status = await within(this.#qemu.exited, QEMU_EXIT_GRACE_MS);
      if (status !== undefined) return status;
      notice(`${this.#name} did not exit within ${formatDuration(QEMU_EXIT_GRACE_MS)} ${since}: killed it (SIGKILL)`);
      return await this.#kill();
    })();
  }

  /** SIGKILL QEMU (after saying why): its exit status. */
  #kill(): Promise<number> {
    this.#killed = true;
    this.#qemu.kill("SIGKILL");
    return this.#qemu.exited;
  }

  /**
   * Say how QEMU ended, `when` (` before it connected its monitor`), if it ended by itself (a guest's
   * poweroff, a crash, a kill from outside), for a unit's journal: a stop asked for and a kill of the
   * proxy's were said as they came.
   */
  async #sayEnd(when = ""): Promise<void> {
    if (this.#stop.reason === undefined && !this.#killed) notice(`${this.#name} ${await this.#qemu.ended}${when}`);
  }

  /**
   * The run's exit status from QEMU's. After a stop asked for, QEMU dead of the signal the proxy sent it
   * for that stop (the one passed on, which kills a QEMU that does not handle signals yet, or SIGKILL after
   * the grace or a second stop) is the stop done: its status (stopStatus: 0, or 130 for SIGINT), as
   * --timeout's 124 is, however QEMU ended. Otherwise QEMU's own.
   */
  async #status(status: number): Promise<number> {
    const reason = this.#stop.reason;
    if (reason === undefined) return status;
    if (reason === "timeout") return EXIT.TIMEOUT;
    const passedOn = reason === "SIGINT" ? "SIGINT" : "SIGTERM";
    const byTheStop = this.#killed || await this.#qemu.ended === `was killed by ${passedOn}`;
    return byTheStop ? stopStatus(reason) : status;
  }
}
