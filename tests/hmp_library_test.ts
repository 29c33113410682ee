/** lib/hmp.ts: one HMP command line through human-monitor-command, against a fake server. */
import { expect, test } from "bun:test";
import { QmpClient } from "../lib/client.ts";
import { CommandError } from "../lib/errors.ts";
import { hmpArguments, humanMonitorCommand } from "../lib/hmp.ts";
import { fakeServer } from "./helpers/fake_server.ts";

test("hmpArguments adds cpu-index only when a CPU is given", () => {
  expect(hmpArguments("info status")).toEqual({ "command-line": "info status" });
  expect(hmpArguments("info registers", 0)).toEqual({ "command-line": "info registers", "cpu-index": 0 });
});

test("humanMonitorCommand sends the command line (and CPU) and returns the text with LF line ends", async () => {
  const server = fakeServer(async (connection) => {
    await connection.handshake();
    connection.reply(await connection.nextRequest(), "RAX=0\r\nRBX=0\r\n");
    connection.sendJson({
      error: { class: "GenericError", desc: "CPU index out of range" },
      id: (await connection.nextRequest()).id,
    });
  });
  const client = await QmpClient.connect(server.path, { connectTimeout: 5000 });
  try {
    const signal = AbortSignal.timeout(5000);
    expect(await humanMonitorCommand(client, "info registers", { cpuIndex: 1, signal })).toBe("RAX=0\nRBX=0\n");
    expect(server.requests.at(-1)).toMatchObject({
      execute: "human-monitor-command",
      arguments: { "command-line": "info registers", "cpu-index": 1 },
    });
    const error = await humanMonitorCommand(client, "info registers", { cpuIndex: 9, signal }).catch((e) => e);
    expect(error).toBeInstanceOf(CommandError);
  } finally {
    await client.close();
    server.stop();
  }
});
