/** `qmpctl proxy -s UPSTREAM --listen PATH` and `qmpctl proxy --listen PATH -- qemu-system-... ARGS`. @module */
import { type Address, parseAddress } from "../lib/address.ts";
import { AddressError, DisconnectedError } from "../lib/errors.ts";
import { isRemote, retryWhileNotReady } from "../lib/connect_ready.ts";
import { type ProxyOptions, QmpProxy } from "../lib/proxy/proxy.ts";
import { checkListenPath } from "../lib/transport_listen.ts";
import { formatDuration } from "./duration.ts";
import { EXIT, exitStatusHelp } from "./exit_status.ts";
import { logStderrOffMainThread, writeStderrLine } from "./io/output.ts";
import { UsageError } from "./options.ts";
import { QEMU_EXIT_GRACE_MS, runLaunched } from "./proxy_launch.ts";
import { disconnected, notice, stoppedStatus, type StopWatch, watchForStop } from "./proxy_stop.ts";
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
${formatDuration(QEMU_EXIT_GRACE_MS)} later (as timeout -k), or at once on a second signal (the same
signal within half a second is the same stop, SIGHUP the same as SIGTERM:
timeout(1) sends its signal twice, systemd's SendSIGHUP= a SIGHUP after
its SIGTERM). QEMU has
ended once the program has exited and the monitor has closed: a wrapper
script that runs QEMU as its child (not with exec) gets the signals, and a
QEMU it leaves behind is sent quit on its monitor when the proxy stops, or
served on until it closes its monitor when the wrapper exits by itself.

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
the SIGKILL after the grace or a second signal), or quit on its monitor;
127 when it is not found, 126 when it cannot be run (as env(1)); 3 when
it does not connect its monitor within --connect-timeout (it is then
stopped), or when a QEMU quit on its monitor does not close it (left
running, said); 124 when --timeout runs out (QEMU gets SIGTERM, and
SIGKILL ${formatDuration(QEMU_EXIT_GRACE_MS)} later if it has not exited, as timeout -k), whether
it exited or was killed.`;

export async function run(context: CommandContext): Promise<number> {
  // First of all: a SIGTERM or SIGHUP is the proxy's to handle before it makes anything (the socket, its private
  // directory, QEMU's), so none is left behind whenever one comes. Before this, it dies of it with nothing made.
  const stop = watchForStop(context);
  const listen = context.options.text("listen");
  const launch = context.words;
  if (listen === "") throw new UsageError("--listen is empty: give it the path of the socket to serve");
  if (launch[0] === "") throw new UsageError("proxy: the QEMU program to start is empty ('')");
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
    ? await runLaunched(context, settings.listen, proxyOptions(context, settings), launch, stop)
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
    await proxy.close();
    return stoppedStatus(context, first, `stopped sharing${disconnected((await proxy.ended).clients)}`);
  }
  if (first.reason !== "lost") {
    notice(`${name} closed the connection after ${first.reason === "quit" ? "a quit" : "a SHUTDOWN event"}: stopped`);
    return EXIT.OK;
  }
  // Why, when it is more than the close itself (a broken message); a plain close said it already.
  const why = first.error && !(first.error instanceof DisconnectedError) ? ` (${first.error.message})` : "";
  notice(`${name} closed the connection without a quit, or a SHUTDOWN event that no RESUME followed${why}`);
  return EXIT.CONNECTION;
}
