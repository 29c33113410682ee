/**
 * `qmpctl proxy` for tests: the built binary started in the background,
 * ready once it prints that it serves its socket; and a raw QMP client that
 * speaks to it line by line, as socat or a script would.
 */
import { join } from "node:path";
import { JsonFramer } from "../../lib/framing.ts";
import { QMPCTL } from "./cli.ts";
import { startQemu, type TestQemu } from "./qemu.ts";

export interface RunningProxy {
  child: ReturnType<typeof Bun.spawn>;
  /** Resolves once the proxy serves its socket; rejects if it exits first. */
  ready: Promise<void>;
  /** stderr so far. */
  stderr(): string;
  /** Resolves once stderr has a line matching `pattern` (bounded by `timeoutMs`). */
  stderrLine(pattern: RegExp, timeoutMs?: number): Promise<string>;
  /** Its exit status (128 + N for signal N, as a shell says) and the signal it died of, if one. */
  result: Promise<{ code: number; signal: ReturnType<typeof Bun.spawn>["signalCode"]; stderr: string; stdout: string }>;
}

/** Start `qmpctl proxy ARGS` (`env` added to this process's); it is killed after `killAfterMs` at the latest. */
export function startProxy(args: string[], killAfterMs = 300_000, env: Record<string, string> = {}): RunningProxy {
  const child = Bun.spawn([QMPCTL, "proxy", ...args], {
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
    env: { ...process.env, ...env },
  });
  const killer = setTimeout(() => child.kill("SIGKILL"), killAfterMs);
  let text = "";
  const watchers = new Set<() => void>();
  const stderrDone = (async () => {
    const decoder = new TextDecoder();
    for await (const chunk of child.stderr as ReadableStream<Uint8Array>) {
      text += decoder.decode(chunk, { stream: true });
      for (const watcher of watchers) watcher();
    }
    for (const watcher of watchers) watcher();
    return text;
  })();
  let ended = false;
  const stderrLine = (pattern: RegExp, timeoutMs = 10_000) =>
    new Promise<string>((resolve, reject) => {
      const timer = setTimeout(
        () => done(new Error(`no stderr line ${pattern} in ${timeoutMs} ms:\n${text}`)),
        timeoutMs,
      );
      const check = () => {
        const line = text.split("\n").find((l) => pattern.test(l));
        if (line !== undefined) done(undefined, line);
        else if (ended) done(new Error(`the proxy ended without a stderr line ${pattern}:\n${text}`));
      };
      const done = (error?: Error, line?: string) => {
        clearTimeout(timer);
        watchers.delete(check);
        if (error) reject(error);
        else resolve(line!);
      };
      watchers.add(check);
      check();
    });
  const result = Promise.all([new Response(child.stdout as ReadableStream).text(), stderrDone, child.exited]).then(
    ([stdout, stderr, code]) => {
      clearTimeout(killer);
      return { code, signal: child.signalCode, stderr, stdout };
    },
  );
  void result.then(() => {
    ended = true;
    for (const watcher of watchers) watcher();
  });
  const ready = stderrLine(/^qmpctl: proxy: (sharing|serving) /).then(() => {});
  ready.catch(() => {}); // a test that expects the proxy to fail reads its result instead
  return { child, ready, stderr: () => text, stderrLine, result };
}

/** A QMP client that sends and reads raw messages, for exact ids and pipelining. */
export interface RawClient {
  /** Send one message (an object is serialized; a string is sent as it is, plus a newline). */
  send(message: unknown): void;
  /** Send text or bytes as they are, no newline added (part of a line). */
  sendPart(data: string | Uint8Array): void;
  /** The next `count` messages (bounded by `timeoutMs`). */
  read(count: number, timeoutMs?: number): Promise<Record<string, unknown>[]>;
  /** The next `count` messages that are not events (events before and among them are dropped). */
  replies(count: number, timeoutMs?: number): Promise<Record<string, unknown>[]>;
  /** Messages received and not yet read. */
  readonly buffered: number;
  /** Stop reading from the socket (the kernel buffers, then the sender). */
  pause(): void;
  close(): void;
  /** Resolves when the peer has closed the connection. */
  closed: Promise<void>;
}

export async function rawClient(path: string): Promise<RawClient> {
  const framer = new JsonFramer();
  const messages: Record<string, unknown>[] = [];
  let wake = () => {};
  let markClosed = () => {};
  const closed = new Promise<void>((resolve) => (markClosed = resolve));
  let isClosed = false;
  let failure: Error | undefined;
  const socket = await Bun.connect({
    unix: path,
    socket: {
      data(_socket, chunk) {
        try {
          messages.push(...framer.push(chunk) as Record<string, unknown>[]);
        } catch (error) {
          failure = error as Error;
        }
        wake();
      },
      close() {
        isClosed = true;
        markClosed();
        wake();
      },
      error(_socket, error) {
        failure = error;
      },
    },
  });
  const unsent: Uint8Array[] = [];
  const encoder = new TextEncoder();
  const flush = () => {
    while (unsent.length > 0) {
      const written = socket.write(unsent[0]);
      if (written < unsent[0].length) {
        unsent[0] = unsent[0].subarray(Math.max(written, 0));
        setTimeout(flush, 1);
        return;
      }
      unsent.shift();
    }
  };
  const read = async (count: number, timeoutMs = 10_000) => {
    const deadline = performance.now() + timeoutMs;
    while (messages.length < count) {
      if (failure) throw new Error(`after ${messages.length} of ${count} messages: ${failure.message}`);
      if (isClosed) throw new Error(`the connection closed after ${messages.length} of ${count} messages`);
      const left = deadline - performance.now();
      if (left <= 0) throw new Error(`only ${messages.length} of ${count} messages within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    return messages.splice(0, count);
  };
  const replies = async (count: number, timeoutMs = 10_000) => {
    const deadline = performance.now() + timeoutMs;
    const found: Record<string, unknown>[] = [];
    while (found.length < count) {
      const [message] = await read(1, Math.max(deadline - performance.now(), 1));
      if (typeof message.event !== "string") found.push(message);
    }
    return found;
  };
  return {
    send(message) {
      unsent.push(encoder.encode((typeof message === "string" ? message : JSON.stringify(message)) + "\n"));
      if (unsent.length === 1) flush();
    },
    sendPart(data) {
      unsent.push(typeof data === "string" ? encoder.encode(data) : data);
      if (unsent.length === 1) flush();
    },
    read,
    replies,
    get buffered() {
      return messages.length;
    },
    pause: () => socket.pause(),
    close: () => socket.end(),
    closed,
  };
}

/** A raw client that has read the greeting and negotiated; the greeting is returned beside it. */
export async function negotiatedClient(
  path: string,
): Promise<{ client: RawClient; greeting: Record<string, unknown> }> {
  const client = await rawClient(path);
  const [greeting] = await client.read(1);
  client.send({ execute: "qmp_capabilities" });
  const [reply] = await client.replies(1);
  if (JSON.stringify(reply) !== '{"return":{}}') throw new Error(`negotiation failed: ${JSON.stringify(reply)}`);
  return { client, greeting };
}

/** The resident memory of process `pid` in KiB (Linux). */
export async function residentKiB(pid: number): Promise<number> {
  const status = await Bun.file(`/proc/${pid}/status`).text();
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1]);
}

/** A real QEMU whose monitor `qmpctl proxy` serves at `shared` (with `args` added to the proxy's). */
export async function startProxiedQemu(
  args: string[] = [],
): Promise<{ qemu: TestQemu; proxy: RunningProxy; shared: string }> {
  const qemu = await startQemu();
  const shared = join(qemu.dir, "shared.sock");
  const proxy = startProxy(["-s", qemu.socket, "--listen", shared, ...args]);
  await proxy.ready;
  return { qemu, proxy, shared };
}

/** Stop what startProxiedQemu started (either may be missing when starting failed). */
export async function stopProxiedQemu(started: { qemu?: TestQemu; proxy?: RunningProxy }): Promise<void> {
  started.proxy?.child.kill("SIGKILL");
  await started.qemu?.stop();
}
