/** The command line's own edges: help, version, usage errors (nothing sent), SIGINT, and a stdout closed early. */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import packageJson from "../package.json" with { type: "json" };
import { COMMANDS } from "../cli/registry.ts";
import { refusedNames } from "../cli/options.ts";
import { interrupt, QMPCTL, qmpctl, startQmpctl } from "./helpers/cli.ts";
import { startQemu, type TestQemu } from "./helpers/qemu.ts";

let qemu: TestQemu;
let dir: string;
/** A UNIX socket that counts connections: a usage error must not even connect. */
let listener: { path: string; connections: number; stop(): void };
beforeAll(async () => {
  qemu = await startQemu();
  dir = mkdtempSync(join(tmpdir(), "qmpctl-cli-"));
  const path = join(dir, "counting.sock");
  let connections = 0;
  const server = Bun.listen({ unix: path, socket: { open: () => void connections++, data() {} } });
  listener = {
    path,
    get connections() {
      return connections;
    },
    stop: () => server.stop(true),
  };
});
afterAll(async () => {
  listener?.stop();
  await qemu?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("help and version", () => {
  test("--help, -h and 'help' print the general help on stdout with exit 0", async () => {
    const help = await qmpctl(["--help"]);
    expect(help).toMatchObject({ code: 0, stderr: "" });
    expect(help.stdout).toStartWith("Usage: qmpctl [options] COMMAND [ARGS...]\n");
    for (const command of ["exec", "hmp"]) expect(help.stdout).toMatch(new RegExp(`^  ${command} +\\S`, "m"));
    for (const option of ["--socket", "--timeout", "--connect-timeout", "--pretty", "--raw", "--verbose"]) {
      expect(help.stdout).toContain(option);
    }
    expect(help.stdout).toContain("QMPCTL_SOCKET");
    expect(await qmpctl(["-h"])).toMatchObject({ code: 0, stdout: help.stdout, stderr: "" });
    expect(await qmpctl(["help"])).toMatchObject({ code: 0, stdout: help.stdout, stderr: "" });
    expect(await qmpctl(["help", "help"])).toMatchObject({ code: 0, stdout: help.stdout, stderr: "" });
  });

  test("help is printed whatever the other options hold (a bad --timeout or --jobs being fixed)", async () => {
    const general = await qmpctl(["--help"]), exec = await qmpctl(["help", "exec"]);
    expect(await qmpctl(["--help", "--timeout", "bad"])).toMatchObject({ code: 0, stdout: general.stdout });
    expect(await qmpctl(["exec", "--help", "--timeout", "bad"])).toMatchObject({ code: 0, stdout: exec.stdout });
    expect(await qmpctl(["help", "exec", "--jobs", "0"])).toMatchObject({ code: 0, stdout: exec.stdout });
  });

  test("'help exec', 'exec --help' and 'exec -h' print exec's help with examples, and connect to nothing", async () => {
    const help = await qmpctl(["help", "exec"]);
    expect(help).toMatchObject({ code: 0, stderr: "" });
    expect(help.stdout).toStartWith("Usage: qmpctl exec COMMAND");
    expect(help.stdout).toContain("--args");
    expect(help.stdout).toContain("Examples:");
    expect(help.stdout).toContain("Global options:");
    const flagged = await qmpctl(["-s", listener.path, "exec", "--help"]);
    expect(flagged).toMatchObject({ code: 0, stdout: help.stdout, stderr: "" });
    expect(await qmpctl(["exec", "query-status", "-h"])).toMatchObject({ code: 0, stdout: help.stdout });
    expect(listener.connections).toBe(0);
  });

  /** The global options `help COMMAND` lists. */
  const globals = async (command: string) => {
    const help = await qmpctl(["help", command]);
    expect(help).toMatchObject({ code: 0, stderr: "" });
    return [...help.stdout.split("Global options:\n")[1].matchAll(/^ {2}(?:-\w, )? *(--[\w-]+)/gm)].map((m) => m[1]);
  };

  test("a command's help lists only the global options it takes: no --jobs for wait-event, only -v, -h for ansible", async () => {
    expect(await globals("wait-event")).not.toContain("--jobs");
    expect(await globals("exec")).toContain("--jobs");
    expect(await globals("ansible")).toEqual(["--verbose", "--help", "--version"]);
    const refused = await qmpctl(["ansible", "args.json", "--timeout", "1s"]);
    expect(refused).toMatchObject({
      code: 2,
      stderr: "qmpctl: ansible takes its settings from ARGS_FILE (socket, timeout, ...): --timeout does not apply\n",
    });
  });

  test("--jobs is taken only where it counts: a command of one target, or one of every target at once, refuses it", () => {
    const refusing = Object.entries(COMMANDS).filter(([, entry]) => entry.fanout !== "jobs");
    expect(refusing.map(([name]) => name)).toEqual(
      expect.arrayContaining(["wait-event", "shell", "ga", "completions"]),
    );
    for (const [name, entry] of refusing) {
      expect({ name, refused: refusedNames(entry.refuses).includes("jobs") }).toEqual({ name, refused: true });
    }
  });

  test("options a command would ignore are refused, before anything connects", async () => {
    for (
      const [words, message] of [
        [["-s", listener.path, "ga", "guest-ping", "-j", "4"], "ga takes one target: --jobs does not apply"],
        [["-s", listener.path, "shell", "-j", "2"], "shell takes one target: --jobs does not apply"],
        [
          ["proxy", "--listen", "/nonexistent/p.sock", "--pretty"],
          "proxy shares one monitor and prints no replies: --pretty does not apply",
        ],
        [
          ["completions", "bash", "--wait-socket", "5s"],
          "completions prints a script and connects to nothing: --wait-socket does not apply",
        ],
      ] as [string[], string][]
    ) {
      expect(await qmpctl(words)).toMatchObject({
        code: 2,
        stdout: "",
        stderr: `qmpctl: ${message}\n`,
      });
    }
    expect(listener.connections).toBe(0);
    expect(await globals("completions")).toEqual(["--timeout", "--help", "--version"]);
  });

  test("'help hmp' and 'hmp --help' print hmp's help", async () => {
    const help = await qmpctl(["help", "hmp"]);
    expect(help).toMatchObject({ code: 0, stderr: "" });
    expect(help.stdout).toStartWith("Usage: qmpctl hmp 'COMMAND LINE'");
    expect(help.stdout).toContain("--cpu");
    expect(await qmpctl(["hmp", "--help"])).toMatchObject({ code: 0, stdout: help.stdout });
  });

  test("every help's lines fit 80 columns, usage lines and examples too, and are plain text", async () => {
    const long: string[] = [], controls: string[] = [];
    for (const command of [undefined, ...Object.keys(COMMANDS)]) {
      const { stdout } = await qmpctl(command ? ["help", command] : ["--help"]);
      for (const line of stdout.split("\n")) {
        // Prose and tables are wrapped; a long example is broken with a trailing \ (or after | && ||), its
        // comment on a line of its own, and a long usage line groups options as [options].
        if (line.length > 80) long.push(`${command}: ${line}`);
        // A "\x1b" in a template literal is an ESC byte, which a terminal obeys: help text is plain.
        // deno-lint-ignore no-control-regex -- finding control characters is the point
        if (/[\x00-\x1f\x7f]/.test(line)) controls.push(`${command}: ${JSON.stringify(line)}`);
      }
    }
    expect(long).toEqual([]);
    expect(controls).toEqual([]);
  });

  test("--version prints the package's version", async () => {
    const result = await qmpctl(["--version"]);
    expect(result).toEqual(expect.objectContaining({ code: 0, stderr: "" }));
    expect(result.stdout).toStartWith(`qmpctl ${packageJson.version}`);
  });
});

describe("usage errors exit 2 with one line on stderr, and send nothing", () => {
  const cases: [string, string[], RegExp][] = [
    ["no command", [], /^qmpctl: no command given.*--help/],
    ["an unknown command", ["frobnicate"], /^qmpctl: unknown command 'frobnicate' \(commands: exec, hmp, .*, help; /],
    ["a mistyped command", ["exce", "query-status"], /^qmpctl: unknown command 'exce' \(did you mean exec\?\)$/],
    ["a mistyped help", ["hlep"], /^qmpctl: unknown command 'hlep' \(did you mean help\?\)$/],
    [
      "a QMP command where qmpctl's goes",
      ["query-status"],
      /^qmpctl: unknown command 'query-status' \(commands: .*; a QMP command goes after exec: qmpctl exec query-status\)$/,
    ],
    [
      "a glob after -s the shell expanded: its second socket stands where the command goes",
      ["-s", "/run/vm1.qmp", "/run/vm2.qmp", "exec", "query-status"],
      /^qmpctl: unknown command '\/run\/vm2.qmp' \(a socket\? a glob after -s must be quoted, .*: -s 'vm\*.sock'\)$/,
    ],
    [
      "a glob after -s the shell expanded, after the command: its second socket stands where KEY=VALUE goes",
      ["exec", "query-status", "vm2.sock"], // -s vm*.sock at its end: -s vm1.sock vm2.sock (-s is the listener's here)
      /^qmpctl: 'vm2.sock' is not KEY=VALUE \(a socket\? a glob after -s must be quoted, .*: -s 'vm\*.sock'\)$/,
    ],
    [
      "arguments as JSON where KEY=VALUE words go",
      ["exec", "qom-list", '{"path": "/"}'],
      /^qmpctl: '\{"path": "\/"\}' is not KEY=VALUE \(a JSON object of arguments goes with --args\)$/,
    ],
    ["help for an unknown command", ["help", "frobnicate"], /^qmpctl: unknown command 'frobnicate'/],
    [
      "help for a mistyped help: not pointed back at help",
      ["help", "hlep"],
      /^qmpctl: unknown command 'hlep' \(commands: exec, /,
    ],
    [
      "help for a QMP command, which describe describes",
      ["help", "query-status"],
      /^qmpctl: unknown command 'query-status' \(commands: .*; QEMU's own commands are described by: qmpctl describe query-status\)$/,
    ],
    [
      "an unknown long option",
      ["exec", "query-status", "--frobnicate"],
      /^qmpctl: unknown option --frobnicate \(try: qmpctl help exec\)$/,
    ],
    [
      "a mistyped long option",
      ["exec", "query-status", "--timout", "5s"],
      /^qmpctl: unknown option --timout \(did you mean --timeout\?\)$/,
    ],
    [ // proxy's --listen is no name for exec's mistyped option
      "a mistyped option close only to another command's",
      ["exec", "query-status", "--lsten", "x"],
      /^qmpctl: unknown option --lsten \(try: qmpctl help exec\)$/,
    ],
    [
      "an unknown short option",
      ["exec", "query-status", "-x"],
      /^qmpctl: unknown option -x \(try: qmpctl help exec\)$/,
    ],
    [
      "an unknown option before the command",
      ["-P", "exec", "query-status"],
      /^qmpctl: unknown option -P \(try: qmpctl --help\)$/,
    ],
    ["an option of another command", ["hmp", "info status", "--args", "{}"], /^qmpctl: hmp does not take --args$/],
    [ // named as the user may have typed it: -l is commands' --long
      "a short option of another command",
      ["exec", "query-status", "-l"],
      /^qmpctl: exec does not take -l\/--long$/,
    ],
    ["--args given twice", ["exec", "query-status", "--args", "{}", "--args={}"], /^qmpctl: --args given twice$/],
    [ // as typed in qmp-shell's HMP mode
      "an HMP command line given to exec",
      ["exec", "info", "version"],
      /^qmpctl: 'version' is not KEY=VALUE \(info is an HMP command: qmpctl hmp 'info version'\)$/,
    ],
    ["an option without its value", ["exec", "query-status", "--timeout"], /^qmpctl: --timeout needs a value/],
    [ // the value left out: the option took the command word, and says so rather than blaming the command
      "an option before the command without its value",
      ["--timeout", "exec", "query-status"],
      /^qmpctl: --timeout 'exec' is not a duration/,
    ],
    ["--jobs before the command without its value", ["-j", "exec", "query-status"], /^qmpctl: --jobs 'exec': how many/],
    [
      "-s before the command without its value",
      ["-s", "exec", "query-status"],
      /^qmpctl: unknown command 'query-status' \(--socket took 'exec' as its value: give it one\)$/,
    ],
    [
      "an option that took the only command word",
      ["--match", "events"],
      /^qmpctl: no command given \(--match took 'events' as its value: give it one\)$/,
    ],
    ["a flag given a value", ["exec", "query-status", "--pretty=yes"], /^qmpctl: --pretty takes no value$/],
    ["a bad duration", ["exec", "query-status", "--timeout", "soon"], /^qmpctl: --timeout 'soon' is not a duration/],
    ["exec without a command", ["exec"], /^qmpctl: exec needs a command name/],
    [
      "exec with its arguments but not its command",
      ["exec", "up=off"],
      /^qmpctl: 'up=off' is KEY=VALUE, not a command name: exec takes the command first \(/,
    ],
    ["hmp without a command line", ["hmp"], /^qmpctl: hmp needs a command line/],
    ["a bad --cpu", ["hmp", "info cpus", "--cpu", "one"], /^qmpctl: --cpu 'one' is not a CPU index$/],
    [ // a double would send 9007199254740992: no CPU has such an index
      "a --cpu beyond 2^53",
      ["hmp", "info cpus", "--cpu", "9007199254740993"],
      /^qmpctl: --cpu '9007199254740993' is not a CPU index$/,
    ],
    [ // QEMU keeps 32 bits of it: this one would run on CPU 0
      "a --cpu beyond 2^31 - 1",
      ["hmp", "info cpus", "--cpu", "4294967296"],
      /^qmpctl: --cpu '4294967296' is not a CPU index$/,
    ],
    [
      "a glob in an ssh:// address (not expanded on the remote host)",
      ["-s", "ssh://vmhost/run/qemu/*.qmp", "exec", "query-status"],
      /^qmpctl: 'ssh:\/\/vmhost\/run\/qemu\/\*\.qmp': a glob is not expanded over ssh:\/\/ \(give each socket with -s; a path whose name holds \* or \? is taken as written from QMPCTL_SOCKET\)$/,
    ],
    ["a word without =", ["exec", "qom-get", "path=/", "property"], /^qmpctl: 'property' is not KEY=VALUE$/],
    ["an empty key", ["exec", "qom-get", "=x"], /^qmpctl: '=x' has an empty key$/],
    ["a key given twice", ["exec", "qom-get", "a=1", "a=2"], /^qmpctl: 'a=2' sets a again \(after 'a=1'\)$/],
    ["a leaf and an object", ["exec", "qom-get", "a=1", "a.b=2"], /^qmpctl: 'a\.b=2' .*'a=1'/],
    ["bad raw JSON in KEY:=JSON", ["exec", "qom-get", "a:={"], /^qmpctl: 'a:=\{'.*JSON/],
    ["--args that is not an object", ["exec", "qom-get", "--args", "[1,2]"], /^qmpctl: --args must be a JSON object/],
    ["--args that is a string", ["exec", "qom-get", "--args", '"x"'], /^qmpctl: --args must be a JSON object/],
    [ // JSON.parse would keep "y" and send it as if given once
      "--args with a key given twice",
      ["exec", "qom-get", "--args", '{"path": "/", "path": "/x"}'],
      /^qmpctl: --args: the key "path" is given twice in one object$/,
    ],
    [
      "--progress with several targets, whose lines would draw over one another",
      ["-s", "/nonexistent/*.qmp", "job", "wait", "--progress", "--wait-socket", "10s"],
      /^qmpctl: --progress draws one target's line: with -s repeated or a glob, --progress-json$/,
    ],
    [
      "KEY:=JSON with a key given twice",
      ["exec", "qom-get", 'a:={"b":1,"b":2}'],
      /^qmpctl: 'a:=\{.*the key "b" is given twice/,
    ],
  ];
  for (const [what, args, message] of cases) {
    test(what, async () => {
      const run = await qmpctl(["-s", listener.path, ...args]);
      expect(run).toMatchObject({ code: 2, stdout: "" });
      expect(run.stderr.split("\n")).toHaveLength(2);
      expect(run.stderr.trimEnd()).toMatch(message);
      expect(listener.connections).toBe(0);
    });
  }

  // A * or ? in a TCP address is no glob (only a UNIX path's is): a bad address, as the only -s too.
  test.each([
    ["localhost:4?", "exec", /^qmpctl: 'localhost:4\?' is not an address: expected PATH, /],
    ["tcp:localhost:4*", "exec", /^qmpctl: 'tcp:localhost:4\*' is not tcp:HOST:PORT$/],
    ["[::1]:4*", "shell", /^qmpctl: '\[::1\]:4\*' is not an address: expected PATH, /],
  ])("-s %p (%s): exit 2, a bad address", async (address, command, message) => {
    const run = await qmpctl(["-s", address, command, ...(command === "exec" ? ["query-status"] : [])]);
    expect(run).toMatchObject({ code: 2, stdout: "" });
    expect(run.stderr.split("\n")).toHaveLength(2);
    expect(run.stderr.trimEnd()).toMatch(message);
  });

  test("--args that is not JSON: exit 2, saying where it broke", async () => {
    const result = await qmpctl(["-s", listener.path, "exec", "qom-get", "--args", '{"path": "/", property}']);
    expect(result).toMatchObject({ code: 2, stdout: "" });
    expect(result.stderr).toStartWith("qmpctl: --args");
    expect(result.stderr).toMatch(/line \d+, column \d+|position \d+/);
    expect(listener.connections).toBe(0);
  });

  test("arguments nested past QEMU's 1024 levels: exit 2 before connecting, however deep (not a crash), the word cut short", async () => {
    for (const depth of [2000, 200_000]) { // the deeper once ran out of stack (exit 70)
      const nested = "[".repeat(depth) + "]".repeat(depth);
      const result = await qmpctl(["-s", listener.path, "exec", "x", "--args", "-"], { stdin: `{"a": ${nested}}` });
      expect(result).toMatchObject({
        code: 2,
        stdout: "",
        stderr: "qmpctl: --args -: QEMU's parser would refuse it: JSON nesting depth limit exceeded\n",
      });
    }
    const key = `value.${"a.".repeat(20_000)}b=1`; // a dotted key of as many levels: it too ran out of stack
    expect(await qmpctl(["-s", listener.path, "exec", "qom-set", key])).toMatchObject({
      code: 2,
      stderr: `qmpctl: '${key.slice(0, 80)}...': QEMU's parser would refuse it: JSON nesting depth limit exceeded\n`,
    });
    const word = `a:=${"[".repeat(50_000)}${"]".repeat(50_000)}`; // one argument holds at most 128 KiB
    expect(await qmpctl(["-s", listener.path, "exec", "x", word])).toMatchObject({
      code: 2,
      stdout: "",
      stderr: `qmpctl: '${word.slice(0, 80)}...': QEMU's parser would refuse it: JSON nesting depth limit exceeded\n`,
    });
    expect(listener.connections).toBe(0);
  });

  test("a QMP message pasted as exec's command (as socat takes it): exit 2 pointing at KEY=VALUE and batch, nothing sent", async () => {
    const result = await qmpctl(["-s", listener.path, "exec", ' {"execute": "query-status"}']);
    expect(result).toMatchObject({
      code: 2,
      stdout: "",
      stderr: "qmpctl: exec takes a command name, not a QMP message: qmpctl exec query-status (arguments as " +
        "KEY=VALUE or --args JSON); whole messages go to qmpctl batch -, one a line\n",
    });
    expect(listener.connections).toBe(0);
  });

  test("no address at all: exit 2 naming -s and QMPCTL_SOCKET", async () => {
    const result = await qmpctl(["exec", "query-status"]);
    expect(result).toMatchObject({ code: 2, stdout: "" });
    expect(result.stderr).toMatch(/^qmpctl: .*-s.*QMPCTL_SOCKET.*\n$/);
  });

  test("an address from QMPCTL_SOCKET that cannot be reached is said to be the variable's; one from -s is not", async () => {
    const missing = "/nonexistent/vm.qmp";
    expect(await qmpctl(["exec", "query-status"], { env: { QMPCTL_SOCKET: missing } })).toMatchObject({
      code: 3,
      stderr: `qmpctl: cannot connect to ${missing}: no such socket (ENOENT) ` +
        "(the address is $QMPCTL_SOCKET's)\n",
    });
    expect((await qmpctl(["-s", missing, "exec", "query-status"])).stderr).not.toContain("QMPCTL_SOCKET");
  });

  test("an address from the environment refused as written is said to be the variable's too (exit 2)", async () => {
    const cases = [
      [["exec", "query-status"], "QMPCTL_SOCKET"],
      [["hmp", "info status"], "QMPCTL_SOCKET"],
      [["wait-event", "STOP"], "QMPCTL_SOCKET"],
      [["ga", "guest-ping"], "QMPCTL_GA_SOCKET"],
    ] as const;
    for (const [command, variable] of cases) {
      expect(await qmpctl([...command], { env: { [variable]: "localhost:99999" } })).toMatchObject({
        code: 2,
        stdout: "",
        stderr: `qmpctl: 'localhost:99999': port 99999 is not in 1-65535 (the address is $${variable}'s)\n`,
      });
    }
    expect(await qmpctl(["ga", "guest-ping"], { env: { QMPCTL_GA_SOCKET: "/nonexistent/qga.sock" } })).toMatchObject({
      code: 3,
      stderr: "qmpctl: cannot connect to /nonexistent/qga.sock: no such socket (ENOENT) " +
        "(the address is $QMPCTL_GA_SOCKET's)\n",
    });
  });

  test.each(["SSH://hv1/run/vm.qmp", "ssh:hv1/run/vm.qmp", "qmp://hv1/run/vm.qmp"])(
    "%p, no socket as a path, says how an ssh address is written (exit 3)",
    async (address) => {
      expect(await qmpctl(["-s", address, "exec", "query-status"])).toMatchObject({
        code: 3,
        stderr: `qmpctl: cannot connect to ${address}: no such socket (ENOENT) ` +
          "(taken as a path: an ssh address is written ssh://HOST/PATH, in lower case)\n",
      });
    },
  );

  test("hmp: a word after a line quoted whole is refused (exit 2), not joined to it unseen; after -- too", async () => {
    const said = (word: string, line: string) =>
      `qmpctl: 'info status' is a whole HMP line (quoted as one word): '${word}' after it is no part of it; ` +
      `to send it too, quote it with the line: qmpctl hmp '${line}'\n`;
    expect(await qmpctl(["-s", listener.path, "hmp", "info status", "extra"])).toMatchObject({
      code: 2,
      stdout: "",
      stderr: said("extra", "info status extra"),
    });
    expect(await qmpctl(["-s", listener.path, "hmp", "--", "info status", "-s", "x"])).toMatchObject({
      code: 2,
      stderr: said("-s", "info status -s x"),
    });
    expect(listener.connections).toBe(0);
  });

  test("hmp typed as words with -s after them and no -s before: the -s is the line's, and the error says so", async () => {
    const said = "is part of the HMP line (its words take single-dash flags): quote the line: " +
      "qmpctl hmp 'info status' -s ADDR (a -s for QEMU goes inside the quotes)\n";
    const result = await qmpctl(["hmp", "info", "status", "-s", listener.path]);
    expect(result).toMatchObject({
      code: 2,
      stdout: "",
      stderr: `qmpctl: no address: the -s after 'info status' ${said}`,
    });
    // With $QMPCTL_SOCKET set, the line would have gone to that VM, not to the -s typed after it.
    const other = await qmpctl(["hmp", "info", "status", "-s", "vm2.sock"], { env: { QMPCTL_SOCKET: listener.path } });
    expect(other).toMatchObject({
      code: 2,
      stdout: "",
      stderr: `qmpctl: the line would run on $QMPCTL_SOCKET's ${listener.path}: its -s after 'info status' ${said}`,
    });
    const attached = await qmpctl(["hmp", "info", "status", "-svm2.sock"], { env: { QMPCTL_SOCKET: listener.path } });
    expect(attached).toMatchObject({
      code: 2,
      stdout: "",
      stderr:
        `qmpctl: the line would run on $QMPCTL_SOCKET's ${listener.path}: its -svm2.sock after 'info status' ${said}`,
    });
    expect(listener.connections).toBe(0);
    // dump-guest-memory's own -s (kdump-snappy) goes to QEMU with its line.
    const own = await qmpctl(["-v", "hmp", "dump-guest-memory", "-s", "/nonexistent/x"], {
      env: { QMPCTL_SOCKET: qemu.socket },
    });
    expect(own.code).toBe(0);
    expect(own.stderr).toContain('"command-line":"dump-guest-memory -s /nonexistent/x"');
  });

  test("an empty -s is an empty address, not the variable's, and an empty variable is no address", async () => {
    for (const [command, variable] of [["exec", "QMPCTL_SOCKET"], ["ga", "QMPCTL_GA_SOCKET"]]) {
      const given = await qmpctl(["-s", "", command, "query-status"], { env: { [variable]: listener.path } });
      expect(given).toMatchObject({ code: 2, stdout: "" });
      expect(given.stderr).toStartWith("qmpctl: empty address: expected PATH, unix:PATH");
      const unset = await qmpctl([command, "query-status"], { env: { [variable]: "" } });
      expect(unset).toMatchObject({ code: 2, stdout: "" });
      expect(unset.stderr).toMatch(
        new RegExp(
          `^qmpctl: no (guest agent )?address: ${variable} is set but empty: give -s/--socket ADDR or a value to ${variable}\n$`,
        ),
      );
    }
    expect(listener.connections).toBe(0);
  });

  test("an address variable that is not UTF-8: exit 2 saying so, not 'no such socket' for a mangled name", () => {
    /** Run qmpctl with `variable` set to `bytes` (printf's escapes). */
    const run = (variable: string, bytes: string, ...args: string[]) => {
      const script = `${variable}=$(printf '${bytes}') exec "$0" "$@"`;
      const result = Bun.spawnSync(["sh", "-c", script, QMPCTL, ...args], { stdout: "pipe", stderr: "pipe" });
      return { code: result.exitCode, stderr: result.stderr.toString() };
    };
    const listen = join(tmpdir(), `qmpctl-never-${process.pid}.sock`);
    for (
      const [variable, args] of [
        ["QMPCTL_SOCKET", ["exec", "query-status"]],
        ["QMPCTL_SOCKET", ["proxy", "--listen", listen]],
        ["QMPCTL_GA_SOCKET", ["ga", "guest-ping"]],
      ] as const
    ) {
      expect(run(variable, "/tmp/bad\\377.sock", ...args)).toEqual({
        code: 2,
        stderr: `qmpctl: ${variable} '/tmp/bad\\xff.sock' is not valid UTF-8\n`,
      });
    }
    // U+FFFD written as UTF-8 is a valid name: looked for, not refused.
    expect(run("QMPCTL_SOCKET", "/tmp/no-such-\\357\\277\\275.sock", "exec", "query-status")).toEqual({
      code: 3,
      stderr:
        "qmpctl: cannot connect to /tmp/no-such-\uFFFD.sock: no such socket (ENOENT) (the address is $QMPCTL_SOCKET's)\n",
    });
  });

  test("an address of no known form: exit 2 naming it", async () => {
    for (const address of ["tcp:nohost", "[::1", "host:99999"]) {
      const result = await qmpctl(["-s", address, "exec", "query-status"]);
      expect(result).toMatchObject({ code: 2, stdout: "" });
      expect(result.stderr).toStartWith(`qmpctl: '${address}'`);
    }
  });
});

describe("signals and pipes", () => {
  test("SIGINT while --args - waits for stdin: exit 130 promptly", async () => {
    const running = startQmpctl(["-s", qemu.socket, "exec", "query-status", "--args", "-"], { holdStdin: true });
    const result = await interrupt(running);
    expect(result).toMatchObject({ code: 130, signal: "SIGINT", stdout: "" });
    expect(result.exitedAfterMs).toBeLessThan(2000);
  });

  test("--timeout bounds the wait for stdin too: exit 124", async () => {
    const running = startQmpctl(["-s", qemu.socket, "exec", "query-status", "--args", "-", "--timeout", "500ms"], {
      holdStdin: true,
    });
    const result = await running.result;
    expect(result).toMatchObject({ code: 124, signal: null, stdout: "" });
    expect(result.stderr).toMatch(/^qmpctl: timed out .*stdin.* \(--timeout 500ms\)\n$/);
  });

  test("a reader that closes stdout early (| head -c1) ends qmpctl quietly with 0", async () => {
    // query-qmp-schema is ~200 KB, more than a pipe holds: qmpctl is still writing when head exits.
    const pipeline = Bun.spawn(
      ["bash", "-c", 'set -o pipefail; "$@" | head -c1', "bash", QMPCTL, "-s", qemu.socket, "exec", "query-qmp-schema"],
      { stdout: "pipe", stderr: "pipe" },
    );
    const [stdout, stderr, code] = await Promise.all([
      new Response(pipeline.stdout).text(),
      new Response(pipeline.stderr).text(),
      pipeline.exited,
    ]);
    expect({ code, stdout, stderr }).toEqual({ code: 0, stdout: "[", stderr: "" });
  });
});

describe("a setting given twice", () => {
  // As an alias with a default (alias qmp='qmpctl --timeout 30s') and the line's own: the last counts.
  test("--timeout: the last given bounds the run, wherever each stands", async () => {
    const result = await qmpctl(["--timeout", "20s", "-s", qemu.socket, "wait-event", "STOP", "--timeout", "300ms"]);
    expect(result).toMatchObject({
      code: 124,
      stdout: "",
      stderr: "qmpctl: timed out waiting for STOP (--timeout 300ms)\n",
    });
    expect(result.ms).toBeLessThan(10_000);
  });
});
