/**
 * `wait-event`, `events` and `exec --wait-event` against a real QEMU. qmpctl
 * listens on one monitor while the test drives QEMU on another; QEMU sends
 * every event to every monitor, so the test's own client sees the very event
 * (same timestamp) that qmpctl must print.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { EventSubscription, QmpEvent } from "../lib/events.ts";
import { QMPCTL, qmpctl } from "./helpers/cli.ts";
import { startListener } from "./helpers/listener.ts";
import { startQemu, type TestQemu } from "./helpers/qemu.ts";

const line = (event: QmpEvent) => JSON.stringify(event) + "\n";

/** The next `count` events the control monitor sees. */
async function seen(events: EventSubscription, count = 1): Promise<QmpEvent[]> {
  const out: QmpEvent[] = [];
  while (out.length < count) out.push(...await events.nextBatch(count - out.length));
  return out;
}

describe("on a running QEMU (-machine none)", () => {
  let qemu: TestQemu;
  let events: EventSubscription; // what the control monitor sees
  beforeAll(async () => {
    qemu = await startQemu();
    await qemu.control.execute("query-status"); // after the RESUME of QEMU's start
    events = qemu.control.events({ names: ["STOP", "RESUME"] });
  });
  afterEach(async () => { // running again, and the events the test did not look at forgotten
    if ((await qemu.control.execute("query-status") as { running: boolean }).running === false) {
      await qemu.control.execute("cont"); // QEMU sends RESUME before this reply
    }
    while (events.queued > 0) await events.nextBatch();
  });
  afterAll(() => qemu?.stop());

  /** Run `action` once qmpctl listens. */
  async function listenWhile(args: string[], action: () => Promise<unknown>) {
    const listener = startListener(["-s", qemu.socket, ...args]);
    await listener.ready;
    await action();
    return listener.result;
  }

  test("wait-event STOP prints the STOP that the other monitor's stop causes, as QEMU sent it", async () => {
    const result = await listenWhile(["wait-event", "STOP", "--timeout", "10s"], () => qemu.control.execute("stop"));
    const [stop] = await seen(events);
    expect(stop.event).toBe("STOP");
    expect(result).toMatchObject({ code: 0, stdout: line(stop), stderr: "" });
  });

  test("exec stop --wait-event STOP catches the event QEMU sends before its reply, 100 times out of 100", async () => {
    const failures: string[] = [];
    for (let i = 0; i < 100; i++) {
      const result = await qmpctl(["-s", qemu.socket, "exec", "stop", "--wait-event", "STOP", "--timeout", "5s"]);
      const [stop] = await seen(events);
      if (result.code !== 0 || result.stdout !== "{}\n" + line(stop)) failures.push(JSON.stringify(result));
      await qemu.control.execute("cont");
      await seen(events);
    }
    expect(failures).toEqual([]);
  }, 60_000);

  test("--count 02 (as printf %02d writes 2) prints STOP then RESUME, each as it comes", async () => {
    const result = await listenWhile(
      ["wait-event", "STOP", "RESUME", "--count", "02", "--timeout", "10s"],
      async () => {
        await qemu.control.execute("stop");
        await qemu.control.execute("cont");
      },
    );
    const [stop, resume] = await seen(events, 2);
    expect([stop.event, resume.event]).toEqual(["STOP", "RESUME"]);
    expect(result).toMatchObject({ code: 0, stdout: line(stop) + line(resume), stderr: "" });
  });

  test("--count 0, or beyond 2^53-1 (not counted exactly), is a usage error", async () => {
    for (const count of ["0", "9007199254740992", "99999999999999999999"]) {
      expect(await qmpctl(["-s", qemu.socket, "wait-event", "STOP", "--count", count])).toMatchObject({
        code: 2,
        stderr: `qmpctl: --count '${count}' is not a number of events (1 to 9007199254740991)\n`,
      });
    }
  });

  test("several names: the first of them that comes ends the wait", async () => {
    const result = await listenWhile(
      ["wait-event", "RESET", "RESUME", "STOP", "--timeout", "10s"],
      () => qemu.control.execute("stop"),
    );
    const [stop] = await seen(events);
    expect(result).toMatchObject({ code: 0, stdout: line(stop), stderr: "" });
  });

  test("events --timeout prints every event for that long, then exits 0", async () => {
    const result = await listenWhile(["events", "--timeout", "1500ms"], async () => {
      await qemu.control.execute("stop");
      await qemu.control.execute("cont");
    });
    const [stop, resume] = await seen(events, 2);
    expect(result).toMatchObject({ code: 0, stdout: line(stop) + line(resume), stderr: "" });
  });

  test("events --count N --timeout: fewer than N by the timeout is 124, saying how many came (as wait-event)", async () => {
    const result = await listenWhile(["events", "--count", "3", "--timeout", "1500ms"], async () => {
      await qemu.control.execute("stop");
      await qemu.control.execute("cont");
    });
    const [stop, resume] = await seen(events, 2);
    expect(result).toMatchObject({
      code: 124,
      stdout: line(stop) + line(resume),
      stderr: "qmpctl: timed out waiting for any event; 2 of 3 arrived (--timeout 1500ms)\n",
    });
  });

  test("appending to a log file keeps what it held: wait-event, events and exec --wait-event add their lines", async () => {
    const dir = mkdtempSync(join(tmpdir(), "qmpctl-log-"));
    const log = join(dir, "events.log");
    try {
      await Bun.write(log, "earlier line\n");
      const script = `"$0" -s "$1" wait-event STOP --timeout 300ms >> "$2"; ` +
        `"$0" -s "$1" events --timeout 300ms >> "$2"; "$0" -s "$1" exec stop --wait-event STOP >> "$2"`;
      const shell = Bun.spawn(["sh", "-c", script, QMPCTL, qemu.socket, log], { stderr: "ignore" });
      expect(await shell.exited).toBe(0);
      const [stop] = await seen(events);
      expect(await Bun.file(log).text()).toBe("earlier line\n{}\n" + line(stop));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("an event name QEMU does not know is a usage error at once, naming the closest", async () => {
    const result = await qmpctl(["-s", qemu.socket, "wait-event", "STPO", "--timeout", "20s"]);
    expect(result).toMatchObject({ code: 2, stdout: "" });
    expect(result.stderr).toContain("STOP");
    expect(result.ms).toBeLessThan(5000);
    expect(await qmpctl(["-s", qemu.socket, "events", "STPO", "--timeout", "20s"])).toMatchObject({ code: 2 });
    const exec = await qmpctl(["-s", qemu.socket, "exec", "stop", "--wait-event", "STPO", "--timeout", "20s"]);
    expect(exec).toMatchObject({ code: 2, stdout: "" });
    expect((await qemu.control.execute("query-status") as { running: boolean }).running).toBe(true); // not sent
  });

  test("a --match none of the named events can meet is a usage error at once: a key not in their data, an enum value", async () => {
    const cases: [string[], string][] = [
      [
        ["wait-event", "RESET", "--match", "reson=host-qmp-system-reset"],
        "qmpctl: the condition 'reson=host-qmp-system-reset' can never hold for RESET: it has no 'reson' in its data (did you mean reason?)\n",
      ],
      [
        ["wait-event", "RESET", "--match", "reason=guest-rset"],
        `qmpctl: the condition 'reason=guest-rset' can never hold for RESET: its reason is never "guest-rset" (did you mean guest-reset?)\n`,
      ],
      [
        ["wait-event", "STOP", "--match", "device=x"],
        "qmpctl: the condition 'device=x' can never hold for STOP: it has no data\n",
      ],
      [
        ["events", "BLOCK_JOB_*", "--match", "devise=job0"],
        "qmpctl: the condition 'devise=job0' can never hold for BLOCK_JOB_*: none of their data has 'devise' (did you mean device?)\n",
      ],
      [
        ["wait-event", "BLOCK_JOB_*", "--match", "device.id=job0"], // device is a string: nothing inside it
        "qmpctl: the condition 'device.id=job0' can never hold for BLOCK_JOB_*: BLOCK_JOB_CANCELLED, " +
        "BLOCK_JOB_COMPLETED, BLOCK_JOB_ERROR, BLOCK_JOB_READY: 'device' is a string, with nothing inside\n",
      ],
      [
        ["wait-event", "SHUTDOWN", "--match", "guest=on"], // a bool is true or false, as JSON
        "qmpctl: the condition 'guest=on' can never hold for SHUTDOWN: its guest is true or false, never \"on\"\n",
      ],
      [
        ["wait-event", "GUEST_PANICKED", "BLOCK_IO_ERROR", "--match", "action=pase"], // each event's own values
        "qmpctl: the condition 'action=pase' can never hold for GUEST_PANICKED or BLOCK_IO_ERROR: BLOCK_IO_ERROR: " +
        'its action is one of ignore, report, stop, never "pase"; GUEST_PANICKED: its action is never "pase" ' +
        "(did you mean pause?)\n",
      ],
      [
        ["wait-event", "DUMP_COMPLETED", "--match", "result=completed"], // an object: its members are matched
        "qmpctl: the condition 'result=completed' can never hold for DUMP_COMPLETED: its result is an object, never " +
        '"completed" (a member inside it, as result.status=VALUE, is matched on its own)\n',
      ],
      [
        ["wait-event", "DUMP_COMPLETED", "--match", 'result:={"status":"completed"}'], // compared whole
        'qmpctl: the condition \'result:={"status":"completed"}\' can never hold for DUMP_COMPLETED: its result ' +
        `is compared whole, and {"status":"completed"} has no 'completed' (a member inside it, as result.status=VALUE, ` +
        "is matched on its own)\n",
      ],
      [
        ["wait-event", "BLOCK_JOB_COMPLETED", "--match", "offset=1.5"],
        "qmpctl: the condition 'offset=1.5' can never hold for BLOCK_JOB_COMPLETED: its offset is a whole number, " +
        'never "1.5"\n',
      ],
      [
        ["exec", "stop", "--wait-event", "STOP", "--match", "reason=x"],
        "qmpctl: the condition 'reason=x' can never hold for STOP: it has no data\n",
      ],
    ];
    for (const [args, stderr] of cases) {
      const result = await qmpctl(["-s", qemu.socket, ...args, "--timeout", "20s"]);
      expect(result).toMatchObject({ code: 2, stdout: "", stderr });
      expect(result.ms).toBeLessThan(5000);
    }
    expect((await qemu.control.execute("query-status") as { running: boolean }).running).toBe(true); // stop not sent
    // A key some of the named events have, and a member of a union branch, are accepted (then waited for).
    for (const match of ["device=job0", "reason=guest-reset", 'reason:="guest-reset"', "guest=false"]) {
      const waited = await qmpctl([
        "-s",
        qemu.socket,
        "wait-event",
        "BLOCK_JOB_*",
        "RESET",
        "--match",
        match,
        "--timeout",
        "200ms",
      ]);
      expect(waited).toMatchObject({ code: 124, stdout: "" });
    }
  });

  test("SIGINT while waiting exits 130 quietly", async () => {
    const listener = startListener(["-s", qemu.socket, "wait-event", "SHUTDOWN"]);
    await listener.ready;
    listener.child.kill("SIGINT");
    expect(await listener.result).toMatchObject({ code: 130, stdout: "", stderr: "" });
  });

  test(
    "events | head -1: once head has left, qmpctl ends within seconds, status 0, though no event comes after",
    async () => {
      const script = `"$0" -s "$1" events --timeout 25s | head -1; echo "status \${PIPESTATUS[0]}"`;
      const started = performance.now();
      const pipeline = Bun.spawn(["bash", "-c", script, QMPCTL, qemu.socket], { stdout: "pipe", stderr: "pipe" });
      await Bun.sleep(1000); // connected and listening
      await qemu.control.execute("stop");
      try {
        const stdout = await new Response(pipeline.stdout).text();
        expect(stdout).toMatch(/^\{"timestamp":\{[^\n]*"event":"STOP"\}\nstatus 0\n$/);
        expect(performance.now() - started).toBeLessThan(10_000); // not the 25 s of --timeout
      } finally {
        await qemu.control.execute("cont");
      }
    },
    40_000,
  );

  test("started with SIGINT ignored (a script's background job), events leaves it ignored, as sleep does", async () => {
    const script = `trap '' INT; "$0" -s "$1" events --timeout 20s & pid=$!; sleep 1; kill -INT $pid; sleep 1;
      if kill -0 $pid 2>/dev/null; then echo alive; kill -TERM $pid; else echo dead; fi; wait $pid; echo "status $?"`;
    const run = Bun.spawn(["bash", "-c", script, QMPCTL, qemu.socket], { stdout: "pipe", stderr: "pipe" });
    expect(await new Response(run.stdout).text()).toBe("alive\nstatus 143\n");
    // So does exec told to wait.
    const waiting = script.replace("events --timeout 20s", "exec query-name --wait-event SHUTDOWN --timeout 20s");
    const exec = Bun.spawn(["bash", "-c", waiting, QMPCTL, qemu.socket], { stdout: "pipe", stderr: "pipe" });
    expect(await new Response(exec.stdout).text()).toBe("{}\nalive\nstatus 143\n");
  }, 15_000);

  test("Ctrl-C stops a shell loop that runs qmpctl: it dies of SIGINT, as the shell expects, not a plain exit 130", async () => {
    // A terminal's Ctrl-C goes to the whole process group: the shell and qmpctl.
    const script =
      `for i in 1 2 3; do "$0" -s "$1" wait-event SHUTDOWN --timeout 3s; echo "after $i: $?"; done; echo done`;
    const loop = Bun.spawn(["setsid", "bash", "-c", script, QMPCTL, qemu.socket], { stdout: "pipe", stderr: "pipe" });
    await Bun.sleep(700);
    process.kill(-loop.pid, "SIGINT");
    const [stdout, status] = await Promise.all([new Response(loop.stdout).text(), loop.exited]);
    expect({ stdout, status }).toEqual({ stdout: "", status: 130 });
  });
});

describe("on a paused PC (-machine pc -S)", () => {
  let qemu: TestQemu;
  let dir: string;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "qmpctl-events-"));
    // Two more monitors, for listeners that watch QEMU quit.
    qemu = await startQemu({
      machine: "pc",
      extraArgs: ["-qmp", `unix:${dir}/m3.sock,server=on,wait=off`, "-qmp", `unix:${dir}/m4.sock,server=on,wait=off`],
    });
  });
  afterAll(async () => {
    await qemu?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  async function listenWhile(args: string[], action: () => Promise<unknown>) {
    const listener = startListener(["-s", qemu.socket, ...args]);
    await listener.ready;
    await action();
    return listener.result;
  }

  test("system_reset → RESET with --match reason=host-qmp-system-reset", async () => {
    const resets = qemu.control.events({ names: ["RESET"] });
    const result = await listenWhile(
      ["wait-event", "RESET", "--match", "reason=host-qmp-system-reset", "--match", "guest=false", "--timeout", "10s"],
      () => qemu.control.execute("system_reset"),
    );
    const [reset] = await seen(resets);
    resets.close();
    expect(reset.data).toEqual({ guest: false, reason: "host-qmp-system-reset" });
    expect(result).toMatchObject({ code: 0, stdout: line(reset), stderr: "" });
  });

  test("a --match that excludes the event that comes: 124 when the timeout runs out, saying what was awaited", async () => {
    const result = await listenWhile(
      ["wait-event", "RESET", "--match", "reason=guest-reset", "--timeout", "2s"],
      () => qemu.control.execute("system_reset"),
    );
    expect(result).toMatchObject({ code: 124, stdout: "" });
    expect(result.stderr).toBe("qmpctl: timed out waiting for RESET with reason=guest-reset (--timeout 2s)\n");
    expect(result.ms).toBeLessThan(10_000);
  });

  test("system_powerdown → POWERDOWN through the glob POWER*", async () => {
    const powerdowns = qemu.control.events({ names: ["POWERDOWN"] });
    const result = await listenWhile(
      ["wait-event", "POWER*", "--timeout", "10s"],
      () => qemu.control.execute("system_powerdown"),
    );
    const [powerdown] = await seen(powerdowns);
    powerdowns.close();
    expect(result).toMatchObject({ code: 0, stdout: line(powerdown), stderr: "" });
  });

  test("quit: exec quit --wait-event SHUTDOWN and wait-event SHUTDOWN print it; a wait for STOP ends with 3", async () => {
    const shutdownWaiter = startListener(["-s", `${dir}/m4.sock`, "wait-event", "SHUTDOWN", "--timeout", "10s"]);
    const stopWaiter = startListener(["-s", `${dir}/m3.sock`, "wait-event", "STOP", "--timeout", "10s"]);
    await Promise.all([shutdownWaiter.ready, stopWaiter.ready]);
    const exec = await qmpctl(["-s", qemu.socket, "exec", "quit", "--wait-event", "SHUTDOWN", "--timeout", "10s"]);
    const shutdown = { event: "SHUTDOWN", data: { guest: false, reason: "host-qmp-quit" } };
    const [event] = exec.stdout.split("\n").slice(1).map((l) => JSON.parse(l || "null"));
    expect(event).toMatchObject(shutdown);
    expect(exec).toMatchObject({ code: 0, stdout: `{}\n${line(event)}`, stderr: "" });
    expect(await shutdownWaiter.result).toMatchObject({ code: 0, stdout: line(event), stderr: "" });
    expect(await stopWaiter.result).toMatchObject({
      code: 3,
      stdout: "",
      stderr: `qmpctl: ${dir}/m3.sock closed the connection while waiting for STOP\n`,
    });
  });
});

test("plain exec quit succeeds although QEMU closes the connection right after", async () => {
  const qemu = await startQemu();
  try {
    expect(await qmpctl(["-s", qemu.socket, "exec", "quit"])).toMatchObject({ code: 0, stdout: "{}\n", stderr: "" });
  } finally {
    await qemu.stop();
  }
});
