/** `--wait-socket DURATION`: a monitor that is not there yet, and one that never comes. */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { qmpctl, startQmpctl } from "./helpers/cli.ts";
import { fakeServer } from "./helpers/fake_server.ts";

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "qmpctl-wait-socket-"));
});
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("--wait-socket", () => {
  test.each(["15s", "0"])(
    "--wait-socket %s, a QEMU started a second after qmpctl: connects once it is up, exit 0",
    async (bound) => {
      const socket = join(dir, `late-${bound}.qmp`);
      const running = startQmpctl(["-s", socket, "--wait-socket", bound, "exec", "query-name"]);
      await Bun.sleep(1000);
      const qemu = Bun.spawn([
        ...["qemu-system-x86_64", "-nodefaults", "-display", "none", "-machine", "none", "-name", "late"],
        ...["-qmp", `unix:${socket},server=on,wait=off`],
      ], { stdout: "ignore", stderr: "ignore" });
      try {
        const { code, stdout, stderr } = await running.result;
        expect({ code, stdout, stderr }).toEqual({ code: 0, stdout: '{"name":"late"}\n', stderr: "" });
      } finally {
        qemu.kill("SIGKILL");
        await qemu.exited;
      }
    },
  );

  test("a socket that never comes: exit 3 after the bound, naming the last reason", async () => {
    const socket = join(dir, "never.qmp");
    const { code, stdout, stderr, ms } = await qmpctl(["-s", socket, "--wait-socket", "1s", "exec", "query-name"]);
    expect(stdout).toBe("");
    expect(stderr).toBe(
      `qmpctl: cannot connect to ${socket}: no such socket (ENOENT) (still so after 1s of retries)\n`,
    );
    expect(code).toBe(3);
    expect(ms).toBeGreaterThanOrEqual(1000);
    expect(ms).toBeLessThan(5000);
  });

  test("a glob and a socket that never come, side by side: both wait out the one bound at once (2 s, not 4 s)", async () => {
    const [glob, socket] = [join(dir, "late-glob", "*.qmp"), join(dir, "late-named.qmp")];
    const result = await qmpctl(["-s", glob, "-s", socket, "--wait-socket", "2s", "exec", "query-name"]);
    const got = result.stdout.trimEnd().split("\n").map((line) => JSON.parse(line));
    expect(got.sort((a, b) => a.socket.localeCompare(b.socket))).toEqual([ // one line each, at the one bound
      { socket: glob, failure: `no socket matches ${glob} (still so after 2s of retries)` },
      { socket, failure: `cannot connect to ${socket}: no such socket (ENOENT) (still so after 2s of retries)` },
    ]);
    expect(result.code).toBe(3);
    expect(result.ms).toBeGreaterThanOrEqual(2000);
    expect(result.ms).toBeLessThan(3500); // one bound, not one after the other (4 s)
  });

  test("--wait-socket 0 has no bound of its own, as every duration: --timeout ends it (124), naming the reason", async () => {
    const socket = join(dir, "never0.qmp");
    const result = await qmpctl(["-s", socket, "--wait-socket", "0", "--timeout", "1s", "exec", "query-name"]);
    expect(result).toMatchObject({
      code: 124,
      stdout: "",
      stderr: "qmpctl: timed out waiting for the socket to be ready; the last try: " +
        `cannot connect to ${socket}: no such socket (ENOENT) (--timeout 1s)\n`,
    });
  });

  test("a peer that closes before its greeting is tried again", async () => {
    let attempts = 0;
    const server = fakeServer(async (connection) => {
      if (++attempts === 1) return connection.close(); // as a QEMU that is still starting
      await connection.handshake();
      connection.reply(await connection.nextRequest(), { name: "second" });
    });
    try {
      const { code, stdout } = await qmpctl(["-s", server.path, "--wait-socket", "10s", "exec", "query-name"]);
      expect({ code, stdout }).toEqual({ code: 0, stdout: '{"name":"second"}\n' });
      expect(server.connections).toBe(2);
    } finally {
      server.stop();
    }
  });

  test("permission denied fails at once, without waiting out the bound", async () => {
    const closed = join(dir, "root-only");
    mkdirSync(closed);
    chmodSync(closed, 0o700);
    const server = Bun.listen({ unix: join(closed, "qmp.sock"), socket: { data() {} } });
    try {
      const { code, stderr, ms } = await qmpctl(
        ["-s", join(closed, "qmp.sock"), "--wait-socket", "10s", "exec", "query-name"],
        { runAs: 65534 },
      );
      expect(stderr).toMatch(/^qmpctl: cannot connect to .*: permission denied \(EACCES\)\n$/);
      expect(code).toBe(3);
      expect(ms).toBeLessThan(5000);
    } finally {
      server.stop(true);
    }
  });

  test("a glob into a directory the user may not list: permission denied, at once, not 'no socket matches'", async () => {
    chmodSync(dir, 0o711); // nobody may pass through the test's directory, as through /run
    const listless = join(dir, "listless"); // 0711: a socket there is reachable by name, not by a glob
    mkdirSync(listless);
    chmodSync(listless, 0o711);
    const server = Bun.listen({ unix: join(listless, "vm1.sock"), socket: { data() {} } });
    try {
      for (const wait of [[], ["--wait-socket", "10s"]]) {
        const { code, stderr, ms } = await qmpctl(
          ["-s", join(listless, "*.sock"), ...wait, "exec", "query-name"],
          { runAs: 65534 },
        );
        expect(stderr).toBe(
          `qmpctl: cannot list ${listless} for ${join(listless, "*.sock")}: permission denied (EACCES)\n`,
        );
        expect(code).toBe(3);
        expect(ms).toBeLessThan(5000);
      }
    } finally {
      server.stop(true);
      chmodSync(dir, 0o700);
    }
  });

  test("a wildcard into directories the user may not enter: those are passed over; with nothing else, the permission error", async () => {
    chmodSync(dir, 0o711);
    const vms = join(dir, "vms"), closed = join(vms, "vm1"), glob = join(vms, "*", "qmp.sock");
    mkdirSync(closed, { recursive: true });
    chmodSync(vms, 0o755);
    chmodSync(closed, 0o700); // another user's VM, or another program's directory beside the VMs' (/run/lvm)
    const hidden = Bun.listen({ unix: join(closed, "qmp.sock"), socket: { data() {} } });
    const reachable = fakeServer(async (connection) => {
      await connection.handshake();
      connection.reply(await connection.nextRequest(), { name: "vm2" });
    });
    try {
      const alone = await qmpctl(["-s", glob, "exec", "query-name"], { runAs: 65534 });
      const denied = `qmpctl: cannot reach ${join(closed, "qmp.sock")} for ${glob}: permission denied (EACCES)`;
      expect(alone).toMatchObject({ code: 3, stderr: `${denied}\n` });
      // --wait-socket waits for a match as for none at all (the VM may be starting), then says the same.
      const waited = await qmpctl(["-s", glob, "--wait-socket", "1s", "exec", "query-name"], { runAs: 65534 });
      expect(waited).toMatchObject({ code: 3, stderr: `${denied} (still so after 1s of retries)\n` });
      expect(waited.ms).toBeGreaterThanOrEqual(1000);
      chmodSync(dirname(reachable.path), 0o755);
      chmodSync(reachable.path, 0o777);
      mkdirSync(join(vms, "vm2"));
      symlinkSync(reachable.path, join(vms, "vm2", "qmp.sock"));
      const beside = await qmpctl(["-s", glob, "exec", "query-name"], { runAs: 65534 });
      expect(beside).toMatchObject({ code: 0, stderr: "" });
      expect(JSON.parse(beside.stdout)).toEqual({ socket: join(vms, "vm2", "qmp.sock"), return: { name: "vm2" } });
    } finally {
      hidden.stop(true);
      reachable.stop();
      chmodSync(dir, 0o700);
    }
  });
});
