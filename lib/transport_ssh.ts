/**
 * The ssh transport: a UNIX socket on another host (`ssh://[USER@]HOST[:PORT]/PATH`),
 * reached through the user's own OpenSSH client, so their keys, agent,
 * `~/.ssh/config`, ProxyJump and known_hosts all apply, and the remote host
 * needs nothing but sshd.
 *
 * How: `ssh -N -L DIR/monitor.sock:PATH HOST` (OpenSSH's UNIX-socket
 * forwarding, ssh(1) `-L local_socket:remote_socket`), with DIR a private
 * 0700 directory made for this connection; qmpctl connects to the local
 * socket once ssh has created it. Stdio forwarding (`ssh -W PATH`), which
 * would leave nothing on disk, does not serve: OpenSSH 9.2 (Debian 12)
 * accepts `-W /path` but opens no channel for it and waits forever.
 *
 * The ssh process is stopped and DIR removed when the transport closes, when
 * connecting fails or is abandoned (connect timeout, --timeout, SIGINT), and
 * when the process exits (also on SIGTERM, SIGHUP and SIGINT); without a terminal
 * with what ssh started (a ProxyCommand, a wrapper's ssh): ssh then leads a
 * process group of its own, stopped whole (see transport_process.ts). When a
 * ControlMaster serves the connection (ssh_config `ControlMaster`/`ControlPath`), the
 * forwarding lives in the master: it is cancelled there (`ssh -O cancel`),
 * so a long-lived master does not collect listeners. ssh runs with
 * `LogLevel=DEBUG1` only to learn that (its `mux` lines); its other lines are
 * the reason given when it fails.
 *
 * @module
 */
import type { SshAddress } from "./address.ts";
import { abortable, sleep, within } from "./abort.ts";
import { AbortedError, AddressError, ConnectionError } from "./errors.ts";
import { beforeDying, dieOf, ignoredAtStart, othersHandle } from "./fatal_signals.ts";
import { bracketsNoGlobHint } from "./glob.ts";
import { ShellWordsError, splitShellWords } from "./shell_words.ts";
import { loginTurn } from "./ssh_logins.ts";
import { connectSocket } from "./transport_socket.ts";
import type { SocketAddress, Transport, TransportEvents, TransportOptions } from "./transport_types.ts";
import { type Child, type ProcessRuntime, processRuntime } from "./transport_process.ts";

/** The environment variable that replaces the `ssh` command line (split as a shell would; nothing is expanded). */
const SSH_COMMAND_VARIABLE = "QMPCTL_SSH_COMMAND";

/**
 * How long to wait for ssh's reason after the forwarded connection closed before QEMU spoke, when ssh does
 * not say that it is done with the connection's channel (its debug line hidden by a LogLevel of the user's,
 * or a ControlMaster serving the channel).
 */
const REASON_WAIT_MS = 1000;
/**
 * How long a close of the forwarded socket waits to see whether ssh (or the
 * ControlMaster serving it) ended too. QEMU closing its monitor leaves
 * `ssh -N` running; ssh gone means the connection was lost (exit 3, not an
 * event stream's orderly end), or, at a terminal, that ssh took the user's
 * Ctrl-C with qmpctl (exit 130).
 */
const SSH_EXIT_WAIT_MS = 50;
/** How long a refused connection to the freshly bound local socket is retried. */
const REFUSED_RETRY_MS = 1000;
/**
 * How long a stopped ssh has to end on its SIGTERM before SIGKILL. OpenSSH 9.2 misses a SIGTERM that
 * comes as it handles a channel's failure (its handler runs before it enters poll(2), which then waits
 * for up to 5 minutes): just when a try of --wait-socket stops it.
 */
const STOP_GRACE_MS = 1000;
/** Bound on `ssh -O cancel` at close. */
const CANCEL_TIMEOUT_MS = 3000;
/** Bound on `ssh -O check`, asked when a forwarded connection the ControlMaster served closed. */
const MASTER_CHECK_TIMEOUT_MS = 1000;
/** Why a connection through a ControlMaster that ended was lost (QEMU closing its monitor leaves the master). */
const MASTER_ENDED = "the shared ssh connection (ControlMaster) ended";

/** What to stop when the process exits: one entry per live connection. */
const live = new Set<SshForwarding>();
/** Every ssh started and not yet seen to end (one told to stop may still be on its way out). */
const unfinished = new Set<Child>();

/** node:fs, as connectSsh imports it. */
type Fs = typeof import("node:fs");

/**
 * Connect to `address` through ssh. Resolves once the forwarded socket is
 * connected; a remote socket that cannot be opened ends the connection at
 * once with a ConnectionError carrying ssh's reason (reported through
 * `events.close`, before any data).
 * @throws {ConnectionError} with ssh's own reason (unknown host, refused authentication, ...)
 * @throws {AddressError} for a QMPCTL_SSH_COMMAND that does not split, or a path ssh cannot forward
 */
export async function connectSsh(
  address: SshAddress,
  events: TransportEvents,
  options: TransportOptions = {},
): Promise<Transport> {
  const [fs, os, { isatty }, runtime] = await Promise.all([
    import("node:fs"),
    import("node:os"),
    import("node:tty"),
    processRuntime(),
  ]);
  checkForwardable(address);
  const command = sshCommand();
  const host = address.port === undefined ? address.host : `${address.host}:${address.port}`;
  const endTurn = await loginTurn(host, options.signal); // a stock sshd drops logins past its MaxStartups
  try {
    const dir = ForwardingDir.make(address, fs, os);
    const commandLine = new SshCommandLine(command, address, dir.socket);
    const ssh = new SshForwarding(runtime, address, commandLine, dir, isatty(0), options.connectTimeout);
    await ssh.untilReady(options.signal);
    endTurn(); // logged in: sshd counts this connection no more
    return await ssh.connect(events, options.signal);
  } finally {
    endTurn();
  }
}

/** Throw the AddressError for a remote socket path that ssh cannot forward as written. */
function checkForwardable(address: SshAddress): void {
  if (address.path.includes(":")) throw new AddressError(`'${address.text}': ssh cannot forward a path with ':'`);
  // ssh reads its -L option up to the line end: a path with one would be misread (a garbled failure).
  if (/[\n\r]/.test(address.path)) {
    throw new AddressError(`${JSON.stringify(address.text)}: ssh cannot forward a path with a line end`);
  }
  // ssh expands ${NAME} from its own environment in a -L socket path, and has no way to write it literally.
  if (address.path.includes("${")) {
    throw new AddressError(`'${address.text}': ssh would expand the \${...} in its path`);
  }
}

/** The `ConnectionError` that says why connecting to `address` failed. */
function cannotConnect(address: SshAddress, reason: string, cause?: unknown): ConnectionError {
  return new ConnectionError(`cannot connect to ${address.text}: ${reason}`, { cause });
}

/** The private directory (mode 0700) made for one connection, which holds ssh's end of the forwarding. */
class ForwardingDir {
  /** ssh's socket in it: the local end of the forwarding. */
  readonly socket: string;
  readonly #fs: Fs;
  readonly #path: string;

  /** Make one in TMPDIR. */
  static make(address: SshAddress, fs: Fs, os: typeof import("node:os")): ForwardingDir {
    const temp = forwardableTemp(os);
    let path: string;
    try {
      path = fs.mkdtempSync(`${temp}/qmpctl-ssh-`); // mode 0700
    } catch (error) {
      const code = (error as { code?: string }).code ?? (error as Error).message;
      throw cannotConnect(address, `cannot make a directory for ssh's socket in TMPDIR ${temp} (${code})`, error);
    }
    return new ForwardingDir(fs, path);
  }

  private constructor(fs: Fs, path: string) {
    this.#fs = fs;
    this.#path = path;
    this.socket = `${path}/monitor.sock`;
  }

  /** Whether ssh has made its socket. */
  hasSocket(): boolean {
    return this.#fs.existsSync(this.socket);
  }

  /** Call `onChange` as the directory changes (watched with inotify rather than polled, while it can be). */
  watch(onChange: () => void): { close(): void } {
    try {
      return this.#fs.watch(this.#path, onChange);
    } catch { // no inotify instance to be had (ulimit -n, fs.inotify.max_user_instances): looked at instead
      const timer = setInterval(onChange, 50);
      return { close: () => clearInterval(timer) };
    }
  }

  /** Remove ssh's socket and the directory. */
  remove(): void {
    // ssh's socket, then the directory: unlink and rmdir take no descriptor, which a process at its limit
    // (ulimit -n) has none of; anything else left in it (ssh never leaves more) by a recursive remove.
    try {
      this.#fs.rmSync(this.socket, { force: true });
      this.#fs.rmdirSync(this.#path);
    } catch {
      try {
        this.#fs.rmSync(this.#path, { recursive: true, force: true });
      } catch {
        // at the descriptor limit still: an empty directory of ours in TMPDIR is left
      }
    }
  }
}

/** TMPDIR (`/tmp` when it is relative), checked to take a socket path that ssh can forward. */
function forwardableTemp(os: typeof import("node:os")): string {
  // A relative TMPDIR would put ssh's socket under the working directory: qmpctl writes nothing there.
  const temp = os.tmpdir().startsWith("/") ? os.tmpdir() : "/tmp";
  if (temp.includes(":")) throw new AddressError(`TMPDIR '${temp}' holds a ':', which ssh cannot forward`);
  if (temp.includes("${")) throw new AddressError(`TMPDIR '${temp}' holds a '\${', which ssh would expand`);
  // A UNIX socket's path fits sun_path with its NUL (108 bytes on Linux, 104 on macOS and the BSDs);
  // ssh says only "Bad local forwarding specification".
  const maxPathBytes = os.platform() === "linux" ? 107 : 103;
  const socketPathBytes = new TextEncoder().encode(`${temp}/qmpctl-ssh-XXXXXX/monitor.sock`).length;
  if (socketPathBytes > maxPathBytes) {
    throw new AddressError(
      `TMPDIR '${temp}' is too long for ssh's socket in it (${socketPathBytes} bytes with its name; a socket's ` +
        `path takes at most ${maxPathBytes}): set a shorter TMPDIR`,
    );
  }
  return temp;
}

/** The ssh command lines of one connection: the one that forwards, and its requests to a ControlMaster. */
class SshCommandLine {
  readonly #command: string[];
  /** The -L spec, `LOCAL:PATH`. */
  readonly #forward: string;
  /** The options and argument that name the host. */
  readonly #destination: string[];

  constructor(command: string[], address: SshAddress, local: string) {
    this.#command = command;
    this.#forward = `${escapedForSsh(local)}:${escapedForSsh(address.path)}`;
    this.#destination = [
      ...(address.user === undefined ? [] : ["-l", address.user]),
      ...(address.port === undefined ? [] : ["-p", String(address.port)]),
      "--",
      address.host,
    ];
  }

  /** The program run (`ssh`, or the first word of QMPCTL_SSH_COMMAND), for messages. */
  get program(): string {
    return this.#command[0];
  }

  /** `ssh -N ... -L LOCAL:PATH HOST`, which makes the forwarding and holds it. */
  forwarding(interactive: boolean, connectTimeout: number | undefined): string[] {
    return [
      ...this.#command,
      "-N",
      ...["-o", "ExitOnForwardFailure=yes", "-o", "LogLevel=DEBUG1"],
      ...(interactive ? [] : ["-o", "BatchMode=yes"]), // never prompt a script; a person may type a passphrase
      ...(connectTimeout ? ["-o", `ConnectTimeout=${Math.ceil(connectTimeout / 1000)}`] : []),
      ...["-L", this.#forward],
      ...this.#destination,
    ];
  }

  /** `ssh -O cancel -L LOCAL:PATH HOST`: the forwarding cancelled in the ControlMaster that holds it. */
  cancel(): string[] {
    return [...this.#command, "-O", "cancel", "-L", this.#forward, ...this.#destination];
  }

  /** `ssh -O check HOST`: whether a ControlMaster serves the host (exit status 0). */
  check(): string[] {
    return [...this.#command, "-O", "check", ...this.#destination];
  }
}

/** `path` written for an ssh -L spec. */
function escapedForSsh(path: string): string {
  // ssh reads `:` in a -L spec as the separator, `\` as an escape (`v\m.qmp` would be `vm.qmp`),
  // and `%` as the start of a token (`%u`: the local user), written `%%` for itself.
  return path.replaceAll("\\", "\\\\").replaceAll("%", "%%");
}

/** One connection's ssh (its process, stderr and socket directory, released once) and the connection through it. */
class SshForwarding {
  readonly #runtime: ProcessRuntime;
  readonly #address: SshAddress;
  readonly #commandLine: SshCommandLine;
  readonly #dir: ForwardingDir;
  readonly #stderr = new SshStderr();
  readonly #child: Child;
  #released = false;
  /** ssh exited 0 and left its socket: the forwarding is the ControlMaster's, which it forked. */
  #handedOff = false;
  /** QEMU has sent something through the forwarding. */
  #spoke = false;

  /** Start ssh (the directory is removed when it cannot be); it is stopped at exit if not released before. */
  constructor(
    runtime: ProcessRuntime,
    address: SshAddress,
    commandLine: SshCommandLine,
    dir: ForwardingDir,
    interactive: boolean,
    connectTimeout: number | undefined,
  ) {
    this.#runtime = runtime;
    this.#address = address;
    this.#commandLine = commandLine;
    this.#dir = dir;
    const argv = commandLine.forwarding(interactive, connectTimeout);
    let child: Child;
    try {
      // Without a terminal ssh runs in its own session, so only qmpctl sees a SIGINT and decides what it means.
      child = runtime.spawn(argv, { detached: !interactive, stderr: (text) => this.#stderr.push(text) });
    } catch (error) {
      dir.remove();
      if ((error as Error).name === "NotCapable") throw error; // Deno without --allow-run: the CLI names it
      throw this.#cannot(`cannot run ${commandLine.program}: ${(error as Error).message}`);
    }
    this.#child = child;
    unfinished.add(child);
    void child.exited.then(() => unfinished.delete(child));
    live.add(this);
    stopOnExit();
  }

  /** Stop ssh, cancel the forwarding in a ControlMaster that holds it, and remove the directory (once). */
  release(): void {
    if (this.#released) return;
    this.#released = true;
    live.delete(this);
    this.#child.stop(STOP_GRACE_MS);
    if (this.#stderr.multiplexed) this.#runtime.runSync(this.#commandLine.cancel(), CANCEL_TIMEOUT_MS);
    this.#dir.remove();
  }

  /** Wait for ssh's local socket: its reason when it exits first; ssh released when it fails or `signal` aborts. */
  async untilReady(signal: AbortSignal | undefined): Promise<void> {
    // Ready when ssh has created the local socket (after authentication, with
    // the forwarding in place), watched with inotify rather than polled.
    let watcher: { close(): void } | undefined;
    const ready = new Promise<void>((resolve, reject) => {
      const check = () => this.#dir.hasSocket() && resolve();
      watcher = this.#dir.watch(check);
      check();
      this.#child.exited.then((status) => {
        // A ControlPersist first run hands the forwarding to the master it forks, and exits 0.
        this.#handedOff = status === 0 && this.#dir.hasSocket();
        if (this.#handedOff) return;
        const reason = this.#stderr.reason(this.#commandLine.program, status);
        // An sshd that refuses (its host still starting) is, to --wait-socket, a socket not there yet.
        reject(this.#cannot(reason, this.#stderr.saidRefused() ? { code: "ECONNREFUSED" } : undefined));
      });
    });
    try {
      await abortable(ready, signal, `ssh to reach ${this.#address.text}`);
    } catch (error) {
      this.release();
      throw error;
    } finally {
      watcher?.close();
    }
  }

  /** Connect to the local socket: the transport, whose close is reported with ssh's account of it. */
  async connect(events: TransportEvents, signal: AbortSignal | undefined): Promise<Transport> {
    const inner = await connectForwarded({ kind: "unix", path: this.#dir.socket, text: this.#address.text }, {
      data: (chunk) => {
        this.#spoke = true;
        events.data(chunk);
      },
      close: (error) => void this.#whyClosed(error).then((failure) => events.close(failure)),
    }, signal).catch(async (error) => {
      // A reset while connecting: the forwarding took the connection and dropped it before the runtime reported
      // it open (a loaded machine), which is a close before QEMU spoke that came early.
      if ((error.cause as { code?: string } | undefined)?.code === "ECONNRESET") {
        throw await this.#closedBeforeGreeting(error);
      }
      this.release();
      throw error;
    });
    return {
      write: (text) => inner.write(text),
      pause: () => inner.pause(),
      resume: () => inner.resume(),
      close: () => {
        inner.close();
        this.release();
      },
    };
  }

  /** What the forwarded connection's close reports (`closed`: the local socket's own account); ssh released. */
  #whyClosed(closed: Error | undefined): Promise<Error | undefined> {
    if (!this.#spoke) return this.#closedBeforeGreeting(closed);
    // The master serves the forwarding: only it can say whether the connection was lost.
    if (this.#handedOff) return this.#closedThroughMaster(closed);
    return this.#closedAfterGreeting(closed);
  }

  /** What a close before QEMU said anything reports: ssh's reason for it, or `closed`; ssh released. */
  async #closedBeforeGreeting(closed: Error | undefined): Promise<Error | undefined> {
    // Closed before QEMU said anything: ssh could not open the remote socket, and says why on stderr.
    // sshd does not tell missing from refused: either reads as a socket not there yet (--wait-socket).
    // `closed` (the local socket's own account) stands when ssh's words add nothing.
    const { path, host } = this.#address;
    await this.#stderr.failureLine(this.#child.exited, REASON_WAIT_MS);
    this.release();
    // Through a shared connection the master, not this ssh, knows why: say what it may be.
    if (!this.#stderr.saidOpenFailed() && this.#stderr.multiplexed) {
      return this.#cannot(
        `closed before QEMU greeted, through the shared ssh connection (ControlMaster), which does not say ` +
          `why: no socket at ${path} on ${host}, one whose monitor another client holds (its ` +
          `listen queue full), or one that closed at once${bracketsNoGlobHint(path)}`,
        { code: "ECONNREFUSED" },
      );
    }
    // The channel opened, and the remote socket closed it: a close before the greeting, as locally.
    if (!this.#stderr.saidOpenFailed()) return closed;
    // ssh says the same when sshd forbids the forward (AllowStreamLocalForwarding no) or cannot open it
    // (no socket there, or one its login user may not write to), and when the socket's listen queue is
    // full (its monitor held by another client: EAGAIN there).
    const reason = `${this.#stderr.reason(this.#commandLine.program)} (is there a socket at ${path} on ${host}, ` +
      `may the ssh login user write to it, does its sshd allow forwarding to it, and is its monitor free?)` +
      bracketsNoGlobHint(path); // a path is taken as written, as a local one is
    return this.#cannot(reason, { code: "ECONNREFUSED" });
  }

  /** A close after QEMU spoke, through this ssh: the connection lost when ssh ended too, else `closed`. */
  async #closedAfterGreeting(closed: Error | undefined): Promise<Error | undefined> {
    const status = await within(this.#child.exited, SSH_EXIT_WAIT_MS);
    const failure = status === undefined // ssh still runs
      ? closed
      : this.#stderr.saidInterrupted()
      ? new AbortedError(`interrupted: ${this.#commandLine.program} to ${this.#address.host} got the Ctrl-C`)
      : new ConnectionError(
        `lost the connection to ${this.#address.text}: ${this.#stderr.reason(this.#commandLine.program, status)}`,
      );
    this.release();
    return failure;
  }

  /** A close after QEMU spoke, through a ControlMaster: the connection lost when the master ended, else `closed`. */
  async #closedThroughMaster(closed: Error | undefined): Promise<Error | undefined> {
    const gone = await this.#masterGone();
    this.release();
    return gone ? new ConnectionError(`lost the connection to ${this.#address.text}: ${MASTER_ENDED}`) : closed;
  }

  /** Whether the ControlMaster has ended. */
  async #masterGone(): Promise<boolean> {
    // The master's end closes the forwarded connections it served: asked once it has had time to go.
    await new Promise((resolve) => setTimeout(resolve, SSH_EXIT_WAIT_MS));
    return this.#runtime.runSync(this.#commandLine.check(), MASTER_CHECK_TIMEOUT_MS) !== 0;
  }

  /** The `ConnectionError` that says why connecting failed. */
  #cannot(reason: string, cause?: unknown): ConnectionError {
    return cannotConnect(this.#address, reason, cause);
  }
}

/**
 * Connect to the local end of the forwarding. ssh (or its ControlMaster)
 * binds the socket, then listens: a connection that comes between the two
 * is refused, and one that comes while ssh is slow to accept finds the
 * listen queue full, so both are retried for a moment (bounded by `signal`
 * and REFUSED_RETRY_MS).
 */
async function connectForwarded(
  address: SocketAddress,
  events: TransportEvents,
  signal: AbortSignal | undefined,
): Promise<Transport> {
  const deadline = performance.now() + REFUSED_RETRY_MS;
  for (;;) {
    try {
      return await connectSocket(address, events);
    } catch (error) {
      // EAGAIN: the listen queue is full (ssh is slow to accept on a loaded machine): as passing as a refusal.
      const code = (error as { cause?: { code?: string } }).cause?.code;
      if (!(code === "ECONNREFUSED" || code === "EAGAIN") || performance.now() > deadline) throw error;
      await sleep(5, signal, `ssh to listen for ${address.text}`);
    }
  }
}

/** `$QMPCTL_SSH_COMMAND` split into words, or `ssh`. */
function sshCommand(): string[] {
  const text = process.env[SSH_COMMAND_VARIABLE];
  if (text === undefined || text.trim() === "") return ["ssh"];
  try {
    return splitShellWords(text);
  } catch (error) {
    if (error instanceof ShellWordsError) throw new AddressError(`${SSH_COMMAND_VARIABLE}: ${error.message}`);
    throw error;
  }
}

let stopping = false;

/**
 * Stop every ssh when the process exits, and on SIGTERM/SIGHUP/SIGINT before dying
 * of them. A program that handles those signals itself does not die of them:
 * its ssh connections are left to it (to close, or to its exit; and when it
 * dies of one through `dieOf`, as qmpctl's commands do, they are stopped then).
 */
function stopOnExit(): void {
  if (stopping) return;
  stopping = true;
  const stopAll = () => {
    for (const forwarding of [...live]) {
      try {
        forwarding.release();
      } catch {
        // (its `ssh -O cancel` could not run): the others are stopped all the same, and its ssh below
      }
    }
    // Nothing of qmpctl runs after this to see that a SIGTERM-ed ssh really ended (one a try of --wait-socket
    // stopped may have missed it: STOP_GRACE_MS): leave none behind.
    for (const child of unfinished) child.kill("SIGKILL");
  };
  process.on("exit", stopAll);
  beforeDying(stopAll); // a death by a signal runs no "exit" listener
  // SIGINT too: a program's Ctrl-C does not reach an ssh in a session of its own (no terminal), nor does a
  // supervisor's kill -INT; qmpctl's commands handle it themselves.
  for (const signal of ["SIGTERM", "SIGHUP", "SIGINT"] as const) {
    if (ignoredAtStart(signal)) continue; // nohup: stays ignored, as without this handler
    const onSignal = () => {
      if (othersHandle(signal, onSignal)) return; // the program's own handler decides: not this one's call
      dieOf(signal); // every ssh stopped first (beforeDying), then as without this handler (as PID 1 too)
    };
    process.on(signal, onSignal);
  }
}

/**
 * ssh's words for a connection sshd closed before its handshake (MaxStartups, or a host going down);
 * OpenSSH before 8.2 says ssh_exchange_identification.
 */
const DROPPED =
  /^(?:kex|ssh)_exchange_identification: (?:read: Connection reset by peer|Connection closed by remote host)/;
const DROPPED_HINT = "(sshd drops connections past its MaxStartups when many open at once: share one with " +
  "ControlMaster, or try again)";

/** ssh's stderr: its debug lines tell whether a ControlMaster serves; the others are its reasons. */
class SshStderr {
  /** A ControlMaster holds (or may hold) the forwarding. */
  multiplexed = false;
  #partial = "";
  /** ssh's last lines; a long warning's first line (its headline) is kept in #first. */
  readonly #lines: string[] = [];
  #first?: string;
  #count = 0;
  #channelFreed = false;
  #onLine?: () => void;

  push(text: string): void {
    const lines = (this.#partial + text).split("\n");
    this.#partial = lines.pop()!;
    for (const raw of lines) {
      // A warning's box ("@@@@", "@ WARNING: ... @") is read without its frame.
      const line = raw.replace(/\r$/, "").replace(/^@+|@+$/g, "").trim();
      if (line.startsWith("debug")) {
        if (/\bmux\b|auto-mux|mux_client/.test(line)) this.multiplexed = true;
        // `debug1: channel 1: free: direct-streamlocal@openssh.com: ...`: ssh is done with the forwarded
        // connection, after saying why it failed if it did (channels.c: the failure, then channel_free).
        if (/^debug\d: channel \d+: free: direct-streamlocal/.test(line)) {
          this.#channelFreed = true;
          this.#onLine?.();
        }
      } else if (
        line !== "" && !/^(Warning: Permanently added|Authenticated to |Transferred: |Bytes per second: )/.test(line)
      ) {
        this.#add(line);
        this.#onLine?.();
      }
    }
  }

  #add(line: string): void {
    this.#first ??= line;
    this.#count++;
    this.#lines.push(line);
    if (this.#lines.length > 4) this.#lines.shift();
  }

  /**
   * Settles when a line that says what failed has come, ssh has said it is done with the forwarded
   * connection's channel (nothing more will be said of it), ssh has exited, or `ms` have passed. Not the
   * channel's end through a ControlMaster: the master's lines, of any run's channels, may come here.
   */
  failureLine(exited: Promise<unknown>, ms: number): Promise<void> {
    const told = () => (this.#channelFreed && !this.multiplexed) || this.#lines.some((l) => /failed/i.test(l));
    if (told()) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      const done = () => {
        clearTimeout(timer);
        resolve();
      };
      this.#onLine = () => told() && done();
      exited.then(done);
    });
  }

  /** Whether ssh said it was ended by SIGINT (it shares a terminal's Ctrl-C with qmpctl). */
  saidInterrupted(): boolean {
    return this.#lines.some((l) => l === "Killed by signal 2.") || this.#partial.trim() === "Killed by signal 2.";
  }

  /**
   * Whether ssh said that the host refused its connection (`ssh: connect to host H port 22: Connection
   * refused`), or that sshd dropped it before the handshake (`kex_exchange_identification: ...`), as it drops
   * those past its MaxStartups while many open at once: both may be let in on a later try.
   */
  saidRefused(): boolean {
    return this.#lines.some((l) => /^ssh: connect to host .*: Connection refused$/.test(l) || DROPPED.test(l));
  }

  /** Whether ssh said that it could not open the channel to the remote socket. */
  saidOpenFailed(): boolean {
    return this.#lines.some((l) => /open failed/i.test(l)) || /open failed/i.test(this.#partial);
  }

  /** ssh's own words, or its exit status when it said nothing. */
  reason(program: string, status?: number | null): string {
    if (this.#partial.trim() !== "" && !this.#partial.startsWith("debug")) this.#add(this.#partial.trim());
    this.#partial = "";
    // A long warning (a changed host key): its headline, then its last two lines, which say what failed.
    if (this.#count > this.#lines.length) return [this.#first, ...this.#lines.slice(-2)].join("; ");
    // Only when that is ssh's first word: after another (a ProxyCommand that failed), it is no sshd's doing.
    if (DROPPED.test(this.#lines[0] ?? "")) return `${this.#lines.join("; ")} ${DROPPED_HINT}`;
    if (this.#lines.length > 0) return this.#lines.join("; ");
    return status === undefined || status === null
      ? `${program} ended the connection`
      : `${program} exited with status ${status}`;
  }
}
