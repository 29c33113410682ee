/** `qmpctl shell` on a real pseudo-terminal (tmux) against a fake server: faults QEMU will not make on demand. */
import { describe, expect, test } from "bun:test";
import { QMPCTL } from "./helpers/cli.ts";
import { fakeServer } from "./helpers/fake_server.ts";
import { useShellHome } from "./helpers/shell.ts";
import { startTerminal } from "./helpers/terminal.ts";

const ENV = useShellHome().env;

describe("qmpctl shell against a fake server", () => {
  test("Ctrl-C stops waiting for a command that does not answer, and the shell goes on", async () => {
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
      expect((await terminal.screen()).at(-1)).toBe(
        "qmpctl: timed out waiting for the reply to query-name (--timeout 500ms)",
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
