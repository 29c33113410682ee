/**
 * A throwaway QEMU for tests: `-machine none` (or `pc -S`), no guest, with a
 * QMP monitor for qmpctl and a second one for the test to drive QEMU (a
 * monitor serves one client at a time; events go to every monitor).
 */
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { QmpClient } from "../../lib/client.ts";
import { connectWhenReady } from "../../lib/connect_ready.ts";

export interface QemuOptions {
  /** "none" (default, starts in ~50 ms) or "pc" (started paused with -S). */
  machine?: "none" | "pc";
  /** Also listen on TCP (IPv4 loopback), IPv6 loopback, and/or a pretty=on monitor. */
  tcp?: boolean;
  tcp6?: boolean;
  pretty?: boolean;
  extraArgs?: string[];
}

export interface TestQemu {
  dir: string;
  /** The monitor for the code under test. */
  socket: string;
  /** A connected client on the second monitor, for the test itself. */
  control: Awaited<ReturnType<typeof connectWhenReady>>;
  tcpPort?: number;
  tcp6Port?: number;
  /** A pretty=on monitor (UNIX socket path). */
  prettySocket?: string;
  process: ReturnType<typeof Bun.spawn>;
  stop(): Promise<void>;
}

/** A free TCP port on the loopback address `host`. */
export function freePort(host = "127.0.0.1"): number {
  const listener = Bun.listen({ hostname: host, port: 0, socket: { data() {} } });
  const port = listener.port;
  listener.stop(true);
  return port;
}

/**
 * Start a test QEMU. One that does not negotiate within the bound (twice in
 * full test runs, among sixteen started at once, one greeted and never
 * answered qmp_capabilities in 30 s; never in 400 such starts outside them,
 * and not explained) is replaced, at most twice, each time saying so on
 * stderr with what crossed its control monitor.
 */
export async function startQemu(options: QemuOptions = {}): Promise<TestQemu> {
  for (let attempt = 1;; attempt++) {
    const wire: string[] = [];
    try {
      return await startQemuOnce(options, (direction, json) => wire.push(`${direction} ${json}`));
    } catch (error) {
      // Any failed start is retried, and said: a CI run once lost a whole file to one that failed in 41 ms,
      // its cause not shown. A QEMU that cannot start at all fails all three alike.
      if (attempt === 3) throw error;
      const cause = (error as { cause?: { code?: string } }).cause?.code;
      let reason = error instanceof Error ? `${error.constructor.name}: ${error.message}` : String(error);
      if (cause) reason += ` (${cause})`;
      console.warn(`startQemu: attempt ${attempt}: ${reason}; its control monitor: ${wire.join(" | ")}`);
    }
  }
}

async function startQemuOnce(
  options: QemuOptions,
  log: (direction: "send" | "receive", json: string) => void,
): Promise<TestQemu> {
  const dir = mkdtempSync(join(tmpdir(), "qmpctl-test-"));
  const socket = join(dir, "qmp.sock");
  const controlSocket = join(dir, "control.sock");
  const args = [
    "qemu-system-x86_64",
    "-nodefaults",
    "-display",
    "none",
    "-qmp",
    `unix:${socket},server=on,wait=off`,
    "-qmp",
    `unix:${controlSocket},server=on,wait=off`,
  ];
  args.push(...(options.machine === "pc" ? ["-machine", "pc", "-S", "-m", "32"] : ["-machine", "none"]));
  let tcpPort: number | undefined, tcp6Port: number | undefined, prettySocket: string | undefined;
  if (options.tcp) {
    tcpPort = freePort();
    args.push("-qmp", `tcp:127.0.0.1:${tcpPort},server=on,wait=off`);
  }
  if (options.tcp6) {
    tcp6Port = freePort("::1");
    args.push(
      "-chardev",
      `socket,id=m6,host=::1,port=${tcp6Port},ipv6=on,server=on,wait=off`,
      "-mon",
      "chardev=m6,mode=control",
    );
  }
  if (options.pretty) {
    prettySocket = join(dir, "pretty.sock");
    args.push(
      "-chardev",
      `socket,id=mp,path=${prettySocket},server=on,wait=off`,
      "-mon",
      "chardev=mp,mode=control,pretty=on",
    );
  }
  args.push(...(options.extraArgs ?? []));
  const qemu = Bun.spawn(args, { stdout: "ignore", stderr: "pipe" });
  const deadline = performance.now() + 30_000; // a loaded machine: many QEMUs may start at once
  while (!(existsSync(socket) && existsSync(controlSocket))) {
    if (qemu.exitCode !== null || performance.now() > deadline) {
      // How it ended, for a QEMU killed by a signal says nothing on stderr.
      const ended = qemu.exitCode === null
        ? "no sockets after 30 s"
        : `exit ${qemu.exitCode}${qemu.signalCode ? ` (${qemu.signalCode})` : ""}`;
      qemu.kill("SIGKILL"); // its stderr ends only when it does
      const stderr = await new Response(qemu.stderr).text();
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`QEMU did not start (${ended}): ${stderr.trim()}`);
    }
    await Bun.sleep(10);
  }
  // The socket file exists a moment before QEMU listens on it (refused until then). A generous bound:
  // many QEMUs may start at once on a loaded 2-core CI machine.
  const control = await connectWhenReady(controlSocket, { connectTimeout: 10_000, waitMs: 10_000, log }).catch(
    async (error) => { // no QEMU left behind when it never answers
      qemu.kill("SIGKILL");
      await qemu.exited;
      rmSync(dir, { recursive: true, force: true });
      throw error;
    },
  );
  return {
    dir,
    socket,
    control,
    tcpPort,
    tcp6Port,
    prettySocket,
    process: qemu,
    async stop() {
      await control.close();
      qemu.kill("SIGKILL");
      await qemu.exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** QEMU serves one client per monitor: wait until it has seen the last client of `socket` go. */
export async function waitForMonitorFree(socket: string): Promise<void> {
  const probe = await QmpClient.connect(socket, { connectTimeout: 5000 });
  await probe.close();
}
