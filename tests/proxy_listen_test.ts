/**
 * Where and how `qmpctl proxy` listens: `--listen` takes a UNIX socket path
 * (PATH or unix:PATH, never TCP), `--listen-mode` a mode as chmod reads it,
 * `--max-queue` a bound it can keep; a socket file there is replaced only
 * when it is stale (connecting is refused), never one a process serves or
 * may serve; and at the file-descriptor limit the proxy says so once, turns
 * new clients away without spinning, and serves again once some leave.
 */
import { afterEach, expect, test } from "bun:test";
import { chmodSync, existsSync, lstatSync, readFileSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import { QmpClient } from "../lib/client.ts";
import { qmpctl } from "./helpers/cli.ts";
import { fakeServer } from "./helpers/fake_server.ts";
import { negotiatedClient, rawClient, startProxy } from "./helpers/proxy.ts";
import { startQemu } from "./helpers/qemu.ts";
import { scratchDir } from "./helpers/scratch.ts";

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A fake QEMU that answers every command with {"return": {}}. */
function answeringUpstream(): string {
  const server = fakeServer(async (connection) => {
    await connection.handshake();
    for (;;) connection.reply(await connection.nextRequest(), {});
  });
  cleanups.push(() => server.stop());
  return server.path;
}

/** `qmpctl proxy -s UPSTREAM --listen LISTEN`, ready to serve, killed after the test. */
async function servingProxy(listen: string, upstream = answeringUpstream()) {
  const proxy = startProxy(["-s", upstream, "--listen", listen]);
  cleanups.push(() => proxy.child.kill("SIGKILL"));
  await proxy.ready;
  return proxy;
}

test("--listen unix:PATH serves PATH, as -s reads it", async () => {
  const dir = scratchDir("qmpctl-proxy-listen-");
  const path = join(dir, "shared.sock");
  const proxy = await servingProxy(`unix:${path}`);
  expect(proxy.stderr()).toContain(`on ${path}\n`);
  expect(existsSync(join(dir, `unix:${path}`))).toBe(false);
  const { client } = await negotiatedClient(path);
  client.close();
});

test("--listen with a TCP or ssh:// address, or a word -s cannot read, is a usage error (exit 2), no file made", async () => {
  const dir = scratchDir("qmpctl-proxy-listen-");
  const refused = {
    "tcp:127.0.0.1:5555": "is a TCP address",
    "127.0.0.1:5556": "is a TCP address",
    "[::1]:5557": "is a TCP address",
    "ssh://host/run/vm1.qmp": "is an ssh:// address (the proxy serves on this host)",
    "vm:one": "is neither (./vm:one names a file of that name)",
  };
  for (const [listen, why] of Object.entries(refused)) {
    const result = await qmpctl(["proxy", "-s", "/nonexistent", "--listen", listen], { cwd: dir });
    expect(result).toMatchObject({
      code: 2,
      stderr: `qmpctl: --listen takes a UNIX socket path (unix:PATH or a path): '${listen}' ${why}\n`,
    });
  }
  expect(await Array.fromAsync(new Bun.Glob("*").scan({ cwd: dir, dot: true }))).toEqual([]);
});

test("a directory where the system refuses a socket (/proc) is not said to be missing; a missing one is (exit 3)", async () => {
  const upstream = answeringUpstream();
  const missing = join(scratchDir("qmpctl-proxy-listen-"), "gone");
  for (
    const [listen, reason] of [
      ["/proc/x.sock", "the system refused to make a socket in /proc (ENOENT)"], // Linux answers ENOENT there
      [join(missing, "x.sock"), `no such directory ${missing} (ENOENT)`],
    ]
  ) {
    expect(await qmpctl(["proxy", "-s", upstream, "--listen", listen])).toMatchObject({
      code: 3,
      stderr: `qmpctl: cannot listen on ${listen}: ${reason}\n`,
    });
  }
});

test("a busy QEMU monitor (one client on it, its listen queue full) is not taken over: exit 3, the monitor kept", async () => {
  const qemu = await startQemu();
  cleanups.push(() => qemu.stop());
  const holder = await QmpClient.connect(qemu.socket);
  const waiting: { end(): void }[] = [];
  while (waiting.length < 64) { // raw clients wait in its queue until connect(2) says EAGAIN
    const socket = await Bun.connect({ unix: qemu.socket, socket: { data() {} } }).catch(() => undefined);
    if (!socket) break;
    waiting.push(socket);
  }
  const monitor = lstatSync(qemu.socket).ino;
  const result = await qmpctl(["proxy", "-s", answeringUpstream(), "--listen", qemu.socket], { killAfterMs: 5000 });
  for (const client of waiting) client.end();
  await holder.close();
  expect(result).toMatchObject({
    code: 3,
    stderr: `qmpctl: cannot listen on ${qemu.socket}: another process is serving this socket (its listen queue is ` +
      "full: EAGAIN)\n",
  });
  expect(lstatSync(qemu.socket).ino).toBe(monitor); // still QEMU's monitor socket, not removed or replaced
  expect(await qmpctl(["-s", qemu.socket, "exec", "query-name"])).toMatchObject({ code: 0, stdout: "{}\n" });
});

test("another user's socket, which qmpctl may not open, is left in place: exit 3, saying why it cannot tell", async () => {
  const dir = scratchDir("qmpctl-proxy-listen-");
  chmodSync(dir, 0o777); // anyone may make and remove files here
  const path = join(dir, "live.sock");
  await servingProxy(path); // root's, mode 0600
  const result = await qmpctl(["proxy", "-s", "/nonexistent", "--listen", path], { runAs: 65534 });
  expect(result).toMatchObject({
    code: 3,
    stderr: `qmpctl: cannot listen on ${path}: cannot tell whether a process serves this socket (connecting to ` +
      "it: permission denied (EACCES)), so it is left in place; remove it if none does\n",
  });
  expect(await qmpctl(["-s", path, "exec", "query-name"])).toMatchObject({ code: 0, stdout: "{}\n" });
});

test("another user's stale socket in a sticky directory, which this user may not remove: exit 3, saying so", async () => {
  const dir = scratchDir("qmpctl-proxy-listen-");
  chmodSync(dir, 0o1777); // as /tmp: anyone may make files here, only their owner remove them
  const path = join(dir, "stale.sock");
  // root's socket, which anyone may connect to, and nothing serves (bound, then the process gone)
  const bind =
    `import socket, os, sys; s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); os.chmod(sys.argv[1], 0o777)`;
  expect(Bun.spawnSync(["python3", "-c", bind, path]).exitCode).toBe(0);
  const result = await qmpctl(["proxy", "-s", "/nonexistent", "--listen", path], { runAs: 65534 });
  expect(result).toMatchObject({
    code: 3,
    stderr: `qmpctl: cannot listen on ${path}: it is a stale socket this user may not remove: ` +
      "permission denied (EPERM) (its owner may)\n",
  });
  expect(lstatSync(path).isSocket()).toBe(true);
});

test("a symbolic link at the listen path is refused (exit 3), saying so and where it points", async () => {
  const dir = scratchDir("qmpctl-proxy-listen-");
  const upstream = answeringUpstream();
  symlinkSync("missing.sock", join(dir, "dangling.sock"));
  symlinkSync(upstream, join(dir, "linked.sock"));
  for (
    const [name, target] of [["dangling.sock", "missing.sock, which does not exist"], ["linked.sock", upstream]]
  ) {
    expect(await qmpctl(["proxy", "-s", upstream, "--listen", join(dir, name)])).toMatchObject({
      code: 3,
      stderr: `qmpctl: cannot listen on ${join(dir, name)}: it is a symbolic link (to ${target}), which the proxy ` +
        "neither follows nor replaces\n",
    });
  }
  expect(lstatSync(join(dir, "dangling.sock")).isSymbolicLink()).toBe(true);
});

test("--listen-mode reads a mode as chmod does: 0 (only root may connect), 66, 0660; setuid bits refused", async () => {
  const dir = scratchDir("qmpctl-proxy-listen-");
  for (const [mode, bits] of [["0", 0o000], ["66", 0o066], ["0660", 0o660]] as const) {
    const path = join(dir, `m${mode}.sock`);
    const proxy = startProxy(["-s", answeringUpstream(), "--listen", path, "--listen-mode", mode]);
    cleanups.push(() => proxy.child.kill("SIGKILL"));
    await proxy.ready;
    expect(lstatSync(path).mode & 0o7777).toBe(bits);
  }
  expect(await qmpctl(["-s", join(dir, "m0.sock"), "exec", "query-name"])).toMatchObject({ code: 0, stdout: "{}\n" });
  expect(await qmpctl(["-s", join(dir, "m0.sock"), "exec", "query-name"], { runAs: 65534 })).toMatchObject({
    code: 3,
    stderr: `qmpctl: cannot connect to ${join(dir, "m0.sock")}: permission denied (EACCES)\n`,
  });
  for (const [mode, why] of [["4660", " (setuid, setgid and sticky bits mean nothing on a socket)"], ["rw", ""]]) {
    expect(await qmpctl(["proxy", "-s", "/nonexistent", "--listen", join(dir, "x.sock"), "--listen-mode", mode]))
      .toMatchObject({ code: 2, stderr: `qmpctl: --listen-mode wants an octal mode like 0660, not '${mode}'${why}\n` });
  }
});

test("--max-queue 0 is refused (exit 2), saying the least it takes: it would not mean no bound", async () => {
  for (const size of ["0", "0k"]) {
    expect(await qmpctl(["proxy", "-s", "/nonexistent", "--listen", "/tmp/never.sock", "--max-queue", size]))
      .toMatchObject({
        code: 2,
        stderr: `qmpctl: --max-queue takes at least 1 byte, not '${size}' (default 8M)\n`,
      });
  }
});

/** CPU time (user + system) that process `pid` has used, in seconds (Linux: clock ticks of 1/100 s). */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").replace(/^.*\) /, "").split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime and stime: fields 14 and 15 of proc(5)
}

/** How a client fares: greeted, closed before a greeting (turned away), or left waiting. */
async function fate(path: string): Promise<{ fate: "greeted" | "turned away" | "waiting"; close(): void }> {
  // Closed at once, the connection may be reset before the connect completes here.
  const client = await rawClient(path).catch((error: { code?: string }) => {
    if (error.code === "ECONNRESET") return undefined;
    throw error;
  });
  if (!client) return { fate: "turned away", close() {} };
  const outcome = await client.read(1, 3000).then(
    () => "greeted" as const,
    (error: Error) => /closed/.test(error.message) ? "turned away" as const : "waiting" as const,
  );
  return { fate: outcome, close: () => client.close() };
}

test(
  "at the descriptor limit: said once, new clients turned away at once, no busy loop; served again once some leave",
  async () => {
    const path = join(scratchDir("qmpctl-proxy-listen-"), "shared.sock");
    const proxy = await servingProxy(path);
    const pid = proxy.child.pid;
    // What `ulimit -n 40` before starting it would do (a running process's limit: util-linux's prlimit).
    expect(Bun.spawnSync(["prlimit", "--pid", String(pid), "--nofile=40:40"]).exitCode).toBe(0);

    const clients = await Promise.all(Array.from({ length: 60 }, () => fate(path)));
    const count = (which: string) => clients.filter((client) => client.fate === which).length;
    expect(count("greeted")).toBeGreaterThan(10);
    expect({ waiting: count("waiting"), turnedAway: count("turned away") > 0 }).toEqual({
      waiting: 0,
      turnedAway: true,
    });
    // More clients while it is full: still turned away, and nothing more said.
    const more = await Promise.all(Array.from({ length: 5 }, () => fate(path)));
    expect(more.map((client) => client.fate)).toEqual(Array(5).fill("turned away"));

    // Full, with clients still knocking: the proxy idles (a busy loop on accept(2) takes a whole core).
    const knocking = setInterval(() => void fate(path).then((client) => client.close()), 50);
    const cpuBefore = cpuSeconds(pid);
    const wallBefore = performance.now();
    await Bun.sleep(1500);
    const cpuShare = (cpuSeconds(pid) - cpuBefore) / ((performance.now() - wallBefore) / 1000);
    clearInterval(knocking);
    expect(cpuShare).toBeLessThan(0.5);

    const said = proxy.stderr().split("\n").filter((line) => line.includes("cannot accept"));
    expect(said).toEqual([
      expect.stringMatching(
        /^qmpctl: proxy: cannot accept clients: too many open files .*\(EMFILE\); new ones are turned away until some of the \d+ connected leave$/,
      ),
    ]);

    for (const client of [...clients, ...more]) client.close();
    await proxy.stderrLine(/\(0 connected\)$/);
    const result = await qmpctl(["-s", path, "exec", "query-status"]);
    expect(result).toMatchObject({ code: 0, stdout: "{}\n" });
  },
  60_000,
);
