/**
 * How launch mode starts QEMU with a monitor the proxy owns from the first
 * instant: the proxy listens on a socket in a private (0700) directory and
 * QEMU connects to it as a client (`-chardev socket,server=off`), which QEMU
 * does while it creates its chardevs, before the machine exists and before
 * any event. A socket path rather than a passed descriptor, because neither
 * Bun nor Deno can create the socket pair that passing one would need; the
 * private directory keeps other users from connecting first.
 *
 * @module
 */
import { ConnectionError } from "../lib/errors.ts";
import type { ProxyOptions } from "../lib/proxy/proxy.ts";
import { Upstream } from "../lib/proxy/upstream.ts";
import type { AcceptedTransport } from "../lib/transport.ts";
import { listenTransport } from "../lib/transport_listen.ts";
import { PROGRAM } from "./exit_status.ts";
import { makePrivateDir, removeDir } from "./io/files.ts";
import { type PassthroughChild, scriptInterpreter, spawnPassthrough } from "./io/process.ts";
import { UsageError } from "./options.ts";
import { notice } from "./proxy_stop.ts";

/**
 * Refuse -daemonize: QEMU's launcher would exit at once and leave QEMU with a
 * monitor whose other end is gone with the proxy.
 */
export function refuseDaemonize(command: string[]): void {
  const daemonize = command.find((word) => word === "-daemonize" || word === "--daemonize");
  if (daemonize) {
    throw new UsageError(
      `proxy runs QEMU as its child: leave out ${daemonize} (run the proxy in the background instead)`,
    );
  }
}

/** The socket a launched QEMU connects its monitor to, in a private directory, and the one connection it takes. */
export interface MonitorSocket {
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
export async function listenForMonitor(wire: ProxyOptions["wire"]): Promise<MonitorSocket> {
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
export function spawnWithMonitor(command: string[], monitorPath: string): Promise<PassthroughChild> {
  return spawnPassthrough([
    ...command,
    "-chardev",
    `socket,id=qmpctl-proxy,path=${chardevPath(monitorPath)},server=off`,
    "-mon",
    "chardev=qmpctl-proxy,mode=control",
  ]);
}

/** `path` as the monitor's -chardev option names it: QEMU's options escape ',' as ',,'. */
export function chardevPath(path: string): string {
  return path.replaceAll(",", ",,");
}

/** Why `program` could not be started, in qmpctl's words; the exit status env(1) gives (127 not found, else 126). */
export async function cannotStart(program: string, error: unknown): Promise<number> {
  if ((error as Error).name === "NotCapable") throw error; // Deno without --allow-run: a usage error, saying so
  const code = (error as { code?: string }).code;
  // As bash says it: the script is there, its interpreter is not (ENOENT names either).
  const interpreter = code === "ENOENT" ? await scriptInterpreter(program) : undefined;
  if (interpreter) {
    notice(`cannot start ${program}: its interpreter ${interpreter} was not found (bad interpreter)`);
    return PROGRAM.NOT_FOUND;
  }
  const { fileErrorWords } = await import("./file_errors.ts"); // "no such file or directory (ENOENT)"
  notice(`cannot start ${program}: ${fileErrorWords(error) ?? (error as Error).message}`);
  return code === "ENOENT" ? PROGRAM.NOT_FOUND : PROGRAM.NOT_RUNNABLE;
}
