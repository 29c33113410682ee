/**
 * A reader of stdout that leaves early (`qmpctl wait-event ... | head -1`)
 * ends every command that waits within about a second, quietly, with status
 * 0, and frees the monitor: not at the next event, nor at --timeout (124).
 * Against a real QEMU, which the test drives on its own monitor; qmpctl runs
 * in a shell pipeline as a user writes it. (`job wait` and `--wait-job`:
 * tests/job_qemu_test.ts.)
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { QMPCTL, qmpctl } from "./helpers/cli.ts";
import { startQemu, type TestQemu } from "./helpers/qemu.ts";

/** What a run in a pipeline showed: the shell's stdout (the reader's lines, then `status N`), stderr, and when. */
interface PipelineRun {
  stdout: string;
  stderr: string;
  /** ms from the start to the shell's end. */
  ms: number;
}

// -v's lines, after the target's address with several targets.
const WIRE_SENT = /^(\S+: )?> /, WIRE_RECEIVED = /^(\S+: )?< /, WIRE_ANSWER = /^(\S+: )?< \{"(return|error)"/;

/**
 * Run `qmpctl -v ARGS | READER` in bash; `ready` resolves once qmpctl has had
 * an answer to every request it sent, on each of its `targets` (it listens
 * from then on: see tests/helpers/listener.ts), `result` when the pipeline
 * has ended. stderr in the result is qmpctl's without its -v lines.
 */
function pipeline(
  args: string[],
  reader: string,
  targets = 1,
): { ready: Promise<void>; result: Promise<PipelineRun> } {
  const started = performance.now();
  const script = `"$0" -v "$@" | ${reader}; echo "status \${PIPESTATUS[0]}"`;
  const child = Bun.spawn(["bash", "-c", script, QMPCTL, ...args], { stdout: "pipe", stderr: "pipe" });
  const killer = setTimeout(() => child.kill("SIGKILL"), 40_000); // a safety net only
  let markReady = () => {};
  const ready = new Promise<void>((resolve) => (markReady = resolve));
  const stderr = (async () => {
    let text = "";
    let quiet: ReturnType<typeof setTimeout> | undefined;
    for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) {
      text += chunk;
      const lines = text.split("\n").slice(0, -1);
      // Per target (its label; none with one): a target answered does not say another has even connected.
      const count = (pattern: RegExp) => {
        const counts = new Map<string, number>();
        for (const match of lines.map((l) => l.match(pattern))) {
          if (match) counts.set(match[1] ?? "", (counts.get(match[1] ?? "") ?? 0) + 1);
        }
        return counts;
      };
      const sent = count(WIRE_SENT), answered = count(WIRE_ANSWER);
      clearTimeout(quiet);
      if (sent.size === targets && [...sent].every(([target, n]) => answered.get(target) === n)) {
        quiet = setTimeout(markReady, 100);
      }
    }
    clearTimeout(quiet);
    markReady();
    return text.split("\n").filter((l) => !WIRE_SENT.test(l) && !WIRE_RECEIVED.test(l)).join("\n");
  })();
  const result = Promise.all([new Response(child.stdout).text(), stderr, child.exited]).then(([stdout, stderr]) => {
    clearTimeout(killer);
    return { stdout, stderr, ms: performance.now() - started };
  });
  return { ready, result };
}

/** Whether a new client gets the monitor at `socket` (QEMU serves one at a time: the last one has left). */
async function monitorFree(socket: string): Promise<boolean> {
  const probe = await qmpctl(["-s", socket, "exec", "query-name", "--connect-timeout", "3s"]);
  return probe.code === 0 && probe.stdout === "{}\n";
}

const STOP_LINE = /^\{"timestamp":\{[^\n]*"event":"STOP"\}\n$/;

describe("a reader that leaves early", () => {
  let qemu: TestQemu;
  let second: string; // another monitor of the same QEMU: a second target
  beforeAll(async () => {
    second = join(mkdtempSync(join(tmpdir(), "qmpctl-reader-")), "second.sock");
    qemu = await startQemu({ extraArgs: ["-qmp", `unix:${second},server=on,wait=off`] });
  });
  afterEach(async () => {
    if ((await qemu.control.execute("query-status") as { running: boolean }).running === false) {
      await qemu.control.execute("cont");
    }
  });
  afterAll(async () => {
    await qemu?.stop();
    rmSync(dirname(second), { recursive: true, force: true });
  });

  test("wait-event STOP --count 2 | head -1: ends within seconds of head leaving, status 0, monitor free", async () => {
    const run = pipeline(["-s", qemu.socket, "wait-event", "STOP", "--count", "2", "--timeout", "20s"], "head -1");
    await run.ready;
    await qemu.control.execute("stop"); // one STOP: head takes it and leaves; the second never comes
    const { stdout, stderr, ms } = await run.result;
    const [event, status] = stdout.split(/(?<=\n)/);
    expect({ event, status, stderr }).toEqual({
      event: expect.stringMatching(STOP_LINE),
      status: "status 0\n",
      stderr: "",
    });
    expect(ms).toBeLessThan(10_000); // not the 20 s of --timeout
    expect(await monitorFree(qemu.socket)).toBe(true);
  }, 40_000);

  test("wait-event SHUTDOWN | true: a reader that never reads ends it too, status 0, quietly", async () => {
    const { stdout, stderr, ms } = await pipeline(
      ["-s", qemu.socket, "wait-event", "SHUTDOWN", "--timeout", "20s"],
      "true",
    )
      .result;
    expect({ stdout, stderr }).toEqual({ stdout: "status 0\n", stderr: "" });
    expect(ms).toBeLessThan(10_000);
    expect(await monitorFree(qemu.socket)).toBe(true);
  }, 40_000);

  test("exec stop --wait-event RESUME | head -1: head takes the return line; qmpctl ends, status 0", async () => {
    const args = ["-s", qemu.socket, "exec", "stop", "--wait-event", "RESUME", "--timeout", "20s"];
    const { stdout, stderr, ms } = await pipeline(args, "head -1").result;
    expect({ stdout, stderr }).toEqual({ stdout: "{}\nstatus 0\n", stderr: "" });
    expect(ms).toBeLessThan(10_000);
    expect(await monitorFree(qemu.socket)).toBe(true);
  }, 40_000);

  test(
    "several targets: wait-event STOP --count 2 -s A -s B | head -2 ends too, status 0, both monitors free",
    async () => {
      const args = ["-s", qemu.socket, "-s", second, "wait-event", "STOP", "--count", "2", "--timeout", "20s"];
      const run = pipeline(args, "head -2", 2);
      await run.ready;
      await qemu.control.execute("stop"); // one STOP on each monitor: head takes both lines and leaves
      const { stdout, stderr, ms } = await run.result;
      const lines = stdout.split(/(?<=\n)/);
      expect(lines).toHaveLength(3);
      const sockets = lines.slice(0, 2).map((line) => {
        expect(line).toMatch(/^\{"socket":"[^"]+","timestamp":\{[^\n]*"event":"STOP"\}\n$/);
        return JSON.parse(line).socket;
      });
      expect(sockets.sort()).toEqual([qemu.socket, second].sort());
      expect({ status: lines[2], stderr }).toEqual({ status: "status 0\n", stderr: "" });
      expect(ms).toBeLessThan(10_000);
      expect(await monitorFree(qemu.socket)).toBe(true);
      expect(await monitorFree(second)).toBe(true);
    },
    40_000,
  );

  test(
    "exec stop --wait-event STOP | true, QEMU up only after the reader left: stop is sent all the same",
    async () => {
      // The reader leaves ends the wait, not the command: qmpctl connects once QEMU is there and sends it.
      const late = join(dirname(second), "late.sock");
      const args = ["--wait-socket", "15s", "-s", late, "exec", "stop", "--wait-event", "STOP", "--timeout", "20s"];
      const run = pipeline(args, "true");
      await Bun.sleep(2500); // more than the second qmpctl takes to see its reader gone
      const started = await startQemu({ extraArgs: ["-qmp", `unix:${late},server=on,wait=off`] });
      try {
        const { stdout, stderr } = await run.result;
        expect({ stdout, stderr }).toEqual({ stdout: "status 0\n", stderr: "" });
        expect(await started.control.execute("query-status")).toMatchObject({ running: false, status: "paused" });
      } finally {
        await started.stop();
      }
    },
    40_000,
  );

  test("events --count 3 | head -1 (events as before): ends, status 0", async () => {
    const run = pipeline(["-s", qemu.socket, "events", "--count", "3", "--timeout", "20s"], "head -1");
    await run.ready;
    await qemu.control.execute("stop");
    const { stdout, stderr, ms } = await run.result;
    expect(stdout).toMatch(/^\{"timestamp":\{[^\n]*"event":"STOP"\}\nstatus 0\n$/);
    expect(stderr).toBe("");
    expect(ms).toBeLessThan(10_000);
  }, 40_000);

  test("proxy is not ended by its stdout's reader leaving: it goes on serving its clients", async () => {
    const shared = join(dirname(second), "shared.sock");
    // stdout a pipe whose reader has left at once; exec: the child is qmpctl itself.
    const script = `exec "$0" proxy -s "$1" --listen "$2" > >(exec true)`;
    const proxy = Bun.spawn(["bash", "-c", script, QMPCTL, second, shared], { stdout: "ignore", stderr: "pipe" });
    try {
      const decoder = new TextDecoder();
      let text = "";
      for await (const chunk of proxy.stderr) {
        text += decoder.decode(chunk, { stream: true });
        if (/^qmpctl: proxy: (sharing|serving) /m.test(text)) break;
      }
      await Bun.sleep(2500); // more than the second a waiting command takes to see its reader gone
      expect(proxy.exitCode).toBeNull();
      expect(await qmpctl(["-s", shared, "exec", "query-name", "--connect-timeout", "3s"])).toMatchObject({
        code: 0,
        stdout: "{}\n",
      });
    } finally {
      proxy.kill("SIGTERM");
      await proxy.exited;
    }
  }, 40_000);
});
