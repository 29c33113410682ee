/**
 * A scripted QMP server on a temporary UNIX socket, for what QEMU will not do
 * on demand: garbage, silence, disconnects mid-line, floods, huge replies.
 * Each connection runs `script` with a handle to read requests and send bytes.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const QEMU_GREETING = {
  QMP: { version: { qemu: { micro: 0, minor: 2, major: 7 }, package: "" }, capabilities: ["oob"] },
};

export interface FakeConnection {
  /** Send raw text or bytes as they are. */
  send(data: string | Uint8Array): void;
  /** Send one JSON message followed by CRLF, as QEMU does. */
  sendJson(message: unknown): void;
  /** The next request the client sent, parsed. */
  nextRequest(): Promise<Record<string, unknown>>;
  /** Send QEMU's greeting, then answer qmp_capabilities with {"return":{}}. */
  handshake(greeting?: unknown): Promise<void>;
  /** Reply to `request` with {"return": value} and its id. */
  reply(request: Record<string, unknown>, value: unknown): void;
  close(): void;
  /** Resolves when the client closes its end. */
  closed: Promise<void>;
}

export interface FakeServer {
  path: string;
  /** Every request received, in order, across connections. */
  requests: Record<string, unknown>[];
  stop(): void;
}

export function fakeServer(script: (connection: FakeConnection) => Promise<void> | void): FakeServer {
  const dir = mkdtempSync(join(tmpdir(), "qmpctl-fake-"));
  const path = join(dir, "fake.sock");
  const requests: Record<string, unknown>[] = [];
  type State = {
    buffer: string;
    waiting: ((r: Record<string, unknown>) => void)[];
    queued: Record<string, unknown>[];
    onClose: () => void;
  };
  const listener = Bun.listen<State>({
    unix: path,
    socket: {
      open(socket) {
        let onClose = () => {};
        const closed = new Promise<void>((resolve) => (onClose = resolve));
        socket.data = { buffer: "", waiting: [], queued: [], onClose };
        const connection: FakeConnection = {
          send: (data) => void socket.write(data),
          sendJson: (message) => void socket.write(JSON.stringify(message) + "\r\n"),
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
          close: () => socket.end(),
          closed,
        };
        void Promise.resolve(script(connection)).catch(() => socket.end());
      },
      data(socket, chunk) {
        const state = socket.data;
        state.buffer += chunk.toString();
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
      close(socket) {
        socket.data?.onClose();
      },
    },
  });
  return {
    path,
    requests,
    stop() {
      listener.stop(true);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
