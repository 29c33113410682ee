/**
 * GuestAgent (lib/agent_client.ts) against a fake agent: the sync through a
 * channel holding stale bytes; and against qemu-ga: closing after a call given up.
 */
import { describe, expect, test } from "bun:test";
import { GuestAgent } from "../lib/agent_client.ts";
import { AbortedError, ArgumentError, CommandError, ConnectTimeoutError, DisconnectedError } from "../lib/errors.ts";
import { answerSync, fakeAgent, type FakeAgentConnection, startAgent } from "./helpers/qemu_ga.ts";

/** Send `bytes` one byte per write, so the client gets them in many chunks. */
async function sendByteByByte(connection: FakeAgentConnection, bytes: Uint8Array): Promise<void> {
  for (const byte of bytes) {
    connection.send(Uint8Array.of(byte));
    await Bun.sleep(0);
  }
}

const encode = (text: string) => new TextEncoder().encode(text);
const concat = (...parts: Uint8Array[]) => new Uint8Array(parts.flatMap((p) => [...p]));

describe("GuestAgent.connect", () => {
  test("syncs through stale bytes, a stale 0xFF-delimited reply and a reply cut in chunks of one byte", async () => {
    const agent = fakeAgent((request, connection) => {
      if (request.execute === "guest-sync-delimited") {
        const id = (request.arguments as { id: number }).id;
        const stream = concat(
          encode('{"return": {"half": "a dead client\'s'), // no 0xFF before it: skipped
          Uint8Array.of(0xff),
          encode('{"return": 99}\n'), // an earlier client's sync
          encode("not json at all\n"), // garbage after a 0xFF: skipped up to the next 0xFF
          Uint8Array.of(0xff),
          encode(`{"return": ${id}}\n`),
        );
        void sendByteByByte(connection, stream);
      } else connection.send(JSON.stringify({ return: { echo: request.arguments }, id: request.id }) + "\n");
    });
    const client = await GuestAgent.connect(agent.path, { connectTimeout: 5000 });
    try {
      expect(await client.execute("guest-anything", { n: 1 })).toEqual({ echo: { n: 1 } });
    } finally {
      await client.close();
      agent.stop();
    }
  });

  test("an agent that never answers the sync is a ConnectTimeoutError", async () => {
    const agent = fakeAgent(() => {});
    try {
      const started = performance.now();
      await expect(GuestAgent.connect(agent.path, { connectTimeout: 300 })).rejects.toBeInstanceOf(
        ConnectTimeoutError,
      );
      expect(performance.now() - started).toBeLessThan(2000);
    } finally {
      agent.stop();
    }
  });

  test("arguments that are not JSON (a cycle): an ArgumentError, as QmpClient's; nothing sent, the next call answered", async () => {
    const agent = fakeAgent((request, connection) => {
      if (answerSync(request, connection)) return;
      connection.send(JSON.stringify({ return: { got: request.execute }, id: request.id }) + "\n");
    });
    const client = await GuestAgent.connect(agent.path);
    try {
      const cycle: Record<string, unknown> = {};
      cycle.self = cycle;
      const error = await client.execute("guest-ping", cycle).catch((e: Error) => e) as Error;
      expect(error).toBeInstanceOf(ArgumentError);
      expect(error.message).toStartWith("guest-ping: its arguments are not JSON: ");
      expect(await client.execute("guest-info")).toEqual({ got: "guest-info" });
    } finally {
      await client.close();
      agent.stop();
    }
  });

  test("an error reply is a CommandError with the agent's class; replies for other ids are dropped", async () => {
    const agent = fakeAgent((request, connection) => {
      if (answerSync(request, connection)) return;
      connection.send('{"return": "not yours", "id": "someone-else"}\n');
      connection.send(JSON.stringify({ error: { class: "GenericError", desc: "no" }, id: request.id }) + "\n");
    });
    const client = await GuestAgent.connect(agent.path);
    try {
      const error = await client.execute("guest-file-open", { path: "/x" }).catch((e: CommandError) =>
        e
      ) as CommandError;
      expect(error).toBeInstanceOf(CommandError);
      expect(error.message).toBe("GenericError: no");
      expect(error.response).toEqual({ error: { class: "GenericError", desc: "no" } });
    } finally {
      await client.close();
      agent.stop();
    }
  });
});

describe("GuestAgent.close against qemu-ga (-m unix-listen, which quits when a client leaves a reply unread)", () => {
  test("a reply owed to a call given up (Ctrl-C, --timeout) is read before closing: the agent lives on", async () => {
    const agent = await startAgent();
    try {
      for (let round = 0; round < 3; round++) {
        const client = await GuestAgent.connect(agent.socket);
        const controller = new AbortController();
        const call = client.execute("guest-info", undefined, { signal: controller.signal });
        // The request goes out at the end of this turn; the loop is held until its reply sits unread, then
        // the call is given up and the client closed before the loop reads again.
        let closed!: Promise<void>;
        setImmediate(() => {
          Bun.sleepSync(100);
          controller.abort();
          closed = client.close();
        });
        await expect(call).rejects.toBeInstanceOf(AbortedError);
        await closed;
      }
      const after = await GuestAgent.connect(agent.socket, { connectTimeout: 2000 });
      expect(await after.execute("guest-ping")).toEqual({});
      await after.close();
    } finally {
      await agent.stop();
    }
  });
});

describe("GuestAgent.close with replies owed, against a fake agent", () => {
  /**
   * A fake agent that answers every request but guest-shutdown, which (as qemu-ga's) succeeds in silence,
   * guest-suspend-ram, which fails (an error reply, as when the guest cannot suspend), and guest-hang, never answered.
   */
  const silentOnShutdown = () =>
    fakeAgent((request, connection) => {
      if (answerSync(request, connection)) return;
      if (request.execute === "guest-suspend-ram") {
        connection.send(
          JSON.stringify({ error: { class: "GenericError", desc: "no suspend" }, id: request.id }) + "\n",
        );
      } else if (request.execute !== "guest-shutdown" && request.execute !== "guest-hang") {
        connection.send(JSON.stringify({ return: {}, id: request.id }) + "\n");
      }
    });

  test("a command answered only when it fails resolves once a ping after it is answered; its error rejects", async () => {
    const agent = silentOnShutdown();
    try {
      const client = await GuestAgent.connect(agent.path);
      expect(await client.execute("guest-shutdown")).toBeUndefined();
      await expect(client.execute("guest-suspend-ram")).rejects.toThrow("GenericError: no suspend");
      const started = performance.now();
      await client.close(); // the shutdown's reply is not waited for: it never comes
      expect(performance.now() - started).toBeLessThan(250); // a silence of 300 ms ends the wait for owed replies
    } finally {
      agent.stop();
    }
  });

  test("an agent that echoes no ids: the ping's reply, taken by the oldest call (the silent command), still ends it", async () => {
    const agent = fakeAgent((request, connection) => {
      if (answerSync(request, connection)) return;
      if (request.execute === "guest-suspend-ram") {
        connection.send('{"error": {"class": "GenericError", "desc": "no"}}\n');
      } else if (request.execute !== "guest-shutdown") connection.send('{"return": {}}\n'); // no id
    });
    try {
      const client = await GuestAgent.connect(agent.path);
      const signal = AbortSignal.timeout(2000);
      expect(await client.execute("guest-shutdown", undefined, { signal })).toBeUndefined();
      await expect(client.execute("guest-suspend-ram", undefined, { signal })).rejects.toThrow("GenericError: no");
      await client.close();
    } finally {
      agent.stop();
    }
  });

  test("a pending call whose reply comes while close() waits for owed replies gets it; one still unanswered fails", async () => {
    const agent = fakeAgent((request, connection) => {
      if (answerSync(request, connection)) return;
      if (request.execute === "guest-slow") {
        setTimeout(() => connection.send(JSON.stringify({ return: "slow", id: request.id }) + "\n"), 100);
      }
    });
    try {
      const client = await GuestAgent.connect(agent.path);
      const slow = client.execute("guest-slow");
      const hang = client.execute("guest-hang");
      hang.catch(() => {});
      await Bun.sleep(20);
      await client.close();
      expect(await slow).toBe("slow");
      await expect(hang).rejects.toBeInstanceOf(DisconnectedError);
    } finally {
      agent.stop();
    }
  });

  test("a reply that never comes holds close() for its bound only", async () => {
    const agent = silentOnShutdown();
    try {
      const client = await GuestAgent.connect(agent.path);
      const hang = client.execute("guest-hang");
      hang.catch(() => {});
      await Bun.sleep(20);
      const started = performance.now();
      await client.close();
      expect(performance.now() - started).toBeLessThan(2000);
      await expect(hang).rejects.toThrow("the client closed the connection before the reply to guest-hang");
    } finally {
      agent.stop();
    }
  });
});
