/**
 * The progress line of `job wait` and `migrate wait` (--progress: drawn on
 * stderr whatever it is) against a fake server, for what QEMU itself will not
 * send: numbers beyond 2^53 and control characters in its words.
 */
import { expect, test } from "bun:test";
import { QMPCTL, qmpctl } from "./helpers/cli.ts";
import { type FakeConnection, fakeServers } from "./helpers/fake_server.ts";
import { runIntoUnreadPipe } from "./helpers/unread_pipe.ts";

const serve = fakeServers();
/** A wide line without colour: every part of it is drawn, and only the redraw's own escapes are in it. */
const WIDE = { env: { COLUMNS: "200", NO_COLOR: "1" } };

/**
 * Answer each request by its command: the first answers of `answers[command]` in turn, its last one after that.
 * query-status, unless given, says what a migration's source says (running: not a destination, `inmigrate`).
 */
async function answer(c: FakeConnection, answers: Record<string, string[]>): Promise<void> {
  await c.handshake();
  const given: Record<string, number> = {};
  for (;;) {
    const request = await c.nextRequest();
    const command = String(request.execute);
    const list = answers[command] ??
      (command === "query-status" ? ['{"status": "running", "running": true}'] : undefined);
    if (!list) {
      c.sendJson({ error: { class: "CommandNotFound", desc: `no ${command}` }, id: request.id });
      continue;
    }
    const i = Math.min(given[command] = (given[command] ?? -1) + 1, list.length - 1);
    c.send(`{"return": ${list[i]}, "id": ${JSON.stringify(request.id)}}\r\n`);
  }
}

test("migrate wait --progress: counters beyond 2^53 are drawn by their digits, and the final state printed", async () => {
  const active = '{"status": "active", "ram": {"total": 4096, "remaining": 1024, "transferred": 3072, ' +
    '"mbps": 8.0, "dirty-sync-count": 18446744073709551615, "dirty-pages-rate": 9007199254740993, ' +
    '"page-size": 4096}}';
  const server = serve((c) =>
    answer(c, { "query-migrate": [active, '{"status": "completed", "total-time": 18446744073709551615}'] })
  );
  const result = await qmpctl(["-s", server.path, "migrate", "wait", "--progress", "--timeout", "10s"], WIDE);
  expect(result).toMatchObject({
    code: 0,
    stdout: '{"status":"completed","total-time":18446744073709551615}\n',
  });
  expect(result.stderr).toContain("pass 18446744073709551615  dirty 9007199254740993 pages/s");
  expect(result.stderr).not.toContain("qmpctl:");
});

test("job wait --progress: a job id and type with control characters are drawn escaped", async () => {
  const job = (status: string) =>
    JSON.stringify({
      id: "b0\u001b]0;title\u0007\u001b[2J",
      type: "backup\r\u009b",
      status,
      "current-progress": 512,
      "total-progress": 1024,
    });
  const server = serve((c) => answer(c, { "query-jobs": [`[${job("running")}]`, `[${job("concluded")}]`] }));
  const result = await qmpctl(["-s", server.path, "job", "wait", "--progress", "--timeout", "10s"], WIDE);
  expect(result.code).toBe(0);
  // The line is redrawn in place (\r, erase to the end of the line: qmpctl's own), its words escaped.
  expect(result.stderr).toContain("] backup\\r\\x9b b0\\x1b]0;title\\x07\\x1b[2J  50%");
  expect(result.stderr.replaceAll("\r", "").replaceAll("\u001b[K", "")).not.toMatch(
    // deno-lint-ignore no-control-regex -- no control character but those of the redraw
    /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/,
  );
});

test("the line leaves room for the ^C a terminal echoes on Ctrl-C: one row, so erasing it erases it all", async () => {
  const active = '{"status": "active", "ram": {"total": 68719476736, "remaining": 34359738368, ' +
    '"transferred": 34359738368, "mbps": 800.0, "dirty-sync-count": 1, "page-size": 4096}}';
  const server = serve((c) => answer(c, { "query-migrate": [active, '{"status": "completed"}'] }));
  for (const columns of [40, 60, 100]) {
    const env = { COLUMNS: String(columns), NO_COLOR: "1" };
    const result = await qmpctl(["-s", server.path, "migrate", "wait", "--progress", "--timeout", "10s"], { env });
    expect(result.code).toBe(0);
    const drawn = result.stderr.split("\r").map((line) => line.replaceAll("\u001b[K", "")).filter((l) => l !== "");
    expect(drawn.length).toBeGreaterThan(0);
    for (const line of drawn) expect(line.length).toBeLessThanOrEqual(columns - 3);
  }
});

test("--progress-json: done and total exact beyond 2^53, as QEMU wrote them (job and migration)", async () => {
  const job = (status: string) =>
    `[{"id": "b0", "type": "backup", "status": "${status}", ` +
    `"current-progress": 9007199254740993, "total-progress": 18446744073709551615}]`;
  const jobs = serve((c) => answer(c, { "query-jobs": [job("running"), job("concluded")] }));
  const waited = await qmpctl(["-s", jobs.path, "job", "wait", "--progress-json", "--timeout", "10s"]);
  expect(waited.code).toBe(0);
  expect(waited.stderr).toContain('"done":9007199254740993,"total":18446744073709551615,');

  const ram = '{"total": 18446744073709551615, "remaining": 2, "transferred": 7, "mbps": 8.0, ' +
    '"dirty-sync-count": 1, "dirty-pages-rate": 0, "page-size": 4096}';
  const migration = serve((c) =>
    answer(c, { "query-migrate": [`{"status": "active", "ram": ${ram}}`, '{"status": "completed"}'] })
  );
  const followed = await qmpctl(["-s", migration.path, "migrate", "wait", "--progress-json", "--timeout", "10s"]);
  expect(followed.code).toBe(0);
  expect(followed.stderr).toContain('"done":18446744073709551613,"total":18446744073709551615,');
});

test("migrate wait: the rate and time left come from the RAM done (zero pages too), not QEMU's wire mbps", async () => {
  // 1 GiB of RAM, done 64 MiB more at each query, while the wire carries 0.8 Mbit/s (zero pages cost little).
  const MiB = 1024 * 1024, total = 1024 * MiB;
  const active = Array.from({ length: 8 }, (_, i) =>
    JSON.stringify({
      status: "active",
      ram: { total, remaining: total - (i + 1) * 64 * MiB, transferred: 1000 * i, mbps: 0.8, "page-size": 4096 },
    }));
  const server = serve((c) => answer(c, { "query-migrate": [...active, '{"status": "completed"}'] }));
  const result = await qmpctl(["-s", server.path, "migrate", "wait", "--progress-json", "--timeout", "20s"]);
  expect(result.code).toBe(0);
  const lines = result.stderr.trimEnd().split("\n").map((line) => JSON.parse(line));
  const rates = lines.filter((line) => "bytes-per-second" in line);
  expect(rates.length).toBeGreaterThan(0);
  for (const line of rates) { // 64 MiB per poll (250 ms): far above the wire's 100 000 bytes/s
    expect(line["bytes-per-second"]).toBeGreaterThan(10 * MiB);
    expect(line["seconds-left"]).toBeLessThan(60);
  }
});

test("job wait and migrate wait: an answer of the wrong shape breaks the protocol (exit 3, not an internal error)", async () => {
  for (
    const [command, words, reply] of [
      ["query-jobs", ["job", "wait"], "{}"],
      ["query-jobs", ["job", "wait"], "[5]"],
      ["query-migrate", ["migrate", "wait"], "null"],
    ] as const
  ) {
    const server = serve((c) => answer(c, { [command]: [reply] }));
    const result = await qmpctl(["-s", server.path, ...words, "--timeout", "5s"]);
    expect(result.code).toBe(3);
    expect(result.stderr).toBe(
      `qmpctl: ${command} did not return ${command === "query-jobs" ? "a list of jobs" : "an object"}: ${reply}\n`,
    );
  }
});

test("job wait and migrate wait: a --timeout before QEMU answered what there is says so, not that work keeps going", async () => {
  for (const [command, words] of [["query-jobs", ["job", "wait", "nightly"]], ["query-migrate", ["migrate", "wait"]]]) {
    const server = serve(async (c) => {
      await c.handshake();
      await c.nextRequest(); // and never answered
      await Bun.sleep(5000);
    });
    expect(await qmpctl(["-s", server.path, ...words, "--timeout", "500ms"])).toMatchObject({
      code: 124,
      stdout: "",
      stderr: `qmpctl: timed out waiting for the reply to ${command} from ${server.path} (--timeout 500ms)\n`,
    });
  }
});

test("job wait: a job that QEMU's record shows concluded before its event comes is told too", async () => {
  // t1's end comes as an event; the query that follows finds t2 concluded as well, its event not sent.
  const job = (id: string, status: string) =>
    `{"id": "${id}", "type": "backup", "status": "${status}", "current-progress": 1, "total-progress": 1}`;
  const server = serve(async (c) => {
    await c.handshake();
    let request = await c.nextRequest(); // the first query-jobs
    c.send(`{"return": [${job("t1", "running")}, ${job("t2", "running")}], "id": ${JSON.stringify(request.id)}}\r\n`);
    const change = (id: string) => ({
      event: "JOB_STATUS_CHANGE",
      data: { id, status: "concluded" },
      timestamp: { seconds: 1, microseconds: 0 },
    });
    c.sendJson(change("t1"));
    for (;;) {
      request = await c.nextRequest();
      c.send(
        `{"return": [${job("t1", "concluded")}, ${job("t2", "concluded")}], "id": ${JSON.stringify(request.id)}}\r\n`,
      );
    }
  });
  const result = await qmpctl(["-s", server.path, "job", "wait", "t1", "t2", "--timeout", "5s"]);
  expect(result.code).toBe(0);
  expect(result.stdout.trimEnd().split("\n").map((line) => JSON.parse(line).id)).toEqual(["t1", "t2"]);
});

test("progress into a stderr nobody reads: --timeout ends the wait (124), and SIGTERM the line's", async () => {
  const migrating = '{"status": "active", "ram": {"total": 4096, "remaining": 1024, "transferred": 3072}}';
  const job = '[{"id": "b0", "type": "backup", "status": "running", "current-progress": 1, "total-progress": 2}]';
  const server = serve((c) => answer(c, { "query-migrate": [migrating], "query-jobs": [job] }));
  const cases = [
    { command: ["migrate", "wait", "--progress-json", "--timeout", "2s"], code: 124 },
    { command: ["job", "wait", "--progress", "--timeout", "2s"], code: 124 },
    {
      command: ["migrate", "wait", "--progress"],
      code: -15,
      signalAfter: { seconds: 1.5, signal: "SIGTERM" as const },
    },
  ];
  for (const { command, code, signalAfter } of cases) {
    // An earlier writer left the pipe near full: the first line already waits for the reader.
    const run = await runIntoUnreadPipe("stderr", [QMPCTL, "-s", server.path, ...command], {
      prefill: 4000,
      signalAfter,
    });
    expect({ command, code: run.code, fast: run.fast }).toEqual({ command, code, fast: true });
  }
});

test("a job that QEMU counts in steps (1 MiB a second, polled 4 times a second): the rate holds steady", async () => {
  const MiB = 1024 * 1024;
  const job = (done: number, status = "running") =>
    `[{"id": "b0", "type": "backup", "status": "${status}", "current-progress": ${done}, "total-progress": ${
      64 * MiB
    }}]`;
  // 6 s of polls: the count moves by 1 MiB at every fourth.
  const answers = Array.from({ length: 24 }, (_, i) => job(Math.floor(i / 4) * MiB));
  const server = serve((c) => answer(c, { "query-jobs": [...answers, job(6 * MiB, "concluded")] }));
  const result = await qmpctl(["-s", server.path, "job", "wait", "b0", "--progress-json", "--timeout", "20s"]);
  const lines = result.stderr.trimEnd().split("\n").map((line) => JSON.parse(line));
  // From 3 s on (12 polls): a rate from the last polls swung ~3x (0.5 to 1.6 MiB/s); over a window it stays
  // within a step of 1 MiB/s, however slowly a loaded machine polls.
  const rates = lines.slice(12).map((line) => line["bytes-per-second"] / MiB);
  expect(rates.length).toBeGreaterThan(6);
  expect(Math.max(...rates) / Math.min(...rates)).toBeLessThan(1.6);
});

test("migrate wait: when the done count falls (pages dirtied again), the rate is not shown as 0", async () => {
  const MiB = 1024 * 1024, total = 1024 * MiB;
  const done = [0, 64, 128, 192, 256, 320, 100, 164, 228, 292].map((n) => n * MiB); // the fall: 320 to 100
  const active = done.map((d) =>
    JSON.stringify({ status: "active", ram: { total, remaining: total - d, transferred: d, "page-size": 4096 } })
  );
  const server = serve((c) => answer(c, { "query-migrate": [...active, '{"status": "completed"}'] }));
  const result = await qmpctl(["-s", server.path, "migrate", "wait", "--progress-json", "--timeout", "20s"]);
  expect(result.code).toBe(0);
  const rates = result.stderr.trimEnd().split("\n").map((line) => JSON.parse(line)["bytes-per-second"]);
  // From the second poll on a rate is known; after the fall it stays the last one, then is measured again.
  expect(rates.slice(1).every((rate) => rate > 100 * MiB)).toBe(true);
});

test("a mirror turned ready, and a migration paused before switchover: the rate starts over (0), not fading from before", async () => {
  const MiB = 1024 * 1024;
  const mirror = (done: number, status: string) =>
    `[{"id": "m0", "type": "mirror", "status": "${status}", "current-progress": ${done}, "total-progress": ${
      64 * MiB
    }}]`;
  // 1 s of copying at 64 MiB/s, then 2 s ready with nothing written by the guest.
  const jobs = [0, 16, 32, 48].map((n) => mirror(n * MiB, "running"));
  const ready = Array.from({ length: 8 }, () => mirror(64 * MiB, "ready"));
  const jobServer = serve((c) => answer(c, { "query-jobs": [...jobs, ...ready, mirror(64 * MiB, "concluded")] }));
  const job = await qmpctl(["-s", jobServer.path, "job", "wait", "m0", "--progress-json", "--timeout", "20s"]);
  const jobLines = job.stderr.trimEnd().split("\n").map((line) => JSON.parse(line));
  // Once ready, the rate told is of what moved while ready: nothing.
  const readyRates = jobLines.filter((line) => line.status === "ready").slice(1).map((line) =>
    line["bytes-per-second"]
  );
  expect(readyRates.length).toBeGreaterThan(3);
  expect(readyRates.every((rate) => rate === 0)).toBe(true);

  const total = 1024 * MiB;
  const migration = (d: number, status: string) =>
    JSON.stringify({ status, ram: { total, remaining: total - d, transferred: d, "page-size": 4096 } });
  const active = [0, 256, 512, 768].map((n) => migration(n * MiB, "active"));
  const paused = Array.from({ length: 8 }, () => migration(1000 * MiB, "pre-switchover"));
  const server = serve((c) => answer(c, { "query-migrate": [...active, ...paused, '{"status": "completed"}'] }));
  const result = await qmpctl(["-s", server.path, "migrate", "wait", "--progress-json", "--timeout", "20s"]);
  const lines = result.stderr.trimEnd().split("\n").map((line) => JSON.parse(line));
  const pausedRates = lines.filter((line) => line.status === "pre-switchover").slice(1)
    .map((line) => line["bytes-per-second"]);
  expect(pausedRates.length).toBeGreaterThan(3);
  expect(pausedRates.every((rate) => rate === 0)).toBe(true);
});
