/**
 * When stdout cannot take the output (a full disk, a closed descriptor), qmpctl
 * says so and exits 74 (sysexits' EX_IOERR); a reader that leaves (EPIPE) is
 * still a quiet 0. What is appended to a file (`>>`) follows its text.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { QMPCTL } from "./helpers/cli.ts";
import { type FakeServer, fakeServer } from "./helpers/fake_server.ts";

let server: FakeServer;
beforeAll(() => {
  server = fakeServer(async (c) => {
    await c.handshake();
    for (;;) {
      const request = await c.nextRequest();
      if (request.execute === "human-monitor-command") c.reply(request, "VM status: running\r\n");
      else if (request.execute !== "query-qmp-schema") c.reply(request, { running: true, status: "running" });
      else c.sendJson({ error: { class: "CommandNotFound", desc: "no schema here" }, id: request.id }); // names unchecked
    }
  });
});
afterAll(() => server.stop());

/** Run qmpctl through sh with `redirect` applied to its stdout. */
async function run(args: string[], redirect: string, stdin = "") {
  const child = Bun.spawn(["sh", "-c", `exec "$@" ${redirect}`, "sh", QMPCTL, ...args], {
    stdin: new Blob([stdin]),
    stdout: "ignore",
    stderr: "pipe",
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", XDG_CACHE_HOME: "/nonexistent" },
  });
  const killer = setTimeout(() => child.kill("SIGKILL"), 15_000);
  const [stderr, code] = await Promise.all([new Response(child.stderr).text(), child.exited]);
  clearTimeout(killer);
  return { code, stderr };
}

test("exec > /dev/full: exit 74, saying the disk is full and that the command was run", async () => {
  expect(await run(["-s", server.path, "exec", "query-status"], "> /dev/full")).toEqual({
    code: 74,
    stderr:
      "qmpctl: could not write the output: no space left on the device (ENOSPC) (query-status was run: QEMU answered it)\n",
  });
});

test("exec --raw > /dev/full of a command QEMU refuses: exit 74, and QEMU's error is said on stderr", async () => {
  expect(await run(["-s", server.path, "exec", "query-qmp-schema", "--raw"], "> /dev/full")).toEqual({
    code: 74,
    stderr: "qmpctl: could not write the output: no space left on the device (ENOSPC) " +
      "(query-qmp-schema was run: QEMU answered it with an error, CommandNotFound: no schema here)\n",
  });
});

test("exec with stdout closed (>&-): exit 74, not 0 with the output lost; a script must not run it again", async () => {
  expect(await run(["-s", server.path, "exec", "query-status"], ">&-")).toEqual({
    code: 74,
    stderr: "qmpctl: could not write the output: stdout is closed (EBADF) (query-status was run: QEMU answered it)\n",
  });
});

test("wait-event and events with stdout closed: exit 74 at once, not after the wait (or 0 with nothing)", async () => {
  for (const command of [["wait-event", "STOP"], ["events"]]) {
    const started = performance.now();
    expect(await run(["-s", server.path, ...command, "--timeout", "5s"], ">&-")).toEqual({
      code: 74,
      stderr: "qmpctl: could not write the output: stdout is closed (EBADF)\n",
    });
    expect(performance.now() - started).toBeLessThan(4000);
  }
});

test("--version > /dev/full and --help >&-: exit 74", async () => {
  expect((await run(["--version"], "> /dev/full")).code).toBe(74);
  expect((await run(["--help"], ">&-")).code).toBe(74);
});

test("hmp > /dev/full: exit 74, naming the line that was run as typed", async () => {
  expect(await run(["-s", server.path, "hmp", "info status"], "> /dev/full")).toEqual({
    code: 74,
    stderr:
      "qmpctl: could not write the output: no space left on the device (ENOSPC) ('info status' was run: QEMU answered it)\n",
  });
});

test("exec > /dev/null still works (exit 0)", async () => {
  expect(await run(["-s", server.path, "exec", "query-status"], "> /dev/null")).toEqual({ code: 0, stderr: "" });
});

test("the piped shell > /dev/full: exit 74, with one line on stderr (every time: the failure races the input)", async () => {
  for (let i = 0; i < 8; i++) {
    const result = await run(["-s", server.path, "shell"], "> /dev/full", "query-status\nquery-status\n");
    expect(result).toEqual({
      code: 74,
      stderr: "qmpctl: could not write the output: no space left on the device (ENOSPC)\n",
    });
  }
});

test("the general help says which waits are bounded, and how", async () => {
  const child = Bun.spawn([QMPCTL, "--help"], { stdout: "pipe", stderr: "pipe" });
  const help = await new Response(child.stdout).text();
  expect(await child.exited).toBe(0);
  expect(help).not.toContain("no wait without a bound");
  expect(help).toContain("without it, exec waits as long as QEMU takes");
  expect(help).toContain("\n  74   the output could not be written");
});

test("batch > /dev/full: exit 74, naming the lines that ran (their results are lost) and the input not run", async () => {
  // The second line comes only after the first write has failed: the run ends there, not taking it.
  const script = '{ echo stop; sleep 2; echo cont; } | "$0" -s "$1" batch > /dev/full';
  const child = Bun.spawn(["sh", "-c", script, QMPCTL, server.path], { stdout: "ignore", stderr: "pipe" });
  const [stderr, code] = await Promise.all([new Response(child.stderr).text(), child.exited]);
  expect({ code, stderr }).toEqual({
    code: 74,
    stderr: "qmpctl: could not write the output: no space left on the device (ENOSPC); QEMU ran line 1 " +
      "(any input after line 1 was not run)\n",
  });
  // The input ended first: every line ran.
  expect(await run(["-s", server.path, "batch"], ">&-", "stop\ncont\n")).toEqual({
    code: 74,
    stderr: "qmpctl: could not write the output: stdout is closed (EBADF); QEMU ran lines 1-2\n",
  });
  // Only what went to QEMU: not blanks, comments, lines refused here, or a transaction not closed. (Line 7's
  // action type is checked against the schema: the input's end may not have been read when the write fails.)
  const input = "stop\n\n# a comment\nbogus x\ncont\ntransaction(\n  stop\n";
  const ranSome = await run(["-s", server.path, "batch"], ">&-", input);
  expect(ranSome.code).toBe(74);
  expect(ranSome.stderr).toMatch(
    /^qmpctl: could not write the output: stdout is closed \(EBADF\); QEMU ran lines 1, 5( \(any input after line 7 was not run\))?\n$/,
  );
  expect(await run(["-s", server.path, "batch"], ">&-", "transaction(\n  stop\n")).toEqual({ // never closed
    code: 74,
    stderr: "qmpctl: could not write the output: stdout is closed (EBADF); no command was sent\n",
  });
});

test("several targets > /dev/full: a line for each target, naming it and what it ran (exit 74)", async () => {
  const second = fakeServer(async (c) => {
    await c.handshake();
    for (;;) c.reply(await c.nextRequest(), { running: true, status: "running" });
  });
  try {
    for (let i = 0; i < 6; i++) { // both targets' writes fail, or one stops first: each says what it ran, once
      const result = await run(["-s", server.path, "-s", second.path, "exec", "query-status"], "> /dev/full");
      expect(result.code).toBe(74);
      const lines = result.stderr.trimEnd().split("\n").sort();
      expect(lines).toHaveLength(2);
      lines.forEach((line, i) =>
        expect(line).toMatch(
          new RegExp(
            `^qmpctl: ${[server.path, second.path].sort()[i]}: (could not write the output: no space left on the ` +
              "device \\(ENOSPC\\) \\(query-status was run: QEMU answered it\\)|stopped when the output failed, " +
              "while waiting for the (reply to|answer to qmp_capabilities from \\S+ \\()query-status\\b.*)$",
          ),
        )
      );
    }
  } finally {
    second.stop();
  }
});

test("several targets, stdout closed: a target still waiting for its reply says it stopped; one not started is counted", async () => {
  const received: string[] = [];
  let slowHasIt = Promise.withResolvers<void>();
  const fast = fakeServer(async (c) => { // answers once the other target has been sent its command
    await c.handshake();
    const request = await c.nextRequest();
    await slowHasIt.promise;
    c.reply(request, {});
  });
  const slow = fakeServer(async (c) => { // answers after the output has failed
    await c.handshake();
    const request = await c.nextRequest();
    received.push(`slow: ${request.execute}`);
    slowHasIt.resolve();
    await Bun.sleep(3000);
    c.reply(request, {});
  });
  const notStarted = fakeServer(async (c) => {
    await c.handshake();
    received.push(`third: ${(await c.nextRequest()).execute}`);
  });
  try {
    const targets = ["-s", fast.path, "-s", slow.path, "-s", notStarted.path, "-j", "2"];
    // What the first says it ran, and the end of the second's line (it may still have awaited qmp_capabilities).
    for (
      const [argv, ran, unanswered] of [
        [["exec", "stop"], " (stop was run: QEMU answered it)", ".*\\bstop\\b.*"],
        [["batch"], "; QEMU ran line 1", ".*; no answer to line 1; QEMU may have run line 1"],
      ] as const
    ) {
      slowHasIt = Promise.withResolvers();
      const result = await run([...targets, ...argv], ">&-", "stop\n");
      expect(result.code).toBe(74);
      const lines = result.stderr.trimEnd().split("\n");
      expect(lines).toHaveLength(2); // one per target started, no Ctrl-C note
      const [first, second] = lines[0].startsWith(`qmpctl: ${fast.path}:`) ? lines : lines.toReversed();
      expect(first).toBe(
        `qmpctl: ${fast.path}: could not write the output: stdout is closed (EBADF)${ran}; 1 more target was not started`,
      );
      expect(second).toMatch(
        new RegExp(`^qmpctl: ${slow.path}: stopped when the output failed, while waiting for ${unanswered}$`),
      );
    }
    expect(received).toEqual(["slow: stop", "slow: stop"]); // the third was never sent it
  } finally {
    fast.stop();
    slow.stop();
    notStarted.stop();
  }
});

test("several targets, stdout closed, a failure line first: the targets waiting for events stop too (exit 74)", async () => {
  const quiet = fakeServer(async (c) => { // a monitor whose VM sends no event
    await c.handshake();
    await c.closed;
  });
  try {
    const missing = join(tmpdir(), `qmpctl-no-such-${process.pid}.sock`);
    for (const command of [["wait-event", "STOP"], ["events"]]) {
      const result = await run(["-s", quiet.path, "-s", missing, ...command], ">&-"); // no --timeout: not hung
      expect(result.code).toBe(74);
      expect(result.stderr).toContain(`qmpctl: cannot connect to ${missing}: no such socket (ENOENT)\n`);
      // Stopped by the other's failure, or failed by itself at its check of stdout before its wait: either way, said.
      expect(result.stderr).toMatch(
        new RegExp(`^qmpctl: ${quiet.path}: (stopped when the output failed|could not write the output)`, "m"),
      );
    }
  } finally {
    quiet.stop();
  }
});

test("several targets waiting for events, stdout closed at start: exit 74 at once, each target saying so", async () => {
  const quiet = [0, 1].map(() =>
    fakeServer(async (c) => { // monitors whose VMs send no event (and no schema: event names go unchecked)
      await c.handshake();
      for (;;) {
        const request = await c.nextRequest();
        c.sendJson({ error: { class: "CommandNotFound", desc: `no ${request.execute} here` }, id: request.id });
      }
    })
  );
  try {
    const targets = quiet.flatMap((server) => ["-s", server.path]);
    for (const command of [["events", "--timeout", "5s"], ["wait-event", "STOP"]]) {
      const result = await run([...targets, ...command], ">&-");
      expect(result.code).toBe(74); // it was 0 at --timeout (no event came, so no write failed), or never ended
      for (const server of quiet) {
        expect(result.stderr).toMatch(
          new RegExp(`^qmpctl: ${server.path}: (stopped when the output failed|could not write the output)`, "m"),
        );
      }
    }
  } finally {
    quiet.forEach((server) => server.stop());
  }
});

test("several targets, a reader that stops reading, --timeout: the targets not started are counted (exit 124)", async () => {
  const big = [0, 1, 2].map(() =>
    fakeServer(async (c) => { // a reply bigger than a pipe holds
      await c.handshake();
      for (;;) c.reply(await c.nextRequest(), "x".repeat(1 << 20));
    })
  );
  try {
    const script = '("$0" "$@"; echo "exit $?" >&2) | sleep 3';
    const targets = big.flatMap((server) => ["-s", server.path]);
    const child = Bun.spawn(["sh", "-c", script, QMPCTL, ...targets, "--jobs", "1", "exec", "x", "--timeout", "1s"], {
      stdout: "ignore",
      stderr: "pipe",
    });
    const stderr = await new Response(child.stderr).text();
    expect(stderr).toContain("; 2 more targets were not started (--timeout 1s)\n");
    expect(stderr).toEndWith("exit 124\n");
  } finally {
    big.forEach((server) => server.stop());
  }
});

test(">> onto a file shorter than the output: the output follows the file's text, no NUL bytes between", async () => {
  const dir = mkdtempSync(join(tmpdir(), "qmpctl-append-"));
  const big = fakeServer(async (c) => {
    await c.handshake();
    c.reply(await c.nextRequest(), "x".repeat(5000)); // Bun's write extended the file from 0 for 1 KiB or more
  });
  try {
    const file = join(dir, "log");
    writeFileSync(file, "HEADER\n");
    expect(await run(["-s", big.path, "exec", "query-x"], `>> ${file}`)).toEqual({ code: 0, stderr: "" });
    expect(readFileSync(file, "utf8")).toBe(`HEADER\n"${"x".repeat(5000)}"\n`);
  } finally {
    big.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
