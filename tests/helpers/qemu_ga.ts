/**
 * A real guest agent for tests: Debian's qemu-ga as a child of the test (not
 * daemonised, so stopping it is killing it). Its commands act on this
 * machine: `ga exec` runs host programs. Two channels:
 *
 * - "unix-listen": qemu-ga serves the socket itself (`-m unix-listen`). It
 *   quits when a client resets the connection (leaves with replies unread).
 * - "serial": as in a VM, where the agent reads a serial port that outlives
 *   the clients of QEMU's chardev socket. qemu-ga reads a pty
 *   (`-m isa-serial`) whose other end socat connects to a small relay here;
 *   the relay serves the socket to one client after another and keeps what
 *   the agent writes while no client is connected for the next one, as the
 *   port does: stale replies, and half a request, reach the next client.
 *
 * Also a scripted fake agent, for what qemu-ga will not do on demand
 * (silence, garbage before the sync).
 */
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { QMPCTL } from "./cli.ts";

export interface TestAgent {
  dir: string;
  socket: string;
  process: ReturnType<typeof Bun.spawn>;
  stop(): Promise<void>;
}

export type AgentChannel = "unix-listen" | "serial";

/** A fresh directory for an agent's socket, state and files. */
export function agentDir(): string {
  return mkdtempSync(join(tmpdir(), "qmpctl-ga-"));
}

/**
 * Start qemu-ga reached at `dir`/ga.sock; resolves once the agent answers a
 * sync there. `dir` is removed by stop() when this call made it.
 */
export async function startAgent(
  dir?: string,
  channel: AgentChannel = "unix-listen",
  extraArgs: string[] = [],
): Promise<TestAgent> {
  const own = dir === undefined;
  const where = dir ?? agentDir();
  const socket = join(where, "ga.sock");
  const serial = channel === "serial" ? await startSerialChannel(where, socket) : undefined;
  const [mode, path] = serial ? ["isa-serial", serial.tty] : ["unix-listen", socket];
  const agent = Bun.spawn(
    ["qemu-ga", "-m", mode, "-p", path, "-t", where, "-f", join(where, "qemu-ga.pid"), ...extraArgs],
    { stdin: "ignore", stdout: "ignore", stderr: "pipe" },
  );
  const stop = async () => {
    agent.kill("SIGKILL");
    await agent.exited;
    await serial?.stop();
    if (own) rmSync(where, { recursive: true, force: true });
  };
  const deadline = performance.now() + 10_000;
  while (!(existsSync(socket) && await answers(socket))) {
    if (agent.exitCode !== null || performance.now() > deadline) {
      const stderr = await new Response(agent.stderr).text();
      await stop();
      throw new Error(`qemu-ga did not start: ${stderr}`);
    }
    await Bun.sleep(10);
  }
  return { dir: where, socket, process: agent, stop };
}

/** The pty that qemu-ga reads, and the relay that serves `socket` from it (see the top of this file). */
async function startSerialChannel(dir: string, socket: string) {
  const tty = join(dir, "ga.tty");
  const relay = join(dir, "relay.sock");
  let port: { write(data: Uint8Array): void } | undefined;
  let portReady = () => {};
  const portConnected = new Promise<void>((resolve) => (portReady = resolve));
  let client: { write(data: Uint8Array): number; end(): void } | undefined;
  const held: Uint8Array[] = []; // what the agent wrote while no client was connected
  const portSide = Bun.listen({
    unix: relay,
    socket: {
      open(socket) {
        port = { write: (data) => void socket.write(data) };
        portReady();
      },
      data(_socket, chunk) {
        if (client) client.write(chunk);
        else held.push(chunk.slice());
      },
    },
  });
  const clientSide = Bun.listen({
    unix: socket,
    socket: {
      open(socket) {
        client?.end(); // one client at a time: the newest
        client = socket;
        for (const chunk of held.splice(0)) socket.write(chunk);
      },
      data: (_socket, chunk) => port?.write(chunk.slice()),
      close(socket) {
        if (client === socket) client = undefined;
      },
    },
  });
  const socat = Bun.spawn(["socat", `PTY,link=${tty},rawer`, `UNIX-CONNECT:${relay}`], {
    stdin: "ignore",
    stdout: "ignore",
    stderr: "ignore",
  });
  await Promise.race([portConnected, Bun.sleep(10_000)]);
  return {
    tty,
    async stop() {
      socat.kill("SIGKILL");
      await socat.exited;
      clientSide.stop(true);
      portSide.stop(true);
    },
  };
}

/** Whether the agent at `path` answers guest-sync-delimited within 200 ms (its reply read whole, so it sees a clean close). */
async function answers(path: string): Promise<boolean> {
  let answered = () => {};
  const reply = new Promise<void>((resolve) => (answered = resolve));
  let text = "";
  try {
    const socket = await Bun.connect({
      unix: path,
      socket: {
        data(_socket, chunk) {
          text += new TextDecoder().decode(chunk);
          if (text.includes('{"return": 7}')) answered();
        },
      },
    });
    socket.write(new Uint8Array([0xff]));
    socket.write('{"execute":"guest-sync-delimited","arguments":{"id":7}}\n');
    const ok = await Promise.race([reply.then(() => true), Bun.sleep(200).then(() => false)]);
    socket.end();
    return ok;
  } catch {
    return false;
  }
}

/** What a fake agent's script sees: each request (0xFF bytes removed), and a way to send bytes. */
export interface FakeAgentConnection {
  send(data: string | Uint8Array): void;
  close(): void;
}

/** Answer a guest-sync-delimited as qemu-ga does (0xFF, then its id); whether `request` was one. */
export function answerSync(request: Record<string, unknown>, connection: FakeAgentConnection): boolean {
  if (request.execute !== "guest-sync-delimited") return false;
  connection.send(new Uint8Array([0xff]));
  connection.send(`{"return": ${(request.arguments as { id: number }).id}}\n`);
  return true;
}

export interface FakeAgent {
  path: string;
  stop(): void;
}

/** A scripted agent on a temporary socket: `onRequest` runs for each request line. */
export function fakeAgent(
  onRequest: (request: Record<string, unknown>, connection: FakeAgentConnection) => void,
): FakeAgent {
  const dir = agentDir();
  const path = join(dir, "fake-ga.sock");
  const listener = Bun.listen<{ buffer: string }>({
    unix: path,
    socket: {
      open(socket) {
        socket.data = { buffer: "" };
      },
      data(socket, chunk) {
        const connection = { send: (data: string | Uint8Array) => void socket.write(data), close: () => socket.end() };
        socket.data.buffer += new TextDecoder().decode(chunk.filter((byte) => byte !== 0xff));
        let newline;
        while ((newline = socket.data.buffer.indexOf("\n")) >= 0) {
          const line = socket.data.buffer.slice(0, newline).trim();
          socket.data.buffer = socket.data.buffer.slice(newline + 1);
          if (line) onRequest(JSON.parse(line), connection);
        }
      },
    },
  });
  return {
    path,
    stop() {
      listener.stop(true);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface BytesResult {
  code: number;
  stdout: Uint8Array;
  stderr: Uint8Array;
  ms: number;
}

/** Run qmpctl and keep its output as bytes (a guest program's output is binary). */
export async function qmpctlBytes(
  args: string[],
  options: { stdin?: Uint8Array<ArrayBuffer>; killAfterMs?: number } = {},
): Promise<BytesResult> {
  const started = performance.now();
  const env = { ...process.env, QMPCTL_SOCKET: undefined, QMPCTL_GA_SOCKET: undefined };
  const child = Bun.spawn([QMPCTL, ...args], {
    stdin: options.stdin === undefined ? "ignore" : new Blob([options.stdin]),
    stdout: "pipe",
    stderr: "pipe",
    env,
  });
  const killer = setTimeout(() => child.kill("SIGKILL"), options.killAfterMs ?? 20_000);
  const [stdout, stderr, code] = await Promise.all([
    new Response(child.stdout).bytes(),
    new Response(child.stderr).bytes(),
    child.exited,
  ]);
  clearTimeout(killer);
  return { code, stdout, stderr, ms: performance.now() - started };
}
