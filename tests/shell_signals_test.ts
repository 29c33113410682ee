/** `qmpctl shell` killed by SIGTERM or SIGHUP gives the terminal back as it found it. */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { QMPCTL } from "./helpers/cli.ts";
import { startQemu, type TestQemu } from "./helpers/qemu.ts";
import { startTerminal } from "./helpers/terminal.ts";

let qemu: TestQemu;
beforeAll(async () => {
  qemu = await startQemu();
});
afterAll(() => qemu?.stop());

test.each(["TERM", "HUP"])("SIG%s ends the shell by that signal, with the terminal out of raw mode", async (signal) => {
  // After the shell, the same terminal reports its exit status and its echo/canonical-mode settings.
  const script =
    `"$0" shell -s "$1"; echo "status $?"; stty -a | tr ' ;' '\\n\\n' | grep -x -e -icanon -e icanon -e -echo -e echo`;
  const terminal = await startTerminal(["sh", "-c", script, QMPCTL, qemu.socket]);
  try {
    await terminal.waitForLastLine("(QEMU)");
    const pgrep = Bun.spawnSync(["pgrep", "-f", `^${QMPCTL} shell -s ${qemu.socket}$`]);
    const pid = Number(pgrep.stdout.toString().trim());
    expect(pid).toBeGreaterThan(0);
    process.kill(pid, `SIG${signal}`);
    const status = signal === "TERM" ? 128 + 15 : 128 + 1;
    const screen = await terminal.waitFor("the status and stty lines", (s) => s.includes("echo"));
    expect(screen.slice(-3)).toEqual([`status ${status}`, "icanon", "echo"]);
  } finally {
    await terminal.close();
  }
});
