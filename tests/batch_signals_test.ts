/** `qmpctl batch` ended by SIGTERM or SIGHUP: it says what SIGINT says, then dies of the signal. */
import { describe, expect, test } from "bun:test";
import { startQmpctl } from "./helpers/cli.ts";
import { type FakeServer, fakeServer } from "./helpers/fake_server.ts";

/** A server that answers the first of three lines and never the other two; `sent` resolves once all three came. */
function answeringOnlyTheFirst(): { server: FakeServer; sent: Promise<void> } {
  const sent = Promise.withResolvers<void>();
  const server = fakeServer(async (connection) => {
    await connection.handshake();
    connection.reply(await connection.nextRequest(), { n: 0 });
    await connection.nextRequest();
    await connection.nextRequest();
    sent.resolve();
    await connection.closed;
  });
  return { server, sent: sent.promise };
}

describe("qmpctl batch ended by SIGTERM or SIGHUP", () => {
  for (const [signal, code] of [["SIGTERM", 143], ["SIGHUP", 129]] as const) {
    test(`${signal} with lines sent and not answered: exit ${code}, naming them as Ctrl-C does`, async () => {
      const { server, sent } = answeringOnlyTheFirst();
      try {
        const running = startQmpctl(["-s", server.path, "batch"], { stdin: "query-status\n".repeat(3) });
        await sent; // its handler is set before it connects
        running.child.kill(signal);
        expect(await running.result).toMatchObject({
          code,
          stdout: '{"return":{"n":0}}\n',
          stderr: "qmpctl: interrupted; no answer to lines 2-3, which QEMU may have run\n",
        });
      } finally {
        server.stop();
      }
    });
  }

  test("on several targets, SIGTERM: each under way names its own lines, and qmpctl dies once all have", async () => {
    const scripted = [answeringOnlyTheFirst(), answeringOnlyTheFirst()];
    const servers = scripted.map(({ server }) => server);
    try {
      // -v: the first line's answer is seen to have come (logged as read) before the signal.
      const answered = new Set<string>(), bothAnswered = Promise.withResolvers<void>();
      let log = "";
      const running = startQmpctl(["-v", "-s", servers[0].path, "-s", servers[1].path, "batch"], {
        stdin: "query-status\n".repeat(3),
        onStderr: (text) => {
          log += text;
          for (const [, socket] of log.matchAll(/^(.*): < \{"return":\{"n":0\}/gm)) answered.add(socket);
          if (answered.size === 2) bothAnswered.resolve();
        },
      });
      await Promise.all([...scripted.map(({ sent }) => sent), bothAnswered.promise]);
      running.child.kill("SIGTERM");
      const result = await running.result;
      expect(result.code).toBe(143);
      expect(result.stderr.split("\n").filter((line) => line.includes("interrupted")).sort()).toEqual(
        servers.map((server) => `qmpctl: ${server.path}: interrupted; no answer to lines 2-3, which QEMU may have run`)
          .sort(),
      );
    } finally {
      for (const server of servers) server.stop();
    }
  });
});
