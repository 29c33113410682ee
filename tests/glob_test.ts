/** Name globs match in linear time: a hostile glob can neither hang `wait-event` nor stall `commands`. */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import fc from "fast-check";
import { globMatcher, isGlob } from "../lib/glob.ts";
import { qmpctl } from "./helpers/cli.ts";
import { type FakeServer, fakeServer } from "./helpers/fake_server.ts";
import { startQemu, type TestQemu } from "./helpers/qemu.ts";

/** The obvious definition, as a regular expression: right on small inputs, exponential on hostile ones. */
function reference(glob: string, name: string): boolean {
  const body = glob.replace(/[.+^${}()|[\]\\]/g, "\\$&").replaceAll("*", ".*").replaceAll("?", ".");
  return new RegExp(`^${body}$`, "s").test(name);
}

describe("globMatcher", () => {
  test("stars, question marks, exact names", () => {
    expect(globMatcher("BLOCK_JOB_*")("BLOCK_JOB_COMPLETED")).toBe(true);
    expect(globMatcher("BLOCK_JOB_*")("BLOCK_IO_ERROR")).toBe(false);
    expect(globMatcher("*_JOB_*")("BLOCK_JOB_READY")).toBe(true);
    expect(globMatcher("query-?pu*")("query-cpus-fast")).toBe(true);
    expect(globMatcher("query-?pu?*")("query-cpu")).toBe(false);
    expect(globMatcher("STOP")("STOP")).toBe(true);
    expect(globMatcher("STOP")("STOPPED")).toBe(false);
    expect(globMatcher("a*a")("a")).toBe(false);
    expect(globMatcher("*")("")).toBe(true);
    expect(isGlob("A?")).toBe(true);
    expect(isGlob("A.B")).toBe(false);
  });

  test("agrees with the regular-expression definition on random globs and names", () => {
    const glob = fc.stringMatching(/^[ab*?]{0,8}$/);
    const name = fc.stringMatching(/^[ab]{0,10}$/);
    fc.assert(fc.property(glob, name, (g, n) => globMatcher(g)(n) === reference(g, n)), { numRuns: 20_000 });
  });

  test("a glob of many stars against a long name that does not match takes linear time", () => {
    const started = performance.now();
    const matches = globMatcher("*".repeat(40) + "x");
    for (let i = 0; i < 100; i++) expect(matches("a".repeat(10_000))).toBe(false);
    expect(performance.now() - started).toBeLessThan(5000);
  });
});

describe("through the binary", () => {
  let server: FakeServer;
  let qemu: TestQemu;
  beforeAll(async () => {
    server = fakeServer(async (c) => {
      await c.handshake();
      let open = true;
      void c.closed.then(() => (open = false));
      // The same event again and again until the client leaves: whenever it listens, one comes.
      while (open) {
        c.sendJson({ event: "a".repeat(60), data: {}, timestamp: { seconds: 1, microseconds: 0 } });
        await Bun.sleep(20);
      }
    });
    qemu = await startQemu();
  });
  afterAll(async () => {
    server.stop();
    await qemu.stop();
  });

  test("wait-event '**************x' --timeout 1 gives up after its second (exit 124)", async () => {
    const result = await qmpctl(["-s", server.path, "wait-event", "**************x", "--timeout", "1"], {
      killAfterMs: 15_000,
    });
    expect(result).toMatchObject({ code: 124, stdout: "", signal: null });
    expect(result.stderr).toStartWith("qmpctl: timed out");
    expect(result.ms).toBeLessThan(10_000);
  }, 20_000);

  test("commands '**********x' answers in time with the names that end in x", async () => {
    const result = await qmpctl(["-s", qemu.socket, "commands", "**********x"], { killAfterMs: 15_000 });
    expect(result).toMatchObject({ code: 0, stderr: "" });
    const names = JSON.parse(result.stdout) as string[];
    expect(names.every((name) => name.endsWith("x"))).toBe(true);
    expect(result.ms).toBeLessThan(10_000);
  }, 20_000);
});
