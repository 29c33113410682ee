/**
 * `qmpctl migrate wait` and `exec migrate ... --wait-migration` against a real
 * QEMU whose RAM is a file of random bytes (pages of zeroes would cost the
 * migration nothing), migrating into `cat > /dev/null` at a bandwidth the
 * test sets, so the duration is known.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { qmpctl, qmpctlInShell, startQmpctl } from "./helpers/cli.ts";
import { startQemu, type TestQemu } from "./helpers/qemu.ts";

const MiB = 1024 * 1024;
const RAM = 64 * MiB;
let qemu: TestQemu;
let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "qmpctl-migrate-"));
  const ram = join(dir, "ram");
  const fill = Bun.spawn(["head", "-c", String(RAM), "/dev/urandom"], { stdout: Bun.file(ram) });
  expect(await fill.exited).toBe(0);
  qemu = await startQemu({
    extraArgs: [
      "-object",
      `memory-backend-file,id=m0,size=${RAM},mem-path=${ram},share=on`,
      "-machine",
      "none,memory-backend=m0",
      "-m",
      String(RAM / MiB),
    ],
  });
}, 20_000);
afterAll(async () => {
  await qemu?.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function bandwidth(bytesPerSecond: number): Promise<void> {
  await qemu.control.execute("migrate-set-parameters", { "max-bandwidth": bytesPerSecond });
}

/** Cancel the migration and wait until it has ended: the next test starts one of its own. */
async function cancelMigration(): Promise<void> {
  await qemu.control.execute("migrate_cancel");
  for (let i = 0; i < 250; i++) {
    const { status } = await qemu.control.execute("query-migrate") as { status?: string };
    if (status !== "active" && status !== "cancelling") return;
    await Bun.sleep(20);
  }
}

/**
 * Run `use` with a second QEMU that waits for an incoming migration
 * (`-incoming defer`), stopped afterwards; this QEMU runs again after.
 */
async function withDestination(use: (destination: TestQemu) => Promise<void>): Promise<void> {
  await resume();
  await bandwidth(1024 * MiB);
  const memory = [
    `memory-backend-ram,id=m0,size=${RAM}`,
    "-machine",
    "none,memory-backend=m0",
    "-m",
    String(RAM / MiB),
  ];
  const destination = await startQemu({ extraArgs: ["-object", ...memory, "-incoming", "defer"] });
  try {
    await use(destination);
  } finally {
    await destination.stop();
    await resume();
  }
}

/** After a migration QEMU stays paused and refuses another until it runs again. */
async function resume(): Promise<void> {
  const { status } = await qemu.control.execute("query-status") as { status: string };
  if (status !== "running") await qemu.control.execute("cont");
}

/** Be the source of `destination`'s incoming migration at `path` (a UNIX socket), sending it garbage: it fails. */
async function sendGarbage(path: string): Promise<void> {
  for (let i = 0; i < 500 && !existsSync(path); i++) await Bun.sleep(10);
  await Bun.sleep(300); // a while with no source first: qmpctl waits for one
  const source = await Bun.connect({ unix: path, socket: { data() {} } });
  source.write("garbage, not a migration stream");
  source.end();
}

describe("migrate wait", () => {
  test("before any migration: exit 4, one line says there is none", async () => {
    expect(await qmpctl(["-s", qemu.socket, "migrate", "wait"])).toEqual(expect.objectContaining({
      code: 4,
      stdout: "",
      stderr: "qmpctl: no migration to follow: none was started since QEMU started\n",
    }));
  });

  test("an unknown verb, or a word after wait, is a usage error that names it", async () => {
    expect(await qmpctl(["-s", qemu.socket, "migrate", "foo"])).toMatchObject({
      code: 2,
      stderr: "qmpctl: unknown migrate verb 'foo' (migrate wait)\n",
    });
    expect(await qmpctl(["-s", qemu.socket, "migrate", "wait", "now"])).toMatchObject({
      code: 2,
      stderr: "qmpctl: migrate wait takes no words (got 'now')\n",
    });
  });
});

describe("exec migrate --wait-migration", () => {
  test("follows the migration to completed: exit 0, the return line, then the final query-migrate", async () => {
    await bandwidth(64 * MiB); // about 1 s
    const result = await qmpctl([
      "-s",
      qemu.socket,
      "exec",
      "migrate",
      "uri=exec:cat > /dev/null",
      "--wait-migration",
      "--progress-json",
    ]);
    expect(result.code).toBe(0);
    const [ret, final, end] = result.stdout.split("\n");
    expect(ret).toBe("{}");
    expect(JSON.parse(final)).toMatchObject({ status: "completed", ram: { total: RAM, remaining: 0 } });
    expect(end).toBe("");
    // Progress as data on stderr: RAM sent rises, with the pass and the dirty-page rate.
    const lines = result.stderr.trimEnd().split("\n").map((line) => JSON.parse(line));
    const active = lines.filter((l) => l.status === "active");
    expect(active.length).toBeGreaterThan(1);
    for (const line of active) {
      expect(line).toMatchObject({ progress: "migration", total: RAM, pass: expect.any(Number) });
      expect(line).toHaveProperty("dirty-pages-rate");
    }
    expect(active.at(-1).done).toBeGreaterThan(active[0].done);
  });

  test("migrate wait after the end: exit 0 at once with the final state", async () => {
    const result = await qmpctl(["-s", qemu.socket, "migrate", "wait"]);
    expect(result).toMatchObject({ code: 0, stderr: "" });
    expect(JSON.parse(result.stdout)).toMatchObject({ status: "completed" });
  });

  test("migrate_cancel from the other monitor: exit 1, 'cancelled' on stderr", async () => {
    await resume();
    await bandwidth(8 * MiB); // 8 s unless cancelled
    const running = startQmpctl(["-s", qemu.socket, "exec", "migrate", "uri=exec:cat > /dev/null", "--wait-migration"]);
    const deadline = Date.now() + 5000;
    while ((await qemu.control.execute("query-migrate") as { status?: string }).status !== "active") {
      if (Date.now() > deadline) throw new Error("the migration never became active");
      await Bun.sleep(20);
    }
    await qemu.control.execute("migrate_cancel");
    const result = await running.result;
    expect(result).toMatchObject({ code: 1, stderr: "qmpctl: migration cancelled\n" });
    expect(JSON.parse(result.stdout.split("\n")[1])).toMatchObject({ status: "cancelled" });
    expect(result.ms).toBeLessThan(6000);
  });

  test("QEMU told to quit while migrating: exit 3, and stderr says QEMU is shutting down", async () => {
    const quitting = await startQemu({
      extraArgs: [
        "-object",
        `memory-backend-file,id=m0,size=${RAM},mem-path=${join(dir, "ram")},share=on`,
        "-machine",
        "none,memory-backend=m0",
        "-m",
        String(RAM / MiB),
      ],
    });
    try {
      await quitting.control.execute("migrate-set-parameters", { "max-bandwidth": 8 * MiB });
      const running = startQmpctl([
        "-s",
        quitting.socket,
        "exec",
        "migrate",
        "uri=exec:cat > /dev/null",
        "--wait-migration",
        "-v",
      ]);
      const deadline = Date.now() + 5000;
      while ((await quitting.control.execute("query-migrate") as { status?: string }).status !== "active") {
        if (Date.now() > deadline) throw new Error("the migration never became active");
        await Bun.sleep(20);
      }
      await quitting.control.execute("quit").catch(() => {}); // QEMU may close before its answer
      const result = await running.result;
      const lines = result.stderr.trimEnd().split("\n"); // -v: what came on the wire, then the error
      // QEMU may close before its SHUTDOWN event goes out: qmpctl can say only what came.
      const shutdownCame = lines.some((line) => line.startsWith("< ") && line.includes('"event":"SHUTDOWN"'));
      expect({ code: result.code, said: lines.at(-1), shutdownCame }).toMatchObject({
        code: 3,
        // (before qmpctl's first query-migrate or query-status was answered, it says that instead of "while migrating")
        said: expect.stringMatching(
          shutdownCame
            ? /^qmpctl: \S+ closed the connection (while migrating|before the reply to query-(migrate|status)) \(QEMU is shutting down\)$/
            : /^qmpctl: \S+ closed the connection (while migrating|before the reply to query-(migrate|status))$/,
        ),
      });
    } finally {
      await quitting.stop();
    }
  });

  test("Ctrl-C while following: exit 130, one line says the migration keeps going (it was not cancelled)", async () => {
    await resume();
    await bandwidth(8 * MiB); // 8 s
    const running = startQmpctl(["-s", qemu.socket, "exec", "migrate", "uri=exec:cat > /dev/null", "--wait-migration"]);
    try {
      const deadline = Date.now() + 5000;
      while ((await qemu.control.execute("query-migrate") as { status?: string }).status !== "active") {
        if (Date.now() > deadline) throw new Error("the migration never became active");
        await Bun.sleep(20);
      }
      await Bun.sleep(300); // qmpctl has asked query-migrate (every 250 ms)
      running.child.kill("SIGINT");
      expect(await running.result).toMatchObject({
        code: 130,
        stderr: "qmpctl: stopped: the migration keeps going in QEMU; migrate_cancel stops it\n",
      });
      expect((await qemu.control.execute("query-migrate") as { status?: string }).status).toBe("active");
    } finally {
      await cancelMigration();
    }
  });

  test("a migration that fails: exit 1 with QEMU's error-desc on stderr", async () => {
    await resume();
    await bandwidth(64 * MiB);
    const result = await qmpctl(["-s", qemu.socket, "exec", "migrate", "uri=exec:exit 0", "--wait-migration"]);
    expect(result.code).toBe(1);
    const final = JSON.parse(result.stdout.split("\n")[1]);
    const desc = final["error-desc"]; // e.g. "Unable to write to command: Broken pipe"
    expect(final.status).toBe("failed");
    expect(desc).toMatch(/\w/);
    expect(result.stderr).toBe(`qmpctl: migration failed: ${desc}\n`);
  });

  /** `exec migrate` to nowhere, followed for 1 s at most. */
  const migrateFor1s = () =>
    qmpctl(["-s", qemu.socket, "exec", "migrate", "uri=exec:cat > /dev/null", "--wait-migration", "--timeout", "1s"]);

  test("--timeout 1s: exit 124, and the migration keeps going", async () => {
    await resume();
    await bandwidth(8 * MiB);
    try {
      const result = await migrateFor1s();
      expect(result).toMatchObject({
        code: 124,
        stderr: "qmpctl: timed out waiting for the migration to end; it keeps going in QEMU (--timeout 1s)\n",
      });
      expect(await qemu.control.execute("query-migrate")).toMatchObject({ status: "active" });
    } finally {
      await cancelMigration();
    }
  });

  test("--wait-migration after a command that starts no migration: exit 2, nothing sent (not the last one's end)", async () => {
    await resume();
    await bandwidth(1024 * MiB);
    await qmpctl(["-s", qemu.socket, "exec", "migrate", "uri=exec:cat > /dev/null", "--wait-migration"]);
    await resume();
    expect(await qemu.control.execute("query-migrate")).toMatchObject({ status: "completed" }); // an old end
    const result = await qmpctl(["-s", qemu.socket, "-v", "exec", "query-status", "--wait-migration"]);
    expect(result).toMatchObject({ code: 2, stdout: "" });
    expect(result.stderr).toContain(
      "qmpctl: --wait-migration follows the migration a command starts, and query-status starts none (it goes with migrate, ",
    );
    expect(result.stderr).not.toContain('"execute":"query-status"');
  });

  test("migrate-incoming --wait-migration on the destination waits for the source, then follows to completed", async () => {
    await withDestination(async (destination) => {
      const path = join(destination.dir, "incoming.sock");
      const args = ["exec", "migrate-incoming", `uri=unix:${path}`, "--wait-migration", "--timeout", "30s"];
      const following = startQmpctl(["-s", destination.socket, ...args]);
      for (let i = 0; i < 500 && !existsSync(path); i++) await Bun.sleep(10); // listening: the source may come
      await Bun.sleep(300); // a while with no source: still waiting, not "none"
      await qemu.control.execute("migrate", { uri: `unix:${path}` });
      const result = await following.result;
      expect(result.code).toBe(0);
      const [ret, final] = result.stdout.split("\n");
      expect(ret).toBe("{}");
      expect(JSON.parse(final)).toMatchObject({ status: "completed" });
    });
  });

  test("migrate-incoming --wait-migration | head -1: head takes the return line; qmpctl ends, status 0", async () => {
    await withDestination(async (destination) => {
      const uri = `uri=unix:${join(destination.dir, "incoming.sock")}`;
      const started = performance.now();
      const result = await qmpctlInShell(
        `{ "$0" "$@"; echo "status $?" >&2; } | head -1`, // qmpctl's stderr, then its status
        ...["-s", destination.socket, "exec", "migrate-incoming", uri, "--wait-migration", "--timeout", "20s"],
      );
      expect(result).toMatchObject({ code: 0, stdout: "{}\n", stderr: "status 0\n" }); // no source comes
      expect(performance.now() - started).toBeLessThan(10_000); // not the 20 s of --timeout
      const free = await qmpctl(["-s", destination.socket, "exec", "query-name", "--connect-timeout", "3s"]);
      expect(free).toMatchObject({ code: 0, stdout: "{}\n" });
    });
  }, 40_000);

  test("migrate-incoming --wait-migration with no source by --timeout: 124, no advice to run migrate-incoming", async () => {
    await withDestination(async (destination) => {
      const uri = `uri=unix:${join(destination.dir, "incoming.sock")}`;
      const args = ["exec", "migrate-incoming", uri, "--wait-migration", "--timeout", "500ms"];
      expect(await qmpctl(["-s", destination.socket, ...args])).toMatchObject({
        code: 124,
        stdout: "{}\n",
        stderr: "qmpctl: timed out waiting for the incoming migration to begin (its source to connect); " +
          "QEMU keeps waiting for it (--timeout 500ms)\n",
      });
    });
  });

  test("migrate wait on a destination whose source has not come: it waits (124 at --timeout), then follows", async () => {
    await withDestination(async (destination) => {
      const uri = `unix:${join(destination.dir, "incoming.sock")}`;
      await destination.control.execute("migrate-incoming", { uri });
      const early = await qmpctl(["-s", destination.socket, "migrate", "wait", "--timeout", "300ms"]);
      expect(early).toMatchObject({ // not 4, "none was started", nor a migration that "keeps going"
        code: 124,
        stdout: "",
        stderr: "qmpctl: timed out waiting for the incoming migration to begin (its source to connect; " +
          "with -incoming defer, migrate-incoming first); QEMU keeps waiting for it (--timeout 300ms)\n",
      });
      const following = startQmpctl(["-s", destination.socket, "migrate", "wait", "--timeout", "30s"]);
      await Bun.sleep(300);
      await qemu.control.execute("migrate", { uri });
      const result = await following.result;
      expect(result.code).toBe(0);
      expect(JSON.parse(result.stdout)).toMatchObject({ status: "completed" });
    });
  });

  test("an incoming migration that fails, told by its MIGRATION event before QEMU exits: exit 1, 'failed'", async () => {
    await withDestination(async (destination) => {
      const capabilities = [{ capability: "events", state: true }];
      await destination.control.execute("migrate-set-capabilities", { capabilities });
      const path = join(destination.dir, "incoming.sock");
      const args = ["exec", "migrate-incoming", `uri=unix:${path}`, "--wait-migration", "--timeout", "30s"];
      const following = startQmpctl(["-s", destination.socket, ...args]);
      await sendGarbage(path);
      const result = await following.result;
      expect(result).toMatchObject({
        code: 1, // not 3: the failure was seen before the connection closed
        stdout: '{}\n{"status":"failed"}\n',
        stderr: "qmpctl: migration failed (QEMU then closed the connection: a destination QEMU exits when its " +
          "incoming migration fails)\n",
      });
    });
  });

  test("an incoming migration that fails without the events capability: exit 3, the likely cause said", async () => {
    await withDestination(async (destination) => {
      const path = join(destination.dir, "incoming.sock");
      await destination.control.execute("migrate-incoming", { uri: `unix:${path}` });
      const following = startQmpctl(["-s", destination.socket, "migrate", "wait", "--timeout", "30s"]);
      await sendGarbage(path);
      expect(await following.result).toMatchObject({
        code: 3,
        stdout: "",
        stderr: `qmpctl: ${destination.socket} closed the connection while migrating (a destination QEMU exits ` +
          "when its incoming migration fails)\n",
      });
    });
  });

  test("--progress-json on a destination: every line has a status, and no RAM figures where QEMU gives none", async () => {
    await withDestination(async (destination) => {
      await bandwidth(64 * MiB); // about 1 s
      const path = join(destination.dir, "incoming.sock");
      const args = ["exec", "migrate-incoming", `uri=unix:${path}`, "--wait-migration", "--progress-json"];
      const following = startQmpctl(["-s", destination.socket, ...args, "--timeout", "30s"]);
      for (let i = 0; i < 500 && !existsSync(path); i++) await Bun.sleep(10);
      await Bun.sleep(300); // lines while the source has not come
      await qemu.control.execute("migrate", { uri: `unix:${path}` });
      const result = await following.result;
      expect(result.code).toBe(0);
      const lines = result.stderr.trimEnd().split("\n").map((line) => JSON.parse(line));
      const statuses = new Set(lines.map((line) => line.status));
      expect(statuses).toEqual(new Set(["waiting-for-source", "active"]));
      for (const line of lines) expect(Object.keys(line)).toEqual(["progress", "status"]); // no 0 of 0
    });
  });

  test("the progress line on a destination shows its status alone: no 0% bar, no 0 B/s", async () => {
    await withDestination(async (destination) => {
      await bandwidth(64 * MiB);
      const path = join(destination.dir, "incoming.sock");
      const args = ["exec", "migrate-incoming", `uri=unix:${path}`, "--wait-migration", "--progress"];
      const following = startQmpctl(["-s", destination.socket, ...args, "--timeout", "30s"], {
        env: { NO_COLOR: "1" },
      });
      for (let i = 0; i < 500 && !existsSync(path); i++) await Bun.sleep(10);
      await Bun.sleep(300);
      await qemu.control.execute("migrate", { uri: `unix:${path}` });
      const result = await following.result;
      expect(result.code).toBe(0);
      const drawn = new Set(result.stderr.replaceAll("\x1b[K", "\r").split("\r").filter((line) => line !== ""));
      expect(drawn).toEqual(new Set(["migration waiting for its source", "migration active"]));
    });
  });

  test("--timeout on a migration paused before the switchover: stderr says it waits for migrate-continue", async () => {
    await resume();
    await bandwidth(1024 * MiB);
    const pause = (state: boolean) =>
      qemu.control.execute("migrate-set-capabilities", {
        capabilities: [{ capability: "pause-before-switchover", state }],
      });
    await pause(true);
    try {
      const result = await migrateFor1s();
      expect(await qemu.control.execute("query-migrate")).toMatchObject({ status: "pre-switchover" });
      expect(result).toMatchObject({
        code: 124,
        stderr: "qmpctl: timed out waiting for the migration to end; it is paused in QEMU before the switchover " +
          "(the pause-before-switchover capability: migrate-continue state=pre-switchover goes on) (--timeout 1s)\n",
      });
      await qemu.control.execute("migrate-continue", { state: "pre-switchover" });
      expect(JSON.parse((await qmpctl(["-s", qemu.socket, "migrate", "wait"])).stdout)).toMatchObject({
        status: "completed",
      });
    } finally {
      await pause(false);
    }
  });

  test("--wait-migration after a command that starts none is refused before connecting (no monitor held)", async () => {
    const result = await qmpctl(["-s", join(dir, "no-such.sock"), "exec", "query-status", "--wait-migration"]);
    expect(result).toMatchObject({ code: 2, stdout: "" });
    expect(result.stderr).toStartWith("qmpctl: --wait-migration follows the migration a command starts");
  });

  test("--wait-migration with --wait-job is a usage error", async () => {
    const result = await qmpctl([
      "-s",
      qemu.socket,
      "exec",
      "migrate",
      "uri=exec:cat",
      "--wait-migration",
      "--wait-job",
    ]);
    expect(result).toMatchObject({
      code: 2,
      stderr: "qmpctl: --wait-job, --wait-migration and --wait-event exclude each other\n",
    });
  });
});
