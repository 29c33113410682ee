/** JobWatch against a scripted server: the order of a reply and the events around it, which QEMU shows only by chance. */
import { afterEach, expect, test } from "bun:test";
import { QmpClient } from "../lib/client.ts";
import { TimeoutError } from "../lib/errors.ts";
import { JobWatch } from "../lib/jobs.ts";
import { type FakeServer, fakeServer } from "./helpers/fake_server.ts";

const servers: FakeServer[] = [];
afterEach(() => {
  for (const server of servers.splice(0)) server.stop();
});

const TIMESTAMP = { seconds: 1, microseconds: 0 };
const statusChange = (status: string) =>
  JSON.stringify({ event: "JOB_STATUS_CHANGE", data: { id: "m1", status }, timestamp: TIMESTAMP });

test("an event that came right after query-jobs' reply (in the same read) is newer than the reply: the job is ready", async () => {
  const server = fakeServer(async (connection) => {
    await connection.handshake();
    const query = await connection.nextRequest();
    const running = { id: "m1", type: "mirror", status: "running", "current-progress": 1, "total-progress": 9 };
    // Before the reply, an older change; after it, in the same write, the mirror turning ready.
    connection.send(
      `${statusChange("running")}\r\n${JSON.stringify({ return: [running], id: query.id })}\r\n` +
        `${statusChange("ready")}\r\n`,
    );
  });
  servers.push(server);
  const client = await QmpClient.connect(server.path, { connectTimeout: 5000 });
  try {
    const watch = new JobWatch(client);
    const error = await watch.follow(["m1"], { signal: AbortSignal.timeout(300) }).catch((e) => e);
    expect(error).toBeInstanceOf(TimeoutError);
    expect(watch.standing().running.map((job) => job.status)).toEqual(["ready"]);
  } finally {
    await client.close();
  }
});
