/** `qmpctl exec` and `qmpctl hmp` against a real QEMU: what a user sees on stdout, stderr and in the exit status. */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { interrupt, QMPCTL, qmpctl, startQmpctl } from "./helpers/cli.ts";
import { blockedIn, waitUntil } from "./helpers/process_state.ts";
import { startQemu, type TestQemu } from "./helpers/qemu.ts";

/** What socat prints for `requests` sent to the monitor at `path`, line by line (CRLF kept). */
async function socat(path: string, requests: string): Promise<string[]> {
  const child = Bun.spawn(["socat", "-", `UNIX-CONNECT:${path}`], { stdin: new Blob([requests]), stdout: "pipe" });
  const text = await new Response(child.stdout).text();
  expect(await child.exited).toBe(0);
  return text.split(/(?<=\n)/);
}

/** The human monitor's text for `commandLine`, as QEMU returns it (CRLF line ends). */
async function hmpText(qemu: TestQemu, commandLine: string, cpu?: number): Promise<string> {
  const args: Record<string, unknown> = { "command-line": commandLine };
  if (cpu !== undefined) args["cpu-index"] = cpu;
  return await qemu.control.execute("human-monitor-command", args) as string;
}

let qemu: TestQemu;
beforeAll(async () => {
  qemu = await startQemu();
});
afterAll(() => qemu?.stop());

describe("exec", () => {
  test("prints query-version's return as one compact JSON line, the same value socat gets", async () => {
    const lines = await socat(qemu.socket, '{"execute":"qmp_capabilities"}\n{"execute":"query-version"}\n');
    expect(lines).toHaveLength(3); // greeting, {"return": {}}, the version
    const fromSocat = JSON.parse(lines[2]).return;
    const result = await qmpctl(["-s", qemu.socket, "exec", "query-version"]);
    expect(result).toMatchObject({ code: 0, stderr: "" });
    expect(JSON.parse(result.stdout)).toEqual(fromSocat);
    expect(result.stdout).toBe(JSON.stringify(fromSocat) + "\n");
    expect(result.stdout).toMatch(/^\{"qemu":\{"micro":\d+,"minor":2,"major":7\},"package":"[^"]*"\}\n$/);
  });

  test("a large return (query-qmp-schema, ~200 KB) arrives whole", async () => {
    const schema = await qemu.control.execute("query-qmp-schema");
    const result = await qmpctl(["-s", qemu.socket, "exec", "query-qmp-schema"]);
    expect(result).toMatchObject({ code: 0, stderr: "" });
    expect(result.stdout.length).toBeGreaterThan(100_000);
    expect(result.stdout).toBe(JSON.stringify(schema) + "\n");
  });

  test("an unknown command exits 1 with QEMU's class and description on stderr, nothing on stdout", async () => {
    const result = await qmpctl(["-s", qemu.socket, "exec", "no-such-command"]);
    expect(result).toEqual(expect.objectContaining({
      code: 1,
      stdout: "",
      stderr: "qmpctl: CommandNotFound: The command no-such-command has not been found\n",
    }));
  });

  test("--raw prints an error response on stdout, without the id, and exits 1", async () => {
    const result = await qmpctl(["-s", qemu.socket, "exec", "no-such-command", "--raw"]);
    expect(result.code).toBe(1);
    expect(result.stdout).toBe(
      '{"error":{"class":"CommandNotFound","desc":"The command no-such-command has not been found"}}\n',
    );
    expect(result.stderr).toBe("qmpctl: CommandNotFound: The command no-such-command has not been found\n");
  });

  test("a request QEMU's parser would refuse (nested deeper than it reads) is not sent: a usage error, exit 2", async () => {
    const deep = `{"x": ${"[".repeat(1100)}${"]".repeat(1100)}}`;
    const result = await qmpctl(["-s", qemu.socket, "exec", "query-status", "--args", deep, "--raw"]);
    expect(result).toMatchObject({
      code: 2,
      stdout: "",
      stderr: "qmpctl: --args: QEMU's parser would refuse it: JSON nesting depth limit exceeded\n",
    });
    // Sent, QEMU would answer it with ~1000 errors without an id.
    expect(await qmpctl(["-s", qemu.socket, "exec", "query-status"])).toMatchObject({ code: 0 });
  });

  test('--raw prints a success response as {"return": ...} without the id', async () => {
    const version = await qemu.control.execute("query-version");
    const result = await qmpctl(["--raw", "-s", qemu.socket, "exec", "query-version"]);
    expect(result).toMatchObject({ code: 0, stderr: "" });
    expect(result.stdout).toBe(JSON.stringify({ return: version }) + "\n");
  });

  test("--pretty indents the return value, and --raw --pretty the whole response", async () => {
    const status = await qemu.control.execute("query-status");
    const pretty = await qmpctl(["-s", qemu.socket, "exec", "query-status", "--pretty"]);
    expect(pretty).toMatchObject({ code: 0, stderr: "" });
    expect(pretty.stdout).toBe(JSON.stringify(status, null, 2) + "\n");
    expect(pretty.stdout.split("\n").length).toBeGreaterThan(3);
    const raw = await qmpctl(["-s", qemu.socket, "--pretty", "--raw", "exec", "query-status"]);
    expect(raw.stdout).toBe(JSON.stringify({ return: status }, null, 2) + "\n");
  });

  test("an empty return prints {}", async () => {
    const result = await qmpctl([
      "-s",
      qemu.socket,
      "exec",
      "object-add",
      "qom-type=memory-backend-ram",
      "id=m0",
      "size=1048576",
    ]);
    expect(result).toEqual(expect.objectContaining({ code: 0, stdout: "{}\n", stderr: "" }));
    // size=1048576 parsed as JSON: QEMU got a number.
    expect(await qemu.control.execute("qom-get", { path: "/objects/m0", property: "size" })).toBe(1048576);
  });

  test("KEY=VALUE values that are not JSON are strings; the return value can be a bare string", async () => {
    const result = await qmpctl(["-s", qemu.socket, "exec", "human-monitor-command", "command-line=info status"]);
    expect(result).toEqual(expect.objectContaining({ code: 0, stdout: '"VM status: running\\r\\n"\n', stderr: "" }));
  });

  test("dotted keys build nested objects and KEY:=JSON takes raw JSON", async () => {
    const result = await qmpctl([
      "-s",
      qemu.socket,
      "exec",
      "blockdev-add",
      "driver=raw",
      "node-name=r0",
      "file.driver=null-co",
      "file.node-name=n0",
      "file.size:=4096",
    ]);
    expect(result).toEqual(expect.objectContaining({ code: 0, stdout: "{}\n", stderr: "" }));
    const nodes = await qemu.control.execute("query-named-block-nodes", { flat: true }) as {
      "node-name": string;
      drv: string;
      image: { "virtual-size": number; "backing-image"?: unknown };
    }[];
    const byName = Object.fromEntries(nodes.map((n) => [n["node-name"], n]));
    expect(byName.r0).toMatchObject({ drv: "raw", image: { "virtual-size": 4096 } });
    expect(byName.n0).toMatchObject({ drv: "null-co", image: { "virtual-size": 4096 } });
    await qemu.control.execute("blockdev-del", { "node-name": "r0" });
  });

  test("JSON in a KEY=VALUE word for an object reaches QEMU with its numbers as written, beyond 2^53 too", async () => {
    // 2^62 + 1536: a whole number of sectors (QEMU rounds a size up to one) that no double holds
    const file = '{"driver":"null-co","node-name":"n9","size":4611686018427389440}';
    const added = await qmpctl([
      "-s",
      qemu.socket,
      "exec",
      "blockdev-add",
      "driver=raw",
      "node-name=r9",
      `file=${file}`,
    ]);
    expect(added).toEqual(expect.objectContaining({ code: 0, stdout: "{}\n", stderr: "" }));
    const nodes = await qmpctl(["-s", qemu.socket, "exec", "query-named-block-nodes", "flat=true"]);
    expect(nodes.code).toBe(0);
    expect(nodes.stdout.match(/"virtual-size":\d+/g)).toContain('"virtual-size":4611686018427389440');
    await qemu.control.execute("blockdev-del", { "node-name": "r9" });
  });

  test("--args JSON reaches QEMU, and a KEY=VALUE word wins over the same key in it", async () => {
    const args = JSON.stringify({ "qom-type": "memory-backend-ram", id: "m1", size: 1024 });
    const result = await qmpctl(["-s", qemu.socket, "exec", "object-add", "--args", args, "size=2048"]);
    expect(result).toEqual(expect.objectContaining({ code: 0, stdout: "{}\n", stderr: "" }));
    expect(await qemu.control.execute("qom-get", { path: "/objects/m1", property: "size" })).toBe(2048);
  });

  test("--args - reads the arguments object from stdin", async () => {
    const stdin = JSON.stringify({ "qom-type": "memory-backend-ram", id: "m2", size: 4096 }) + "\n";
    const result = await qmpctl(["-s", qemu.socket, "exec", "object-add", "--args", "-"], { stdin });
    expect(result).toEqual(expect.objectContaining({ code: 0, stdout: "{}\n", stderr: "" }));
    expect(await qemu.control.execute("qom-get", { path: "/objects/m2", property: "size" })).toBe(4096);
  });

  test("a word an 'any' member sent as JSON where QEMU wanted text: QEMU's error says how to send the string", async () => {
    const setAppend = (value: string) =>
      qmpctl(["-s", qemu.socket, "exec", "qom-set", "path=/machine", "property=append", value]);
    expect(await setAppend("value=123")).toEqual(expect.objectContaining({
      code: 1,
      stdout: "",
      stderr: "qmpctl: GenericError: Invalid parameter type for 'append', expected: string " +
        `(value=123 went out as JSON, not as text: value:='"123"' sends the string)\n`,
    }));
    const fixed = await setAppend('value:="123"');
    expect(fixed).toEqual(expect.objectContaining({ code: 0, stdout: "{}\n", stderr: "" }));
  });

  test("--args - that is not one JSON object names stdin as its source (exit 2, nothing sent)", async () => {
    const result = await qmpctl(["-s", qemu.socket, "exec", "set_link", "--args", "-"], {
      stdin: '{"name": "nic1"}\n{"up": true}\n',
    });
    expect(result).toEqual(expect.objectContaining({
      code: 2,
      stdout: "",
      stderr:
        "qmpctl: --args -: invalid JSON at line 2, column 1: more follows the JSON value (one value is expected)\n",
    }));
  });

  test("--args - from an endless stdin (/dev/zero) stops reading at 64 MiB: exit 2", () => {
    const run = Bun.spawnSync([
      "bash",
      "-c",
      'exec "$0" -s "$1" exec set_link --args - </dev/zero',
      QMPCTL,
      qemu.socket,
    ], {
      stdout: "pipe",
      stderr: "pipe",
      timeout: 30_000, // before: read on until the memory ran out
    });
    expect({ code: run.exitCode, stdout: run.stdout.toString(), stderr: run.stderr.toString() }).toEqual({
      code: 2,
      stdout: "",
      stderr: "qmpctl: --args -: stdin holds more than 64 MiB, what qmpctl reads for one command\n",
    });
  });

  test("-v logs every message, sent (>) and received (<), as one compact JSON line each; stdout is unchanged", async () => {
    const quiet = await qmpctl(["-s", qemu.socket, "exec", "qom-get", "path=/objects/m0", "property=size"]);
    const verbose = await qmpctl(["-v", "-s", qemu.socket, "exec", "qom-get", "path=/objects/m0", "property=size"]);
    expect(quiet).toMatchObject({ code: 0, stdout: "1048576\n", stderr: "" });
    expect(verbose).toMatchObject({ code: 0, stdout: quiet.stdout });
    const lines = verbose.stderr.split("\n");
    expect(lines.pop()).toBe("");
    const log = lines.map((line) => {
      expect(line).toMatch(/^[<>] \{/);
      const json = line.slice(2);
      expect(JSON.stringify(JSON.parse(json))).toBe(json); // compact, as one line
      return { direction: line[0], message: JSON.parse(json) };
    });
    // The greeting, then the requests and their replies: each reply after its request, in the order of the
    // requests (the first ones go out behind qmp_capabilities, before its answer; qmpctl may ask for a schema first).
    expect(log[0]).toMatchObject({ direction: "<", message: { QMP: { version: { qemu: { major: 7 } } } } });
    const sent = log.filter((entry) => entry.direction === ">");
    const replies = log.slice(1).filter((entry) => entry.direction === "<");
    expect(replies.map((r) => r.message.id)).toEqual(sent.map((r) => r.message.id));
    for (const reply of replies) {
      expect(log.indexOf(reply)).toBeGreaterThan(
        log.findIndex((e) => e.direction === ">" && e.message.id === reply.message.id),
      );
    }
    expect(sent[0].message).toMatchObject({ execute: "qmp_capabilities" });
    expect(sent.at(-1)!.message).toEqual({
      execute: "qom-get",
      arguments: { path: "/objects/m0", property: "size" },
      id: sent.at(-1)!.message.id,
    });
    expect(replies.at(-1)!.message).toEqual({ return: 1048576, id: sent.at(-1)!.message.id });
  });
});

describe("hmp", () => {
  test("prints the monitor's text with CRLF made LF", async () => {
    const result = await qmpctl(["-s", qemu.socket, "hmp", "info status"]);
    expect(result).toEqual(expect.objectContaining({ code: 0, stdout: "VM status: running\n", stderr: "" }));
  });

  test("keeps blank lines and adds nothing: info mtree", async () => {
    const text = await hmpText(qemu, "info mtree");
    expect(text).toContain("\r\n\r\n");
    const result = await qmpctl(["-s", qemu.socket, "hmp", "info", "mtree"]);
    expect(result).toMatchObject({ code: 0, stderr: "" });
    expect(result.stdout).toBe(text.replaceAll("\r\n", "\n"));
    expect(result.stdout.endsWith("\n\n")).toBe(true);
  });

  test("after --, words that look like options belong to the command line", async () => {
    const text = await hmpText(qemu, "info mtree -f");
    const result = await qmpctl(["-s", qemu.socket, "hmp", "--", "info", "mtree", "-f"]);
    expect(result).toMatchObject({ code: 0, stderr: "" });
    expect(result.stdout).toBe(text.replaceAll("\r\n", "\n"));
    expect(result.stdout).toStartWith("FlatView #0\n");
  });

  test("without --, the line's own flags are its own (info mtree -v), and qmpctl's long options still count", async () => {
    const text = await hmpText(qemu, "info mtree -f");
    const result = await qmpctl(["-s", qemu.socket, "hmp", "info", "mtree", "-f", "--timeout", "5s"]);
    expect(result).toMatchObject({ code: 0, stderr: "" });
    expect(result.stdout).toBe(text.replaceAll("\r\n", "\n"));
  });

  test("a line given as one quoted word is whole: -s and -v after it are qmpctl's (never another VM's line)", async () => {
    const text = await hmpText(qemu, "info mtree -f");
    // QMPCTL_SOCKET names no VM: were -s taken into the line, there would be no address at all.
    const env = { ...process.env, QMPCTL_SOCKET: "/nonexistent/other.sock" };
    const result = await qmpctl(["hmp", "info mtree -f", "-s", qemu.socket, "-v"], { env });
    expect(result).toMatchObject({ code: 0, stdout: text.replaceAll("\r\n", "\n") });
    expect(result.stderr).toContain('"command-line":"info mtree -f"}'); // -v logged the line sent, as typed
    const tabbed = await qmpctl(["hmp", "info\tstatus", "-s", qemu.socket], { env }); // a tab is a blank too
    expect(tabbed).toMatchObject({ code: 0, stdout: "VM status: running\n", stderr: "" });
  });

  test("a command line with no output prints nothing", async () => {
    expect(await hmpText(qemu, "info cpus")).toBe(""); // -machine none has no CPU
    const result = await qmpctl(["-s", qemu.socket, "hmp", "info cpus"]);
    expect(result).toEqual(expect.objectContaining({ code: 0, stdout: "", stderr: "" }));
  });

  test("the monitor's complaints are text, with exit 0", async () => {
    const result = await qmpctl(["-s", qemu.socket, "hmp", "no-such-hmp-command"]);
    expect(result).toEqual(
      expect.objectContaining({ code: 0, stdout: "unknown command: 'no-such-hmp-command'\n", stderr: "" }),
    );
  });
});

describe("on a pc machine (-M pc -S, two CPUs)", () => {
  let pc: TestQemu;
  beforeAll(async () => {
    pc = await startQemu({ machine: "pc", extraArgs: ["-smp", "2"] });
  });
  afterAll(() => pc?.stop());

  test("hmp info qtree (unquoted words) prints the text byte for byte with CRLF made LF", async () => {
    const text = await hmpText(pc, "info qtree");
    expect(text.split("\r\n").length).toBeGreaterThan(20);
    const result = await qmpctl(["-s", pc.socket, "hmp", "info", "qtree"]);
    expect(result).toMatchObject({ code: 0, stderr: "" });
    expect(result.stdout).toBe(text.replaceAll("\r\n", "\n"));
  });

  test("hmp 'info status' on a machine started with -S", async () => {
    const result = await qmpctl(["-s", pc.socket, "hmp", "info status"]);
    expect(result).toEqual(expect.objectContaining({ code: 0, stdout: "VM status: paused (prelaunch)\n", stderr: "" }));
  });

  test("--cpu N runs the command line on that CPU (info cpus marks it with *)", async () => {
    const cpu0 = await qmpctl(["-s", pc.socket, "hmp", "info cpus", "--cpu", "0"]);
    const cpu1 = await qmpctl(["-s", pc.socket, "--cpu", "1", "hmp", "info cpus"]);
    expect(cpu0).toMatchObject({ code: 0, stderr: "" });
    expect(cpu1).toMatchObject({ code: 0, stderr: "" });
    expect(cpu0.stdout).toBe((await hmpText(pc, "info cpus", 0)).replaceAll("\r\n", "\n"));
    expect(cpu0.stdout).toMatch(/^\* CPU #0: .*\n {2}CPU #1: .*\n$/);
    expect(cpu1.stdout).toMatch(/^ {2}CPU #0: .*\n\* CPU #1: .*\n$/);
  });

  describe("a command QEMU does not answer (memsave into a FIFO nobody reads blocks QEMU)", () => {
    let fifo: string;
    beforeAll(() => {
      fifo = join(pc.dir, "fifo");
      expect(Bun.spawnSync(["mkfifo", fifo]).exitCode).toBe(0);
    });

    /** Read the FIFO, which lets QEMU's memsave finish, and check that QEMU answers again. */
    async function unblockQemu() {
      const cat = Bun.spawn(["cat", fifo], { stdout: "pipe" });
      const bytes = await new Response(cat.stdout).arrayBuffer();
      expect(bytes.byteLength).toBe(16);
      expect((await pc.control.execute("query-status") as { status: string }).status).toBe("prelaunch");
    }

    const memsave = () => ["-s", pc.socket, "exec", "memsave", "val:=0", "size:=16", `filename=${fifo}`];

    test("--timeout ends the wait for the reply: exit 124, stderr says what was awaited", async () => {
      const result = await qmpctl([...memsave(), "--timeout", "1s"]);
      await unblockQemu();
      expect(result).toEqual(expect.objectContaining({
        code: 124,
        stdout: "",
        stderr: `qmpctl: timed out waiting for the reply to memsave from ${pc.socket} (--timeout 1s)\n`,
      }));
      expect(result.ms).toBeLessThan(10_000);
    });

    test("SIGINT while waiting for the reply exits 130 promptly", async () => {
      const running = startQmpctl(memsave());
      const blocked = waitUntil(() => blockedIn(pc.process.pid, "wait_for_partner"), "QEMU blocks opening the FIFO");
      const { exitedAfterMs, ...result } = await interrupt(running, blocked);
      await unblockQemu();
      expect(result).toMatchObject({ code: 130, signal: "SIGINT", stdout: "" });
      expect(exitedAfterMs).toBeLessThan(2000);
    });
  });
});
