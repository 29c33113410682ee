/**
 * What qmpctl inherits from whatever starts it, as cron, systemd, `nohup`
 * and containers start it: signals ignored at start stay ignored, and as
 * PID 1 of a PID namespace (a container's first process, where the kernel
 * takes no default action) SIGTERM and SIGHUP end it as they do elsewhere.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { connectedPid1, startQmpctl, unsharesPid } from "./helpers/cli.ts";
import { hasConnectedUnixSocket, waitUntil } from "./helpers/process_state.ts";
import { startQemu, type TestQemu } from "./helpers/qemu.ts";

let qemu: TestQemu;
beforeAll(async () => {
  qemu = await startQemu();
});
afterAll(() => qemu?.stop());

describe.skipIf(!unsharesPid())("as PID 1 of a PID namespace (a container's first process)", () => {
  test.each([["SIGTERM", 143], ["SIGHUP", 129]] as const)(
    "%s ends a wait for an event with %d, as elsewhere (not ignored until --timeout)",
    async (signal, status) => {
      const running = startQmpctl(["-s", qemu.socket, "wait-event", "STOP", "--timeout", "20s"], { asPid1: true });
      process.kill(await connectedPid1(running), signal);
      const result = await running.result;
      expect({ code: result.code, stderr: result.stderr }).toEqual({ code: status, stderr: "" });
      expect(result.ms).toBeLessThan(10_000);
    },
  );
});

test("SIGHUP ignored at start (nohup) stays ignored while a command waits: --timeout ends it", async () => {
  const running = startQmpctl(["-s", qemu.socket, "wait-event", "STOP", "--timeout", "2s"], { ignoring: ["SIGHUP"] });
  await waitUntil(() => hasConnectedUnixSocket(running.child.pid), "qmpctl connected");
  running.child.kill("SIGHUP");
  const result = await running.result;
  expect(result).toMatchObject({ code: 124, stderr: "qmpctl: timed out waiting for STOP (--timeout 2s)\n" });
});
