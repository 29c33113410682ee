/**
 * A QMP server that floods its client with events as fast as the kernel takes
 * them, and counts the bytes the kernel took: a test of backpressure reads
 * that count to see whether the client stopped reading.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { QEMU_GREETING } from "./fake_server.ts";

/** The i-th event of a flood. */
export const floodEvent = (i: number) => ({ timestamp: { seconds: i, microseconds: 0 }, event: "STOP", data: { i } });

export interface FloodServer {
  path: string;
  /** Bytes the kernel has taken from the server so far. */
  readonly accepted: number;
  /** Bytes still waiting in the server, not yet taken by the kernel. */
  readonly backlog: number;
  stop(): void;
}

/**
 * 200 ms after negotiation (time for the client to subscribe), send `total`
 * events (`floodEvent(i)`, one line each). Any other command is answered
 * with `{"return": "after the events"}`, after the flood when it came before,
 * else behind whatever is still unsent (QEMU's output is one queue);
 * query-qmp-schema and query-target are answered at once with
 * CommandNotFound, as by a QEMU before 2.5.
 */
export function floodServer(total: number): FloodServer {
  const dir = mkdtempSync(join(tmpdir(), "qmpctl-flood-"));
  const path = join(dir, "flood.sock");
  const encoder = new TextEncoder();
  const encode = (message: unknown) => encoder.encode(JSON.stringify(message) + "\r\n");
  let accepted = 0, negotiated = false, flooded = false, buffer = "";
  const queue: Uint8Array[] = [];
  const early: Uint8Array[] = []; // replies to commands that came before the flood: sent after it
  const flush = (socket: Bun.Socket<undefined>) => {
    while (queue.length > 0) {
      const written = Math.max(socket.write(queue[0]), 0);
      accepted += written;
      if (written < queue[0].length) {
        queue[0] = queue[0].subarray(written);
        return;
      }
      queue.shift();
    }
  };
  const listener = Bun.listen<undefined>({
    unix: path,
    socket: {
      open(socket) {
        queue.push(encode(QEMU_GREETING));
        flush(socket);
      },
      data(socket, chunk) {
        buffer += chunk.toString();
        const lines = buffer.split("\n");
        buffer = lines.pop()!;
        for (const request of lines.filter((l) => l.trim()).map((l) => JSON.parse(l))) {
          if (!negotiated) {
            negotiated = true;
            queue.push(encode({ return: {}, id: request.id }));
            setTimeout(() => {
              for (let i = 0; i < total; i++) queue.push(encode(floodEvent(i)));
              queue.push(...early);
              flooded = true;
              flush(socket);
            }, 200);
          } else if (request.execute === "query-qmp-schema" || request.execute === "query-target") {
            // At once, ahead of the flood (after the part of it being written).
            const answer = encode({ error: { class: "CommandNotFound", desc: "not in this server" }, id: request.id });
            queue.splice(queue.length > 0 ? 1 : 0, 0, answer);
          } else {
            (flooded ? queue : early).push(encode({ return: "after the events", id: request.id }));
          }
        }
        flush(socket);
      },
      drain: flush,
    },
  });
  return {
    path,
    get accepted() {
      return accepted;
    },
    get backlog() {
      return queue.reduce((n, bytes) => n + bytes.length, 0);
    },
    stop() {
      listener.stop(true);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
