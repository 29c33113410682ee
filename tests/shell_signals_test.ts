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
    await terminal.type("query-st");
    await terminal.waitForLastLine("(QEMU) query-st");
    const pgrep = Bun.spawnSync(["pgrep", "-f", `^${QMPCTL} shell -s ${qemu.socket}$`]);
    const pid = Number(pgrep.stdout.toString().trim());
    expect(pid).toBeGreaterThan(0);
    process.kill(pid, `SIG${signal}`);
    const status = signal === "TERM" ? 128 + 15 : 128 + 1;
    const screen = await terminal.waitFor("the status and stty lines", (s) => s.includes("echo"));
    // The line left as typed; what comes next (sh's word on the signal) starts on a line of its own.
    const said = signal === "TERM" ? "Terminated" : "Hangup";
    expect(screen.slice(-5)).toEqual(["(QEMU) query-st", said, `status ${status}`, "icanon", "echo"]);
  } finally {
    await terminal.close();
  }
});

test("started with SIGHUP ignored (nohup), a hangup still ends the shell: its terminal is gone", async () => {
  const script =
    `trap "" HUP; "$0" shell -s "$1"; echo "status $?"; stty -a | tr ' ;' '\\n\\n' | grep -x -e -echo -e echo`;
  const terminal = await startTerminal(["sh", "-c", script, QMPCTL, qemu.socket]);
  try {
    await terminal.waitForLastLine("(QEMU)");
    process.kill(shellPid(), "SIGHUP");
    const screen = await terminal.waitFor("the status and stty lines", (s) => s.includes("echo"));
    expect(screen.slice(-2)).toEqual(["status 129", "echo"]);
  } finally {
    await terminal.close();
  }
});

test.each([["Ctrl-Z", "C-z"], ["SIGTSTP (kill -TSTP)", "SIGTSTP"]])(
  "%s stops the shell with the terminal given back; fg continues it in raw mode, the line drawn again",
  async (_, how) => {
    // bash with job control, as a person's terminal: it reports the stop and takes the terminal back.
    // Wide: bash's "Stopped" line names the whole command, whose paths are long in a CI checkout.
    const terminal = await startTerminal(["bash", "--norc", "--noprofile", "-i"], { env: { PS1: "$ " }, columns: 400 });
    const modes = "stty -a | tr ' ;' '\\n\\n' | grep -x -e -icanon -e icanon -e -echo -e echo -e -isig -e isig";
    try {
      await terminal.waitForLastLine("$");
      await terminal.type(`"${QMPCTL}" shell -s "${qemu.socket}"`);
      await terminal.press("Enter");
      await terminal.waitForLastLine("(QEMU)");
      await terminal.type("query-st");
      await terminal.waitForLastLine("(QEMU) query-st");
      if (how === "C-z") await terminal.press("C-z");
      else process.kill(shellPid(), "SIGTSTP");
      let screen = await terminal.waitFor("bash's prompt after the stop", (s) => s.at(-1) === "$" && s.length > 3);
      expect(screen.join("\n")).toMatch(/^\[1\]\+ +Stopped +.*shell -s/m);
      expect(screen).toContain("(QEMU) query-st^Z"); // the line left as typed, the stop marked as a terminal marks it
      await terminal.type(modes);
      await terminal.press("Enter");
      screen = await terminal.waitFor("the terminal's modes", (s) => s.at(-1) === "$" && s.includes("echo"));
      expect(screen.slice(-4, -1)).toEqual(["isig", "icanon", "echo"]); // bash's again, as it was before qmpctl

      await terminal.type("fg");
      await terminal.press("Enter");
      await terminal.waitForLastLine("(QEMU) query-st"); // drawn again below fg's line
      await terminal.type("atus"); // keys one at a time again: no echo of the terminal's own
      await terminal.waitForLastLine("(QEMU) query-status");
      await terminal.press("Enter");
      await terminal.waitForLastLine("(QEMU)");
      expect((await terminal.screen()).at(-2)).toBe('{"status":"running","singlestep":false,"running":true}');
      await terminal.press("C-d"); // at an empty prompt: leaves
      await terminal.waitForLastLine("$");
      await terminal.type(`echo "status $?"; ${modes}`);
      await terminal.press("Enter");
      screen = await terminal.waitFor("the status and modes", (s) => s.at(-1) === "$" && s.at(-2) === "echo");
      expect(screen.slice(-5, -1)).toEqual(["status 0", "isig", "icanon", "echo"]);
    } finally {
      await terminal.close();
    }
  },
);

test("a window resized while the shell is stopped: fg draws the line for the new width, and keys leave no stale rows", async () => {
  const terminal = await startTerminal(["bash", "--norc", "--noprofile", "-i"], { env: { PS1: "$ " }, columns: 100 });
  try {
    await terminal.waitForLastLine("$");
    await terminal.type(`"${QMPCTL}" shell -s "${qemu.socket}"`);
    await terminal.press("Enter");
    await terminal.waitForLastLine("(QEMU)");
    const line = "(QEMU) query-status abc=1 def=2 ghi=3 jkl=4";
    await terminal.type(line.slice("(QEMU) ".length));
    await terminal.waitForLastLine(line);
    await terminal.press("C-z");
    await terminal.waitFor("bash's prompt after the stop", (s) => s.at(-1) === "$" && s.length > 3);
    await terminal.resize(30); // its SIGWINCH goes to bash, which has the terminal now
    await terminal.type("fg");
    await terminal.press("Enter");
    await terminal.waitForLastLine(line.slice(30));
    await terminal.type("Q");
    await terminal.type("R");
    const screen = await terminal.waitForLastLine(line.slice(30) + "QR");
    expect(screen.at(-2)).toBe(line.slice(0, 30));
    // Below fg (and bash's word of the job it continues), the line once: no copy left by each key.
    const afterFg = screen.slice(screen.lastIndexOf("$ fg") + 1);
    expect(afterFg.filter((row) => row.startsWith("(QEMU)"))).toEqual([line.slice(0, 30)]);
    expect(await terminal.cursor()).toEqual({ x: line.length + 2 - 30, y: screen.length - 1 });
    await terminal.press("C-l"); // drawn again at the top, for the width it has
    await terminal.waitFor("the line alone", (s) => s.length === 2);
    expect(await terminal.screen()).toEqual([line.slice(0, 30), line.slice(30) + "QR"]);
    expect(await terminal.cursor()).toEqual({ x: line.length + 2 - 30, y: 1 });
  } finally {
    await terminal.close();
  }
});

/** The pid of the one qmpctl shell running on the test QEMU. */
function shellPid(): number {
  const pgrep = Bun.spawnSync(["pgrep", "-f", `^${QMPCTL} shell -s ${qemu.socket}$`]);
  const pid = Number(pgrep.stdout.toString().trim());
  expect(pid).toBeGreaterThan(0);
  return pid;
}

test("Ctrl-Z where no job-control shell could continue it (its own session, as ssh -t gives): the shell goes on", async () => {
  // python's pty.spawn runs the shell as a session leader: its process group is orphaned, and a stop there
  // would be for good (the kernel ignores SIGTSTP in such a group; SIGSTOP it would not).
  const spawn = "import pty, sys; pty.spawn(sys.argv[1:])";
  const terminal = await startTerminal(["python3", "-c", spawn, QMPCTL, "shell", "-s", qemu.socket]);
  try {
    await terminal.waitForLastLine("(QEMU)");
    await terminal.type("query-st");
    await terminal.waitForLastLine("(QEMU) query-st");
    await terminal.press("C-z");
    await terminal.waitForLastLine("(QEMU) query-st"); // drawn again below the line left with ^Z
    expect(await terminal.screen()).toContain("(QEMU) query-st^Z");
    await terminal.type("atus");
    await terminal.press("Enter");
    await terminal.waitForLastLine("(QEMU)");
    expect((await terminal.screen()).at(-2)).toBe('{"status":"running","singlestep":false,"running":true}');
    await terminal.press("C-d");
    expect(await terminal.exitStatus()).toBe(0);
  } finally {
    await terminal.close();
  }
});

test("Ctrl-Z stops the whole job, as the terminal would: a bash -c around qmpctl stops too, and the shell gets it back", async () => {
  const terminal = await startTerminal(["bash", "--norc", "--noprofile", "-i"], { env: { PS1: "$ " }, columns: 400 });
  try {
    await terminal.waitForLastLine("$");
    await terminal.type(`bash -c '"$0" shell -s "$1"; echo "after $?"' "${QMPCTL}" "${qemu.socket}"`);
    await terminal.press("Enter");
    await terminal.waitForLastLine("(QEMU)");
    await terminal.press("C-z");
    const screen = await terminal.waitFor("bash's prompt after the stop", (s) => s.at(-1) === "$" && s.length > 3);
    expect(screen.join("\n")).toMatch(/^\[1\]\+ +Stopped +bash -c /m); // the job, not qmpctl alone
    await terminal.type("fg");
    await terminal.press("Enter");
    await terminal.waitForLastLine("(QEMU)");
    await terminal.press("C-d");
    await terminal.waitFor("the wrapper's own line", (s) => s.includes("after 0"));
  } finally {
    await terminal.close();
  }
});
