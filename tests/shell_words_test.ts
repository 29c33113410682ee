/**
 * Words in the shell, both kinds, through the binary: a line split as sh
 * splits it (backslashes included; piped shell and batch) and readline's
 * words for Alt-B/F/Backspace on a real pseudo-terminal (tmux).
 */
import { describe, expect, test } from "bun:test";
import { QMPCTL, qmpctl } from "./helpers/cli.ts";
import { type FakeServer, fakeServers } from "./helpers/fake_server.ts";
import { useShellHome } from "./helpers/shell.ts";
import { startTerminal } from "./helpers/terminal.ts";

const ENV = useShellHome().env;
const serve = fakeServers();

/** A monitor named `fake`, without query-qmp-schema (an old QEMU: values are typed without a schema), `{}` to the rest. */
function monitor(): FakeServer {
  return serve(async (connection) => {
    await connection.handshake();
    for (;;) {
      const request = await connection.nextRequest();
      if (request.execute === "query-name") connection.reply(request, { name: "fake" });
      else if (request.execute === "query-qmp-schema") {
        connection.sendJson({
          error: { class: "CommandNotFound", desc: "The command query-qmp-schema has not been found" },
          id: request.id,
        });
      } else connection.reply(request, {});
    }
  });
}

/** Lines with backslashes, and the `command-line` each gives, as sh would split them. */
const BACKSLASHES: [string, string][] = [
  [String.raw`human-monitor-command command-line=info\ status`, "info status"],
  [String.raw`human-monitor-command command-line=a\'b\"c\\d\$e`, `a'b"c\\d$e`],
  [String.raw`human-monitor-command command-line="a\b \"c\" \\d \$e"`, String.raw`a\b "c" \d $e`],
  [String.raw`human-monitor-command command-line='a\ b\\c'`, String.raw`a\ b\\c`],
  [String.raw`human-monitor-command command-line=end\\`, "end\\"],
  [String.raw`human-monitor-command command-line=blank\ `, "blank "],
  ["\u00a0human-monitor-command command-line=nbsp\u00a0", "nbsp"], // pasted: the ends' no-break spaces go
];

/** The `command-line` of each human-monitor-command the server got. */
const commandLines = (server: FakeServer) =>
  server.requests.filter((r) => r.execute === "human-monitor-command").map((r) =>
    (r.arguments as Record<string, unknown>)["command-line"]
  );

describe("a shell line's backslashes, as sh reads them", () => {
  test('piped shell: a backslash outside quotes takes the next character; inside double quotes only $ ` " \\', async () => {
    const server = monitor();
    const { code, stdout, stderr } = await qmpctl(["shell", "-s", server.path], {
      stdin: BACKSLASHES.map(([line]) => line).join("\n") + "\n",
      env: ENV(),
    });
    expect({ code, stderr }).toEqual({ code: 0, stderr: "" });
    expect(stdout).toBe('{"return":{}}\n'.repeat(BACKSLASHES.length));
    expect(commandLines(server)).toEqual(BACKSLASHES.map(([, value]) => value));
  });

  test("batch reads its lines the same way, and KEY:=JSON keeps the backslashes of its JSON strings", async () => {
    const server = monitor();
    const json = [
      String.raw`x-json a:='{"s":"b\\c"}' b:={"s":"q\"r"} c:=["d\\e f"]`,
      String.raw`x-json a:="{\"s\":\"b\\\\c\"}"`,
    ];
    const { code, stdout, stderr } = await qmpctl(["batch", "-s", server.path, "-"], {
      stdin: [...BACKSLASHES.map(([line]) => line), ...json].join("\n") + "\n",
      env: ENV(),
    });
    expect({ code, stderr }).toEqual({ code: 0, stderr: "" });
    expect(stdout).toBe('{"return":{}}\n'.repeat(BACKSLASHES.length + json.length));
    expect(commandLines(server)).toEqual(BACKSLASHES.map(([, value]) => value));
    expect(server.requests.filter((r) => r.execute === "x-json").map((r) => r.arguments)).toEqual([
      { a: { s: "b\\c" }, b: { s: 'q"r' }, c: ["d\\e f"] },
      { a: { s: "b\\c" } },
    ]);
  });
});

describe("editing words on a terminal", () => {
  test("Alt-Backspace, Alt-B and Alt-F take readline's words (letters and digits); Ctrl-W goes to a blank", async () => {
    const server = monitor();
    const terminal = await startTerminal([QMPCTL, "shell", "-s", server.path], { env: ENV() });
    const line = (text: string) => terminal.waitFor(`the line '${text}'`, (s) => s.at(-1) === `(fake) ${text}`);
    try {
      await terminal.waitForLastLine("(fake)");
      await terminal.type("set_link name=n0 up=on");
      await line("set_link name=n0 up=on");
      await terminal.press("M-BSpace");
      expect((await line("set_link name=n0 up=")).at(-1)).toBe("(fake) set_link name=n0 up=");
      await terminal.press("M-b", "M-b");
      await terminal.type("Y");
      await line("set_link name=Yn0 up=");
      await terminal.press("C-a", "M-f");
      await terminal.type("X");
      await line("setX_link name=Yn0 up=");
      await terminal.press("M-f", "M-f");
      await terminal.type("Z");
      await line("setX_link nameZ=Yn0 up=");
      // Letters of any script are letters: é and 1 belong to the word, the = before them does not.
      await terminal.press("C-e");
      await terminal.type("café1");
      await terminal.press("M-BSpace");
      await line("setX_link nameZ=Yn0 up=");
      await terminal.press("C-w");
      await line("setX_link nameZ=Yn0");
      await terminal.press("C-w");
      await line("setX_link");
    } finally {
      await terminal.close();
    }
  });
});
