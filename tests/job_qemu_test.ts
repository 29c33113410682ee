/**
 * `qmpctl job wait` and `exec ... --wait-job` against a real QEMU's block
 * jobs: backups between null-co nodes (reads and writes cost nothing, so
 * `speed` alone sets the duration), one whose target fails every write
 * (blkdebug), and one cancelled from the other monitor.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { QMPCTL, qmpctl, qmpctlInShell, startQmpctl } from "./helpers/cli.ts";
import { ArgumentError, JobWatch, QmpClient } from "../lib/mod.ts";
import { startQemu, type TestQemu } from "./helpers/qemu.ts";
import { waitUntil } from "./helpers/process_state.ts";
import { startTerminal } from "./helpers/terminal.ts";

const MiB = 1024 * 1024;
const SIZE = 64 * MiB;
let qemu: TestQemu;
/** A third monitor, for a second qmpctl at once. */
let third: string;

beforeAll(async () => {
  third = join(mkdtempSync(join(tmpdir(), "qmpctl-jobs-")), "third.sock");
  // drive0 has a BlockBackend name, which the older commands' device argument names (and a job is named after).
  qemu = await startQemu({
    extraArgs: [
      ...["-drive", `if=none,id=drive0,driver=null-co,size=${SIZE},node-name=node0`],
      ...["-drive", `if=none,id=drive1,driver=null-co,size=${SIZE},node-name=node1`],
      ...["-qmp", `unix:${third},server=on,wait=off`],
    ],
  });
  for (const name of ["src", "dst", "dst1"]) {
    await qemu.control.execute("blockdev-add", { driver: "null-co", "node-name": name, size: SIZE });
  }
  // Every write to "bad" fails with EIO: the raw driver above blkdebug raises its write_aio event.
  await qemu.control.execute("blockdev-add", {
    driver: "raw",
    "node-name": "bad",
    file: { driver: "blkdebug", image: { driver: "null-co", size: SIZE }, "inject-error": [{ event: "write_aio" }] },
  });
});
afterAll(async () => {
  await qemu?.stop();
  rmSync(dirname(third), { recursive: true, force: true });
});
afterEach(() => cancelAll());

/** Start a backup from the test's own monitor; `speed` in bytes per second. */
function backup(id: string, speed: number, extra: Record<string, unknown> = {}): Promise<unknown> {
  return qemu.control.execute("blockdev-backup", {
    "job-id": id,
    device: "src",
    target: "dst",
    sync: "full",
    speed,
    ...extra,
  });
}

/** Wait (bounded) until the test's monitor sees job `id` in `status`. */
async function jobReaches(id: string, status: string): Promise<void> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const jobs = await qemu.control.execute("query-jobs") as { id: string; status: string }[];
    if (jobs.some((j) => j.id === id && j.status === status)) return;
    if (Date.now() > deadline) throw new Error(`job ${id} never reached ${status}: ${JSON.stringify(jobs)}`);
    await Bun.sleep(20);
  }
}

async function jobIds(): Promise<string[]> {
  return (await qemu.control.execute("query-jobs") as { id: string }[]).map((j) => j.id);
}

/** Cancel whatever a test left running, so the next one starts clean. */
async function cancelAll(): Promise<void> {
  for (const id of await jobIds()) await qemu.control.execute("job-cancel", { id }).catch(() => {});
  const deadline = Date.now() + 5000;
  while ((await jobIds()).length > 0 && Date.now() < deadline) {
    for (const id of await jobIds()) await qemu.control.execute("job-dismiss", { id }).catch(() => {});
    await Bun.sleep(20);
  }
}

describe("job wait", () => {
  test("follows a running backup to its end: exit 0, its final state on stdout, nothing on stderr", async () => {
    await backup("b1", 64 * MiB); // about 1 s
    const result = await qmpctl(["-s", qemu.socket, "job", "wait", "b1"]);
    expect(result).toMatchObject({ code: 0, stderr: "" });
    expect(JSON.parse(result.stdout)).toEqual({
      id: "b1",
      type: "backup",
      status: "concluded",
      "current-progress": SIZE,
      "total-progress": SIZE,
      result: "completed",
    });
    expect(result.stdout.split("\n")).toHaveLength(2);
  });

  test("a job cancelled from the other monitor: exit 1, 'cancelled' on stderr", async () => {
    // qmpctl starts the job itself, so it follows the job from its first moment.
    const running = startQmpctl([
      "-s",
      qemu.socket,
      "exec",
      "blockdev-backup",
      "job-id=b2",
      "device=src",
      "target=dst",
      "sync=full",
      `speed=${16 * MiB}`, // 4 s unless cancelled
      "--wait-job",
    ]);
    await jobReaches("b2", "running");
    await qemu.control.execute("block-job-cancel", { device: "b2" });
    const result = await running.result;
    expect(result).toMatchObject({ code: 1, stderr: "qmpctl: job b2 cancelled\n" });
    const [ret, final, end] = result.stdout.split("\n");
    expect(ret).toBe("{}");
    expect(JSON.parse(final)).toMatchObject({ id: "b2", status: "concluded", result: "cancelled" });
    expect(end).toBe("");
  });

  test("a job cancelled before job wait looks (auto-dismiss=false): still 'cancelled', not 'failed'", async () => {
    await backup("b5", 16 * MiB, { "auto-dismiss": false });
    await qemu.control.execute("job-cancel", { id: "b5" });
    await jobReaches("b5", "concluded");
    const result = await qmpctl(["-s", qemu.socket, "job", "wait", "b5"]);
    expect(result.code).toBe(1);
    expect(result.stderr).toStartWith("qmpctl: job b5 cancelled");
    expect(JSON.parse(result.stdout)).toMatchObject({ id: "b5", status: "concluded", result: "cancelled" });
  });

  test("job wait --dismiss, stdout closed: exit 74, and stderr says how the job ended and that it was dismissed", async () => {
    await backup("b6", 16 * MiB, { "auto-dismiss": false });
    await qemu.control.execute("job-cancel", { id: "b6" });
    await jobReaches("b6", "concluded");
    const result = await qmpctlInShell('exec "$0" -s "$1" job wait b6 --dismiss >&-', qemu.socket);
    expect(result).toEqual({
      code: 74,
      stdout: "",
      stderr: "qmpctl: could not write the output: stdout is closed (EBADF) " +
        "(job b6 cancelled: Operation canceled; --dismiss removed it from QEMU)\n",
    });
    expect(await jobIds()).toEqual([]); // its record is gone: stderr was the only place left to say how it ended
  });

  test("--timeout 1s on a long job: exit 124, stderr says the job keeps running, and it does", async () => {
    await backup("b3", 8 * MiB); // 8 s
    const result = await qmpctl(["-s", qemu.socket, "job", "wait", "b3", "--timeout", "1s"]);
    expect(result).toMatchObject({
      code: 124,
      stdout: "",
      stderr: "qmpctl: timed out waiting for job b3 to conclude; it keeps running in QEMU (--timeout 1s)\n",
    });
    expect(result.ms).toBeLessThan(3000);
    expect(await jobIds()).toEqual(["b3"]);
  });

  test("a job named that is not there is said at once, not after the others end (nor never, at --timeout)", async () => {
    await backup("b4", 8 * MiB); // 8 s
    const result = await qmpctl(["-s", qemu.socket, "job", "wait", "b4", "nosuch", "--timeout", "1s"]);
    expect(result).toMatchObject({
      code: 124,
      stdout: "",
      stderr: "qmpctl: job nosuch is not there to follow: it concluded and was dismissed before qmpctl looked, " +
        "or it never existed\n" +
        "qmpctl: timed out waiting for job b4 to conclude; it keeps running in QEMU (--timeout 1s)\n",
    });
  });

  test("SIGTERM while following, no progress line (a systemd stop): one line says the job keeps running, then 143", async () => {
    await backup("b6", 8 * MiB); // 8 s
    let stderr = "";
    const running = startQmpctl(["-s", qemu.socket, "-v", "job", "wait", "b6"], { onStderr: (t) => (stderr += t) });
    await waitUntil(() => /^< \{"return":\[/m.test(stderr), "job wait has queried the jobs");
    running.child.kill("SIGTERM");
    const result = await running.result;
    expect(result.signal).toBe("SIGTERM");
    expect(result.stderr.trimEnd().split("\n").at(-1)).toBe(
      "qmpctl: stopped: job b6 keeps running in QEMU; job-cancel stops it",
    );
    expect(await jobIds()).toEqual(["b6"]);
  });

  test("SIGTERM while following a paused job: the line says it is paused and what resumes it, not that it runs", async () => {
    await backup("b7", 8 * MiB);
    await qemu.control.execute("job-pause", { id: "b7" });
    await jobReaches("b7", "paused");
    let stderr = "";
    const running = startQmpctl(["-s", qemu.socket, "-v", "job", "wait", "b7"], { onStderr: (t) => (stderr += t) });
    await waitUntil(() => /^< \{"return":\[/m.test(stderr), "job wait has queried the jobs");
    running.child.kill("SIGTERM");
    const result = await running.result;
    expect(result.signal).toBe("SIGTERM");
    expect(result.stderr.trimEnd().split("\n").at(-1)).toBe(
      "qmpctl: stopped: job b7 is paused in QEMU (an I/O error with on-source-error/on-target-error=stop, " +
        "or job-pause: job-resume goes on); job-cancel stops it",
    );
  });

  test("--timeout with several jobs: the lines of those that ended are printed, stderr names those still running", async () => {
    await backup("f1", 8 * MiB);
    await backup("s1", 8 * MiB, { device: "node1", target: "dst1" });
    setTimeout(() => void qemu.control.execute("job-cancel", { id: "f1" }), 300);
    const result = await qmpctl(["-s", qemu.socket, "job", "wait", "f1", "s1", "--timeout", "2s"]);
    expect(result.code).toBe(124);
    expect(JSON.parse(result.stdout)).toMatchObject({ id: "f1", status: "concluded", result: "cancelled" });
    expect(result.stderr).toBe( // how f1 ended is said too, as without the timeout
      "qmpctl: job f1 cancelled\n" +
        "qmpctl: timed out waiting for job s1 to conclude; it keeps running in QEMU (--timeout 2s)\n",
    );
  });

  test("jobs that conclude together (one while another's end is told): a line each, each dismissed", async () => {
    for (const [id, target] of [["t1", "dst"], ["t2", "dst1"]]) {
      await backup(id, 4 * MiB, { target, "auto-dismiss": false });
    }
    await qemu.control.execute("blockdev-add", { driver: "null-co", "node-name": "dst2", size: SIZE });
    try {
      await backup("t3", 4 * MiB, { target: "dst2", "auto-dismiss": false });
      let stderr = "";
      const running = startQmpctl(["-s", qemu.socket, "-v", "job", "wait", "--dismiss", "t1", "t2", "t3"], {
        onStderr: (text) => (stderr += text),
      });
      await waitUntil(() => /^< \{"return":\[/m.test(stderr), "job wait has queried the jobs");
      // At full speed, all at once (pipelined): each ends while qmpctl may be telling of another.
      await Promise.all(
        ["t1", "t2", "t3"].map((id) => qemu.control.execute("block-job-set-speed", { device: id, speed: 0 })),
      );
      const result = await running.result;
      expect(result.code).toBe(0);
      expect(result.stdout.trimEnd().split("\n").map((line) => JSON.parse(line).id).sort()).toEqual(["t1", "t2", "t3"]);
      expect(await jobIds()).toEqual([]);
    } finally {
      await cancelAll();
      await qemu.control.execute("blockdev-del", { "node-name": "dst2" });
    }
  });

  test("each job's line (and how it failed) comes as it concludes, not when the last one does", async () => {
    await backup("f2", 8 * MiB);
    await backup("s2", 8 * MiB, { device: "node1", target: "dst1" });
    let stderr = "";
    const running = startQmpctl(["-s", qemu.socket, "-v", "job", "wait", "f2", "s2"], {
      onStderr: (text) => (stderr += text),
    });
    await waitUntil(() => /^< \{"return":\[/m.test(stderr), "job wait has queried the jobs");
    await qemu.control.execute("job-cancel", { id: "f2" });
    await waitUntil(() => stderr.includes("qmpctl: job f2 cancelled\n"), "f2's end is told");
    expect(await jobIds()).toContain("s2"); // still running
    await qemu.control.execute("job-cancel", { id: "s2" });
    const result = await running.result;
    expect(result.code).toBe(1);
    expect(result.stdout.trimEnd().split("\n").map((line) => JSON.parse(line).id)).toEqual(["f2", "s2"]);
  });

  test("a job that is not there: exit 4 with one line that says so", async () => {
    const result = await qmpctl(["-s", qemu.socket, "job", "wait", "nosuch"]);
    expect(result).toEqual(expect.objectContaining({
      code: 4,
      stdout: "",
      stderr:
        "qmpctl: job nosuch is not there to follow: it concluded and was dismissed before qmpctl looked, or it never existed\n",
    }));
  });

  test("a job that is not there beside one cancelled: exit 4, as the many-targets order has it (4 before 1)", async () => {
    await backup("c4", 8 * MiB, { "auto-dismiss": false }); // 8 s unless cancelled
    await jobReaches("c4", "running");
    await qemu.control.execute("job-cancel", { id: "c4" });
    await jobReaches("c4", "concluded");
    const result = await qmpctl(["-s", qemu.socket, "job", "wait", "c4", "nosuch"]);
    expect(result).toMatchObject({
      code: 4,
      stderr: "qmpctl: job nosuch is not there to follow: it concluded and was dismissed before qmpctl looked, " +
        "or it never existed\n" +
        "qmpctl: job c4 cancelled: Operation canceled\n",
    });
    expect(JSON.parse(result.stdout)).toMatchObject({ id: "c4", result: "cancelled" });
    await qemu.control.execute("job-dismiss", { id: "c4" });
  });

  test("without ID and without jobs: exit 0 at once, nothing printed", async () => {
    expect(await qmpctl(["-s", qemu.socket, "job", "wait"])).toMatchObject({ code: 0, stdout: "", stderr: "" });
  });

  test("--dismiss dismisses a concluded job that waits for it (auto-dismiss=false)", async () => {
    await backup("b4", 0, { "auto-dismiss": false });
    await jobReaches("b4", "concluded");
    const result = await qmpctl(["-s", qemu.socket, "job", "wait", "b4", "--dismiss"]);
    expect(result).toMatchObject({ code: 0, stderr: "" });
    expect(JSON.parse(result.stdout)).toMatchObject({ id: "b4", status: "concluded", result: "completed" });
    expect(await jobIds()).toEqual([]);
  });

  test("a job named twice is followed once: one line for it", async () => {
    await backup("b6", 0, { "auto-dismiss": false });
    await jobReaches("b6", "concluded");
    const result = await qmpctl(["-s", qemu.socket, "job", "wait", "b6", "b6"]);
    expect(result).toMatchObject({ code: 0, stderr: "" });
    expect(result.stdout.trimEnd().split("\n").map((line) => JSON.parse(line).id)).toEqual(["b6"]);
  });

  test("an unknown verb is a usage error", async () => {
    expect(await qmpctl(["-s", qemu.socket, "job", "list"])).toMatchObject({
      code: 2,
      stderr: "qmpctl: unknown job verb 'list' (job wait)\n",
    });
  });

  test("an empty job ID is a usage error (exit 2), not a job that is not there", async () => {
    expect(await qmpctl(["-s", qemu.socket, "job", "wait", "b1", ""])).toMatchObject({
      code: 2,
      stdout: "",
      stderr: "qmpctl: a job ID cannot be empty: job wait [ID ...]\n",
    });
  });

  test("--timeout on a ready mirror: stderr says it is ready and waits for job-complete, not that it keeps running", async () => {
    const result = await qmpctl([
      "-s",
      qemu.socket,
      "exec",
      "blockdev-mirror",
      "job-id=r1",
      "device=src",
      "target=dst",
      "sync=full",
      "--wait-job",
      "--timeout",
      "1s",
    ]);
    expect(result).toMatchObject({
      code: 124,
      stdout: "{}\n",
      stderr: "qmpctl: timed out waiting for job r1 to conclude; it is ready in QEMU (in sync with its target: " +
        "job-complete ends it) (--timeout 1s)\n",
    });
    expect(await jobIds()).toEqual(["r1"]); // still there: the bound ends the wait, not the job
  });

  test("--timeout on a pending job (auto-finalize=false): stderr says it waits for job-finalize", async () => {
    await backup("p2", 0, { "auto-finalize": false });
    await jobReaches("p2", "pending");
    expect(await qmpctl(["-s", qemu.socket, "job", "wait", "p2", "--timeout", "300ms"])).toMatchObject({
      code: 124,
      stderr: "qmpctl: timed out waiting for job p2 to conclude; it is pending in QEMU (auto-finalize=false: " +
        "job-finalize ends it) (--timeout 300ms)\n",
    });
  });

  test("--timeout with a running job and a ready one: each is said for what it is", async () => {
    await backup("s2", 8 * MiB);
    await qemu.control.execute("blockdev-mirror", { "job-id": "r2", device: "node1", target: "dst1", sync: "full" });
    await jobReaches("r2", "ready");
    expect(await qmpctl(["-s", qemu.socket, "job", "wait", "s2", "r2", "--timeout", "300ms"])).toMatchObject({
      code: 124,
      stderr: "qmpctl: timed out waiting for jobs s2, r2 to conclude; they keep running in QEMU, r2 ready " +
        "(in sync with its target: job-complete ends it) (--timeout 300ms)\n",
    });
  });
});

describe("a reader of stdout that leaves early", () => {
  /** `qmpctl ARGS | head -1` in sh: head's line, qmpctl's stderr then `status N`, and how long it all took. */
  async function headOne(...args: string[]) {
    const started = performance.now();
    const script = `{ "$0" "$@"; echo "status $?" >&2; } | head -1`;
    return { ...await qmpctlInShell(script, ...args), ms: performance.now() - started };
  }

  test("job wait A B | head -1: once head has A's line, qmpctl ends within seconds, status 0; B runs on", async () => {
    await backup("r1", 0, { "auto-dismiss": false }); // concluded at once, and kept: its line comes first
    await jobReaches("r1", "concluded");
    await backup("r2", 1 * MiB, { device: "node1", target: "dst1" }); // 64 s
    const result = await headOne("-s", qemu.socket, "job", "wait", "r1", "r2", "--timeout", "20s");
    expect(JSON.parse(result.stdout)).toMatchObject({ id: "r1", result: "completed" });
    expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 0, stderr: "status 0\n" }); // quietly
    expect(result.ms).toBeLessThan(10_000); // not the 20 s of --timeout
    expect(await qmpctl(["-s", qemu.socket, "exec", "query-name", "--connect-timeout", "3s"])).toMatchObject({
      code: 0,
      stdout: "{}\n",
    }); // the monitor is free
    expect(await jobIds()).toContain("r2"); // the pipeline chose to stop reading: the job is left to run
  }, 40_000);

  test("exec blockdev-backup ... --wait-job | head -1: head takes the return line; qmpctl ends, status 0", async () => {
    const result = await headOne(
      ...["-s", qemu.socket, "exec", "blockdev-backup", "job-id=r3", "device=src", "target=dst", "sync=full"],
      ...[`speed=${1 * MiB}`, "--wait-job", "--timeout", "20s"], // 64 s
    );
    expect(result).toMatchObject({ code: 0, stdout: "{}\n", stderr: "status 0\n" });
    expect(result.ms).toBeLessThan(10_000);
    expect(await qmpctl(["-s", qemu.socket, "exec", "query-name", "--connect-timeout", "3s"])).toMatchObject({
      code: 0,
      stdout: "{}\n",
    });
    expect(await jobIds()).toEqual(["r3"]);
  }, 40_000);
});

describe("exec --wait-job", () => {
  test("a stdout that cannot take the return line: exit 74, saying the job goes on unfollowed", async () => {
    const result = await qmpctlInShell(
      '"$0" -s "$1" exec blockdev-backup job-id=f1 device=src target=dst sync=full speed=1048576 --wait-job >/dev/full',
      qemu.socket,
    );
    expect(result).toEqual({
      code: 74,
      stdout: "",
      stderr: "qmpctl: could not write the output: no space left on the device (ENOSPC) (blockdev-backup was run: " +
        "QEMU answered it); the job it started goes on in QEMU, unfollowed (qmpctl job wait follows it)\n",
    });
    await jobReaches("f1", "running");
  });

  test("prints the return line, then the job's final state; exit 0", async () => {
    const result = await qmpctl([
      "-s",
      qemu.socket,
      "exec",
      "blockdev-backup",
      "job-id=e1",
      "device=src",
      "target=dst",
      "sync=full",
      `speed=${128 * MiB}`,
      "--wait-job",
    ]);
    expect(result).toMatchObject({ code: 0, stderr: "" });
    const [ret, final, end] = result.stdout.split("\n");
    expect(ret).toBe("{}");
    expect(JSON.parse(final)).toMatchObject({
      id: "e1",
      type: "backup",
      "current-progress": SIZE,
      result: "completed",
    });
    expect(end).toBe("");
  });

  test("a backup whose target fails at once: exit 1 with the I/O error, though the job was gone in milliseconds", async () => {
    const result = await qmpctl([
      "-s",
      qemu.socket,
      "exec",
      "blockdev-backup",
      "job-id=e2",
      "device=src",
      "target=bad",
      "sync=full",
      "--wait-job",
    ]);
    expect(result.code).toBe(1);
    expect(result.stderr).toBe("qmpctl: job e2 failed: Input/output error\n");
    const [ret, final] = result.stdout.split("\n");
    expect(ret).toBe("{}");
    expect(JSON.parse(final)).toMatchObject({ id: "e2", error: "Input/output error", result: "failed" });
    expect(await jobIds()).toEqual([]); // auto-dismissed: only the events told of it
  });

  test.each([
    ["the drive", "drive0"],
    ["the drive's node (QEMU still names the job after the drive)", "node0"],
  ])("the legacy device argument naming %s names the job when there is no job-id", async (_what, device) => {
    const result = await qmpctl(
      // At 256 MiB/s the backup runs a while: its filter is over the node when the command returns.
      ["-s", qemu.socket, "exec", "blockdev-backup", `device=${device}`, "target=dst", "sync=full", "--wait-job"]
        .concat(["speed=268435456"]),
    );
    expect(result).toMatchObject({ code: 0, stderr: "" });
    expect(JSON.parse(result.stdout.split("\n")[1])).toMatchObject({ id: "drive0", result: "completed" });
  });

  test("two clients starting jobs by node name at once: each follows the job its own command created", async () => {
    for (let round = 0; round < 3; round++) {
      const backup = (socket: string, node: string, target: string) =>
        qmpctl([
          "-s",
          socket,
          "exec",
          "blockdev-backup",
          `device=${node}`,
          `target=${target}`,
          "sync=full",
          "speed=268435456",
          "--wait-job",
        ]);
      const [a, b] = await Promise.all([backup(qemu.socket, "node0", "dst"), backup(third, "node1", "dst1")]);
      expect([a.code, b.code, a.stderr, b.stderr]).toEqual([0, 0, "", ""]);
      expect(JSON.parse(a.stdout.split("\n")[1])).toMatchObject({ id: "drive0", result: "completed" });
      expect(JSON.parse(b.stdout.split("\n")[1])).toMatchObject({ id: "drive1", result: "completed" });
    }
  });

  test("a command that QEMU refuses: exit 1 with its error at once, no waiting", async () => {
    const result = await qmpctl([
      "-s",
      qemu.socket,
      "exec",
      "blockdev-backup",
      "job-id=e4",
      "device=src",
      "target=nosuch",
      "sync=full",
      "--wait-job",
    ]);
    expect(result).toMatchObject({ code: 1, stdout: "" });
    expect(result.stderr).toMatch(/^qmpctl: GenericError: .*nosuch.*\n$/);
  });

  /** A QEMU of its own running a slow backup q1 that `qmpctl exec ... --wait-job` follows; then `end` it. */
  async function endWhileFollowed(end: (own: TestQemu) => Promise<unknown> | void, ...options: string[]) {
    const own = await startQemu();
    try {
      for (const name of ["a", "b"]) {
        await own.control.execute("blockdev-add", { driver: "null-co", "node-name": name, size: SIZE });
      }
      let log = "";
      const running = startQmpctl([
        "-s",
        own.socket,
        "-v",
        "exec",
        "blockdev-backup",
        "job-id=q1",
        "device=a",
        "target=b",
        "sync=full",
        `speed=${8 * MiB}`,
        "--wait-job",
        ...options,
      ], { onStderr: (text) => (log += text) });
      // Ended once qmpctl follows the job (its first query-jobs answered), not while it is still starting to.
      // (query-jobs' answer: a cold schema cache's query-qmp-schema answers with a list too)
      await waitUntil(() => /"execute":"query-jobs"[^]*\n< \{"return":\[/.test(log), "qmpctl follows the job");
      await end(own);
      const result = await running.result;
      const stderr = result.stderr.split("\n").filter((line) => !/^[<>] /.test(line)).join("\n"); // without -v's log
      return { ...result, stderr, socket: own.socket };
    } finally {
      await own.stop();
    }
  }

  test("QEMU killed while the job runs: exit 3, the connection named", async () => {
    const result = await endWhileFollowed((own) => own.process.kill("SIGKILL"));
    expect(result.code).toBe(3);
    expect(result.stdout).toBe("{}\n");
    expect(result.stderr).toBe(`qmpctl: ${result.socket} closed the connection while job q1 ran\n`);
  });

  for (const options of [[], ["--dismiss"]]) {
    test(`QEMU told to quit while the job runs ${options.join(" ")}: it cancels the job, its line says so, stderr why (exit 1)`, async () => {
      const result = await endWhileFollowed((own) => own.control.execute("quit"), ...options);
      expect(result.code).toBe(1);
      const [ret, final] = result.stdout.trimEnd().split("\n").map((line) => JSON.parse(line));
      expect(ret).toEqual({});
      expect(final).toMatchObject({ id: "q1", status: "concluded", result: "cancelled" }); // as QEMU says
      // Why, from the SHUTDOWN event before the cancel: no person cancelled it.
      expect(result.stderr).toBe("qmpctl: job q1 cancelled (QEMU is shutting down)\n");
    });
  }

  test("QEMU sent SIGTERM while the job runs: it cancels the job, stderr says QEMU is shutting down", async () => {
    const result = await endWhileFollowed((own) => own.process.kill("SIGTERM"));
    expect(result.code).toBe(1);
    expect(JSON.parse(result.stdout.trimEnd().split("\n")[1])).toMatchObject({ id: "q1", result: "cancelled" });
    expect(result.stderr).toBe("qmpctl: job q1 cancelled (QEMU is shutting down)\n");
  });

  test("--dismiss: the job started with auto-dismiss=false is followed, then dismissed", async () => {
    const result = await qmpctl([
      "-s",
      qemu.socket,
      "exec",
      "blockdev-backup",
      "job-id=e5",
      "device=src",
      "target=dst",
      "sync=full",
      "auto-dismiss=false",
      "--wait-job",
      "--dismiss",
    ]);
    expect(result).toMatchObject({ code: 0, stderr: "" });
    expect(JSON.parse(result.stdout.split("\n")[1])).toMatchObject({
      id: "e5",
      status: "concluded",
      result: "completed",
    });
    expect(await jobIds()).toEqual([]);
  });

  test("--dismiss or --progress without --wait-job: usage error", async () => {
    for (const [option, partners] of [["--dismiss", "--wait-job"], ["--progress", "--wait-job or --wait-migration"]]) {
      expect(await qmpctl(["-s", qemu.socket, "exec", "query-jobs", option])).toMatchObject({
        code: 2,
        stdout: "",
        stderr: `qmpctl: ${option} goes with ${partners}\n`,
      });
    }
  });

  test("the final line's members come in one order, from query-jobs or from events alike", async () => {
    const order = ["id", "type", "status", "current-progress", "total-progress", "result"];
    for (const [id, extra] of [["k1", {}], ["k2", { "auto-dismiss": false }]] as const) {
      await backup(id, 64 * MiB, extra); // about 1 s; k1 is gone from query-jobs once concluded: known by events
      const result = await qmpctl(["-s", qemu.socket, "job", "wait", id, "--timeout", "20s"]);
      expect(result.code).toBe(0);
      expect(Object.keys(JSON.parse(result.stdout))).toEqual(order);
    }
  });

  test("job-dismiss --wait-job: a usage error (a dismissed job is gone), nothing sent", async () => {
    await backup("d8", 64 * MiB, { "auto-dismiss": false });
    expect(await qmpctl(["-s", qemu.socket, "exec", "job-dismiss", "id=d8", "--wait-job"])).toMatchObject({
      code: 2,
      stdout: "",
      stderr: "qmpctl: --wait-job does not go with job-dismiss: a dismissed job is gone (job wait ID follows one)\n",
    });
    expect(await jobIds()).toContain("d8");
  });

  test("a command without job-id or device: usage error, nothing sent", async () => {
    const result = await qmpctl(["-s", qemu.socket, "exec", "query-jobs", "--wait-job"]);
    expect(result).toMatchObject({
      code: 2,
      stdout: "",
      stderr: "qmpctl: --wait-job needs the job's id in the arguments of query-jobs (job-id=ID, or device=ID)\n",
    });
  });

  test("an id that is no string, or a transaction's jobs: a usage error that says so, no job started", async () => {
    const words = ["blockdev-backup", "job-id:=5", "device=src", "target=dst", "sync=full", "--wait-job"];
    expect(await qmpctl(["-s", qemu.socket, "exec", ...words])).toMatchObject({
      code: 2,
      stderr: "qmpctl: --wait-job: blockdev-backup's job-id is 5, not a job's id (a string)\n",
    });
    const actions =
      'actions:=[{"type":"blockdev-backup","data":{"job-id":"t1","device":"src","target":"dst","sync":"full"}}]';
    expect(await qmpctl(["-s", qemu.socket, "exec", "transaction", actions, "--wait-job"])).toMatchObject({
      code: 2,
      stdout: "",
      stderr: "qmpctl: --wait-job follows the job of one command, not transaction's: job wait ID follows them\n",
    });
    expect(await jobIds()).toEqual([]);
  });

  test("job-cancel id=ID --wait-job follows that job to its end (the job-* commands name it id)", async () => {
    await backup("c9", 1 * MiB);
    const result = await qmpctl(["-s", qemu.socket, "exec", "job-cancel", "id=c9", "--wait-job", "--timeout", "20s"]);
    expect(result.code).toBe(1); // a cancelled job, as job wait reports it
    const [ret, final] = result.stdout.trimEnd().split("\n").map((line) => JSON.parse(line));
    expect(ret).toEqual({}); // job-cancel's return value
    expect(final).toMatchObject({ id: "c9", result: "cancelled" });
    expect(await qmpctl(["-s", qemu.socket, "exec", "job-cancel", "--wait-job"])).toMatchObject({
      code: 2,
      stderr: "qmpctl: --wait-job needs the job's id in the arguments of job-cancel (id=ID)\n",
    });
  });

  test("--progress-json: stderr has JSON lines whose percentage rises; stdout is as without it", async () => {
    const result = await qmpctl([
      "-s",
      qemu.socket,
      "exec",
      "blockdev-backup",
      "job-id=e3",
      "device=src",
      "target=dst",
      "sync=full",
      `speed=${64 * MiB}`,
      "--wait-job",
      "--progress-json",
    ]);
    expect(result.code).toBe(0);
    expect(result.stdout.split("\n")[0]).toBe("{}");
    const lines = result.stderr.trimEnd().split("\n").map((line) => JSON.parse(line));
    expect(lines.length).toBeGreaterThan(1);
    for (const line of lines) {
      expect(line).toMatchObject({ progress: "job", id: "e3", type: "backup", total: SIZE });
    }
    const percents = lines.map((l) => l.percent);
    expect(percents).toEqual([...percents].sort((a, b) => a - b));
    expect(percents.at(-1)).toBeGreaterThan(percents[0]);
    expect(lines.at(-1)).toHaveProperty("bytes-per-second");
  });

  test("a ready mirror paused (standby) is said to be paused when the bound runs out; two paused: they are", async () => {
    await qemu.control.execute("blockdev-mirror", { "job-id": "m9", device: "src", target: "dst", sync: "full" });
    await qemu.control.execute("blockdev-mirror", { "job-id": "m8", device: "node1", target: "dst1", sync: "full" });
    for (const id of ["m9", "m8"]) {
      await jobReaches(id, "ready");
      await qemu.control.execute("job-pause", { id });
      await jobReaches(id, "standby");
    }
    const why = "(an I/O error with on-source-error/on-target-error=stop, or job-pause: job-resume goes on)";
    expect(await qmpctl(["-s", qemu.socket, "job", "wait", "m9", "--timeout", "500ms"])).toMatchObject({
      code: 124,
      stderr: `qmpctl: timed out waiting for job m9 to conclude; it is paused in QEMU ${why} (--timeout 500ms)\n`,
    });
    expect(await qmpctl(["-s", qemu.socket, "job", "wait", "m9", "m8", "--timeout", "500ms"])).toMatchObject({
      code: 124,
      stderr:
        `qmpctl: timed out waiting for jobs m9, m8 to conclude; they are paused in QEMU ${why} (--timeout 500ms)\n`,
    });
  });

  test("--progress-json of a paused job: rate 0 and no time left (nothing moves), not a rate fading away", async () => {
    await backup("p1", 8 * MiB);
    await qemu.control.execute("job-pause", { id: "p1" });
    await jobReaches("p1", "paused");
    const result = await qmpctl(["-s", qemu.socket, "job", "wait", "p1", "--progress-json", "--timeout", "1s"]);
    expect(result.code).toBe(124);
    const lines = result.stderr.split("\n").filter((line) => line.startsWith("{")).map((line) => JSON.parse(line));
    expect(lines.length).toBeGreaterThan(1);
    for (const line of lines) {
      expect(line).toMatchObject({ id: "p1", status: "paused", "bytes-per-second": 0 });
      expect(line).not.toHaveProperty("seconds-left");
    }
    // The bound's message says why the job did not end: it is paused, and waits for job-resume.
    expect(result.stderr.split("\n").filter((line) => line.startsWith("qmpctl:"))).toEqual([
      "qmpctl: timed out waiting for job p1 to conclude; it is paused in QEMU (an I/O error with " +
      "on-source-error/on-target-error=stop, or job-pause: job-resume goes on) (--timeout 1s)",
    ]);
  });
});

describe("several targets (-s repeated or a glob; here a glob of one socket)", () => {
  test("exec --wait-job and job wait: every line carries socket, stderr names the target", async () => {
    const fleet = mkdtempSync(join(tmpdir(), "qmpctl-job-fleet-"));
    try {
      const vm = join(fleet, "vm1.qmp");
      symlinkSync(qemu.socket, vm);
      const failed = await qmpctl([
        "-s",
        join(fleet, "*.qmp"),
        "exec",
        "blockdev-backup",
        "job-id=f1",
        "device=src",
        "target=bad",
        "sync=full",
        "--wait-job",
      ]);
      expect(failed.code).toBe(1);
      expect(failed.stderr).toBe(`qmpctl: ${vm}: job f1 failed: Input/output error\n`);
      const [ret, final] = failed.stdout.trimEnd().split("\n").map((line) => JSON.parse(line));
      expect(ret).toEqual({ socket: vm, return: {} });
      expect(final).toMatchObject({ socket: vm, id: "f1", result: "failed" });

      await backup("f2", 64 * MiB);
      const waited = await qmpctl(["-s", join(fleet, "*.qmp"), "job", "wait", "f2", "--progress-json"]);
      expect(waited.code).toBe(0);
      expect(JSON.parse(waited.stdout)).toMatchObject({ socket: vm, id: "f2", result: "completed" });
      const progress = waited.stderr.trimEnd().split("\n").map((line) => JSON.parse(line));
      expect(progress.length).toBeGreaterThan(0);
      for (const line of progress) expect(line).toMatchObject({ socket: vm, id: "f2" });

      const gone = await qmpctl(["-s", join(fleet, "*.qmp"), "job", "wait", "nosuch"]);
      const reason = "job nosuch is not there to follow: it concluded and was dismissed before qmpctl looked, " +
        "or it never existed";
      expect(gone).toMatchObject({ // its failure line, as for a target that failed otherwise; exit 4 as for one
        code: 4,
        stdout: `${JSON.stringify({ socket: vm, failure: reason })}\n`,
        stderr: `qmpctl: ${vm}: ${reason}\n`,
      });
    } finally {
      rmSync(fleet, { recursive: true, force: true });
    }
  });
});

describe("the progress line", () => {
  test("on a terminal: the percentage rises in place, and the line is gone at the end", async () => {
    const terminal = await startTerminal([
      QMPCTL,
      "-s",
      qemu.socket,
      "exec",
      "blockdev-backup",
      "job-id=t1",
      "device=src",
      "target=dst",
      "sync=full",
      `speed=${32 * MiB}`, // 2 s
      "--wait-job",
    ], { columns: 80, env: { NO_COLOR: "1" } });
    try {
      const percent = (screen: string[]) => Number(/backup t1 +(\d+)%/.exec(screen.join("\n"))?.[1] ?? NaN);
      const first = percent(await terminal.waitFor("a progress line", (s) => percent(s) >= 0));
      const later = percent(await terminal.waitFor("the percentage to rise", (s) => percent(s) > first + 10));
      expect(later).toBeGreaterThan(first);
      const screen = await terminal.screen();
      expect(screen.find((row) => row.includes("backup t1"))).toMatch(
        /^\[[#-]{20}\] backup t1 +\d+% {2}[\d.]+ MiB\/64\.0 MiB/,
      );
      expect(screen.every((row) => row.length <= 80)).toBe(true);
      expect(await terminal.exitStatus(6000)).toBe(0);
      const [ret, ...final] = await terminal.screen(); // the final line is wider than the terminal: it wraps
      expect(ret).toBe("{}");
      expect(JSON.parse(final.join(""))).toMatchObject({ id: "t1", result: "completed" });
    } finally {
      await terminal.close();
    }
  });

  test("on a narrow terminal the line fits its width: the bar and the figures go first", async () => {
    await backup("t2", 16 * MiB);
    const terminal = await startTerminal([QMPCTL, "-s", qemu.socket, "job", "wait", "t2", "--timeout", "1s"], {
      columns: 24,
    });
    try {
      const screen = await terminal.waitFor("a progress line", (s) => s.some((row) => row.includes("%")));
      expect(screen).toEqual([expect.stringMatching(/^backup t2 +\d+%$/)]);
      expect(await terminal.exitStatus(4000)).toBe(124);
    } finally {
      await terminal.close();
    }
  });

  test("no progress bytes at all when stderr is a file, and --progress draws them there anyway", async () => {
    const dir = mkdtempSync(join(tmpdir(), "qmpctl-progress-"));
    try {
      // Each run's job lasts until `drawn` is seen in the log, then ends at once (unthrottled): a run takes
      // ~0.1 s, not the 1 s of a fixed speed. Without `drawn` (the run that must draw nothing, so that nothing
      // shows when it could have), 1 s.
      const run = async (extra: string[], env: Record<string, string> = { NO_COLOR: "1" }, drawn?: RegExp) => {
        await backup("f1", drawn ? 8 * MiB : 64 * MiB); // 8 s, cut short; or 1 s
        const log = join(dir, "stderr");
        rmSync(log, { force: true }); // the last run's, which `drawn` would find
        const child = Bun.spawn([
          "sh",
          "-c",
          `"$@" 2>'${log}'`,
          "sh",
          QMPCTL,
          "-s",
          qemu.socket,
          "job",
          "wait",
          ...extra,
        ], {
          stdout: "pipe",
          env: { ...process.env, ...env },
        });
        if (drawn) {
          await waitUntil(() => existsSync(log) && drawn.test(readFileSync(log, "utf8")), `${drawn} in the log`);
          await qemu.control.execute("block-job-set-speed", { device: "f1", speed: 0 });
        }
        const stdout = await new Response(child.stdout).text();
        return { code: await child.exited, stdout, stderr: readFileSync(log, "utf8") };
      };
      const quiet = await run([]);
      expect(quiet).toMatchObject({ code: 0, stderr: "" });
      expect(JSON.parse(quiet.stdout)).toMatchObject({ id: "f1", result: "completed" });
      const line = /backup f1 +\d+%/;
      const forced = await run(["--progress"], undefined, line);
      expect(forced.code).toBe(0);
      expect(forced.stderr).toMatch(/^\r\[[#-]+\] backup f1 +\d+%/);
      expect(forced.stderr.endsWith("\r\x1b[K")).toBe(true); // erased at the end
      expect(forced.stderr).not.toContain("\x1b[32m"); // NO_COLOR
      expect(forced.stdout).toBe(quiet.stdout); // the same job again: the same final line
      // colour is a terminal's: none in a file
      const coloured = await run(["--progress"], { NO_COLOR: "", TERM: "xterm" }, line);
      expect(coloured.stderr).toMatch(/^\r\[[#-]+\] backup f1 +\d+%/);
      expect(coloured.stderr).not.toContain("\x1b[32m");
      const dumb = await run(["--progress"], { TERM: "dumb" }, line); // no escapes at all: blanks erase
      expect(dumb.code).toBe(0);
      expect(dumb.stderr).toMatch(/^\r\[[#-]+\] backup f1 +\d+%/);
      expect(dumb.stderr).not.toContain("\x1b");
      expect(dumb.stderr.endsWith(`\r${" ".repeat(77)}\r`)).toBe(true); // 80 columns, less 3
      const narrow = await run(["--progress"], { TERM: "dumb", COLUMNS: "2" }, /\r/); // no room for a line at all
      expect({ code: narrow.code, stdout: narrow.stdout }).toEqual({ code: 0, stdout: quiet.stdout });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  for (const signal of ["SIGTERM", "SIGHUP"] as const) {
    test(`${signal} (timeout(1), a closed window) erases the line as Ctrl-C does, then qmpctl dies of it`, async () => {
      const dir = mkdtempSync(join(tmpdir(), "qmpctl-progress-"));
      const log = join(dir, "stderr");
      try {
        await backup("s1", 16 * MiB); // 4 s
        const child = Bun.spawn(
          ["sh", "-c", `exec "$@" 2>'${log}'`, "sh", QMPCTL, "-s", qemu.socket, "job", "wait", "s1", "--progress"],
          { stdout: "pipe", env: { ...process.env, NO_COLOR: "1" } },
        );
        await waitUntil(() => existsSync(log) && /backup s1 +\d+%/.test(readFileSync(log, "utf8")), "a line drawn");
        child.kill(signal);
        expect(await new Response(child.stdout).text()).toBe("");
        await child.exited;
        expect(child.signalCode).toBe(signal);
        // The line erased, then one line says the job goes on (it was not cancelled).
        expect(readFileSync(log, "utf8")).toEndWith(
          "\r\x1b[Kqmpctl: stopped: job s1 keeps running in QEMU; job-cancel stops it\n",
        );
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});

describe("JobWatch (the library)", () => {
  test("follows once: a second follow is the caller's ArgumentError, not a lost connection", async () => {
    const client = await QmpClient.connect(qemu.socket);
    try {
      const watch = new JobWatch(client);
      await backup("w1", 1024 * MiB);
      expect((await watch.follow(["w1"], { signal: AbortSignal.timeout(20_000) })).concluded[0].result)
        .toBe("completed");
      const again = await watch.follow(["w1"]).catch((error) => error);
      expect(again).toBeInstanceOf(ArgumentError);
      expect(again.message).toBe("a JobWatch follows once: create one before each command to follow");
    } finally {
      await client.close();
    }
  });
});
