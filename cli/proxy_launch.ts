/**
 * `qmpctl proxy --listen PATH -- qemu-system-... ARGS` (launch mode): QEMU started by the proxy with a
 * private monitor the proxy owns, served until QEMU ends, and stopped when the proxy is asked to stop.
 *
 * @module
 */
import { abortable, sleep, within } from "../lib/abort.ts";
import { DisconnectedError, GreetingError } from "../lib/errors.ts";
import { type ProxyOptions, QmpProxy } from "../lib/proxy/proxy.ts";
import { formatDuration } from "./duration.ts";
import { EXIT } from "./exit_status.ts";
import { stderrWritten } from "./io/output.ts";
import { commandLineNamed, onInterrupt, type PassthroughChild } from "./io/process.ts";
import { onFatalSignal } from "./io/signals.ts";
import {
  cannotStart,
  chardevPath,
  listenForMonitor,
  type MonitorSocket,
  refuseDaemonize,
  spawnWithMonitor,
} from "./proxy_start.ts";
import {
  disconnected,
  notice,
  stopName,
  stoppedStatus,
  type StopReason,
  stopStatus,
  type StopWatch,
} from "./proxy_stop.ts";
import type { CommandContext } from "./session.ts";

/**
 * How long a launched QEMU may take to exit after its monitor connection has
 * gone, or after the signal that stops it (a stop asked for, --timeout, a failed start): then
 * SIGKILL, as `timeout -k` sends it. QEMU may be slow to stop (I/O it waits
 * for at shutdown) or ignore SIGTERM.
 */
export const QEMU_EXIT_GRACE_MS = 10_000;
/** How long a launched QEMU whose monitor failed before the proxy could serve it is given to exit by itself. */
const QEMU_FAILING_START_MS = 2000;
/**
 * How long QEMU's monitor may stay open after the program has exited before the proxy takes it that QEMU
 * lives on (a wrapper script ran it as its child). QEMU's own exit closes it, and the proxy sees that within
 * moments of the exit; a bound this long keeps a loaded machine's delay from being taken for a QEMU left
 * behind, which then waits this long before it is quit.
 */
const MONITOR_CLOSE_SETTLE_MS = 2000;
/**
 * How often the proxy looks again for a QEMU still starting after the program exited before its monitor
 * connected (a process whose command line names the monitor's socket): one that has gone has failed.
 */
const STARTING_POLL_MS = 100;
/** How long QEMU has to close its monitor after the proxy's quit: QEMU quits at once, without the guest's say. */
const QUIT_CLOSE_MS = 2000;
/**
 * How soon after a stop the same signal again is that same stop, not a second one that kills QEMU:
 * timeout(1) sends its signal to the proxy and then to its whole process group (the proxy in it), two
 * deliveries microseconds apart that a busy machine may hand over tens of ms apart; a person who sees
 * QEMU not stopping and sends another takes longer than this to decide to.
 */
export const SAME_STOP_MS = 500;
/** How long the log's "stopping" line may hold the signal it tells of (a reader of the log that stopped reading). */
const LOG_BEFORE_SIGNAL_MS = 100;

/** The signal a stop asked for is passed on to QEMU as: SIGINT as itself, SIGTERM for the others. */
function passedOn(reason: StopReason): "SIGINT" | "SIGTERM" {
  return reason === "SIGINT" ? "SIGINT" : "SIGTERM";
}

/** Launch mode's run: QEMU started with the proxy's own monitor (proxy_start.ts), served, stopped. */
export async function runLaunched(
  context: CommandContext,
  listen: string,
  options: ProxyOptions,
  command: string[],
  stop: StopWatch,
): Promise<number> {
  refuseDaemonize(command);
  const monitor = await listenForMonitor(options.wire);
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
  return await new LaunchedQemu(context, stop, qemu, command[0]).run(monitor, listen, options);
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
  /** Whether the program has exited: a second stop then has nothing left to kill. */
  #exited = false;
  /** Whether the program exited before QEMU connected its monitor (a wrapper that left QEMU starting). */
  #exitedFirst = false;
  /** Whether QEMU's monitor connection has ended (or was never made): nothing is left to wait for then. */
  #monitorGone = false;
  /**
   * What the proxy did that decides how QEMU's end is said and the exit status: `killed`, the program
   * (SIGKILL after the grace or at a second stop); `outlived`, QEMU lived on after the program exited by
   * itself, served until it closed its monitor; `quit`, QEMU quit on its monitor for a stop, and closed it;
   * `left`, QEMU did not close its monitor after that quit, or a second stop ended the wait for it.
   */
  #outcome: "killed" | "outlived" | "quit" | "left" | undefined;
  /** The proxy's quit of QEMU on its monitor, once sent for a stop asked for: once for all reasons. */
  #quitting: Promise<void> | undefined;
  /** Aborts what waits on QEMU's monitor (its negotiation, the quit): a second stop once the program is gone. */
  readonly #giveUp = new AbortController();

  constructor(context: CommandContext, stop: StopWatch, qemu: PassthroughChild, name: string) {
    this.#context = context;
    this.#stop = stop;
    this.#qemu = qemu;
    this.#name = name;
    void qemu.exited.then(() => (this.#exited = true));
  }

  /** Wait for QEMU's monitor, then serve it until QEMU ends: the run's exit status. */
  async run(monitor: MonitorSocket, listen: string, options: ProxyOptions): Promise<number> {
    this.#forwardStops();
    const early = await this.#awaitMonitor(monitor);
    await monitor.close();
    if (early !== "connected") {
      this.#monitorGone = true;
      return await this.#unconnected(early);
    }
    // A stop asked for closes the socket to new clients (who would talk to a QEMU on its way out); those
    // connected see QEMU's end (its SHUTDOWN event) as it comes. It does not cut the negotiation short
    // (--connect-timeout bounds that): a QEMU that connects once a stop was asked for is quit through it.
    const serving = { ...options, signal: this.#giveUp.signal, stopAccepting: this.#stop.signal };
    let proxy: QmpProxy;
    try {
      proxy = await QmpProxy.start(monitor.upstream, listen, serving);
    } catch (error) {
      this.#monitorGone = true;
      return await this.#failedToServe(error);
    }
    void proxy.ended.then(() => (this.#monitorGone = true));
    // Asked to stop before QEMU connected its monitor (a wrapper that ignored the signal, then started QEMU):
    // QEMU never got that stop, and a monitor served to clients would only see it go. Quit it at once.
    if (this.#stop.reason === undefined) notice(`serving QEMU's monitor on ${listen}`);
    else void this.#quit(proxy);
    return await this.#serve(proxy);
  }

  /**
   * Pass a stop asked for on to QEMU (SIGTERM for SIGHUP and --timeout), bounded as timeout -k bounds it: a
   * QEMU that does not act on it (a shutdown stuck on I/O, a wrapper that traps it) is killed after the
   * grace, and at once on a second stop asked for, whose sender does not mean to wait (a different signal,
   * or the same after SAME_STOP_MS).
   */
  #forwardStops(): void {
    void this.#stop.requested.then(async (reason) => {
      const askedAt = performance.now();
      const signal = passedOn(reason);
      const how = this.#exited
        ? "QEMU (quit on its monitor)"
        : `${this.#name}${reason === "SIGHUP" ? " (with SIGTERM)" : ""}`;
      const again = (second: StopReason) => {
        if (this.#exited && this.#monitorGone) return; // the proxy is ending: nothing left to stop
        // SIGHUP is passed on as SIGTERM: systemd's SendSIGHUP= sends it right after SIGTERM, one stop.
        if (passedOn(second) === signal && performance.now() - askedAt < SAME_STOP_MS) return;
        const what = `${second}${second === reason ? " again" : ""}`;
        if (!this.#exited) {
          notice(`${what}: killing ${this.#name} (SIGKILL)`);
          void this.#kill(); // a QEMU it ran as its child is then quit on its monitor
          return;
        }
        // The program has gone, and QEMU's monitor is still open (a QEMU it left behind): no process of the
        // proxy's is left to kill, and the wait for that monitor ends now, QEMU left running.
        notice(`${what}: not waiting for QEMU to close its monitor`);
        this.#giveUp.abort();
      };
      onFatalSignal(again);
      onInterrupt(() => again("SIGINT"));
      notice(`${stopName(this.#context, reason)}: stopping ${how}`);
      // Said before it is done: QEMU's own line on the signal ("terminating on signal 15") comes after it.
      await stderrWritten(LOG_BEFORE_SIGNAL_MS);
      void this.#signalAndWait(signal);
    });
  }

  /** Send the program `signal`, and SIGKILL after the grace if it has not exited: its exit status. */
  #signalAndWait(signal: "SIGTERM" | "SIGINT"): Promise<number> {
    this.#qemu.kill(signal);
    return this.#exitedOrKilled(`of ${signal}`);
  }

  /**
   * Wait for QEMU to connect its monitor, which it does as it starts, in well under a second: --connect-timeout
   * bounds the wait, unless --timeout runs out first (QEMU is then being stopped, and the run ends when it has).
   * A program that exits first may be a wrapper that left QEMU starting in the background: while a process
   * whose command line names the monitor's socket (a private path, no other's) lives, the wait goes on, within
   * the same bound, and until a stop is asked for. None (a QEMU that failed, no /proc): "exited", at once.
   */
  async #awaitMonitor(monitor: MonitorSocket): Promise<MonitorWait> {
    const bound = this.#context.global.connectTimeoutMs;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const connected = monitor.connected.then(() => "connected" as const);
    const late = bound > 0
      ? [new Promise<"late">((resolve) => (timer = setTimeout(() => resolve("late"), bound)))]
      : [];
    let early = await Promise.race([
      connected,
      this.#qemu.exited.then(() => "exited" as const),
      this.#stop.requested.then((signal) => signal === "timeout" ? "timeout" as const : new Promise<never>(() => {})),
      ...late,
    ]);
    const named = chardevPath(monitor.path); // as QEMU's command line names the socket
    if (early === "exited" && this.#stop.reason === undefined && await commandLineNamed(named)) {
      this.#exitedFirst = true;
      const done = new AbortController();
      early = await Promise.race([
        connected,
        this.#stop.requested.then(() => "exited" as const), // QEMU, if it comes, finds no socket and exits
        this.#whileStarting(named, done.signal),
        ...late,
      ]);
      done.abort();
    }
    clearTimeout(timer);
    return early;
  }

  /**
   * "exited" once no process has `named` (the monitor's socket) in its command line (a QEMU still starting has
   * failed), or never if `until` aborts.
   */
  async #whileStarting(named: string, until: AbortSignal): Promise<"exited"> {
    while (await sleep(STARTING_POLL_MS, until, "a QEMU still starting").then(() => true, () => false)) {
      if (!await commandLineNamed(named)) return "exited";
    }
    return new Promise<never>(() => {});
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
    if (this.#giveUp.signal.aborted) { // a second stop, the program gone: QEMU never greeted, and is left
      this.#outcome = "left";
      await this.#sayEnd();
      return await this.#status(await this.#qemu.exited);
    }
    const closedByQemu = error instanceof DisconnectedError || error instanceof GreetingError;
    const status = closedByQemu ? await within(this.#qemu.exited, QEMU_FAILING_START_MS) : undefined;
    if (status !== undefined) {
      await this.#sayEnd(); // as #serve says an end by itself: QEMU said why, this says how it ended
      return await this.#status(status);
    }
    await this.#signalAndWait("SIGTERM");
    throw error; // no guest agent's hint: the peer is the QEMU started here
  }

  /**
   * Serve QEMU's monitor until QEMU has ended, which is when the program has exited and the monitor has
   * closed (the program may be a wrapper script that runs QEMU as its child): the program's exit status.
   */
  async #serve(proxy: QmpProxy): Promise<number> {
    const first = await Promise.race([this.#qemu.exited, proxy.ended.then(() => undefined)]);
    // The monitor connection ended first: QEMU is exiting, or is stopped after a grace period (said then).
    const status = first ?? await this.#exitedOrKilled("of closing its monitor");
    if (first !== undefined) await this.#monitorClosed(proxy);
    await proxy.close();
    await this.#sayEnd("", (await proxy.ended).clients);
    return await this.#status(status);
  }

  /**
   * Once the program has exited, wait for QEMU's monitor to close. QEMU's own exit closes it: one that stays
   * connected is a QEMU that a wrapper ran as its child and left behind (exited without it, or killed by a
   * stop). Signals reach the program only, so the proxy stops that QEMU through what it owns, the monitor:
   * with a stop asked for (then or later) it quits QEMU on it; else QEMU lives on, served, until it closes it.
   */
  async #monitorClosed(proxy: QmpProxy): Promise<void> {
    const closed = abortable(proxy.ended, this.#giveUp.signal, "QEMU's monitor to close"); // a second stop: no more
    // A QEMU that connected once the program had exited outlived it: no settling to wait for.
    if (await within(closed, this.#exitedFirst ? 0 : MONITOR_CLOSE_SETTLE_MS).catch(() => undefined)) return;
    if (this.#stop.reason === undefined) {
      notice(
        `${this.#name} ${await this.#qemu.ended} while QEMU's monitor stays connected: serving it until it closes`,
      );
      this.#outcome = "outlived";
      if (typeof await Promise.race([proxy.ended, this.#stop.requested]) !== "string") return;
    }
    await this.#quit(proxy);
  }

  /**
   * Quit QEMU on its monitor, for a stop asked for, and wait a little for it to close the monitor as it goes
   * (or until a second stop gives up on it); a QEMU that does not is left running, said, the connection closed.
   */
  #quit(proxy: QmpProxy): Promise<void> {
    return this.#quitting ??= (async () => {
      const bound = AbortSignal.any([AbortSignal.timeout(QUIT_CLOSE_MS), this.#giveUp.signal]);
      const closed = await proxy.quit({ signal: bound }).then(() => true, () => false);
      this.#outcome = closed ? "quit" : "left";
      if (!closed && !this.#giveUp.signal.aborted) {
        notice(`QEMU did not close its monitor within ${formatDuration(QUIT_CLOSE_MS)} of quit`);
      }
    })();
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
    this.#outcome = "killed";
    this.#qemu.kill("SIGKILL");
    return this.#qemu.exited;
  }

  /**
   * Say how QEMU ended, `when` (` before it connected its monitor`), and the clients its end disconnected,
   * for a unit's journal: the last line of every run that started QEMU (a stop asked for, or a kill of the
   * proxy's, was said as it came, and this says how it ended).
   */
  async #sayEnd(when = "", clients = 0): Promise<void> {
    await this.#quitting; // its outcome, once known
    const program = `${this.#name} ${await this.#qemu.ended}`;
    const how = this.#outcome === "quit"
      ? `QEMU quit on its monitor; ${program}` // the program may be QEMU itself (a wrapper that exec'd it)
      : this.#outcome === "left"
      ? `QEMU left running without its monitor after ${program}`
      : this.#outcome === "outlived"
      ? "QEMU closed its monitor"
      : `${program}${when}`;
    notice(`${how}${disconnected(clients)}`);
  }

  /**
   * The run's exit status from QEMU's. A QEMU left running (it did not close its monitor after the proxy's
   * quit) is a stop not done: 3, as a monitor lost. After a stop asked for, QEMU dead of the signal the
   * proxy sent it for that stop (the one passed on, which kills a QEMU that does not handle signals yet, or
   * SIGKILL after the grace or a second stop), or quit by the proxy on its monitor, is the stop done: its
   * status (stopStatus: 0, or 130 for SIGINT), as --timeout's 124 is, however QEMU ended. Else QEMU's own.
   */
  async #status(status: number): Promise<number> {
    await this.#quitting; // its outcome, once known
    const reason = this.#stop.reason;
    if (this.#outcome === "left") return EXIT.CONNECTION;
    if (reason === undefined) return status;
    if (reason === "timeout") return EXIT.TIMEOUT;
    const byTheStop = this.#outcome === "killed" || this.#outcome === "quit" ||
      await this.#qemu.ended === `was killed by ${passedOn(reason)}`;
    return byTheStop ? stopStatus(reason) : status;
  }
}
