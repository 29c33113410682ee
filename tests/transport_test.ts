/** The two transports, Bun.connect and node:net, over UNIX, TCP and TCP over IPv6: bytes in order, close, errors. */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseAddress } from "../lib/address.ts";
import { ConnectionError } from "../lib/errors.ts";
import { connectTransport, type SocketAddress } from "../lib/transport.ts";
import { connect as connectBun } from "../lib/transport_bun.ts";
import { connect as connectNode } from "../lib/transport_node.ts";
import { freePort } from "./helpers/qemu.ts";

/** The error `promise` rejects with. */
async function rejection(promise: Promise<unknown>): Promise<Error & { code?: string }> {
  try {
    await promise;
  } catch (error) {
    return error as Error & { code?: string };
  }
  throw new Error("resolved");
}

describe.each([
  ["Bun.connect", connectBun],
  ["node:net", connectNode],
])("the %s transport", (_name, connectWith) => {
  /** A server that sends "hello\n", keeps what it receives, and ends the connection after "bye\n". */
  function rawServer(kind: string, path: string) {
    const received: Uint8Array[] = [];
    let closes = 0;
    let onReceived = () => {};
    const socket: Bun.SocketHandler<undefined> = {
      open: (socket) => void socket.write("hello\n"),
      data(socket, chunk) {
        received.push(new Uint8Array(chunk));
        onReceived();
        if (new TextDecoder().decode(chunk).endsWith("bye\n")) socket.end();
      },
      close: () => void closes++,
    };
    const host = kind === "tcp6" ? "::1" : "127.0.0.1";
    const listener = kind === "unix"
      ? Bun.listen({ unix: path, socket })
      : Bun.listen({ hostname: host, port: 0, socket });
    const port = (listener as { port?: number }).port;
    return {
      address: kind === "unix" ? path : kind === "tcp6" ? `[::1]:${port}` : `${host}:${port}`,
      stop: () => listener.stop(true),
      get closes() {
        return closes;
      },
      bytes: () => Buffer.concat(received),
      until: (n: number) =>
        new Promise<void>((resolve) => {
          onReceived = () => Buffer.concat(received).length >= n && resolve();
          onReceived();
        }),
    };
  }

  async function open(address: SocketAddress) {
    const chunks: Uint8Array[] = [];
    let closes = 0;
    let closeError: Error | undefined;
    let onChunk = () => {};
    const transport = await connectWith(address, {
      data: (chunk) => {
        chunks.push(new Uint8Array(chunk));
        onChunk();
      },
      close: (error) => {
        closes++;
        closeError = error;
      },
    });
    return {
      transport,
      text: () => new TextDecoder().decode(Buffer.concat(chunks)),
      until: (text: string) =>
        new Promise<void>((resolve) => {
          onChunk = () => new TextDecoder().decode(Buffer.concat(chunks)).includes(text) && resolve();
          onChunk();
        }),
      get closes() {
        return closes;
      },
      get closeError() {
        return closeError;
      },
    };
  }

  const dir = mkdtempSync(join(tmpdir(), "qmpctl-transport-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test.each(["unix", "tcp", "tcp6"])(
    "over %s: bytes both ways, in order, and the peer's close reported once",
    async (kind) => {
      const path = join(dir, `${_name}.sock`);
      const server = rawServer(kind, path);
      try {
        const client = await open(parseAddress(server.address) as SocketAddress);
        await client.until("hello\n");
        // Several MB in one write and in many: more than the kernel takes at once.
        const block = new Uint8Array(4 * 1024 * 1024).map((_, i) => 0x61 + (i % 26));
        const text = new TextDecoder().decode(block);
        client.transport.write(text);
        for (let i = 0; i < 1000; i++) client.transport.write(`<${i}>`);
        client.transport.write("bye\n");
        let expected = text;
        for (let i = 0; i < 1000; i++) expected += `<${i}>`;
        expected += "bye\n";
        await server.until(expected.length);
        expect(new TextDecoder().decode(server.bytes())).toBe(expected);
        await Bun.sleep(50);
        expect(client.closes).toBe(1);
        expect(client.closeError).toBeUndefined();
        expect(client.text()).toBe("hello\n");
      } finally {
        server.stop();
        rmSync(path, { force: true });
      }
    },
  );

  test("close() ends the connection: the server sees it, and close is reported once", async () => {
    const path = join(dir, `${_name}-close.sock`);
    const server = rawServer("unix", path);
    try {
      const client = await open(parseAddress(server.address) as SocketAddress);
      await client.until("hello\n");
      client.transport.close();
      for (let i = 0; i < 100 && server.closes === 0; i++) await Bun.sleep(10);
      expect(server.closes).toBe(1);
      for (let i = 0; i < 100 && client.closes === 0; i++) await Bun.sleep(10);
      expect(client.closes).toBe(1);
    } finally {
      server.stop();
    }
  });

  test("a missing socket and a refused port reject with the system's code", async () => {
    const missing = await rejection(
      connectWith(parseAddress(join(dir, "missing.sock")) as SocketAddress, { data() {}, close() {} }),
    );
    expect(missing.code).toBe("ENOENT");
    const port = freePort();
    const refused = await rejection(
      connectWith(parseAddress(`127.0.0.1:${port}`) as SocketAddress, { data() {}, close() {} }),
    );
    expect(refused.code).toBe("ECONNREFUSED");
  });
});

describe("connectTransport", () => {
  test("wraps a system error in a ConnectionError that names the address and the reason", async () => {
    const port = freePort();
    const error = await rejection(connectTransport(parseAddress(`127.0.0.1:${port}`), { data() {}, close() {} }));
    expect(error).toBeInstanceOf(ConnectionError);
    expect(error.message).toBe(
      `cannot connect to 127.0.0.1:${port}: connection refused (nothing is listening there) (ECONNREFUSED)`,
    );
  });

  test("a missing path with a shell's [...] in it says that is no glob (only * and ? are)", async () => {
    const error = await rejection(connectTransport(parseAddress("/nonexistent/vm[12].qmp"), { data() {}, close() {} }));
    expect(error.message).toBe(
      "cannot connect to /nonexistent/vm[12].qmp: no such socket (ENOENT) ('[...]' is no glob: only * and ? are)",
    );
  });

  test("a ~ the shell did not expand (--socket=~/x, unix:~/x) is said to be taken as written", async () => {
    const error = await rejection(connectTransport(parseAddress("unix:~/nonexistent.qmp"), { data() {}, close() {} }));
    expect(error.message).toBe(
      "cannot connect to unix:~/nonexistent.qmp: no such socket (ENOENT) (~ is not expanded here: write $HOME/..., which the shell expands)",
    );
  });

  test("a path past sun_path's 108 bytes in a directory not made yet is 'no such socket' (--wait-socket waits), not EINVAL", async () => {
    const path = `/nonexistent/${"d".repeat(60)}/${"s".repeat(60)}.qmp`;
    const error = await rejection(connectTransport(parseAddress(path), { data() {}, close() {} }));
    expect(error.message).toBe(`cannot connect to ${path}: no such socket (ENOENT)`);
    expect((error.cause as { code?: string }).code).toBe("ENOENT");
  });

  test("an IPv6 zone that names no interface is said in words, not only as EINVAL", async () => {
    const error = await rejection(connectTransport(parseAddress("[fe80::1%nope]:4444"), { data() {}, close() {} }));
    expect(error.message).toBe(
      "cannot connect to [fe80::1%nope]:4444: not an address this machine can connect to (EINVAL)",
    );
  });
});
