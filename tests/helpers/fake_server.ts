/**
 * A scripted QMP server on a temporary UNIX socket, for what QEMU will not do
 * on demand: garbage, silence, disconnects mid-line, floods, huge replies.
 * Each connection runs `script` with a handle to read requests and send bytes.
 */
import { afterEach } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const QEMU_GREETING = {
  QMP: { version: { qemu: { micro: 0, minor: 2, major: 7 }, package: "" }, capabilities: ["oob"] },
};

export interface FakeConnection {
  /** Send raw text or bytes as they are (queued in order; a large send waits for the client to read). */
  send(data: string | Uint8Array): void;
  /** Send one byte per write, pausing between writes, so the client reads them one by one. */
  sendSlowly(data: string | Uint8Array): Promise<void>;
  /** Send one JSON message followed by CRLF, as QEMU does. */
  sendJson(message: unknown): void;
  /** The next request the client sent, parsed. */
  nextRequest(): Promise<Record<string, unknown>>;
  /** Send QEMU's greeting, then answer qmp_capabilities with {"return":{}}. */
  handshake(greeting?: unknown): Promise<void>;
  /** Reply to `request` with {"return": value} and its id. */
  reply(request: Record<string, unknown>, value: unknown): void;
  /** Close once everything sent so far has been written. */
  close(): void;
  /** Resolves when the client closes its end. */
  closed: Promise<void>;
}

export interface FakeServer {
  path: string;
  /** Every request received, in order, across connections. */
  requests: Record<string, unknown>[];
  /** How many clients connected. */
  readonly connections: number;
  stop(): void;
}

export function fakeServer(script: (connection: FakeConnection) => Promise<void> | void): FakeServer {
  const dir = mkdtempSync(join(tmpdir(), "qmpctl-fake-"));
  const path = join(dir, "fake.sock");
  const requests: Record<string, unknown>[] = [];
  let connections = 0;
  const encoder = new TextEncoder();
  type State = {
    decoder: TextDecoder;
    buffer: string;
    waiting: ((r: Record<string, unknown>) => void)[];
    queued: Record<string, unknown>[];
    onClose: () => void;
    /** Write what is queued; Bun's socket.write takes only what the kernel accepts now. */
    flush: () => void;
  };
  const listener = Bun.listen<State>({
    unix: path,
    socket: {
      open(socket) {
        connections++;
        let onClose = () => {};
        const closed = new Promise<void>((resolve) => (onClose = resolve));
        const unsent: Uint8Array[] = [];
        let ending = false;
        const flush = () => {
          while (unsent.length > 0) {
            const written = socket.write(unsent[0]);
            if (written < unsent[0].length) {
              unsent[0] = unsent[0].subarray(Math.max(written, 0));
              return; // the rest goes on `drain`
            }
            unsent.shift();
          }
          if (ending) socket.end();
        };
        socket.data = { decoder: new TextDecoder(), buffer: "", waiting: [], queued: [], onClose, flush };
        const connection: FakeConnection = {
          send(data) {
            unsent.push(typeof data === "string" ? encoder.encode(data) : data);
            if (unsent.length === 1) flush();
          },
          async sendSlowly(data) {
            for (const byte of typeof data === "string" ? encoder.encode(data) : data) {
              connection.send(Uint8Array.of(byte));
              await Bun.sleep(1);
            }
          },
          sendJson: (message) => connection.send(JSON.stringify(message) + "\r\n"),
          nextRequest: () =>
            socket.data.queued.length > 0
              ? Promise.resolve(socket.data.queued.shift()!)
              : new Promise((resolve) => socket.data.waiting.push(resolve)),
          async handshake(greeting = QEMU_GREETING) {
            connection.sendJson(greeting);
            const request = await connection.nextRequest();
            connection.reply(request, {});
          },
          reply: (request, value) => connection.sendJson({ return: value, id: request.id }),
          close() {
            ending = true;
            flush();
          },
          closed,
        };
        void Promise.resolve(script(connection)).catch(() => socket.end());
      },
      data(socket, chunk) {
        const state = socket.data;
        state.buffer += state.decoder.decode(chunk, { stream: true });
        let newline;
        while ((newline = state.buffer.indexOf("\n")) >= 0) {
          const line = state.buffer.slice(0, newline).trim();
          state.buffer = state.buffer.slice(newline + 1);
          if (!line) continue;
          const request = JSON.parse(line);
          requests.push(request);
          const waiter = state.waiting.shift();
          if (waiter) waiter(request);
          else state.queued.push(request);
        }
      },
      drain(socket) {
        socket.data.flush();
      },
      close(socket) {
        socket.data?.onClose();
      },
    },
  });
  return {
    path,
    requests,
    get connections() {
      return connections;
    },
    stop() {
      listener.stop(true);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * The `serve` of one test file: each server it starts is stopped after the
 * test that started it (call once, at the file's top level).
 */
export function fakeServers(): (script: (connection: FakeConnection) => Promise<void> | void) => FakeServer {
  const servers: FakeServer[] = [];
  afterEach(() => {
    for (const server of servers.splice(0)) server.stop();
  });
  return (script) => {
    const server = fakeServer(script);
    servers.push(server);
    return server;
  };
}
