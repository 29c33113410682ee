/** Typed arguments, checks before sending, the schema cache and describe against a real QEMU. */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { qmpctl } from "./helpers/cli.ts";
import { startQemu, type TestQemu } from "./helpers/qemu.ts";
import { freshCacheHome } from "./helpers/schema_fixture.ts";

let qemu: TestQemu;
const home = freshCacheHome(); // shared: the first test fills it
beforeAll(async () => {
  qemu = await startQemu();
});
afterAll(async () => {
  await qemu?.stop();
  rmSync(home, { recursive: true, force: true });
});

const run = (args: string[], cacheHome = home) =>
  qmpctl(["-s", qemu.socket, "-v", ...args], { env: { XDG_CACHE_HOME: cacheHome } });

/** The last line of stderr: qmpctl's own message after the -v log. */
function lastLine(stderr: string): string {
  return stderr.trimEnd().split("\n").at(-1)!;
}

/** The commands qmpctl sent, from its -v log. */
function sent(stderr: string): string[] {
  return stderr.split("\n").filter((l) => l.startsWith("> ")).map((l) => JSON.parse(l.slice(2)).execute);
}

describe("typed exec against QEMU", () => {
  test("set_link name=123 up=false reaches QEMU as a string and a bool: DeviceNotFound, not a type error", async () => {
    const result = await run(["exec", "set_link", "name=123", "up=false"]);
    expect(result.code).toBe(1);
    const request = result.stderr.split("\n").find((l) => l.includes('"execute":"set_link"'))!;
    expect(JSON.parse(request.slice(2)).arguments).toEqual({ name: "123", up: false });
    expect(lastLine(result.stderr)).toBe("qmpctl: DeviceNotFound: Device '123' not found");
    expect(sent(result.stderr)).toEqual(["qmp_capabilities", "query-target", "query-qmp-schema", "set_link"]);
  });

  test("device_add takes the device's properties beyond its schema's driver, bus and id: sent untyped", async () => {
    const result = await run(["exec", "device_add", "driver=e1000", "id=nic1", "mac=52:54:00:12:34:56", "bootindex=1"]);
    const request = result.stderr.split("\n").find((l) => l.includes('"execute":"device_add"'));
    expect(JSON.parse(request!.slice(2)).arguments).toEqual({
      driver: "e1000",
      id: "nic1",
      mac: "52:54:00:12:34:56",
      bootindex: 1,
    });
    expect(result.code).toBe(1); // QEMU's answer: -machine none has no PCI bus
  });

  test("device_add's untyped words: serial=1.50 goes as the number 1.50, serial:='\"1.50\"' as the text", async () => {
    const sentArguments = async (serial: string) => {
      const result = await run(["exec", "device_add", "driver=virtio-blk-pci", "id=v1", serial]);
      const request = result.stderr.split("\n").find((l) => l.includes('"execute":"device_add"'))!;
      return request.slice(request.indexOf('"serial"'), request.indexOf("}"));
    };
    expect(await sentArguments("serial=1.50")).toBe('"serial":1.50');
    expect(await sentArguments('serial:="1.50"')).toBe('"serial":"1.50"');
  });

  test("an int -0 is sent as written, and QEMU takes it; a bool in any case, an enum in its own", async () => {
    const speed = await run(["exec", "block-job-set-speed", "device=j0", "speed=-0"]);
    expect(speed.stderr).toContain('"arguments":{"device":"j0","speed":-0}');
    expect(lastLine(speed.stderr)).toBe("qmpctl: DeviceNotActive: Block job 'j0' not found"); // not a type error
    for (const [word, up] of [["up=OFF", false], ["up=Yes", true], ["up=TRUE", true]] as const) {
      const request = (await run(["exec", "set_link", "name=x", word])).stderr.split("\n")
        .find((l) => l.includes('"execute":"set_link"'))!;
      expect(JSON.parse(request.slice(2)).arguments).toEqual({ name: "x", up });
    }
    const upper = await run(["exec", "blockdev-add", "driver=null-co", "node-name=n9", "detect-zeroes=ON"]);
    expect(upper).toMatchObject({ code: 2, stdout: "" });
    expect(lastLine(upper.stderr)).toBe(
      "qmpctl: blockdev-add: 'detect-zeroes=ON': expected one of off, on, unmap (did you mean on?)",
    );
  });

  test("the second call uses the cache: no second query-qmp-schema", async () => {
    const result = await run(["exec", "set_link", "name=123", "up=off"]);
    expect(sent(result.stderr)).toEqual(["qmp_capabilities", "query-target", "set_link"]);
  });

  test("a corrupt cache entry is refetched", async () => {
    const entry = join(home, "qmpctl", readdirSync(join(home, "qmpctl"))[0]);
    writeFileSync(join(entry, "commands", "set_link.json"), "{ corrupt");
    const result = await run(["exec", "set_link", "name=123", "up=off"]);
    expect(sent(result.stderr)).toEqual(["qmp_capabilities", "query-target", "query-qmp-schema", "set_link"]);
    expect(lastLine(result.stderr)).toBe("qmpctl: DeviceNotFound: Device '123' not found");
  });

  test("blockdev-add driver=null-co node-name=n0 size=4096 read-only=true types size from the null-co branch", async () => {
    const result = await run(["exec", "blockdev-add", "driver=null-co", "node-name=n0", "size=4096", "read-only=true"]);
    expect(result.stdout).toBe("{}\n");
    expect(result.code).toBe(0);
    try {
      const nodes = await qemu.control.execute("query-named-block-nodes") as Record<string, unknown>[];
      expect(nodes.find((n) => n["node-name"] === "n0")).toMatchObject({
        drv: "null-co",
        ro: true,
        image: { "virtual-size": 4096 },
      });
    } finally {
      await qemu.control.execute("blockdev-del", { "node-name": "n0" });
    }
  });

  test("human-monitor-command command-line=info version", async () => {
    const expected = await qemu.control.execute("human-monitor-command", { "command-line": "info version" });
    const result = await run(["exec", "human-monitor-command", "command-line=info version"]);
    expect(result).toMatchObject({ code: 0, stdout: JSON.stringify(expected) + "\n" });
  });

  test.each([
    [["set_link", "nme=x", "up=false"], "set_link: unknown argument 'nme' (did you mean name?)"],
    [["set_link", "name=x"], "set_link: missing argument 'up': expected bool (true/false, on/off, yes/no)"],
    [
      ["blockdev-add", "driver=null-co", "node-name=n1", "detect-zeroes=maybe"],
      "blockdev-add: 'detect-zeroes=maybe': expected one of off, on, unmap",
    ],
    [["query-stauts", "x=1"], "unknown command 'query-stauts' (did you mean query-stats or query-status?)"],
    [ // a key given as is is not checked, but it is most likely why the argument is missing
      ["set_link", "up=on", "nme:=5"],
      "set_link: missing argument 'name': expected str (given as is, and not an argument here: 'nme')",
    ],
    [ // inside JSON text a bool is JSON's true or false, not on/off
      ["blockdev-add", "driver=raw", "node-name=n2", 'file={"driver":"null-co","read-only":"on"}'],
      `blockdev-add: 'file={"driver":"null-co","read-only":"on"}': at file.read-only: expected bool (true or false)`,
    ],
    [ // and an enum's value a string: 1 is not "1" (send-key's qcodes 1, 2, ... look like numbers)
      ["blockdev-add", "driver=raw", "node-name=n3", 'file={"driver":"null-co","detect-zeroes":1}'],
      `blockdev-add: 'file={"driver":"null-co","detect-zeroes":1}': at file.detect-zeroes: expected a string, one of off, on, unmap`,
    ],
  ])("exec %p exits 2 and sends nothing", async (words, message) => {
    const result = await run(["exec", ...words]);
    expect(result.code).toBe(2);
    expect(result.stdout).toBe("");
    expect(lastLine(result.stderr)).toBe(`qmpctl: ${message}`);
    expect(sent(result.stderr)).not.toContain(words[0]);
  });
});

test("a command QEMU does not find (no words to type) keeps exit 1 and gains the closest names", async () => {
  const result = await run(["exec", "query-stauts"]);
  expect(result.code).toBe(1);
  expect(lastLine(result.stderr)).toBe(
    "qmpctl: CommandNotFound: The command query-stauts has not been found (did you mean query-stats or query-status?)",
  );
  // A human monitor line given to exec: no QMP command has a blank, so the hint is hmp.
  const line = await run(["exec", "info status"]);
  expect(line.code).toBe(1);
  expect(lastLine(line.stderr)).toBe(
    "qmpctl: CommandNotFound: The command info status has not been found (a human monitor line goes with hmp: " +
      "qmpctl hmp 'info status')",
  );
});

test("an event's name given to exec is said to be an event's, with or without words to type", async () => {
  const plain = await run(["exec", "SHUTDOWN"]);
  expect(plain.code).toBe(1);
  expect(lastLine(plain.stderr)).toBe(
    "qmpctl: CommandNotFound: The command SHUTDOWN has not been found " +
      "(SHUTDOWN is an event, which QEMU sends: it can be waited for, not run)",
  );
  const typed = await run(["exec", "SHUTDOWN", "guest=true"]);
  expect(typed).toMatchObject({ code: 2, stdout: "" });
  expect(lastLine(typed.stderr)).toBe(
    "qmpctl: unknown command 'SHUTDOWN' (SHUTDOWN is an event, which QEMU sends: it can be waited for, not run)",
  );
});

describe("introspection against QEMU", () => {
  test("describe set_link and an event", async () => {
    expect((await run(["describe", "set_link"])).stdout).toBe(
      '{"command":"set_link","arguments":{"name":"str","up":"bool"},"returns":{}}\n',
    );
    const stop = await run(["describe", "STOP"]);
    expect(stop.stdout).toBe('{"event":"STOP","data":{}}\n');
  });

  test("commands with a glob", async () => {
    const result = await run(["commands", "query-stat*"]);
    expect(result.stdout).toBe('["query-stats","query-stats-schemas","query-status"]\n');
  });

  test.each([
    ["qury-status", "qmpctl: no command matches 'qury-status' (did you mean query-status?)"],
    ["QUERY-KVM", "qmpctl: no command matches 'QUERY-KVM' (did you mean query-kvm?)"],
  ])("commands %p matches nothing: [] and exit 0, the closest names on stderr", async (glob, hint) => {
    const result = await run(["commands", glob]);
    expect(result).toMatchObject({ code: 0, stdout: "[]\n" });
    expect(lastLine(result.stderr)).toBe(hint);
  });

  test("commands 'query-[k]vm': [...] is no glob, exit 2 as for wait-event 'SHUTDOW[N]'", async () => {
    const result = await run(["commands", "query-[k]vm"]);
    expect(result).toMatchObject({ code: 2, stdout: "" });
    expect(lastLine(result.stderr)).toBe(
      "qmpctl: unknown command 'query-[k]vm' ('[...]' is no glob: only * and ? are) (did you mean query-kvm?)",
    );
    const waited = await run(["wait-event", "SHUTDOW[N]"]);
    expect(waited).toMatchObject({ code: 2, stdout: "" });
    expect(lastLine(waited.stderr)).toBe(
      "qmpctl: unknown event 'SHUTDOW[N]' ('[...]' is no glob: only * and ? are) (did you mean SHUTDOWN?)",
    );
  });
});
