/** `qmpctl ga exec` against a real qemu-ga (which runs the programs on this machine). */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { interrupt, QMPCTL, qmpctl, qmpctlInShell, startQmpctl } from "./helpers/cli.ts";
import { answerSync, fakeAgent, qmpctlBytes, startAgent, type TestAgent } from "./helpers/qemu_ga.ts";
import { runIntoUnreadPipe } from "./helpers/unread_pipe.ts";

let agent: TestAgent;
let randomFile: string;
let randomBytes: Uint8Array<ArrayBuffer>;
beforeAll(async () => {
  agent = await startAgent();
  randomBytes = crypto.getRandomValues(new Uint8Array(300_000));
  randomFile = join(agent.dir, "random.bin");
  writeFileSync(randomFile, randomBytes);
});
afterAll(() => agent?.stop());

const exec = (...args: string[]) => qmpctl(["-s", agent.socket, "ga", "exec", ...args]);

/** The pid of the program the agent started (this machine is the guest), once it runs; undefined after 5 s. */
async function startedProgram(pattern: string): Promise<number | undefined> {
  for (const deadline = Date.now() + 5000; Date.now() < deadline; await Bun.sleep(20)) {
    const found = Bun.spawnSync(["pgrep", "-f", pattern]).stdout.toString().trim();
    if (found) return Number(found.split("\n")[0]);
  }
}

describe("ga exec", () => {
  test("prints the program's output and exits 0", async () => {
    expect(await exec("--", "echo", "hello", "guest")).toEqual(
      expect.objectContaining({ code: 0, stdout: "hello guest\n", stderr: "" }),
    );
  });

  test("without --, every word after the program is the program's, as after ssh's command (df -h runs df -h)", async () => {
    const result = await qmpctl(["-s", agent.socket, "ga", "exec", "sh", "-c", 'echo "$@"', "sh", "-p", "--raw", "-h"]);
    expect(result).toMatchObject({ code: 0, stdout: "-p --raw -h\n", stderr: "" });
  });

  test("stdout and stderr go apart, and the program's exit status is qmpctl's", async () => {
    const result = await exec("--", "sh", "-c", "echo out; echo err >&2; exit 3");
    expect(result).toMatchObject({ code: 3, stdout: "out\n", stderr: "err\n" });
  });

  test("a reader that closes stdout early does not hide the program's status (as with ssh host cmd)", () => {
    const script = `"$0" -s "$1" ga exec -- sh -c 'seq 100000; echo done >&2; exit 4' | head -c 1; ` +
      'echo " status ${PIPESTATUS[0]}"';
    const result = Bun.spawnSync(["bash", "-c", script, QMPCTL, agent.socket], { stdout: "pipe", stderr: "pipe" });
    expect(result.stdout.toString()).toBe("1 status 4\n");
    expect(result.stderr.toString()).toBe("done\n"); // its stderr still comes
    const both = `"$0" -s "$1" ga exec -- sh -c 'seq 100000; seq 100000 >&2; exit 4' 2>&1 | head -c 1; ` +
      'echo " status ${PIPESTATUS[0]}"'; // stderr to the closed pipe too
    const merged = Bun.spawnSync(["bash", "-c", both, QMPCTL, agent.socket], { stdout: "pipe", stderr: "pipe" });
    expect(merged.stdout.toString()).toBe("1 status 4\n");
  });

  test("a program ended by a signal exits 128+N", async () => {
    const result = await exec("--", "sh", "-c", "kill -TERM $$");
    expect(result).toMatchObject({ code: 128 + 15, stdout: "", stderr: "" });
  });

  test("stdout is the program's bytes exactly (300 KB of random bytes)", async () => {
    const result = await qmpctlBytes(["-s", agent.socket, "ga", "exec", "--", "cat", randomFile]);
    expect(result.code).toBe(0);
    expect(result.stderr).toEqual(new Uint8Array());
    expect(result.stdout).toEqual(randomBytes);
  });

  test("stderr is the program's bytes exactly too", async () => {
    const result = await qmpctlBytes(["-s", agent.socket, "ga", "exec", "--", "sh", "-c", `cat ${randomFile} >&2`]);
    expect(result.code).toBe(0);
    expect(result.stdout).toEqual(new Uint8Array());
    expect(result.stderr).toEqual(randomBytes);
  });

  test("--stdin FILE and --stdin - give the program its input, byte for byte", async () => {
    const fromFile = await qmpctlBytes(["-s", agent.socket, "ga", "exec", "--stdin", randomFile, "--", "cat"]);
    expect(fromFile.code).toBe(0);
    expect(fromFile.stdout).toEqual(randomBytes);
    const fromStdin = await qmpctlBytes(["-s", agent.socket, "ga", "exec", "--stdin", "-", "--", "wc", "-c"], {
      stdin: randomBytes,
    });
    expect(new TextDecoder().decode(fromStdin.stdout).trim()).toBe(String(randomBytes.length));
  });

  test("--env gives the program exactly those variables", async () => {
    const result = await exec("--env", "A=1", "--env", "B=two words", "--", "env");
    expect(result).toMatchObject({ code: 0, stdout: "A=1\nB=two words\n" });
  });

  test("--json prints the final status object, and exits 0 whatever the program's status", async () => {
    const result = await exec("--json", "--", "sh", "-c", "printf hi; exit 5");
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual({
      exited: true,
      exitcode: 5,
      "out-data": btoa("hi"),
      "out-truncated": false,
    });
  });

  test("--timeout on sleep 30 exits 124 and says the program may still run", async () => {
    const result = await exec("--timeout", "3s", "--", "sleep", "30");
    const pid = /guest pid (\d+)/.exec(result.stderr)?.[1];
    if (pid) process.kill(Number(pid), "SIGKILL"); // the agent's child on this machine
    expect(result.code).toBe(124);
    expect(result.stdout).toBe("");
    expect(result.stderr).toMatch(
      /^qmpctl: timed out waiting for sleep \(guest pid \d+\) to end; it may still be running in the guest \(--timeout 3s\)\n$/,
    );
    expect(result.ms).toBeLessThan(8000);
  });

  test("--timeout bounds writing the output into a pipe nobody reads, stdout's or stderr's (exit 124)", async () => {
    for (const stalled of ["stdout", "stderr"] as const) {
      const program = stalled === "stdout" ? `cat ${randomFile}` : `cat ${randomFile} >&2`;
      const args = [QMPCTL, "-s", agent.socket, "ga", "exec", "--timeout", "2s", "--", "sh", "-c", program];
      const said = stalled === "stdout"
        ? "qmpctl: sh ran in the guest \\(guest pid \\d+\\) and ended with status 0, but timed out waiting for " +
          "stdout to take the output \\(--timeout 2s\\)\n"
        : ""; // stderr is the pipe
      expect({ stalled, ...await runIntoUnreadPipe(stalled, args) }).toEqual({
        stalled,
        code: 124,
        fast: true,
        stderr: expect.stringMatching(new RegExp(`^${said}$`)),
      });
    }
  });

  test("the agent gone while the program runs: exit 3, saying the program may still run in the guest", async () => {
    const doomed = await startAgent();
    // The agent stopped once qmpctl has guest-exec's answer (the guest pid), not only once the program runs.
    const answered = Promise.withResolvers<void>();
    let log = "";
    const running = startQmpctl(["-v", "-s", doomed.socket, "ga", "exec", "--", "sleep", "37.5"], {
      onStderr: (text) => /< \{"return":\{"pid":\d+/.test(log += text) && answered.resolve(),
    });
    const pid = await startedProgram("^sleep 37.5$");
    await answered.promise;
    await doomed.stop();
    const result = await running.result;
    if (pid) process.kill(pid, "SIGKILL");
    expect(pid).toBeDefined();
    expect(result.code).toBe(3);
    expect(result.stderr).toMatch(/; sleep \(guest pid \d+\) may still be running in the guest\n$/);
  });

  test("guest-exec-status refused (qemu-ga -b guest-exec-status): exit 1, saying the program may still run", async () => {
    const blocked = await startAgent(undefined, "unix-listen", ["-b", "guest-exec-status"]);
    try {
      const result = await qmpctl(["-s", blocked.socket, "ga", "exec", "--", "true"]);
      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(
        /^qmpctl: CommandNotFound: .*guest-exec-status.*; true \(guest pid \d+\) may still be running in the guest/,
      );
    } finally {
      await blocked.stop();
    }
  });

  test("an output that cannot be written: exit 74, saying the program ran and how it ended (not to be run again)", async () => {
    const result = await qmpctlInShell('"$0" -s "$1" ga exec -- sh -c "echo hi; exit 5" > /dev/full', agent.socket);
    expect(result.code).toBe(74);
    expect(result.stderr).toMatch(
      /^qmpctl: could not write the output: no space left on the device \(ENOSPC\) \(sh ran in the guest \(guest pid \d+\) and ended with status 5\)\n$/,
    );
  });

  test("SIGINT exits 130 and says the program may still run in the guest", async () => {
    const running = startQmpctl(["-s", agent.socket, "ga", "exec", "--", "sleep", "37.25"]);
    // The program has started once the agent's child is there (this machine is the guest).
    const pid = await startedProgram("^sleep 37.25$");
    running.child.kill("SIGINT");
    const result = await running.result;
    if (pid) process.kill(pid, "SIGKILL");
    expect(pid).toBeDefined();
    expect(result.code).toBe(130);
    expect(result.stderr).toMatch(/^qmpctl: interrupted: sleep \(guest pid \d+\) may still be running in the guest\n$/);
    // qemu-ga on its own socket quits if a client leaves a reply unread: qmpctl reads what it is owed first.
    expect(await qmpctl(["-s", agent.socket, "ga", "guest-ping"])).toMatchObject({ code: 0, stdout: "{}\n" });
  });

  test("output beyond what qemu-ga keeps is cut, with a warning", async () => {
    const result = await qmpctlBytes(["-s", agent.socket, "ga", "exec", "--", "head", "-c", "17000000", "/dev/zero"], {
      killAfterMs: 35_000,
    });
    expect(result.code).toBe(0);
    expect(result.stdout.length).toBeLessThan(17_000_000);
    expect(result.stdout.length).toBeGreaterThan(1_000_000);
    expect(new TextDecoder().decode(result.stderr)).toBe(
      "qmpctl: warning: the guest agent cut head's stdout (qemu-ga keeps at most 16 MB)\n",
    );
  }, 40_000); // qemu-ga takes seconds to gather 16 MB

  test("a program not found exits 127, one not runnable 126 (as ssh host cmd does), the agent's reason on stderr", async () => {
    const result = await exec("--", "/nonexistent/program");
    expect(result.code).toBe(127);
    expect(result.stderr).toMatch(/^qmpctl: \/nonexistent\/program: .*No such file or directory.*\n$/);
    const notRunnable = await exec("--", "/tmp"); // there, but a directory
    expect(notRunnable.code).toBe(126);
    expect(notRunnable.stderr).toMatch(/^qmpctl: \/tmp: .*Permission denied.*\n$/);
    // --json promises a status object, and there is none: the agent's error, exit 1
    const json = await exec("--json", "--", "/nonexistent/program");
    expect(json).toMatchObject({ code: 1, stdout: "" });
    expect(json.stderr).toMatch(/^qmpctl: GenericError: .*No such file or directory.*\n$/);
  });

  test("--stdin from a character device: /dev/null is empty input, /dev/zero is too large (exit 2)", async () => {
    const empty = await qmpctl(["-s", agent.socket, "ga", "exec", "--stdin", "/dev/null", "--", "wc", "-c"]);
    expect(empty).toMatchObject({ code: 0, stdout: "0\n", stderr: "" });
    const endless = await qmpctl(["-s", "/nonexistent/ga.sock", "ga", "exec", "--stdin", "/dev/zero", "--", "cat"]);
    expect(endless.code).toBe(2);
    expect(endless.stderr).toContain(
      "/dev/zero holds more than the agent takes in one guest-exec (48 MiB less 1 KiB: 50330624 bytes)",
    );
    // qmpctl's own stdin (-) is named as stdin
    const piped = await qmpctlInShell('"$0" -s /nonexistent/ga.sock ga exec --stdin - -- cat </dev/zero');
    expect(piped.code).toBe(2);
    expect(piped.stderr).toStartWith("qmpctl: --stdin: stdin holds more than the agent takes in one guest-exec");
  });

  test(
    "--stdin's bound, 48 MiB less 1 KiB: that much reaches the program whole, a byte more exits 2 unsent",
    async () => {
      // 48 MiB is 64 MiB in base64: with its quotes, more than the 64 MiB less 1 byte qemu-ga takes in one message.
      const limit = 48 * 1024 * 1024 - 1024;
      const atLimit = join(agent.dir, "at-limit.bin"), over = join(agent.dir, "over-limit.bin");
      writeFileSync(atLimit, new Uint8Array(limit).fill(0x61));
      writeFileSync(over, new Uint8Array(limit + 1));
      try {
        expect(await exec("--stdin", atLimit, "--", "wc", "-c")).toEqual(
          expect.objectContaining({ code: 0, stdout: `${limit}\n`, stderr: "" }),
        );
        expect(await qmpctl(["-s", "/nonexistent/ga.sock", "ga", "exec", "--stdin", over, "--", "cat"])).toEqual(
          expect.objectContaining({
            code: 2,
            stdout: "",
            stderr: `qmpctl: --stdin: ${over} holds more than the agent takes in one guest-exec ` +
              "(48 MiB less 1 KiB: 50330624 bytes): copy it with 'ga cp' instead\n",
          }),
        );
        // A long command line beside it makes a request over the agent's limit: exit 2 before anything is sent
        // (qemu-ga's "JSON token size limit exceeded" read as a program that could not be started, exit 126).
        const long = await exec("--stdin", atLimit, "--", "sh", "-c", 'exec wc -c # "$1"', "sh", "x".repeat(2000));
        expect(long).toMatchObject({ code: 2, stdout: "" });
        expect(long.stderr).toMatch(
          new RegExp(
            `^qmpctl: --stdin: ${atLimit} and the command line make a guest-exec request of \\d+ bytes, more than ` +
              "the agent takes in one message \\(67108863\\): copy the file with 'ga cp' instead\n$",
          ),
        );
      } finally {
        rmSync(atLimit, { force: true });
        rmSync(over, { force: true });
      }
    },
    60_000,
  );

  test("--stdin's bound, and what to do beyond it, are in ga --help and the README's guest agent section", async () => {
    const help = (await qmpctl(["ga", "--help"])).stdout.replaceAll(/\s+/g, " ");
    expect(help).toContain(
      "up to 48 MiB less 1 KiB (50330624 bytes), which guest-exec takes in one message, in base64, beside the " +
        "command line (one longer than about 1 KiB lowers it; more exits 2: ga cp the file in",
    );
    const readme = readFileSync(join(import.meta.dir, "../README.md"), "utf8");
    const section = readme.slice(readme.indexOf("### Guest agent"), readme.indexOf("### Known limits"));
    expect(section.replaceAll(/\s+/g, " ")).toContain(
      "`--stdin FILE` holds at most 48 MiB less 1 KiB (50330624 bytes), which guest-exec takes in one message, " +
        "in base64, beside the command line (one longer than about 1 KiB lowers it; more exits 2: `ga cp` the file",
    );
  });

  test("--timeout bounds the wait for a --stdin - that stays open", async () => {
    const running = startQmpctl(["-s", agent.socket, "ga", "exec", "--stdin", "-", "--timeout", "500ms", "--", "cat"], {
      holdStdin: true,
    });
    const result = await running.result;
    expect(result.code).toBe(124);
    expect(result.stderr).toBe("qmpctl: timed out waiting for stdin to end (--timeout 500ms)\n");
  });

  test("no program, a bad --env, --stdin of a missing file: usage errors", async () => {
    expect(await exec()).toMatchObject({ code: 2, stderr: expect.stringContaining("ga exec needs a program") });
    expect(await exec("--env", "NOVALUE", "--", "true")).toMatchObject({
      code: 2,
      stderr: "qmpctl: --env 'NOVALUE' is not NAME=VALUE\n",
    });
    expect(await exec("--stdin", "/nonexistent/input", "--", "cat")).toMatchObject({
      code: 2,
      stderr: "qmpctl: --stdin: cannot read /nonexistent/input: no such file or directory (ENOENT)\n",
    });
  });
});

describe("ga exec given up while a large reply is on its way (qemu-ga on its own socket quits if one is left unread)", () => {
  test("--timeout, SIGTERM, or a bound during the sync: the agent answers the next client each time", async () => {
    const own = await startAgent();
    const answers = async () =>
      expect(await qmpctl(["-s", own.socket, "ga", "guest-ping", "--connect-timeout", "2s"])).toMatchObject({
        code: 0,
        stdout: "{}\n",
      });
    try {
      const big = join(own.dir, "big.bin");
      writeFileSync(
        big,
        crypto.getRandomValues(new Uint8Array(65536)).join(",").slice(0, 16_000_000).padEnd(16_000_000),
      );
      for (const bound of ["100ms", "120ms", "150ms", "200ms", "300ms"]) {
        const given = await qmpctl(["-s", own.socket, "ga", "exec", "--timeout", bound, "--", "cat", big]);
        // A bound that comes while the output is being written lets that write end (its moment: writeStdout in
        // cli/io/output.ts): then the program's whole output, and 0.
        if (given.code === 0) expect({ bound, bytes: given.stdout.length }).toEqual({ bound, bytes: 16_000_000 });
        else expect({ bound, code: given.code }).toEqual({ bound, code: 124 });
        await answers();
      }
      // SIGTERM (timeout(1), systemctl stop) ends it as Ctrl-C does: the owed reply is read, then qmpctl dies of it.
      for (const ms of [150, 170, 190, 210]) {
        const running = startQmpctl(["-s", own.socket, "ga", "exec", "--", "cat", big]);
        await Bun.sleep(ms);
        running.child.kill("SIGTERM");
        const result = await running.result;
        expect({ ms, signal: result.signal }).toEqual({ ms, signal: "SIGTERM" });
        await answers();
      }
      // A bound that runs out while the sync's reply is on its way: read too.
      for (let round = 0; round < 20; round++) {
        expect((await qmpctl(["-s", own.socket, "ga", "guest-ping", "--timeout", "1ms"])).code).toBe(124);
        await answers();
      }
    } finally {
      await own.stop();
    }
  }, 90_000);
});

describe("ga exec cut short before guest-exec's reply", () => {
  /** A fake agent that takes guest-exec and never answers it (a slow guest, a big --stdin being read). */
  const silentOnExec = (onExec = () => {}) =>
    fakeAgent((request, connection) => {
      if (request.execute === "guest-sync-delimited") answerSync(request, connection);
      if (request.execute === "guest-exec") onExec();
    });

  test("--timeout: exit 124, saying the program may have been started (a retry could run it twice)", async () => {
    const fake = silentOnExec();
    try {
      const result = await qmpctl(["-s", fake.path, "ga", "exec", "--timeout", "300ms", "--", "sh", "-c", "x"]);
      expect(result).toMatchObject({ code: 124, stdout: "" });
      expect(result.stderr).toEndWith(
        "; sh may have been started in the guest (its pid did not come) (--timeout 300ms)\n",
      );
    } finally {
      fake.stop();
    }
  });

  test("Ctrl-C: exit 130, and the one line qmpctl says on it names the program that may have been started", async () => {
    const execReceived = Promise.withResolvers<void>();
    const fake = silentOnExec(execReceived.resolve);
    try {
      const child = startQmpctl(["-s", fake.path, "ga", "exec", "--", "sh", "-c", "x"]);
      const result = await interrupt(child, execReceived.promise);
      expect(result).toMatchObject({
        code: 130,
        stderr: "qmpctl: interrupted: sh may have been started in the guest (its pid did not come)\n",
      });
    } finally {
      fake.stop();
    }
  });
});

describe("ga exec: a status beyond what an exit status holds (a Windows guest's are 32 bits)", () => {
  /** A fake agent whose program ends with `status` (guest-exec-status's members). */
  const agentEnding = (status: string) =>
    fakeAgent((request, connection) => {
      const reply = (value: string) => connection.send(`{"return": ${value}, "id": ${JSON.stringify(request.id)}}\n`);
      if (request.execute === "guest-sync-delimited") {
        connection.send(new Uint8Array([0xff]));
        connection.send(`{"return": ${(request.arguments as { id: number }).id}}\n`);
      } else if (request.execute === "guest-exec") reply('{"pid": 7}');
      else if (request.execute === "guest-exec-status") reply(`{"exited": true, ${status}}`);
    });

  test.each([
    ['"exitcode": 256', "status 256"], // modulo 256: 0, success
    ['"exitcode": 3221225477', "status 3221225477"], // 0xC0000005, an access violation: 5
    ['"exitcode": 18446744073709551617', "status 18446744073709551617"], // modulo 256, as a double: 0
    ['"signal": 300', "signal 300"], // 128 + 300, modulo 256: 172
  ])("%s exits 1 and says what the guest reported", async (status, reported) => {
    const fake = agentEnding(status);
    try {
      const result = await qmpctl(["-s", fake.path, "ga", "exec", "--", "prog.exe"]);
      expect(result).toMatchObject({
        code: 1,
        stdout: "",
        stderr: `qmpctl: prog.exe ended with ${reported}, which no exit status can carry (0-255): exit status 1\n`,
      });
    } finally {
      fake.stop();
    }
  });

  test("output that is not base64: exit 3, saying so in one line (no runtime message)", async () => {
    const fake = agentEnding('"exitcode": 0, "out-data": "!!!notbase64"');
    try {
      const result = await qmpctl(["-s", fake.path, "ga", "exec", "--", "prog.exe"]);
      expect(result).toMatchObject({
        code: 3,
        stdout: "",
        stderr: `qmpctl: the program's output (out-data) is not base64 ("!!!notbase64")\n`,
      });
    } finally {
      fake.stop();
    }
  });

  test("a status within 0-255 is qmpctl's, as before", async () => {
    const fake = agentEnding('"exitcode": 255');
    try {
      expect(await qmpctl(["-s", fake.path, "ga", "exec", "--", "prog.exe"])).toMatchObject({ code: 255, stderr: "" });
    } finally {
      fake.stop();
    }
  });
});
