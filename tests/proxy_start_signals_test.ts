/**
 * A signal that stops `qmpctl proxy` while it is still starting leaves
 * nothing behind (the private directory its socket is bound in, the socket
 * linked into place, launch mode's directory for QEMU's monitor, QEMU
 * itself) and exits as a stop asked for: 0 for SIGTERM and SIGHUP, 130 for
 * SIGINT. Each moment is found by watching the file system (or the
 * process's signal mask) without yielding, and the signal sent as soon as it
 * is seen: some last a millisecond. Only in the first milliseconds, before
 * qmpctl's code runs and before it has made anything, does SIGTERM end it
 * by its default action (143).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type RunningProxy, startProxy } from "./helpers/proxy.ts";
import { startQemu, type TestQemu } from "./helpers/qemu.ts";
import { alive, processesNaming } from "./helpers/process_state.ts";
import { scratchDir } from "./helpers/scratch.ts";

type StopSignal = "SIGTERM" | "SIGHUP" | "SIGINT";

/** How a stop asked for ends the proxy: 0 (a service stopped), or death by SIGINT (130) as any command. */
const STOPPED: Record<StopSignal, { code: number; signal: string | null }> = {
  SIGTERM: { code: 0, signal: null },
  SIGHUP: { code: 0, signal: null },
  SIGINT: { code: 130, signal: "SIGINT" },
};

/**
 * Spin until `seen()` holds, without yielding (a moment may last a
 * millisecond): true then; false once `pid` has ended, `gone()` holds (the
 * moment has passed unseen) or 5 s have passed.
 */
function spinUntil(pid: number, seen: () => boolean, gone: () => boolean = () => false): boolean {
  const deadline = performance.now() + 5000;
  for (let i = 0;; i++) {
    if (seen()) return true;
    if (gone() || performance.now() > deadline) return false;
    if (i % 64 === 0 && !alive(pid)) return false;
  }
}

/** Whether `pid` handles `signal` (its bit in SigCgt of /proc/PID/status). */
function catches(pid: number, signal: number): boolean {
  try {
    const mask = /^SigCgt:\s*([0-9a-f]+)/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1];
    return mask !== undefined && (BigInt(`0x${mask}`) & (1n << BigInt(signal - 1))) !== 0n;
  } catch {
    return false;
  }
}

/** The entries of `dir` (with dot files). */
function entries(dir: string): string[] {
  try {
    return readdirSync(dir).sort();
  } catch {
    return [];
  }
}

async function outcome(proxy: RunningProxy) {
  const result = await proxy.result;
  return { code: result.code, signal: result.signal as string | null };
}

describe("proxy -s UPSTREAM --listen PATH, stopped as it starts", () => {
  let qemu: TestQemu;
  beforeAll(async () => {
    qemu = await startQemu();
  });
  afterAll(() => qemu?.stop());

  /** A proxy of the test QEMU on `dir`/pt.sock, and what the test watches. */
  function start() {
    const dir = scratchDir("qmpctl-proxy-start-");
    const listen = join(dir, "pt.sock");
    const proxy = startProxy(["-s", qemu.socket, "--listen", listen], 20_000);
    const privateDir = () => entries(dir).some((name) => name.startsWith(".qmpctl-listen-"));
    return { dir, listen, proxy, pid: proxy.child.pid, privateDir, linked: () => existsSync(listen) };
  }

  /** Stop it with `signal`: the status a stop asked for has, and nothing left beside the socket's path. */
  async function expectStoppedClean(run: ReturnType<typeof start>, signal: StopSignal) {
    process.kill(run.pid, signal);
    expect({ ...await outcome(run.proxy), left: entries(run.dir) }).toEqual({ ...STOPPED[signal], left: [] });
  }

  test("while it waits for the upstream (--wait-socket): exit 0 at once", async () => {
    const dir = scratchDir("qmpctl-proxy-start-");
    const proxy = startProxy(["-s", join(dir, "later.qmp"), "--wait-socket", "20s", "--listen", join(dir, "pt.sock")]);
    expect(spinUntil(proxy.child.pid, () => catches(proxy.child.pid, 15))).toBe(true);
    await Bun.sleep(100); // retrying the missing socket
    const stopping = performance.now();
    proxy.child.kill("SIGTERM");
    expect(await outcome(proxy)).toEqual(STOPPED.SIGTERM);
    expect(performance.now() - stopping).toBeLessThan(5000);
    expect(entries(dir)).toEqual([]);
    expect(proxy.stderr()).toBe(`qmpctl: proxy: SIGTERM: stopped before sharing ${join(dir, "later.qmp")}\n`);
  });

  // The private directory lives a few milliseconds: tried until seen twice (almost always the first two tries).
  for (const signal of ["SIGTERM", "SIGHUP"] as const) {
    test(`${signal} the moment its private directory appears beside the path: exit 0, nothing left`, async () => {
      let seen = 0;
      for (let attempt = 0; attempt < 10 && seen < 2; attempt++) {
        const run = start();
        if (spinUntil(run.pid, run.privateDir, run.linked)) seen++;
        await expectStoppedClean(run, signal);
      }
      expect(seen).toBe(2);
    });
  }

  for (const signal of ["SIGTERM", "SIGHUP", "SIGINT"] as const) {
    test(`${signal} the moment the socket is linked into place: ${STOPPED[signal].code}, nothing left`, async () => {
      const run = start();
      expect(spinUntil(run.pid, run.linked)).toBe(true);
      await expectStoppedClean(run, signal);
    });
  }

  test("SIGTERM at moments spread over the start, from the first it handles it: exit 0, nothing left", async () => {
    // How long it takes from handling SIGTERM to serving (under load too), measured once, then cut in steps.
    const first = start();
    expect(spinUntil(first.pid, () => catches(first.pid, 15))).toBe(true);
    const handling = performance.now();
    expect(spinUntil(first.pid, first.linked)).toBe(true);
    const span = performance.now() - handling;
    await expectStoppedClean(first, "SIGTERM");
    for (let step = 0; step <= 10; step++) {
      const run = start();
      expect(spinUntil(run.pid, () => catches(run.pid, 15))).toBe(true);
      const until = performance.now() + span * step / 8; // the last ones once it serves
      spinUntil(run.pid, () => performance.now() >= until);
      await expectStoppedClean(run, "SIGTERM");
    }
  });

  test("SIGTERM before qmpctl's code runs: death by it (143), nothing made", async () => {
    const run = start();
    process.kill(run.pid, "SIGTERM");
    expect(await outcome(run.proxy)).toEqual({ code: 143, signal: "SIGTERM" });
    expect(entries(run.dir)).toEqual([]);
  });
});

describe("proxy --listen PATH -- qemu ..., stopped as it starts", () => {
  const qemuLine = ["qemu-system-x86_64", "-nodefaults", "-display", "none", "-machine", "none"];

  const dirs: string[] = [];
  afterAll(() => {
    for (const dir of dirs) {
      for (const pid of processesNaming(dir)) process.kill(pid, "SIGKILL"); // a failed test's QEMU
      rmSync(dir, { recursive: true, force: true });
    }
  });

  /**
   * The proxy with its TMPDIR (where QEMU's monitor socket goes) in a directory of the test's, near /
   * (the socket's path must fit a UNIX socket address).
   */
  function launch() {
    const dir = mkdtempSync(join(tmpdir(), "qmpctl-ls-"));
    dirs.push(dir);
    const tmp = join(dir, "tmp");
    mkdirSync(tmp);
    const listen = join(dir, "vm.sock");
    const proxy = startProxy(["--listen", listen, "--", ...qemuLine], 20_000, { TMPDIR: tmp });
    return { dir, tmp, listen, proxy, pid: proxy.child.pid };
  }

  /** How it ended, what is left beside the socket's path and in its TMPDIR, and QEMUs left running there. */
  async function ending(run: ReturnType<typeof launch>) {
    return {
      ...await outcome(run.proxy),
      left: entries(run.dir).filter((name) => name !== "tmp"),
      leftInTmp: entries(run.tmp),
      qemus: processesNaming(run.tmp).length, // a QEMU left running with its monitor gone
    };
  }
  const CLEAN = { left: [], leftInTmp: [], qemus: 0 };

  // QEMU is not started, or is, and stopped by the SIGTERM passed on (which may kill it before it handles it).
  test("SIGTERM the moment its directory for QEMU's monitor appears: exit 0, nothing left, no QEMU", async () => {
    const run = launch();
    expect(spinUntil(run.pid, () => entries(run.tmp).length > 0)).toBe(true);
    run.proxy.child.kill("SIGTERM");
    expect(await ending(run)).toEqual({ ...STOPPED.SIGTERM, ...CLEAN });
  });

  test("SIGTERM the moment QEMU's monitor socket is linked: exit 0, nothing left, no QEMU", async () => {
    const run = launch();
    const monitor = () => entries(run.tmp).some((name) => existsSync(join(run.tmp, name, "monitor.sock")));
    expect(spinUntil(run.pid, monitor)).toBe(true);
    run.proxy.child.kill("SIGTERM");
    expect(await ending(run)).toEqual({ ...STOPPED.SIGTERM, ...CLEAN });
  });

  test("SIGTERM the moment the socket is linked: forwarded to QEMU, its status (0), nothing left", async () => {
    const run = launch();
    expect(spinUntil(run.pid, () => existsSync(run.listen))).toBe(true);
    run.proxy.child.kill("SIGTERM");
    expect(await ending(run)).toEqual({ code: 0, signal: null, ...CLEAN });
    expect(run.proxy.stderr()).toContain("qmpctl: proxy: SIGTERM: stopping qemu-system-x86_64\n");
    expect(run.proxy.stderr()).toContain("terminating on signal 15");
  });
});
