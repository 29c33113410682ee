/** lib/abort.ts's timed waits: sleep (a pause a signal cuts short) and within (a value, or undefined after ms). */
import { describe, expect, test } from "bun:test";
import { sleep, within } from "../lib/abort.ts";
import { AbortedError, TimeoutError } from "../lib/errors.ts";

const abortModule = new URL("../lib/abort.ts", import.meta.url).pathname;

/**
 * Run `body` (after `import { sleep, within }`) in a process of its own: its
 * stdout, and how long it took to exit, which a timer left behind prolongs.
 */
function runAlone(body: string): { stdout: string; stderr: string; code: number | null; ms: number } {
  const script = `import { sleep, within } from ${JSON.stringify(abortModule)};\n${body}`;
  const started = performance.now();
  const run = Bun.spawnSync([process.execPath, "-e", script], { stdout: "pipe", stderr: "pipe" });
  return {
    stdout: run.stdout.toString(),
    stderr: run.stderr.toString(),
    code: run.exitCode,
    ms: performance.now() - started,
  };
}

describe("sleep", () => {
  test("resolves after ms", async () => {
    const started = performance.now();
    await sleep(30, new AbortController().signal, "the pause");
    expect(performance.now() - started).toBeGreaterThanOrEqual(25);
    await sleep(1, undefined, "the pause"); // no signal: a plain pause
  });

  test("a signal that aborts first rejects with AbortedError naming what was awaited", async () => {
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 10);
    const error = await sleep(10_000, controller.signal, "the pause").catch((e) => e);
    expect(error).toBeInstanceOf(AbortedError);
    expect(error.message).toBe("aborted while waiting for the pause");
  });

  test("a signal that times out rejects with TimeoutError; one aborted already, at once", async () => {
    const timedOut = await sleep(10_000, AbortSignal.timeout(10), "the pause").catch((e) => e);
    expect(timedOut).toBeInstanceOf(TimeoutError);
    expect(timedOut.message).toBe("timed out waiting for the pause");
    const started = performance.now();
    const aborted = await sleep(10_000, AbortSignal.abort(), "the pause").catch((e) => e);
    expect(aborted).toBeInstanceOf(AbortedError);
    expect(performance.now() - started).toBeLessThan(1000);
  });

  test("`what` as a function makes the error", async () => {
    const error = await sleep(10_000, AbortSignal.abort(), (signal) => new Error(`own: ${signal.aborted}`))
      .catch((e) => e);
    expect(error.message).toBe("own: true");
  });

  test("the timer goes with the abort: the process exits at once, not when the pause would have ended", () => {
    const run = runAlone(`
      const controller = new AbortController();
      setTimeout(() => controller.abort(), 20);
      const error = await sleep(10_000, controller.signal, "the pause").catch((e) => e);
      const already = await sleep(10_000, AbortSignal.abort(), "the pause").catch((e) => e);
      console.log(error.name, already.name);`);
    expect({ code: run.code, stdout: run.stdout, stderr: run.stderr }).toEqual({
      code: 0,
      stdout: "AbortedError AbortedError\n",
      stderr: "",
    });
    expect(run.ms).toBeLessThan(5000);
  });
});

describe("within", () => {
  test("the value when the work settles sooner", async () => {
    expect(await within(Promise.resolve(42), 1000)).toBe(42);
    expect(await within(new Promise((resolve) => setTimeout(() => resolve("soon"), 10)), 1000)).toBe("soon");
  });

  test("undefined after ms when the work has not settled; the work is left to run", async () => {
    const { promise, resolve } = Promise.withResolvers<string>();
    const started = performance.now();
    expect(await within(promise, 30)).toBeUndefined();
    expect(performance.now() - started).toBeGreaterThanOrEqual(25);
    resolve("late");
    expect(await promise).toBe("late");
  });

  test("the work's error when it fails sooner; none surfaces when it fails later", async () => {
    const error = await within(Promise.reject(new Error("failed")), 1000).catch((e) => e);
    expect(error.message).toBe("failed");
    const late = new Promise((_, reject) => setTimeout(() => reject(new Error("late")), 20));
    expect(await within(late, 1)).toBeUndefined();
    await new Promise((resolve) => setTimeout(resolve, 40)); // an unhandled rejection would fail the test here
  });

  test("the timer goes when the work settles first: the process exits at once, not after ms", () => {
    const run = runAlone(`
      console.log(await within(Promise.resolve(7), 10_000), await within(Promise.reject(new Error("x")), 10_000)
        .catch((e) => e.message));`);
    expect({ code: run.code, stdout: run.stdout, stderr: run.stderr }).toEqual({
      code: 0,
      stdout: "7 x\n",
      stderr: "",
    });
    expect(run.ms).toBeLessThan(5000);
  });
});
