/** `qmpctl shell` on a real pseudo-terminal (tmux) against a fake server: faults QEMU will not make on demand. */
import { describe, expect, test } from "bun:test";
import { QMPCTL } from "./helpers/cli.ts";
import { fakeServer } from "./helpers/fake_server.ts";
import { useShellHome } from "./helpers/shell.ts";
import { startTerminal } from "./helpers/terminal.ts";

const ENV = useShellHome().env;

describe("qmpctl shell against a fake server", () => {
  test("a monitor that negotiates, then answers nothing (a stopped QEMU behind a proxy): exit 3 at --connect-timeout", async () => {
    const server = fakeServer(async (connection) => {
      await connection.handshake();
      await connection.nextRequest(); // query-name, never answered
    });
    const terminal = await startTerminal([QMPCTL, "shell", "-s", server.path, "--connect-timeout", "500ms"], {
      env: ENV(),
    });
    try {
      expect(await terminal.exitStatus()).toBe(3);
      const screen = (await terminal.screen()).join("\n");
      expect(screen).toContain(`no answer to query-name from ${server.path} within 500ms`);
    } finally {
      await terminal.close();
      server.stop();
    }
  });

  /**
   * A shell on a server that answers query-name, never the command after it
   * (`query-hang`, sent here and awaited), then the next: `then` runs with
   * the shell waiting for that reply; the shell and server are closed after.
   */
  async function waitingForAReply(
    then: (terminal: Awaited<ReturnType<typeof startTerminal>>, sent: () => unknown[]) => Promise<void>,
  ): Promise<void> {
    const server = fakeServer(async (connection) => {
      await connection.handshake();
      connection.reply(await connection.nextRequest(), { name: "slow" }); // query-name
      await connection.nextRequest(); // never answered
      const next = await connection.nextRequest();
      connection.reply(next, { status: "running", running: true });
    });
    const terminal = await startTerminal([QMPCTL, "shell", "-s", server.path], { env: ENV() });
    try {
      await terminal.waitForLastLine("(slow)");
      await terminal.type("query-hang");
      await terminal.press("Enter");
      await terminal.waitFor("the request to reach the server", () => server.requests.length === 3);
      await then(terminal, () => server.requests.map((request) => request.execute));
    } finally {
      await terminal.close();
      server.stop();
    }
  }

  test("Ctrl-C stops waiting for a command that does not answer, and the shell goes on", async () => {
    await waitingForAReply(async (terminal) => {
      await terminal.press("C-c");
      const screen = await terminal.waitForLastLine("(slow)");
      expect(screen.slice(-3)).toEqual([
        "(slow) query-hang",
        "^C (the command was sent; its reply will not be shown)",
        "(slow)",
      ]);
      await terminal.type("query-status");
      await terminal.press("Enter");
      await terminal.waitFor("the status", (s) => s.at(-2) === '{"status":"running","running":true}');
    });
  });

  test("Ctrl-C also drops what was typed while the command waited, as a terminal's own Ctrl-C does", async () => {
    await waitingForAReply(async (terminal, sent) => {
      await terminal.type("stop"); // typed ahead, unseen, while the reply is awaited
      await terminal.press("Enter");
      await terminal.press("C-c");
      await terminal.waitForLastLine("(slow)");
      await terminal.type("query-status");
      await terminal.press("Enter");
      await terminal.waitFor("the status", (s) => s.at(-2) === '{"status":"running","running":true}');
      expect(sent()).toEqual(["qmp_capabilities", "query-name", "query-hang", "query-status"]);
    });
  });
});

describe("qmpctl shell: text from QEMU reaches the terminal as text", () => {
  // Each would act on a terminal: recolour, clear the screen, set the title, write the clipboard (OSC 52),
  // return to the start of the line, and a C1 CSI (U+009B) that some terminals obey.
  const HOSTILE = "\u001b[31mred\u001b[2J\u001b]0;title\u0007\u001b]52;c;cHduZWQ=\u0007\rback\u009b2J";
  const SHOWN = "\\x1b[31mred\\x1b[2J\\x1b]0;title\\x07\\x1b]52;c;cHduZWQ=\\x07\\rback\\x9b2J";

  test("a QEMU error's class and description, and the VM name in the prompt, are shown escaped", async () => {
    const server = fakeServer(async (connection) => {
      await connection.handshake();
      connection.reply(await connection.nextRequest(), { name: "vm\u001b[7m" }); // query-name
      const request = await connection.nextRequest();
      connection.sendJson({ error: { class: "Generic\u001b[5mError", desc: `bad ${HOSTILE}` }, id: request.id });
    });
    const terminal = await startTerminal([QMPCTL, "shell", "-s", server.path], { env: ENV(), columns: 200 });
    try {
      await terminal.waitForLastLine("(vm\\x1b[7m)");
      await terminal.type("stop");
      await terminal.press("Enter");
      const screen = await terminal.waitFor(
        "the error and a new prompt",
        (s) => s.length >= 3 && s.at(-1) === "(vm\\x1b[7m)",
      );
      expect(screen.slice(-3)).toEqual([
        "(vm\\x1b[7m) stop",
        `Generic\\x1b[5mError: bad ${SHOWN}`,
        "(vm\\x1b[7m)",
      ]);
    } finally {
      await terminal.close();
      server.stop();
    }
  });

  test("shell --hmp: the monitor's text keeps its lines, its other control characters are shown escaped", async () => {
    const server = fakeServer(async (connection) => {
      await connection.handshake();
      connection.reply(await connection.nextRequest(), { name: "vm1" }); // query-name
      const request = await connection.nextRequest();
      connection.reply(request, `line one\r\n\tline ${HOSTILE}\r\n`);
    });
    const terminal = await startTerminal([QMPCTL, "shell", "--hmp", "-s", server.path], { env: ENV(), columns: 200 });
    try {
      await terminal.waitForLastLine("(vm1)");
      await terminal.type("info status");
      await terminal.press("Enter");
      const screen = await terminal.waitFor("the text and a new prompt", (s) => s.length >= 4 && s.at(-1) === "(vm1)");
      expect(screen.slice(-4)).toEqual([
        "(vm1) info status",
        "line one",
        `        line ${SHOWN}`,
        "(vm1)",
      ]);
    } finally {
      await terminal.close();
      server.stop();
    }
  });
});

describe("qmpctl shell and its bounds", () => {
  test("a --timeout that runs out before the prompt (QEMU does not say its name) ends the shell with 124", async () => {
    const server = fakeServer(async (connection) => {
      await connection.handshake();
      await connection.nextRequest(); // query-name, never answered
      await connection.nextRequest();
    });
    const terminal = await startTerminal([QMPCTL, "shell", "-s", server.path, "--timeout", "500ms"], { env: ENV() });
    try {
      expect(await terminal.exitStatus()).toBe(124);
      expect((await terminal.screen()).join("")).toEndWith( // the line may wrap
        `qmpctl: timed out waiting for the reply to query-name from ${server.path} (--timeout 500ms)`,
      );
    } finally {
      await terminal.close();
      server.stop();
    }
  });

  test("a lone Esc does not eat the key typed after it", async () => {
    const server = fakeServer(async (connection) => {
      await connection.handshake();
      connection.reply(await connection.nextRequest(), { name: "fake" }); // query-name
      await connection.nextRequest();
    });
    const terminal = await startTerminal([QMPCTL, "shell", "-s", server.path], { env: ENV() });
    try {
      await terminal.waitForLastLine("(fake)");
      await terminal.press("Escape");
      await Bun.sleep(800); // a person's pause after Esc, longer than the 500 ms escape timeout
      await terminal.type("abc");
      const screen = await terminal.waitFor("the typed text", (s) => s.at(-1)!.endsWith("c"));
      expect(screen.at(-1)).toBe("(fake) abc");
    } finally {
      await terminal.close();
      server.stop();
    }
  });
});

describe("qmpctl shell when the connection is lost", () => {
  test("says so and exits 3", async () => {
    const server = fakeServer(async (connection) => {
      await connection.handshake();
      const request = await connection.nextRequest(); // query-name
      connection.reply(request, { name: "fake" });
      await Bun.sleep(300);
      connection.close();
    });
    const terminal = await startTerminal([QMPCTL, "shell", "-s", server.path], { env: ENV() });
    try {
      await terminal.waitFor("the prompt", (s) => s.at(-1) === "(fake)" || s.some((r) => r.startsWith("qmpctl:")));
      expect(await terminal.exitStatus()).toBe(3);
      expect((await terminal.screen()).at(-1)).toBe(`qmpctl: connection lost: ${server.path} closed the connection`);
    } finally {
      await terminal.close();
      server.stop();
    }
  });
});
