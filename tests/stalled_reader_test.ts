/**
 * A reader that stops reading stdout (a `| less` left open, a stuck consumer)
 * does not hold qmpctl past the bounds it was given: `--timeout` and Ctrl-C
 * act while the output waits for that reader. What the reader does get is
 * whole and in order, and a reader that leaves is still a quiet exit 0.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { QMPCTL } from "./helpers/cli.ts";
import { type FakeServer, fakeServer } from "./helpers/fake_server.ts";
import { floodEvent, floodServer } from "./helpers/flood_server.ts";
import { blockedIn, waitUntil } from "./helpers/process_state.ts";
import { startQemu } from "./helpers/qemu.ts";
import { runIntoUnreadPipe } from "./helpers/unread_pipe.ts";

// Far more than a pipe holds (64 KiB): the write must wait for the reader.
const BIG = Array.from({ length: 4000 }, (_, i) => `member ${i} of a reply larger than a pipe holds`);
// Less than a pipe's usual capacity, more than a small or part-full one takes.
const MID = "m".repeat(6000);

let server: FakeServer;
let inputDir: string, inputs = 0;
beforeAll(() => {
  inputDir = mkdtempSync(join(tmpdir(), "qmpctl-stalled-"));
  server = fakeServer(async (c) => {
    await c.handshake();
    for (;;) {
      const request = await c.nextRequest();
      if (request.execute === "query-qmp-schema") {
        c.sendJson({ error: { class: "CommandNotFound", desc: "no schema here" }, id: request.id });
      } else c.reply(request, request.execute === "query-mid" ? MID : BIG);
    }
  });
});
afterAll(() => {
  server.stop();
  rmSync(inputDir, { recursive: true, force: true });
});

// qmpctl in the background (its pid on stderr, then its exit status), its stdout into a reader that reads
// nothing until the test closes the shell's stdin, and then passes everything on.
const STALLED_PIPELINE = 'exec 3<&0; { "$0" "$@" 3<&- & echo "pid $!" >&2; wait $!; echo "exit $?" >&2; } | ' +
  "{ read -r _ <&3; cat; }";

interface Stalled {
  /** qmpctl's pid, once the shell has said it. */
  pid: Promise<number>;
  /** qmpctl's exit status and its stderr (the shell's lines left out), and when it exited. */
  exited: Promise<{ code: number; stderr: string; ms: number }>;
  /** Let the reader read: what it got, once the pipeline has ended. */
  release(): Promise<string>;
}

/**
 * Run qmpctl with `args` (through `wrapper` when given: a program that runs its arguments) as above, `input`
 * on its stdin.
 */
function runWithStalledReader(args: string[], wrapper: string[] = [], input = ""): Stalled {
  const started = performance.now();
  const inputFile = join(inputDir, `input-${++inputs}`);
  writeFileSync(inputFile, input);
  const pipeline = STALLED_PIPELINE.replace('"$0" "$@" 3<&-', `"$0" "$@" 3<&- < '${inputFile}'`);
  const child = Bun.spawn(["sh", "-c", pipeline, ...wrapper, QMPCTL, ...args], {
    stdin: "pipe",
    stdout: "pipe",
    stderr: "pipe",
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", XDG_CACHE_HOME: "/nonexistent" },
  });
  const killer = setTimeout(() => child.kill("SIGKILL"), 30_000);
  const stdout = new Response(child.stdout).text();
  const pid = Promise.withResolvers<number>();
  const exited = (async () => {
    let text = "";
    for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) {
      text += chunk;
      const said = /^pid (\d+)$/m.exec(text);
      if (said) pid.resolve(Number(said[1]));
      const status = /^exit (\d+)$/m.exec(text);
      if (status) {
        const stderr = text.slice(0, status.index).replace(/^pid \d+\n/m, "");
        return { code: Number(status[1]), stderr, ms: performance.now() - started };
      }
    }
    throw new Error(`the shell ended without qmpctl's status: ${text}`);
  })();
  return {
    pid: pid.promise,
    exited,
    release: async () => {
      child.stdin.end();
      const text = await stdout;
      await child.exited;
      clearTimeout(killer);
      return text;
    },
  };
}

/** Whether some thread of `pid` waits in write(2) for a pipe's reader (the name differs across kernels). */
const waitsForReader = (pid: number) => blockedIn(pid, "anon_pipe_write") || blockedIn(pid, "pipe_write");

test("exec --timeout 1s: exit 124 at the bound while the reader does not read, saying the command was run", async () => {
  const run = runWithStalledReader(["-s", server.path, "exec", "query-big", "--timeout", "1s"]);
  const { code, stderr, ms } = await run.exited;
  await run.release();
  expect({ code, stderr }).toEqual({
    code: 124,
    stderr:
      "qmpctl: query-big was run (QEMU answered it), but timed out waiting for stdout to take the output (--timeout 1s)\n",
  });
  expect(ms).toBeLessThan(8000); // not held until the reader reads (the test releases it only after this)
});

test("several targets, --timeout 1s, a reader that does not read: exit 124 at the bound, each target named", async () => {
  const other = fakeServer(async (c) => {
    await c.handshake();
    c.reply(await c.nextRequest(), BIG);
    await c.closed;
  });
  try {
    const run = runWithStalledReader(["-s", server.path, "-s", other.path, "exec", "query-big", "--timeout", "1s"]);
    const { code, stderr, ms } = await run.exited;
    await run.release();
    expect(code).toBe(124);
    expect(stderr.split("\n").sort()).toEqual([
      "",
      `qmpctl: ${other.path}: query-big was run (QEMU answered it), but timed out waiting for stdout to take the ` +
      "output (--timeout 1s)",
      `qmpctl: ${server.path}: query-big was run (QEMU answered it), but timed out waiting for stdout to take the ` +
      "output (--timeout 1s)",
      "qmpctl: timed out waiting for stdout to take the output (--timeout 1s)",
    ].sort());
    expect(ms).toBeLessThan(8000);
  } finally {
    other.stop();
  }
});

test("batch and the piped shell, --timeout 1s, a reader that does not read: exit 124 at the bound", async () => {
  for (const command of [["batch"], ["shell"]]) {
    const run = runWithStalledReader(["-s", server.path, ...command, "--timeout", "1s"], [], "query-big\n".repeat(3));
    const { code, stderr, ms } = await run.exited;
    await run.release();
    expect({ command, code }).toEqual({ command, code: 124 });
    expect(stderr).toContain("timed out waiting for stdout to take the output");
    expect(ms).toBeLessThan(8000);
  }
});

test("batch whose reader stops taking its output: the timeout names stdout as what held it, not QEMU's replies", async () => {
  // A real QEMU: it stops reading requests while its answers wait, so lines are still unanswered at the bound.
  const qemu = await startQemu();
  try {
    const run = runWithStalledReader(
      ["-s", qemu.socket, "batch", "--timeout", "1s"],
      [],
      "query-qmp-schema\n".repeat(300),
    );
    const { code, stderr } = await run.exited;
    await run.release();
    expect(code).toBe(124);
    expect(stderr).toMatch(/^qmpctl: timed out waiting for stdout to take the output; QEMU ran lines 1-\d+; no answer/);
  } finally {
    await qemu.stop();
  }
});

test("Ctrl-C while the output waits for the reader (--timeout given): exit 130, quietly, as elsewhere", async () => {
  const run = runWithStalledReader(["-s", server.path, "exec", "query-big", "--timeout", "60s"]);
  const pid = await run.pid;
  await waitUntil(() => waitsForReader(pid), "qmpctl's output waits for the reader");
  process.kill(pid, "SIGINT");
  const { code, stderr } = await run.exited;
  await run.release();
  expect({ code, stderr }).toEqual({ code: 130, stderr: "" });
});

test("a reader that reads late gets the whole reply, as one line (written off the main thread)", async () => {
  const run = runWithStalledReader(["-s", server.path, "exec", "query-big", "--timeout", "60s"]);
  const pid = await run.pid;
  await waitUntil(() => waitsForReader(pid), "qmpctl's output waits for the reader");
  const stdout = await run.release();
  expect(await run.exited).toMatchObject({ code: 0, stderr: "" });
  expect(stdout).toBe(JSON.stringify(BIG) + "\n");
});

// As a parent may leave it (Node sets O_NONBLOCK on its pipes): Bun's own write meeting EAGAIN started its
// text again from the start, and the reader got the first 64 KiB twice.
const NON_BLOCKING_STDOUT = [
  "python3",
  "-c",
  "import fcntl, os, sys; fcntl.fcntl(1, fcntl.F_SETFL, fcntl.fcntl(1, fcntl.F_GETFL) | os.O_NONBLOCK); " +
  "os.execv(sys.argv[1], sys.argv[1:])",
];

test("a non-blocking stdout pipe read late: the whole reply, once, with and without --timeout", async () => {
  for (const bound of [[], ["--timeout", "60s"]]) {
    const run = runWithStalledReader(["-s", server.path, "exec", "query-big", ...bound], NON_BLOCKING_STDOUT);
    await run.pid;
    await Bun.sleep(300); // time to fill the pipe (there is nothing to wait for: a write that fails does not block)
    const stdout = await run.release();
    expect(await run.exited).toMatchObject({ code: 0, stderr: "" });
    expect(stdout).toBe(JSON.stringify(BIG) + "\n");
  }
});

test("a small or part-full non-blocking pipe, read late: the whole reply, once", async () => {
  // A 4 KiB pipe (F_SETPIPE_SZ), O_NONBLOCK, its reader waiting 300 ms: Bun's write meeting EAGAIN wrote
  // its text again from the start. The python program prints what it read, and qmpctl's status.
  const script = `
import fcntl, os, subprocess, sys, time
r, w = os.pipe()
fcntl.fcntl(w, 1031, int(sys.argv[1]))  # F_SETPIPE_SZ
os.write(w, b"x" * int(sys.argv[2]))  # what an earlier writer left in it
os.set_blocking(w, False)
p = subprocess.Popen(sys.argv[3:], stdout=w)
os.close(w)
time.sleep(0.3)
data = b"".join(iter(lambda: os.read(r, 65536), b""))
sys.stdout.buffer.write(data)
sys.stderr.write("exit %d" % p.wait())
`;
  for (const [size, before] of [[4096, 0], [65536, 60000]]) {
    for (const bound of [[], ["--timeout", "60s"]]) {
      const child = Bun.spawn(
        [
          "python3",
          "-c",
          script,
          String(size),
          String(before),
          QMPCTL,
          "-s",
          server.path,
          "exec",
          "query-mid",
          ...bound,
        ],
        {
          stdout: "pipe",
          stderr: "pipe",
          env: { PATH: process.env.PATH ?? "/usr/bin:/bin", XDG_CACHE_HOME: "/nonexistent" },
        },
      );
      const [stdout, stderr] = await Promise.all([
        new Response(child.stdout).text(),
        new Response(child.stderr).text(),
      ]);
      expect({ size, before, bound, stderr }).toEqual({ size, before, bound, stderr: "exit 0" });
      expect({ size, before, bound, stdout }).toEqual({
        size,
        before,
        bound,
        stdout: `${"x".repeat(before)}"${MID}"\n`,
      });
    }
  }
});

// The events tests' bound: time for the flood (sent 200 ms after negotiation) to fill the pipe on a loaded
// machine, before the bound comes; an events run whose output all went out by then ends well (0).
const FLOOD_BOUND = "3s";

test("events --timeout into a reader that does not read: exit 124 at the bound, saying stdout did not take them", async () => {
  const flood = floodServer(100_000);
  try {
    const run = runWithStalledReader(["-s", flood.path, "events", "--timeout", FLOOD_BOUND]);
    const { code, stderr, ms } = await run.exited;
    const stdout = await run.release();
    // Not 0 ("listened as long as asked"): events that came were not all given to the reader.
    expect({ code, stderr }).toEqual({
      code: 124,
      stderr: `qmpctl: timed out waiting for stdout to take the output (--timeout ${FLOOD_BOUND})\n`,
    });
    expect(ms).toBeLessThan(10_000);
    // Whole lines, none cut by the end of the run: the flood's first events, in order.
    expect(stdout.at(-1)).toBe("\n");
    const lines = stdout.split("\n").slice(0, -1);
    expect(lines.length).toBeGreaterThan(100);
    expect(lines).toEqual(lines.map((_, i) => JSON.stringify(floodEvent(i))));
  } finally {
    flood.stop();
  }
});

// An event line of `bytes` bytes (with its line feed), as qmpctl prints it.
function eventOfLine(i: number, bytes: number) {
  const bare = JSON.stringify({ timestamp: { seconds: i, microseconds: 0 }, event: "STOP", data: { pad: "" } });
  return {
    timestamp: { seconds: i, microseconds: 0 },
    event: "STOP",
    data: { pad: "p".repeat(bytes - bare.length - 1) },
  };
}

// Lines of 59000 bytes, then 3000, then 2000 each, each on its own 30 ms apart: each is one write, 58 KB in
// all. A pipe holds them in 16 pages and 16 more bytes: a write that does not fit in the rest of the last page
// starts a new one, so the 3000 took the 16th page and the first 2000 waited for the reader, in Bun's own
// write on the main thread, past the --timeout.
const PAGE_FILLING = [59000, 3000, 2000, 2000, 2000].map((bytes, i) => eventOfLine(i, bytes));

test("events --timeout 1s whose lines fill a pipe before 64 KiB, a reader that does not read: 124 at the bound", async () => {
  const spaced = fakeServer(async (c) => {
    await c.handshake();
    for (const event of PAGE_FILLING) {
      c.send(JSON.stringify(event) + "\r\n");
      await Bun.sleep(30);
    }
    await c.nextRequest(); // none comes: the connection stays open
  });
  try {
    const run = runWithStalledReader(["-s", spaced.path, "events", "--timeout", "1s"]);
    const { code, stderr, ms } = await run.exited;
    const stdout = await run.release();
    expect({ code, stderr }).toEqual({
      code: 124,
      stderr: "qmpctl: timed out waiting for stdout to take the output (--timeout 1s)\n",
    });
    expect(ms).toBeLessThan(8000);
    const lines = stdout.split("\n").slice(0, -1);
    expect(lines.length).toBeGreaterThanOrEqual(2);
    expect(lines).toEqual(PAGE_FILLING.slice(0, lines.length).map((event) => JSON.stringify(event)));
  } finally {
    spaced.stop();
  }
});

// A pipe of one page (4 KiB), as a parent may make it (F_SETPIPE_SZ), or the kernel when a user's pipes hold
// more than /proc/sys/fs/pipe-user-pages-soft.
const ONE_PAGE_STDOUT = [
  "python3",
  "-c",
  "import fcntl, os, sys; fcntl.fcntl(1, fcntl.F_SETPIPE_SZ, 4096); os.execv(sys.argv[1], sys.argv[1:])",
];

test("a one-page stdout pipe, a reader that does not read: exec and events end at --timeout (124)", async () => {
  const cases = [
    {
      args: (_flood: string) => ["-s", server.path, "exec", "query-mid"],
      said: "qmpctl: query-mid was run (QEMU answered it), but timed out waiting for stdout to take the output",
    },
    {
      args: (flood: string) => ["-s", flood, "events"],
      said: "qmpctl: timed out waiting for stdout to take the output",
    },
  ];
  for (const { args, said } of cases) {
    const flood = floodServer(100_000);
    try {
      const run = runWithStalledReader([...args(flood.path), "--timeout", FLOOD_BOUND], ONE_PAGE_STDOUT);
      const { code, stderr, ms } = await run.exited;
      await run.release();
      expect({ said, code, stderr }).toEqual({ said, code: 124, stderr: `${said} (--timeout ${FLOOD_BOUND})\n` });
      expect(ms).toBeLessThan(10_000);
    } finally {
      flood.stop();
    }
  }
});

test("events --timeout, 2>&1 into a reader that does not read: 124 at the bound, not held by the line saying so", async () => {
  const flood = floodServer(100_000);
  try {
    const run = runWithStalledReader(["-s", flood.path, "events", "--timeout", FLOOD_BOUND], [
      "sh",
      "-c",
      'exec "$@" 2>&1',
      "sh",
    ]);
    const { code, stderr, ms } = await run.exited;
    const stdout = await run.release();
    expect({ code, stderr }).toEqual({ code: 124, stderr: "" }); // the line went to the pipe, which is full
    expect(ms).toBeLessThan(10_000);
    const lines = stdout.split("\n").slice(0, -1);
    expect(lines.length).toBeGreaterThan(100);
    expect(lines).toEqual(lines.map((_, i) => JSON.stringify(floodEvent(i))));
  } finally {
    flood.stop();
  }
});

test("wait-event --count N whose output the reader does not take: 124, saying how many had come", async () => {
  const flood = floodServer(100_000);
  try {
    const args = ["-s", flood.path, "wait-event", "STOP", "--count", "200000", "--timeout", FLOOD_BOUND];
    const run = runWithStalledReader(args);
    const { code, stderr } = await run.exited;
    await run.release();
    expect(code).toBe(124);
    expect(stderr).toMatch(
      /^qmpctl: timed out waiting for stdout to take the output; \d+ of 200000 arrived \(--timeout 3s\)\n$/,
    );
  } finally {
    flood.stop();
  }
});

test("events --count N into a reader that reads late: every event, in order (--timeout; a non-blocking pipe)", async () => {
  const total = 20_000;
  const expected = Array.from({ length: total }, (_, i) => JSON.stringify(floodEvent(i)) + "\n").join("");
  for (const [bound, wrapper] of [[["--timeout", "60s"], []], [[], NON_BLOCKING_STDOUT]]) {
    const flood = floodServer(total);
    try {
      const run = runWithStalledReader(["-s", flood.path, "events", "--count", String(total), ...bound], wrapper);
      const pid = await run.pid;
      if (bound.length > 0) await waitUntil(() => waitsForReader(pid), "qmpctl's output waits for the reader");
      else await Bun.sleep(500); // a non-blocking write does not wait: nothing to see, only time to fill the pipe
      const stdout = await run.release();
      expect(await run.exited).toMatchObject({ code: 0, stderr: "" });
      expect(stdout).toBe(expected);
    } finally {
      flood.stop();
    }
  }
});

test("events --timeout into a reader that keeps reading (a file, a pipe): exit 0, though a write was under way at the bound", async () => {
  const steady = fakeServer(async (c) => {
    await c.handshake();
    const batch = Array.from({ length: 50 }, (_, i) => JSON.stringify(floodEvent(i)) + "\r\n").join("");
    let open = true;
    c.closed.then(() => (open = false));
    while (open) { // ~50 000 events a second, for as long as the client listens
      c.send(batch);
      await Bun.sleep(1);
    }
  });
  const dir = mkdtempSync(join(tmpdir(), "qmpctl-steady-"));
  try {
    for (const output of [`> ${dir}/events.ndjson`, "| cat > /dev/null", "| wc -l > /dev/null"]) {
      for (let run = 0; run < 3; run++) {
        const script = `{ "$0" "$@" ${output.startsWith(">") ? output : ""}; echo "exit $?" >&2; } ${
          output.startsWith("|") ? output : ""
        }`;
        const child = Bun.spawn(["sh", "-c", script, QMPCTL, "-s", steady.path, "events", "--timeout", "500ms"], {
          stderr: "pipe",
          env: { PATH: process.env.PATH ?? "/usr/bin:/bin", XDG_CACHE_HOME: "/nonexistent" },
        });
        expect({ output, stderr: await new Response(child.stderr).text() }).toEqual({ output, stderr: "exit 0\n" });
      }
    }
  } finally {
    steady.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a reader that leaves in the middle of the events: a quiet exit 0", async () => {
  const flood = floodServer(50_000);
  try {
    const script = '{ "$0" "$@"; echo "exit $?" >&2; } | head -c 200000 >/dev/null';
    const child = Bun.spawn(["sh", "-c", script, QMPCTL, "-s", flood.path, "events", "--count", "50000"], {
      stderr: "pipe",
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", XDG_CACHE_HOME: "/nonexistent" },
    });
    expect(await new Response(child.stderr).text()).toBe("exit 0\n");
  } finally {
    flood.stop();
  }
});

test("a reader on a socket that leaves with output unread (it resets): a quiet exit 0, as from a pipe", async () => {
  // stdout one end of a socket pair (socat EXEC:, systemd's StandardOutput=socket); the other reads 100 bytes
  // once qmpctl has filled it, and closes it.
  const script = `
import socket, subprocess, sys, time
ours, theirs = socket.socketpair()
p = subprocess.Popen(sys.argv[1:], stdout=theirs, stderr=subprocess.PIPE)
theirs.close()
time.sleep(0.5)
ours.recv(100)
ours.close()
code = p.wait(timeout=20)
sys.stdout.write("exit %d %s" % (code, p.stderr.read().decode()))
`;
  for (const bound of [[], ["--timeout", "20s"]]) {
    const flood = floodServer(50_000);
    try {
      const args = [QMPCTL, "-s", flood.path, "events", "--count", "50000", ...bound];
      const child = Bun.spawn(["python3", "-c", script, ...args], { stdout: "pipe" });
      expect({ bound, said: await new Response(child.stdout).text() }).toEqual({ bound, said: "exit 0 " });
    } finally {
      flood.stop();
    }
  }
});

test("--timeout not run out: a stderr reader that reads late still gets every line (-v, 2>&1 >/dev/null)", async () => {
  const script = '"$0" "$@" 2>&1 >/dev/null | { sleep 1; cat; }';
  const child = Bun.spawn([
    "sh",
    "-c",
    script,
    QMPCTL,
    "-s",
    server.path,
    "-v",
    "exec",
    "query-big",
    "--timeout",
    "20s",
  ], {
    stdout: "pipe",
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", XDG_CACHE_HOME: "/nonexistent" },
  });
  const lines = (await new Response(child.stdout).text()).split("\n");
  // The greeting, qmp_capabilities, the command and both replies: the last (~200 KB) whole, and the end.
  expect(lines.at(-2)).toStartWith('< {"return":["member 0 of a reply');
  expect(lines.at(-2)).toMatch(/member 3999 of a reply larger than a pipe holds"\],"id":"qmpctl-[0-9a-z]+-2"\}$/);
  expect(lines.at(-1)).toBe("");
});

test("-v lines that a stderr read late cannot hold are dropped beyond 4 MiB, and their number said", async () => {
  const flood = floodServer(100_000); // ~9 MB of -v lines
  try {
    // The reader reads once the test writes a line to the shell's stdin: after the whole flood was sent.
    const script = 'exec 3<&0; "$0" "$@" 2>&1 >/dev/null 3<&- | { read -r _ <&3; cat; }';
    const args = [QMPCTL, "-s", flood.path, "-v", "events", "--count", "100000", "--timeout", "30s"];
    const child = Bun.spawn(["sh", "-c", script, ...args], {
      stdin: "pipe",
      stdout: "pipe",
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", XDG_CACHE_HOME: "/nonexistent" },
    });
    await waitUntil(() => flood.accepted > 6_000_000 && flood.backlog === 0, "the flood was sent", 20_000);
    child.stdin.write("read now\n");
    child.stdin.end();
    const stderr = await new Response(child.stdout).text();
    expect(stderr).toMatch(/\nqmpctl: \d+ lines for stderr were dropped: it did not take them\n/);
    expect(stderr.length).toBeLessThan(6_000_000);
    expect(stderr.split("\n").filter((line) => line.startsWith("< {")).length).toBeGreaterThan(10_000);
  } finally {
    flood.stop();
  }
});

test("a finished run whose stderr stops taking its lines: 124 at --timeout; a Ctrl-C in that wait ends it as one", async () => {
  // -v's lines into a pipe an earlier writer left full: the run ends well, its lines not taken.
  const args = [QMPCTL, "-s", server.path, "-v", "exec", "query-mid"];
  const held = await runIntoUnreadPipe("stderr", [...args, "--timeout", "2s"], { prefill: 4090 });
  expect(held).toEqual({ code: 124, fast: true, stderr: "" });
  const interrupted = await runIntoUnreadPipe("stderr", [...args, "--timeout", "60s"], {
    prefill: 4090,
    signalAfter: { seconds: 1, signal: "SIGINT" },
  });
  expect(interrupted).toEqual({ code: -2, fast: true, stderr: "" }); // died of SIGINT (130 to a shell)
});

test("--timeout, 2>&1 into a reader that reads slowly: the line saying the bound ran out comes last, whole", async () => {
  const qemu = await startQemu();
  try {
    const input = join(inputDir, "version-lines");
    writeFileSync(input, "query-version\n".repeat(5000)); // ~0.6 MB of short lines: ~4 s for the reader below
    const reader = "import os, sys, time\ndata = b''\n" +
      "while chunk := os.read(0, 16384):\n    data += chunk\n    time.sleep(0.1)\n" +
      "sys.stdout.buffer.write(data.split(b'\\n')[-2])";
    const script = '"$0" "$@" 2>&1 | python3 -c "$READER"';
    const child = Bun.spawn(["sh", "-c", script, QMPCTL, "-s", qemu.socket, "--timeout", "2s", "batch", input], {
      stdout: "pipe",
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", XDG_CACHE_HOME: "/nonexistent", READER: reader },
    });
    const last = await new Response(child.stdout).text();
    expect(last.slice(0, 300)).toMatch(
      /^qmpctl: timed out waiting for [^\n]*; [^\n]* \(--timeout 2s\)$/, // stdout, or QEMU's replies meanwhile
    );
  } finally {
    await qemu.stop();
  }
});
