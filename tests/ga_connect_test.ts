/**
 * Connecting to the guest agent as `exec` connects to a monitor: a full
 * listen queue waited out within --connect-timeout, and --wait-socket
 * retrying a socket that closes before the agent answers the sync.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { GuestAgent } from "../lib/agent_client.ts";
import { QMPCTL, qmpctl } from "./helpers/cli.ts";
import { waitUntil } from "./helpers/process_state.ts";
import { agentDir, answerSync, fakeAgent, startAgent, type TestAgent } from "./helpers/qemu_ga.ts";

let agent: TestAgent;
beforeAll(async () => {
  agent = await startAgent();
});
afterAll(() => agent?.stop());

/** Raw connections to `path` until its listen queue is full (connect says EAGAIN), for the caller to close. */
async function fillListenQueue(path: string): Promise<{ end(): void }[]> {
  const fillers: { end(): void }[] = [];
  for (let i = 0; i < 64; i++) {
    const socket = await Bun.connect({ unix: path, socket: { data() {} } }).catch(() => undefined);
    if (!socket) return fillers;
    fillers.push(socket);
  }
  throw new Error(`the listen queue of ${path} never filled`);
}

/** A UNIX socket that listens (a queue of one) and never accepts: its queue stays full once filled. */
async function neverAccepting(path: string): Promise<{ stop(): Promise<void> }> {
  const script = "import socket, sys; s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(0); " +
    "print('listening', flush=True); sys.stdin.read()";
  const server = Bun.spawn(["python3", "-c", script, path], { stdin: "pipe", stdout: "pipe" });
  await server.stdout.getReader().read(); // the "listening" line
  return {
    async stop() {
      server.kill("SIGKILL");
      await server.exited;
    },
  };
}

const canStrace = Bun.spawnSync(["strace", "-qq", "-e", "trace=none", "true"]).exitCode === 0;

describe("ga and a full listen queue (qemu-ga on its own socket takes one client at a time)", () => {
  test("a queue that stays full: exit 3 at --connect-timeout, saying so (EAGAIN), not at once", async () => {
    const dir = agentDir();
    const path = join(dir, "busy.sock");
    const server = await neverAccepting(path);
    const fillers = await fillListenQueue(path);
    try {
      const result = await qmpctl(["-s", path, "--connect-timeout", "1s", "ga", "guest-ping"]);
      expect(result).toMatchObject({
        code: 3,
        stdout: "",
        stderr: `qmpctl: no connection to ${path} within 1s: its listen queue stayed full (EAGAIN): ` +
          "another client may be using the agent, which answers one at a time, while others wait their turn, " +
          "or too many clients are connecting at once\n",
      });
      expect(result.ms).toBeGreaterThanOrEqual(900);
    } finally {
      for (const socket of fillers) socket.end();
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test.skipIf(!canStrace)(
    "a queue full when ga connects is waited out: guest-ping answers once the client before it leaves",
    async () => {
      // One client holds the agent; raw connections fill the queue behind it.
      const holder = await GuestAgent.connect(agent.socket, { connectTimeout: 10_000 });
      const fillers = await fillListenQueue(agent.socket);
      const trace = join(agent.dir, "connect.trace");
      // strace tells when qmpctl has been refused (EAGAIN): only then is the queue emptied.
      const child = Bun.spawn(
        ["strace", "-f", "-qq", "-e", "trace=connect", "-o", trace, QMPCTL, "-s", agent.socket]
          .concat(["--connect-timeout", "20s", "ga", "guest-ping"]),
        { stdin: "ignore", stdout: "pipe", stderr: "pipe" },
      );
      const output = Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text()]);
      try {
        await waitUntil(
          () => child.exitCode !== null || (existsSync(trace) && readFileSync(trace, "utf8").includes("EAGAIN")),
          "qmpctl found the listen queue full",
        );
      } finally {
        for (const socket of fillers) socket.end();
        await holder.close();
      }
      const [stdout, stderr] = await output;
      expect({ code: await child.exited, stdout, stderr }).toEqual({ code: 0, stdout: "{}\n", stderr: "" });
    },
    30_000,
  );
});

describe("ga --wait-socket and a socket that closes before the agent answers the sync", () => {
  test("retried within --wait-socket: the agent that answers at the third connection is reached", async () => {
    let connections = 0;
    const starting = fakeAgent((request, connection) => {
      if (request.execute !== "guest-sync-delimited") {
        return connection.send(JSON.stringify({ return: {}, id: request.id }) + "\n");
      }
      if (++connections < 3) return connection.close(); // not up yet: the socket is there, the agent not
      answerSync(request, connection);
    });
    try {
      const result = await qmpctl(["-s", starting.path, "--wait-socket", "10s", "ga", "guest-ping"]);
      expect(result).toMatchObject({ code: 0, stdout: "{}\n", stderr: "" });
      expect(connections).toBe(3);
    } finally {
      starting.stop();
    }
  });

  test("closing until --wait-socket passes: exit 3 then, with exec's wording", async () => {
    const closing = fakeAgent((_request, connection) => connection.close());
    try {
      const result = await qmpctl(["-s", closing.path, "--wait-socket", "500ms", "ga", "guest-ping"]);
      expect(result).toMatchObject({
        code: 3,
        stdout: "",
        stderr: `qmpctl: ${closing.path} closed the connection before the guest agent answered ` +
          "(still so after 500ms of retries)\n",
      });
      expect(result.ms).toBeGreaterThanOrEqual(450);
    } finally {
      closing.stop();
    }
  });

  test("ga wait --wait-socket keeps retrying it until --timeout: the socket is there, only the agent is not", async () => {
    const closing = fakeAgent((_request, connection) => connection.close());
    try {
      const result = await qmpctl(["-s", closing.path, "--wait-socket", "200ms", "--timeout", "1s", "ga", "wait"]);
      expect(result).toMatchObject({
        code: 124,
        stdout: "",
        stderr: `qmpctl: timed out waiting for the guest agent at ${closing.path} to answer; the last try: ` +
          `${closing.path} closed the connection before the guest agent answered (--timeout 1s)\n`,
      });
    } finally {
      closing.stop();
    }
  });
});

test(
  "ga wait started with SIGINT ignored (a script's background job) leaves it ignored, as wait-event does",
  async () => {
    const dir = agentDir();
    try {
      const script = `trap '' INT; "$0" ga -s "$1" wait --timeout 20s & pid=$!; sleep 1; kill -INT $pid; sleep 1;
      if kill -0 $pid 2>/dev/null; then echo alive; kill -TERM $pid; else echo dead; fi; wait $pid; echo "status $?"`;
      const run = Bun.spawn(["bash", "-c", script, QMPCTL, join(dir, "never-there.sock")], { stdout: "pipe" });
      expect(await new Response(run.stdout).text()).toBe("alive\nstatus 143\n");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
  15_000,
);
