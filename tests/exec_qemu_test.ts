/** `qmpctl exec` and `qmpctl hmp` against a real QEMU. */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { qmpctl } from "./helpers/cli.ts";
import { startQemu, type TestQemu } from "./helpers/qemu.ts";

let qemu: TestQemu;
beforeAll(async () => {
  qemu = await startQemu();
});
afterAll(() => qemu?.stop());

describe("exec", () => {
  test("prints query-version's return as one compact JSON line", async () => {
    const expected = await qemu.control.execute("query-version");
    const result = await qmpctl(["-s", qemu.socket, "exec", "query-version"]);
    expect(result).toMatchObject({ code: 0, stderr: "" });
    expect(result.stdout).toBe(JSON.stringify(expected) + "\n");
  });

  test("an unknown command exits 1 with QEMU's class and description on stderr", async () => {
    const result = await qmpctl(["-s", qemu.socket, "exec", "no-such-command"]);
    expect(result.code).toBe(1);
    expect(result.stdout).toBe("");
    expect(result.stderr).toBe("qmpctl: CommandNotFound: The command no-such-command has not been found\n");
  });
});

describe("hmp", () => {
  test("prints the monitor's text with CRLF made LF", async () => {
    const result = await qmpctl(["-s", qemu.socket, "hmp", "info status"]);
    expect(result).toEqual(expect.objectContaining({ code: 0, stdout: "VM status: running\n", stderr: "" }));
  });
});
