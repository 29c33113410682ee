/** `qmpctl ga cp` against a real qemu-ga (the "guest" files are on this machine). */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import {
  chmodSync,
  closeSync,
  constants,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { dirname, join } from "node:path";
import { QMPCTL, qmpctl, startQmpctl } from "./helpers/cli.ts";
import { waitUntil } from "./helpers/process_state.ts";
import { answerSync, fakeAgent, qmpctlBytes, startAgent, type TestAgent } from "./helpers/qemu_ga.ts";

let agent: TestAgent;
let source: string;
let sourceBytes: Uint8Array<ArrayBuffer>;
beforeAll(async () => {
  agent = await startAgent();
  sourceBytes = new Uint8Array(5 * 1024 * 1024 + 123); // not a whole number of chunks
  for (let i = 0; i < sourceBytes.length; i += 65536) crypto.getRandomValues(sourceBytes.subarray(i, i + 65536));
  source = join(agent.dir, "source.bin");
  writeFileSync(source, sourceBytes);
});
afterAll(() => agent?.stop());

const cp = (...args: string[]) => qmpctl(["-s", agent.socket, "ga", "cp", ...args]);
const path = (name: string) => join(agent.dir, name);

/** The guest file handles qmpctl opened, from its -v log. */
function openedHandles(stderr: string): number[] {
  return [...stderr.matchAll(/^< \{"return":(\d+),"id":"qmpctl-\d+-1"\}$/gm)].map((m) => Number(m[1]));
}

describe("ga cp", () => {
  test("copies a 5 MB random file into the guest and back, byte-exact", async () => {
    const inGuest = path("in-guest.bin"), back = path("back.bin");
    expect(await cp(source, `:${inGuest}`)).toMatchObject({ code: 0, stdout: "", stderr: "" });
    expect(readFileSync(inGuest)).toEqual(Buffer.from(sourceBytes));
    expect(await cp(`:${inGuest}`, back)).toMatchObject({ code: 0, stdout: "", stderr: "" });
    expect(readFileSync(back)).toEqual(Buffer.from(sourceBytes));
  }, 30_000);

  test("- is stdin and stdout on the local side", async () => {
    const inGuest = path("from-stdin.bin");
    const written = await qmpctlBytes(["-s", agent.socket, "ga", "cp", "-", `:${inGuest}`], {
      stdin: sourceBytes.subarray(0, 200_000),
    });
    expect(written.code).toBe(0);
    expect(readFileSync(inGuest)).toEqual(Buffer.from(sourceBytes.subarray(0, 200_000)));
    const read = await qmpctlBytes(["-s", agent.socket, "ga", "cp", `:${inGuest}`, "-"]);
    expect(read.code).toBe(0);
    expect(read.stdout).toEqual(sourceBytes.subarray(0, 200_000));
  });

  test("an empty file copies as an empty file", async () => {
    const empty = path("empty"), inGuest = path("empty-in-guest");
    writeFileSync(empty, "");
    expect((await cp(empty, `:${inGuest}`)).code).toBe(0);
    expect(readFileSync(inGuest).length).toBe(0);
  });

  test("a missing guest file exits 1 with the agent's error, and creates no local file", async () => {
    const target = path("never-created");
    const result = await cp(":/nonexistent/file", target);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch( // which side, and which file, as for its other errors
      /^qmpctl: cannot read \/nonexistent\/file in the guest: GenericError: failed to open file '\/nonexistent\/file'.*\n$/,
    );
    expect(existsSync(target)).toBe(false);
  });

  test("a guest file that opens but cannot be read (a directory) exits 1 naming it, and creates no local file", async () => {
    const target = path("not-from-a-directory");
    const result = await cp(`:${agent.dir}`, target);
    expect(result.code).toBe(1);
    expect(result.stderr).toStartWith(
      `qmpctl: cannot read ${agent.dir} in the guest: GenericError: failed to read file`,
    );
    expect(result.stderr.split("\n")).toHaveLength(2);
    expect(existsSync(target)).toBe(false);
  });

  test("a local destination in a folder that is not there: exit 2, in words", async () => {
    writeFileSync(path("source-here"), "x");
    const result = await cp(`:${path("source-here")}`, "/nonexistent/dir/file");
    expect(result).toMatchObject({
      code: 2,
      stderr: "qmpctl: cannot write /nonexistent/dir/file: no such file or directory (ENOENT)\n",
    });
  });

  test("a missing local file exits 2 before the guest file is created", async () => {
    const inGuest = path("not-created-in-guest");
    const result = await cp("/nonexistent/local", `:${inGuest}`);
    expect(result.code).toBe(2);
    expect(result.stderr).toBe("qmpctl: cannot read /nonexistent/local: no such file or directory (ENOENT)\n");
    expect(existsSync(inGuest)).toBe(false);
  });

  test("the guest file handle is closed when the copy fails or times out", async () => {
    // /dev/zero never ends: --timeout stops the copy mid-stream.
    const timedOut = await cp(":/dev/zero", "/dev/null", "--timeout", "2s", "-v");
    expect(timedOut.code).toBe(124);
    const [handle] = openedHandles(timedOut.stderr);
    expect(handle).toBeGreaterThan(0);
    expect(timedOut.stderr).toMatch(
      new RegExp(`^> \\{"execute":"guest-file-close","arguments":\\{"handle":${handle}\\}`, "m"),
    );
    const closeAgain = await qmpctl(["-s", agent.socket, "ga", "guest-file-close", `handle=${handle}`]);
    expect(closeAgain.code).toBe(1); // the agent no longer knows it
    expect(closeAgain.stderr).toContain(`${handle}`);

    const unwritable = await cp(":/etc/hostname", "/nonexistent/dir/file", "-v");
    expect(unwritable.code).toBe(2);
    const [second] = openedHandles(unwritable.stderr);
    const closeId = new RegExp(
      `^> \\{"execute":"guest-file-close","arguments":\\{"handle":${second}\\},"id":"(qmpctl-\\d+-\\d+)"\\}$`,
      "m",
    )
      .exec(unwritable.stderr)?.[1];
    expect(closeId).toBeDefined();
    expect(unwritable.stderr).toContain(`< {"return":{},"id":"${closeId}"}`); // the close's reply
    expect(second).toBeGreaterThan(handle);
  });

  test("SIGINT mid-copy exits 130 and closes the guest file handle", async () => {
    const child = Bun.spawn([QMPCTL, "-s", agent.socket, "ga", "cp", ":/dev/zero", "/dev/null", "-v"], {
      stdin: "ignore",
      stdout: "ignore",
      stderr: "pipe",
    });
    const killer = setTimeout(() => child.kill("SIGKILL"), 20_000);
    let stderr = "";
    let interrupted = false;
    const decoder = new TextDecoder();
    for await (const chunk of child.stderr) {
      stderr += decoder.decode(chunk, { stream: true });
      if (!interrupted && stderr.includes('"guest-file-read"')) { // it is copying: interrupt now
        child.kill("SIGINT");
        interrupted = true;
      }
    }
    const code = await child.exited;
    clearTimeout(killer);
    expect(interrupted).toBe(true);
    expect(code).toBe(130);
    const [handle] = openedHandles(stderr);
    expect(stderr).toMatch(new RegExp(`^> \\{"execute":"guest-file-close","arguments":\\{"handle":${handle}\\}`, "m"));
    expect((await qmpctl(["-s", agent.socket, "ga", "guest-file-close", `handle=${handle}`])).code).toBe(1);
  });

  test("a guest file whose write fails only when closed (a full guest disk) exits 1 naming it", async () => {
    const local = path("small.txt");
    writeFileSync(local, "hello\n");
    const result = await cp(local, ":/dev/full"); // the agent's buffered write fails at fclose
    expect(result.code).toBe(1);
    expect(result.stderr).toStartWith("qmpctl: cannot write /dev/full in the guest: GenericError: ");
    expect(result.stderr).toContain("No space left on device");
  });

  test("a local write that fails mid-copy (a full disk) exits 74 with one line", async () => {
    const result = await cp(`:${source}`, "/dev/full");
    expect(result.code).toBe(74);
    expect(result.stderr).toMatch(/^qmpctl: could not write \/dev\/full: no space left on the device \(ENOSPC\)\n$/);
  });

  // Tests run as root, who may replace any file: run the binary as nobody.
  const nobody = 65534;
  const canRunAsNobody =
    Bun.spawnSync(["setpriv", `--reuid=${nobody}`, `--regid=${nobody}`, "--clear-groups", "--", "test", "-x", QMPCTL])
      .exitCode === 0;
  test.skipIf(!canRunAsNobody)(
    "another user's file in a sticky directory (as /tmp) as DST: exit 2, 'cannot write' with why, DST as it was",
    async () => {
      chmodSync(agent.dir, 0o755);
      chmodSync(agent.socket, 0o666); // nobody reaches the agent
      const shared = path("sticky");
      mkdirSync(shared);
      chmodSync(shared, 0o1777);
      const theirs = join(shared, "roots");
      writeFileSync(theirs, "root's\n");
      chmodSync(theirs, 0o666); // writable by all, but replacing it is its owner's right in a sticky directory
      const inGuest = path("for-nobody.txt");
      writeFileSync(inGuest, "from the guest\n");
      const result = await qmpctl(["-s", agent.socket, "ga", "cp", `:${inGuest}`, theirs], { runAs: nobody });
      expect(result).toMatchObject({
        code: 2,
        stdout: "",
        stderr: `qmpctl: cannot write ${theirs}: permission denied (EPERM): replacing it was refused ` +
          "(another user's file in a directory with the sticky bit, as /tmp, or an immutable one)\n",
      });
      expect(readFileSync(theirs, "utf8")).toBe("root's\n");
      expect(readdirSync(shared)).toEqual(["roots"]); // no temporary file left
    },
  );

  test("a local directory as DST receives the file under the guest file's name", async () => {
    const inGuest = path("named in guest.bin");
    writeFileSync(inGuest, sourceBytes.subarray(0, 1000));
    const into = path("into dir");
    mkdirSync(into);
    expect(await cp(`:${inGuest}`, into)).toMatchObject({ code: 0, stdout: "", stderr: "" });
    expect(readFileSync(join(into, "named in guest.bin"))).toEqual(Buffer.from(sourceBytes.subarray(0, 1000)));
  });

  test("a guest path ending in / receives the file under the local file's name", async () => {
    const into = path("guest dir");
    mkdirSync(into);
    expect(await cp(source, `:${into}/`)).toMatchObject({ code: 0, stdout: "", stderr: "" });
    expect(readFileSync(join(into, "source.bin"))).toEqual(Buffer.from(sourceBytes));
    // stdin has no name to give it there: a usage error, before the agent is asked to open a directory
    expect(await qmpctl(["-s", agent.socket, "ga", "cp", "-", `:${into}/`], { stdin: "x" })).toMatchObject({
      code: 2,
      stdout: "",
      stderr: `qmpctl: :${into}/ is a directory, and stdin has no name: name the file\n`,
    });
    // Without the /, the agent cannot open a directory to write: the error says how to copy into it.
    expect(await cp(source, `:${into}`)).toMatchObject({
      code: 1,
      stdout: "",
      stderr:
        `qmpctl: cannot write ${into} in the guest: GenericError: failed to open file '${into}' (mode: 'w'): Is a directory` +
        ` (to copy into that directory, end DST with /: :${into}/)\n`,
    });
    expect(await qmpctl(["-s", agent.socket, "ga", "cp", "-", `:${into}`], { stdin: "x" })).toMatchObject({
      code: 1,
      stderr:
        `qmpctl: cannot write ${into} in the guest: GenericError: failed to open file '${into}' (mode: 'w'): Is a directory` +
        ` (name the file to write in it: :${into}/NAME)\n`,
    });
    // DST ending in / already: the file's name in it is a directory; no hint then (cp(1) refuses this too).
    const named = join(into, "source.bin.d");
    mkdirSync(named);
    writeFileSync(path("source.bin.d"), "x");
    expect(await cp(path("source.bin.d"), `:${into}/`)).toMatchObject({
      code: 1,
      stdout: "",
      stderr:
        `qmpctl: cannot write ${named} in the guest: GenericError: failed to open file '${named}' (mode: 'w'): Is a directory\n`,
    });
  });

  test("a path ending in / that is a file is no directory, as to cp(1): exit 2, nothing written either side", async () => {
    const file = path("slash.txt"), precious = path("slash-precious"), into = path("slash dir");
    writeFileSync(file, "local\n");
    writeFileSync(precious, "precious\n");
    mkdirSync(into);
    // A local SRC: not read as slash.txt (which overwrote the guest file), nor its name taken as empty (which
    // asked the agent to open the guest directory itself).
    for (const guest of [`:${precious}`, `:${into}/`]) {
      expect(await cp(`${file}/`, guest)).toEqual(expect.objectContaining({
        code: 2,
        stdout: "",
        stderr: `qmpctl: cannot read ${file}/: not a directory (ENOTDIR)\n`,
      }));
    }
    expect(readFileSync(precious, "utf8")).toBe("precious\n");
    expect(readdirSync(into)).toEqual([]);
    // A local DST: refused as the system refuses it, the file left as it was.
    expect(await cp(`:${precious}`, `${file}/`)).toEqual(expect.objectContaining({
      code: 2,
      stdout: "",
      stderr: `qmpctl: cannot write ${file}/: not a directory (ENOTDIR)\n`,
    }));
    expect(readFileSync(file, "utf8")).toBe("local\n");
    // A guest SRC: the agent refuses to open it (exit 1, its error), and no local file is made.
    const out = path("slash-out");
    const fromGuest = await cp(`:${precious}/`, out);
    expect(fromGuest).toMatchObject({ code: 1, stdout: "" });
    expect(fromGuest.stderr).toContain(`cannot read ${precious}/ in the guest: GenericError: failed to open file`);
    expect(fromGuest.stderr).toContain("Not a directory");
    expect(existsSync(out)).toBe(false);
    // ga exec --stdin reads its file as cp reads SRC.
    expect(await qmpctl(["-s", agent.socket, "ga", "exec", "--stdin", `${file}/`, "--", "cat"])).toEqual(
      expect.objectContaining({
        code: 2,
        stdout: "",
        stderr: `qmpctl: --stdin: cannot read ${file}/: not a directory (ENOTDIR)\n`,
      }),
    );
  });

  test("a copy into the guest that fails once the file is open says the guest's file may be cut short", async () => {
    // The agent's disk fills at the second chunk; it closes the handle as asked.
    let writes = 0;
    const full = fakeAgent((request, connection) => {
      if (answerSync(request, connection)) return;
      const reply = (answer: object) => connection.send(JSON.stringify({ ...answer, id: request.id }) + "\n");
      if (request.execute === "guest-file-open") return reply({ return: 7 });
      if (request.execute !== "guest-file-write") return reply({ return: {} }); // guest-file-close
      if (++writes === 2) {
        return reply({ error: { class: "GenericError", desc: "failed to write to file: No space left on device" } });
      }
      const { "buf-b64": data } = request.arguments as { "buf-b64": string };
      reply({ return: { count: Buffer.from(data, "base64").length, eof: false } });
    });
    try {
      const result = await qmpctl(["-s", full.path, "ga", "cp", source, ":/srv/app.bin", "--timeout", "10s"]);
      expect(result).toEqual(expect.objectContaining({
        code: 1,
        stdout: "",
        stderr: "qmpctl: cannot write /srv/app.bin in the guest: GenericError: failed to write to file: " +
          "No space left on device (/srv/app.bin in the guest may be left empty or part written)\n",
      }));
    } finally {
      full.stop();
    }
    // Refused at the open, the file was not touched: nothing more is said.
    const refused = fakeAgent((request, connection) => {
      if (answerSync(request, connection)) return;
      const error = {
        class: "GenericError",
        desc: "failed to open file '/srv/app.bin' (mode: 'w'): Permission denied",
      };
      connection.send(JSON.stringify({ error, id: request.id }) + "\n");
    });
    try {
      const result = await qmpctl(["-s", refused.path, "ga", "cp", source, ":/srv/app.bin", "--timeout", "10s"]);
      expect(result).toEqual(expect.objectContaining({
        code: 1,
        stderr: "qmpctl: cannot write /srv/app.bin in the guest: GenericError: " +
          "failed to open file '/srv/app.bin' (mode: 'w'): Permission denied\n",
      }));
    } finally {
      refused.stop();
    }
  });

  test("--timeout bounds the wait for a stdin that stays open, before and while copying", async () => {
    const inGuest = path("from-open-stdin");
    const waiting = startQmpctl(["-s", agent.socket, "ga", "cp", "-", `:${inGuest}`, "--timeout", "500ms"], {
      holdStdin: true,
    });
    const result = await waiting.result;
    expect(result.code).toBe(124);
    expect(result.stderr).toBe("qmpctl: timed out waiting for data from stdin (--timeout 500ms)\n");
    expect(result.ms).toBeLessThan(3000);
    expect(existsSync(inGuest)).toBe(false);

    // Two chunks' worth arrive, then stdin stays open: the copy has begun when the bound runs out.
    const stalled = startQmpctl(["-s", agent.socket, "ga", "cp", "-", `:${inGuest}`, "--timeout", "1500ms", "-v"], {
      holdStdin: true,
    });
    const stdin = stalled.child.stdin as import("bun").FileSink;
    stdin.write(sourceBytes.subarray(0, 2 * 1024 * 1024 + 1));
    await stdin.flush();
    const midway = await stalled.result;
    expect(midway.code).toBe(124);
    expect(midway.stderr).toContain('"guest-file-write"');
    expect(midway.stderr).toMatch(/^qmpctl: timed out waiting for data from stdin \(--timeout 1500ms\)$/m);
    // The guest's file is part written: said, lest it be taken for a copy.
    expect(midway.stderr).toContain(`\nqmpctl: stopped: ${inGuest} in the guest may be left empty or part written\n`);
    expect(midway.stderr).toMatch(/^> \{"execute":"guest-file-close"/m);
    expect(midway.ms).toBeLessThan(5000);
  });

  test(
    "--timeout with an agent that stops answering mid-copy (a stuck guest): the run ends within a second of it",
    async () => {
      const stuck = await startAgent();
      try {
        const copying = startQmpctl([
          "-s",
          stuck.socket,
          "ga",
          "cp",
          ":/dev/zero",
          join(stuck.dir, "zeros"),
          "--timeout",
          "1500ms",
        ]);
        await Bun.sleep(500);
        stuck.process.kill("SIGSTOP");
        const result = await copying.result;
        expect(result).toMatchObject({
          code: 124,
          stderr: `qmpctl: timed out waiting for the guest agent's reply to guest-file-read from ${stuck.socket} ` +
            "(--timeout 1500ms)\n",
        });
        expect(result.ms).toBeLessThan(3000); // it took 6.5 s: closing the guest file waited 5 s for the agent
        expect(existsSync(join(stuck.dir, "zeros"))).toBe(false);
      } finally {
        stuck.process.kill("SIGCONT");
        await stuck.stop();
      }
    },
    15_000,
  );

  test("--timeout bounds a copy to a stdout whose reader does not read", async () => {
    // stdout is a FIFO that this test holds open and never reads: qmpctl's writes block once it is full.
    const fifo = path("unread.fifo");
    expect(Bun.spawnSync(["mkfifo", fifo]).exitCode).toBe(0);
    const reader = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
    const writer = openSync(fifo, constants.O_WRONLY);
    const child = Bun.spawn([QMPCTL, "-s", agent.socket, "ga", "cp", `:${source}`, "-", "--timeout", "1s"], {
      stdin: "ignore",
      stdout: writer,
      stderr: "pipe",
    });
    closeSync(writer);
    const killer = setTimeout(() => child.kill("SIGKILL"), 10_000);
    const started = performance.now();
    const [stderr, code] = await Promise.all([new Response(child.stderr).text(), child.exited]);
    clearTimeout(killer);
    closeSync(reader);
    expect(code).toBe(124);
    expect(stderr).toBe("qmpctl: timed out waiting for stdout to take the output (--timeout 1s)\n");
    expect(performance.now() - started).toBeLessThan(5000);
  }, 15_000);

  test("bad words: usage errors", async () => {
    for (
      const [words, message] of [
        [["a"], "ga cp needs SRC and DST"],
        [["a", "b"], "write the guest side as :/path"],
        [[":/a", ":/b"], "write the guest side as :/path"],
        [[":", "b"], "':' names no guest file"],
        [[":/etc/hostname", ""], "ga cp: DST is empty"], // not a write error (74) naming no file
        [["", ":/tmp/x"], "ga cp: SRC is empty"],
      ] as const
    ) {
      const result = await cp(...words);
      expect(result.code).toBe(2);
      expect(result.stderr).toContain(message);
    }
  });
});

describe("ga cp: the local file", () => {
  /** A fresh directory for one test's destination, so that a file left behind shows in its listing. */
  const freshDir = (mode = 0o700) => {
    const dir = mkdtempSync(join(agent.dir, "dst-"));
    chmodSync(dir, mode);
    return dir;
  };
  const modeOf = (file: string) => (statSync(file).mode & 0o777).toString(8);

  /** An existing destination, 0640, whose content a failed copy must not touch. */
  function existingDestination(dir: string): string {
    const file = join(dir, "vm1-zero");
    writeFileSync(file, "the previous copy\n");
    chmodSync(file, 0o640);
    return file;
  }

  /** Wait until qmpctl has written part of the copy: a file beside `file`, or (written in place) `file` changed. */
  const partWritten = (file: string) =>
    waitUntil(
      () => readdirSync(dirname(file)).length > 1 || statSync(file).size !== "the previous copy\n".length,
      "a partial copy",
    );

  test("a new local file is created 0600 under umask 022, whatever the guest file's mode", async () => {
    const dir = freshDir(), secret = join(dir, "vm1-shadow");
    const child = Bun.spawn(
      ["sh", "-c", 'umask 022 && exec "$@"', "sh", QMPCTL, "-s", agent.socket, "ga", "cp", `:${source}`, secret],
      { stdin: "ignore", stdout: "pipe", stderr: "pipe" },
    );
    expect(await child.exited).toBe(0);
    expect(readFileSync(secret)).toEqual(Buffer.from(sourceBytes));
    expect(modeOf(secret)).toBe("600");
    expect(readdirSync(dir)).toEqual(["vm1-shadow"]);
  });

  test("an existing file of one's own is replaced and keeps its mode", async () => {
    const dir = freshDir(), file = existingDestination(dir);
    expect(await cp(`:${source}`, file)).toMatchObject({ code: 0, stdout: "", stderr: "" });
    expect(readFileSync(file)).toEqual(Buffer.from(sourceBytes));
    expect(modeOf(file)).toBe("640");
    expect(readdirSync(dir)).toEqual(["vm1-zero"]);
  });

  test("a dangling symbolic link as DST is refused, exit 2 naming it, and its target is not created", async () => {
    // Another user's link in a shared directory, as cp(1) meets it: "not writing through dangling symlink".
    const shared = freshDir(0o777), target = join(freshDir(), "cron-job");
    symlinkSync(target, join(shared, "source.bin"));
    for (const dst of [join(shared, "source.bin"), `${shared}/`]) {
      const result = await cp(`:${source}`, dst);
      expect(result.code).toBe(2);
      expect(result.stderr).toBe(
        `qmpctl: cannot write ${join(shared, "source.bin")}: not writing through a dangling symbolic link\n`,
      );
      expect(existsSync(target)).toBe(false);
      expect(lstatSync(join(shared, "source.bin")).isSymbolicLink()).toBe(true);
      expect(readdirSync(shared)).toEqual(["source.bin"]);
    }
  });

  test("a symbolic link to a file as DST is refused, and the file it leads to is unchanged", async () => {
    const dir = freshDir(), file = existingDestination(dir), link = join(dir, "link");
    symlinkSync(file, link);
    const result = await cp(`:${source}`, link);
    expect(result.code).toBe(2);
    expect(result.stderr).toBe(`qmpctl: cannot write ${link}: is a symbolic link: name the file it leads to\n`);
    expect(readFileSync(file, "utf8")).toBe("the previous copy\n");
    expect(lstatSync(link).isSymbolicLink()).toBe(true);
  });

  test("a link to a device is written to as it is (/dev/stdout on a pipe)", async () => {
    // Through sh and cat: Bun's "pipe" is a socket, which no open(2) of /dev/stdout can reach.
    const child = Bun.spawn(
      [
        "bash",
        "-c",
        'set -o pipefail; "$@" /dev/stdout | cat',
        "bash",
        QMPCTL,
        "-s",
        agent.socket,
        "ga",
        "cp",
        `:${source}`,
      ],
      { stdin: "ignore", stdout: "pipe", stderr: "pipe" },
    );
    const [stdout, stderr, code] = await Promise.all([
      new Response(child.stdout).bytes(),
      new Response(child.stderr).text(),
      child.exited,
    ]);
    expect({ code, stderr }).toEqual({ code: 0, stderr: "" });
    expect(stdout).toEqual(sourceBytes);
  });

  test("a FIFO as DST: its reader gets the file; with no reader, --timeout still ends the wait (exit 124)", async () => {
    const fifo = join(freshDir(), "fifo");
    expect(Bun.spawnSync(["mkfifo", fifo]).exitCode).toBe(0);
    const lonely = await cp(`:${source}`, fifo, "--timeout", "500ms");
    expect(lonely).toMatchObject({ code: 124, stdout: "" });
    expect(lonely.stderr).toBe(`qmpctl: timed out waiting for a reader of ${fifo} (--timeout 500ms)\n`);
    const reader = Bun.spawn(["sh", "-c", 'sleep 0.3; exec cat "$0"', fifo], { stdout: "pipe" });
    const copied = await cp(`:${source}`, fifo, "--timeout", "20s");
    expect(copied).toMatchObject({ code: 0, stderr: "" });
    expect(await new Response(reader.stdout).bytes()).toEqual(sourceBytes);
    // A reader that opened it and reads nothing: the bound holds while the writes wait for it.
    const idle = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
    try {
      const stuck = await cp(`:${source}`, fifo, "--timeout", "1s");
      expect({ code: stuck.code, stderr: stuck.stderr, fast: stuck.ms < 5000 }).toEqual({
        code: 124,
        stderr: `qmpctl: timed out waiting for ${fifo} to take the output (--timeout 1s)\n`,
        fast: true,
      });
    } finally {
      closeSync(idle);
    }
  });

  test("a copy that times out midway leaves the existing DST unchanged and no temporary file", async () => {
    const dir = freshDir(), file = existingDestination(dir);
    const result = await cp(":/dev/zero", file, "--timeout", "1500ms");
    expect(result.code).toBe(124);
    expect(result.stderr).toMatch(/^qmpctl: timed out waiting for .*\(--timeout 1500ms\)\n$/);
    expect(readFileSync(file, "utf8")).toBe("the previous copy\n");
    expect(modeOf(file)).toBe("640");
    expect(readdirSync(dir)).toEqual(["vm1-zero"]);
  });

  test("SIGINT midway leaves the existing DST unchanged and removes the partial copy", async () => {
    const dir = freshDir(), file = existingDestination(dir);
    const running = startQmpctl(["-s", agent.socket, "ga", "cp", ":/dev/zero", file]);
    await partWritten(file);
    running.child.kill("SIGINT");
    expect((await running.result).code).toBe(130);
    expect(readFileSync(file, "utf8")).toBe("the previous copy\n");
    expect(readdirSync(dir)).toEqual(["vm1-zero"]);
  });

  for (const signal of ["SIGTERM", "SIGHUP"] as const) {
    test(`${signal} midway (timeout(1), systemd, a closed terminal) cleans up as SIGINT does, then dies of it`, async () => {
      const dir = freshDir(), file = existingDestination(dir);
      const running = startQmpctl(["-s", agent.socket, "ga", "cp", ":/dev/zero", file, "-v"]);
      await partWritten(file);
      running.child.kill(signal);
      const result = await running.result;
      expect(result.signal).toBe(signal);
      expect(readFileSync(file, "utf8")).toBe("the previous copy\n");
      expect(readdirSync(dir)).toEqual(["vm1-zero"]);
      const [handle] = openedHandles(result.stderr);
      expect(result.stderr).toMatch(new RegExp(`^< \\{"return":\\{\\},"id":"qmpctl-\\d+-\\d+"\\}$`, "m"));
      expect((await qmpctl(["-s", agent.socket, "ga", "guest-file-close", `handle=${handle}`])).code).toBe(1);
    });
  }

  test("an agent that dies midway leaves the existing DST unchanged and removes the partial copy", async () => {
    const dying = await startAgent();
    try {
      const dir = freshDir(), file = existingDestination(dir);
      const running = startQmpctl(["-s", dying.socket, "ga", "cp", ":/dev/zero", file]);
      await partWritten(file);
      dying.process.kill("SIGKILL");
      const result = await running.result;
      expect(result.code).toBe(3);
      expect(readFileSync(file, "utf8")).toBe("the previous copy\n");
      expect(readdirSync(dir)).toEqual(["vm1-zero"]);
    } finally {
      await dying.stop();
    }
  });
});
