/**
 * The Ansible module `qmp` (contrib/ansible/library/qmp) run by Debian's
 * ansible-playbook against a real QEMU: on localhost with `-c local`, and
 * over ssh to a throwaway sshd. A small stdout callback (ansible-core has no
 * JSON one) prints each task's
 * result as the module returned it. Ansible's own state (temp dirs, control
 * sockets) stays in a temporary directory.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { QMPCTL, qmpctl } from "./helpers/cli.ts";
import { startQemu, type TestQemu } from "./helpers/qemu.ts";
import { sshProcessesAfter, startSshd, type TestSshd } from "./helpers/sshd.ts";
import { startTerminal } from "./helpers/terminal.ts";

const LIBRARY = resolve(import.meta.dir, "../contrib/ansible/library");

let sshd: TestSshd;
let qemu: TestQemu;
let dir: string;

beforeAll(async () => {
  [sshd, qemu] = await Promise.all([startSshd(), startQemu()]);
  dir = mkdtempSync(join(tmpdir(), "qmpctl-ansible-"));
  for (const sub of ["home", "local_tmp", "remote_tmp", "callbacks"]) mkdirSync(join(dir, sub));
  writeFileSync(join(dir, "callbacks", "results_json.py"), RESULTS_CALLBACK);
});

/** An Ansible stdout callback that prints {task name: result} as one JSON object at the end. */
const RESULTS_CALLBACK = `
import json
from ansible.plugins.callback import CallbackBase

class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "stdout"
    CALLBACK_NAME = "results_json"

    def __init__(self):
        super().__init__()
        self.results = {}

    def record(self, result, status):
        self.results[result._task.get_name()] = dict(result._result, ansible_status=status)

    def v2_runner_on_ok(self, result, **_):
        self.record(result, "ok")

    def v2_runner_on_failed(self, result, **_):
        self.record(result, "failed")

    def v2_runner_on_skipped(self, result, **_):
        self.record(result, "skipped")

    def v2_runner_on_unreachable(self, result, **_):
        self.record(result, "unreachable")

    def v2_playbook_on_stats(self, stats):
        self._display.display(json.dumps(self.results))
`;

afterAll(async () => {
  await Promise.all([qemu?.stop(), sshd?.stop()]);
  rmSync(dir, { recursive: true, force: true });
});

type TaskResult = Record<string, unknown> & { failed?: boolean; changed?: boolean; msg?: string };

/** Run a one-play playbook of `tasks` on `host`; each task's result, by task name. */
async function playbook(host: string, inventory: string, tasks: object[]): Promise<Record<string, TaskResult>> {
  const play = [{ hosts: host, gather_facts: false, tasks }];
  writeFileSync(join(dir, "inventory"), inventory);
  writeFileSync(join(dir, "play.json"), JSON.stringify(play)); // JSON is YAML
  const child = Bun.spawn(["ansible-playbook", "-i", join(dir, "inventory"), join(dir, "play.json")], {
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
    env: {
      PATH: process.env.PATH,
      HOME: join(dir, "home"),
      ANSIBLE_LIBRARY: LIBRARY,
      ANSIBLE_STDOUT_CALLBACK: "results_json",
      ANSIBLE_CALLBACK_PLUGINS: join(dir, "callbacks"),
      ANSIBLE_LOCAL_TEMP: join(dir, "local_tmp"),
      ANSIBLE_REMOTE_TMP: join(dir, "remote_tmp"),
      ANSIBLE_SSH_CONTROL_PATH_DIR: join(dir, "cp"),
      ANSIBLE_SSH_ARGS: "-o ControlMaster=no", // no master left holding the output pipe after the run
      ANSIBLE_HOST_KEY_CHECKING: "True",
      ANSIBLE_NOCOLOR: "1",
      ANSIBLE_PYTHON_INTERPRETER: "/usr/bin/python3",
    },
  });
  const killer = setTimeout(() => child.kill("SIGKILL"), 120_000);
  const [stdout, stderr] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text()]);
  await child.exited;
  clearTimeout(killer);
  try {
    return JSON.parse(stdout.slice(stdout.indexOf("{")));
  } catch {
    throw new Error(`ansible-playbook printed no JSON report:\n${stdout}\n${stderr}`);
  }
}

/** The tasks both connections run: a query, a failing command, check mode, a command with its event. */
function tasks() {
  const qmp = (args: object) => ({ socket: qemu.socket, qmpctl: QMPCTL, ...args });
  return [
    { name: "query", qmp: qmp({ execute: "query-status" }) },
    { name: "failing", qmp: qmp({ execute: "no-such-command" }), ignore_errors: true },
    { name: "check stop", qmp: qmp({ execute: "stop" }), check_mode: true },
    { name: "check query", qmp: qmp({ execute: "query-status" }), check_mode: true },
    { name: "hmp", qmp: qmp({ hmp: "info status" }) },
    { name: "stop and wait", qmp: qmp({ execute: "stop", wait_event: "STOP", timeout: "10s" }) },
    { name: "cont", qmp: qmp({ execute: "cont", changed: false }) },
  ];
}

function expectResults(results: Record<string, TaskResult>) {
  expect(results["query"]).toMatchObject({ changed: false, return: { status: "running", running: true } });
  expect(results["query"].ansible_status).toBe("ok");

  expect(results["failing"]).toMatchObject({
    ansible_status: "failed",
    changed: false,
    error: { class: "CommandNotFound" },
  });
  expect(results["failing"].msg).toStartWith("CommandNotFound: The command no-such-command has not been found");

  // Check mode: stop was not sent (the query that runs in check mode still sees a running VM).
  expect(results["check stop"]).toMatchObject({ changed: true, ansible_status: "skipped" });
  expect(results["check stop"].return).toBeUndefined();
  expect(results["check query"]).toMatchObject({ changed: false, return: { status: "running" } });

  if (!("hmp" in results)) return; // over ssh: the first four only (each task costs Ansible four ssh connections)
  expect(results["hmp"]).toMatchObject({ changed: true, text: "VM status: running\n" });

  const stopped = results["stop and wait"] as TaskResult & { events: { event: string; timestamp: object }[] };
  expect(stopped).toMatchObject({ changed: true, return: {} });
  expect(stopped.events.map((e) => e.event)).toEqual(["STOP"]);
  expect(results["cont"]).toMatchObject({ changed: false, return: {} });
}

describe("the Ansible module qmp", () => {
  test("on localhost with -c local: a query, a failing command, check mode, hmp, a command and its event", async () => {
    const results = await playbook("localhost", "localhost ansible_connection=local\n", tasks());
    expectResults(results);
  }, 150_000);

  test("over ssh to a managed host (the test sshd)", async () => {
    const inventory = `vmhost ansible_connection=ssh ansible_ssh_common_args='-F ${sshd.sshConfig}'\n`;
    const results = await playbook("vmhost", inventory, tasks().slice(0, 4));
    expectResults(results);
    expect(await sshProcessesAfter(sshd.marker, 5000)).toEqual([]);
  }, 150_000);

  test("ansible-doc documents the module: every parameter qmpctl ansible takes, and no other", async () => {
    const doc = Bun.spawnSync(["ansible-doc", "--json", "-M", LIBRARY, "qmp"], {
      env: { PATH: process.env.PATH, HOME: join(dir, "home"), ANSIBLE_LOCAL_TEMP: join(dir, "local_tmp") },
      stdout: "pipe",
      stderr: "pipe",
    });
    expect({ code: doc.exitCode, stderr: doc.stderr.toString() }).toEqual({ code: 0, stderr: "" });
    const documented = Object.keys(JSON.parse(doc.stdout.toString()).qmp.doc.options).sort();
    const file = join(dir, "unknown.json");
    writeFileSync(file, JSON.stringify({ socket: qemu.socket, nonesuch: 1 }));
    const refusal = JSON.parse((await qmpctl(["ansible", file])).stdout).msg as string;
    const taken = refusal.match(/\(the module takes (.*)\)$/)![1].split(", ").sort();
    expect(documented).toEqual(taken);
  });

  test(
    "a task's own timeout: ends the runner; qmpctl, left behind by it, ends within seconds, freeing the monitor",
    async () => {
      const results = await playbook("localhost", "localhost ansible_connection=local\n", [
        { name: "waits", qmp: { socket: qemu.socket, qmpctl: QMPCTL, wait_event: "STOP" }, timeout: 2 },
      ]);
      expect(results["waits"]).toMatchObject({ ansible_status: "failed" });
      expect(results["waits"].msg).toContain("expected time frame (2)");
      const left = () =>
        Bun.spawnSync(["pgrep", "-f", `^${QMPCTL} ansible `]).stdout.toString().trim().split("\n").filter(Boolean);
      for (let waited = 0; left().length > 0 && waited < 5000; waited += 100) await Bun.sleep(100);
      expect(left()).toEqual([]);
      expect(await qmpctl(["-s", qemu.socket, "exec", "query-status"])).toMatchObject({ code: 0, stderr: "" });
    },
    150_000,
  );

  test("a missing qmpctl binary fails the task with a message that says so", async () => {
    const results = await playbook("localhost", "localhost ansible_connection=local\n", [
      { name: "missing", qmp: { socket: qemu.socket, qmpctl: "/nonexistent/qmpctl", execute: "query-status" } },
    ]);
    expect(results["missing"]).toMatchObject({ ansible_status: "failed" });
    expect(results["missing"].msg).toContain("qmpctl not found on the managed host");
  }, 150_000);
});

describe("qmpctl ansible ARGS_FILE (what the module runs), directly", () => {
  async function module(params: object) {
    const file = join(dir, "args.json");
    writeFileSync(file, JSON.stringify(params));
    const result = await qmpctl(["ansible", file]);
    expect(result).toMatchObject({ code: 0, stderr: "" }); // the result itself says how it went
    return JSON.parse(result.stdout);
  }

  test(
    "left behind by its killed runner (as a task's own timeout: does), it ends within seconds, freeing the monitor",
    async () => {
      const file = join(dir, "orphan.json");
      writeFileSync(file, JSON.stringify({ socket: qemu.socket, wait_event: "STOP" })); // no timeout: waits for good
      const runner = Bun.spawn(["sh", "-c", '"$0" ansible "$1" >/dev/null 2>&1 & echo $!; sleep 1', QMPCTL, file], {
        stdout: "pipe",
      });
      const pid = Number((await new Response(runner.stdout).text()).trim());
      await runner.exited;
      // Running (not a zombie no one reaps): /proc says so.
      const running = () =>
        existsSync(`/proc/${pid}/stat`) && !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
      try {
        for (let waited = 0; running() && waited < 5000; waited += 100) await Bun.sleep(100);
        expect(running()).toBe(false);
        expect(await qmpctl(["-s", qemu.socket, "exec", "query-status"])).toMatchObject({ code: 0, stderr: "" });
      } finally {
        if (running()) process.kill(pid);
      }
    },
    15_000,
  );

  test("a missing socket, or both execute and hmp, fail with a message", async () => {
    expect(await module({ execute: "query-status" })).toEqual({
      failed: true,
      changed: false,
      msg: "missing required parameter: socket",
    });
    const both = await module({ socket: qemu.socket, execute: "query-status", hmp: "info status" });
    expect(both).toMatchObject({
      failed: true,
      msg: "give one of execute or hmp (wait_event may go with execute, or alone)",
    });
  });

  test("a glob socket fails the task (one VM a task), locally and over ssh://, instead of being taken as a path", async () => {
    for (const socket of [join(qemu.dir, "*.sock"), `ssh://vmhost${qemu.dir}/*.sock`]) {
      expect(await module({ socket, execute: "query-status" })).toEqual({
        failed: true,
        changed: false,
        msg: `socket '${socket}' is a glob: the module takes one monitor (a task per VM)`,
      });
    }
  });

  test("check mode skips a query with wait_event too, saying so", async () => {
    const check = { socket: qemu.socket, execute: "query-status", wait_event: "STOP", _ansible_check_mode: true };
    expect(await module(check)).toEqual({
      changed: false,
      skipped: true,
      msg: "check mode: only query-* commands without wait_event run",
    });
  });

  test("check mode still fails a task whose timeout, connect_timeout, count or match is malformed (a dry run that would pass, then fail)", async () => {
    const check = { _ansible_check_mode: true };
    await expectFailure(
      { ...check, execute: "stop", timeout: "5 parsecs" },
      "timeout '5 parsecs' is not a duration (like 500ms, 30s, 2m, 1d or a number of seconds; 0 or inf: no bound)",
    );
    await expectFailure(
      { ...check, execute: "query-status", connect_timeout: [1] },
      "connect_timeout must be a string or a number, not [1]",
    );
    await expectFailure(
      { ...check, execute: "stop", wait_event: "STOP", count: "abc" },
      "count 'abc' is not a number of events (1 to 9007199254740991)",
    );
    await expectFailure(
      { ...check, execute: "stop", wait_event: "STOP", match: "x" },
      "match must be a dict (or its JSON)",
    );
  });

  test("an arguments file that cannot be read fails the task saying so (not an internal error); global options are refused", async () => {
    const missing = join(dir, "no-such-args.json");
    const result = await qmpctl(["ansible", missing]);
    expect(result).toMatchObject({ code: 0, stderr: "" });
    expect(JSON.parse(result.stdout)).toEqual({
      failed: true,
      changed: false,
      msg: `cannot read the arguments file ${missing} (ENOENT)`,
    });
    const file = join(dir, "args.json");
    writeFileSync(file, JSON.stringify({ socket: qemu.socket, execute: "query-status" }));
    expect(await qmpctl(["ansible", file, "-s", "/nonexistent", "--timeout", "1s"])).toMatchObject({
      code: 2,
      stdout: "",
      stderr: "qmpctl: ansible takes its settings from ARGS_FILE (socket, timeout, ...): --socket does not apply\n",
    });
  });

  test("a misspelt parameter fails the task instead of being ignored, as Ansible's own modules do", async () => {
    const result = await module({
      socket: qemu.socket,
      execute: "query-status",
      argument: { x: 1 },
      qmpctl: QMPCTL,
      _ansible_check_mode: false,
      _ansible_verbosity: 0,
    });
    expect(result).toEqual({
      failed: true,
      changed: false,
      msg: "unsupported parameter: argument (the module takes socket, execute, arguments, hmp, wait_event, match, " +
        "count, timeout, connect_timeout, changed, qmpctl)",
    });
  });

  /** The task, on this QEMU, fails with `msg` and changes nothing. */
  async function expectFailure(params: object, msg: string) {
    expect(await module({ socket: qemu.socket, ...params })).toEqual({ failed: true, changed: false, msg });
  }

  test("count and match: checked under their own names, and refused without wait_event (not ignored)", async () => {
    await expectFailure(
      { wait_event: "STOP", count: "abc" },
      "count 'abc' is not a number of events (1 to 9007199254740991)",
    );
    for (const extra of [{ count: 2 }, { match: { reason: "x" } }]) {
      await expectFailure({ execute: "query-status", ...extra }, "match and count go with wait_event");
    }
  });

  test("a wait_event name QEMU does not know, or an empty one, fails at once (not at the timeout)", async () => {
    const unknown = "unknown event 'SHUTDOWM' (did you mean SHUTDOWN?)";
    await expectFailure({ execute: "query-status", wait_event: "SHUTDOWM" }, unknown);
    await expectFailure({ execute: "query-status", wait_event: "" }, "wait_event holds an empty event name");
  });

  test("a wait_event that does not come within timeout fails, naming what it waited for", async () => {
    const result = await module({ socket: qemu.socket, wait_event: "SHUTDOWN", timeout: "500ms" });
    expect(result).toEqual({
      failed: true,
      changed: false,
      events: [],
      msg: "timed out waiting for SHUTDOWN (timeout 500ms)",
    });
  });

  test("the command ran, then its wait_event timed out: failed, but changed (and its return)", async () => {
    const result = await module({
      socket: qemu.socket,
      execute: "stop",
      wait_event: ["RESET"],
      match: { reason: "guest-reset" }, // a RESET can have it; stop causes none
      count: 2,
      timeout: "500ms",
    });
    await qemu.control.execute("cont");
    expect(result).toEqual({
      failed: true,
      changed: true,
      return: {},
      events: [],
      msg: "timed out waiting for RESET with reason=guest-reset; 0 of 2 arrived (timeout 500ms)",
    });
  });

  test("a wait_event that timed out after some of its events: the result holds those that came", async () => {
    const result = await module({
      socket: qemu.socket,
      execute: "stop",
      wait_event: "STOP,RESUME",
      count: 2,
      timeout: "1s",
    });
    await qemu.control.execute("cont");
    expect(result).toMatchObject({
      failed: true,
      changed: true,
      return: {},
      events: [{ event: "STOP" }],
      msg: "timed out waiting for STOP or RESUME; 1 of 2 arrived (timeout 1s)",
    });
  });

  test("the result is one line to Python's splitlines (Ansible's reader) whatever the text: U+2028, U+2029, U+0085 escaped", async () => {
    const file = join(dir, "args-lines.json");
    writeFileSync(file, JSON.stringify({ socket: qemu.socket, hmp: "info x\u2028\u2029\u0085y" }));
    const result = await qmpctl(["ansible", file]);
    expect(result).toMatchObject({ code: 0, stderr: "" });
    // str.splitlines() breaks at these besides \n and \r (the C0 ones are JSON escapes already).
    // deno-lint-ignore no-control-regex -- Python's line breaks include these controls
    expect(result.stdout.split(/\r\n|[\n\r\v\f\x1c-\x1e\x85\u2028\u2029]/)).toEqual([expect.any(String), ""]);
    expect(JSON.parse(result.stdout)).toEqual({
      changed: true,
      text: "unknown command: 'info x\u2028\u2029\u0085y'\n",
    });
  });

  test("timeout and count take a string or a number: a list or a dict is refused, saying what it was", async () => {
    await expectFailure({ hmp: "info status", timeout: [1] }, "timeout must be a string or a number, not [1]");
    await expectFailure({ hmp: "info status", timeout: { a: 1 } }, 'timeout must be a string or a number, not {"a":1}');
    await expectFailure({ wait_event: "STOP", count: [2] }, "count must be a string or a number, not [2]");
  });

  test("a match that none of the events can meet fails before the command is sent (not changed)", async () => {
    const result = await module({
      socket: qemu.socket,
      execute: "stop",
      wait_event: ["STOP", "RESUME"],
      match: { reason: "x" }, // neither has data
      timeout: "5s",
    });
    expect(result).toEqual({
      failed: true,
      changed: false,
      msg: "the condition 'reason=x' can never hold for STOP or RESUME: none of their data has 'reason'",
    });
    expect((await qemu.control.execute("query-status") as { running: boolean }).running).toBe(true);
  });

  test("a dict inside match is members to hold, each on its own (checked so), not a whole object to equal", async () => {
    const result = await module({
      socket: qemu.socket,
      wait_event: "DUMP_COMPLETED",
      match: { result: { stauts: "completed" } },
      timeout: "2s",
    });
    expect(result).toEqual({
      failed: true,
      changed: false,
      msg: "the condition 'result.stauts=completed' can never hold for DUMP_COMPLETED: " +
        "it has no 'stauts' in 'result' (did you mean status?)",
    });
  });

  test("arguments are sent as given; changed can be forced", async () => {
    const result = await module({
      socket: qemu.socket,
      execute: "qom-get",
      arguments: { path: "/machine", property: "type" },
      changed: true,
    });
    expect(result).toEqual({ changed: true, return: "none-machine" });
  });

  test("in Ansible's KEY=VALUE form (every value a string): changed=yes/no, and arguments as JSON", async () => {
    const query = { socket: qemu.socket, execute: "query-status" };
    expect(await module({ ...query, changed: "yes" })).toMatchObject({ changed: true });
    expect(await module({ ...query, changed: "True" })).toMatchObject({ changed: true });
    expect(await module({ socket: qemu.socket, hmp: "info status", changed: "no" })).toMatchObject({ changed: false });
    expect(await module({ ...query, changed: "banana" })).toEqual({
      failed: true,
      changed: false,
      msg: 'changed must be a boolean (yes/no, true/false), not "banana"',
    });
    expect(await module({ ...query, changed: ["yes"] })).toMatchObject({ failed: true }); // a list is no boolean
    const stopped = await module({
      socket: qemu.socket,
      execute: "stop",
      wait_event: "RESUME,STOP", // a list in KEY=VALUE form
      match: '{"reason": "nope"}', // a dict as its JSON: no STOP has this reason
      timeout: "1s",
    });
    expect(stopped).toMatchObject({ failed: true }); // the STOP that came did not match: the match was read
    expect(stopped.msg).toContain("RESUME or STOP");
    await qemu.control.execute("cont");
    const typed = { socket: qemu.socket, execute: "qom-get", arguments: '{"path": "/machine", "property": "type"}' };
    expect(await module(typed)).toEqual({ changed: true, return: "none-machine" });
    expect(await module({ ...typed, arguments: "path=/machine" })).toMatchObject({
      failed: true,
      msg: "arguments must be a dict (or its JSON)",
    });
  });

  test("numbers in the arguments file reach QEMU as written, and the result prints them so (beyond 2^53)", async () => {
    // Ansible (Python) writes ints exactly. 2^62 + 1536: whole sectors (QEMU rounds a size up), no double.
    const size = "4611686018427389440";
    const run = async (text: string) => {
      const file = join(dir, "args-exact.json");
      writeFileSync(file, text);
      const result = await qmpctl(["ansible", file]);
      expect(result).toMatchObject({ code: 0, stderr: "" });
      return result.stdout;
    };
    const file = `{"driver": "null-co", "node-name": "nbig", "size": ${size}}`;
    expect(await run(`{"socket": ${JSON.stringify(qemu.socket)}, "execute": "blockdev-add", "arguments": ${file}}`))
      .toBe('{"changed":true,"return":{}}\n');
    const nodes = await run(
      `{"socket": ${JSON.stringify(qemu.socket)}, "execute": "query-named-block-nodes", "arguments": {"flat": true}}`,
    );
    expect(nodes).toContain(`"virtual-size":${size}`);
    await qemu.control.execute("blockdev-del", { "node-name": "nbig" });
  });
});

describe("the module's wrapper (library/qmp) run directly, as Ansible runs it", () => {
  /** The task's result from `sh library/qmp ARGS_FILE`, with PATH's qmpctl the binary under test. */
  function wrapper(params: object) {
    const bin = join(dir, "bin");
    if (!existsSync(bin)) {
      mkdirSync(bin);
      symlinkSync(QMPCTL, join(bin, "qmpctl"));
    }
    const file = join(dir, "wrapper-args.json");
    // As Ansible (Python's json.dumps) writes it: all ASCII, anything else a \u escape.
    const ascii = JSON.stringify(params).replace(
      /[\u0080-\uffff]/g,
      (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
    );
    writeFileSync(file, ascii);
    const result = Bun.spawnSync(["sh", join(LIBRARY, "qmp"), file], {
      env: { PATH: `${bin}:/usr/bin:/bin` },
      stdout: "pipe",
      stderr: "pipe",
    });
    expect({ code: result.exitCode, stderr: result.stderr.toString() }).toEqual({ code: 0, stderr: "" });
    return JSON.parse(result.stdout.toString());
  }

  test('runs the top-level qmpctl parameter (else PATH\'s), never a "qmpctl" key inside arguments or match', () => {
    const planted = join(dir, "planted-qmpctl");
    const mark = join(dir, "planted-ran");
    writeFileSync(planted, `#!/bin/sh\ntouch ${mark}\necho '{"planted": true}'\n`, { mode: 0o755 });
    // The arguments reach QEMU as given, and it answers for itself.
    const unexpected = {
      failed: true,
      changed: false,
      msg: "GenericError: Parameter 'qmpctl' is unexpected",
      error: { class: "GenericError", desc: "Parameter 'qmpctl' is unexpected" },
    };
    expect(wrapper({ socket: qemu.socket, execute: "query-status", qmpctl: QMPCTL, arguments: { qmpctl: planted } }))
      .toEqual(unexpected);
    expect(wrapper({ socket: qemu.socket, arguments: { qmpctl: planted }, execute: "query-status" }))
      .toEqual(unexpected);
    expect(wrapper({ socket: qemu.socket, execute: "query-status", arguments: { 'x"qmpctl': planted } }))
      .toMatchObject({ failed: true, msg: `GenericError: Parameter 'x"qmpctl' is unexpected` });
    const waited = wrapper({
      socket: qemu.socket,
      wait_event: "SHUTDOWN",
      match: { qmpctl: planted },
      timeout: "100ms",
    });
    expect(waited).toMatchObject({ failed: true });
    expect(waited.msg).toContain("SHUTDOWN");
    expect(existsSync(mark)).toBe(false);
  });

  test("a qmpctl path under ~/ is under the managed host's HOME, as Ansible takes a path", () => {
    const home = join(dir, "home");
    mkdirSync(join(home, "bin"), { recursive: true });
    symlinkSync(QMPCTL, join(home, "bin", "qmpctl"));
    const args = join(dir, "tilde-args.json");
    writeFileSync(args, JSON.stringify({ socket: qemu.socket, execute: "query-name", qmpctl: "~/bin/qmpctl" }));
    const module = (env: Record<string, string>) => {
      const result = Bun.spawnSync(["sh", join(LIBRARY, "qmp"), args], { env, stdout: "pipe", stderr: "pipe" });
      expect(result.stderr.toString()).toBe("");
      return JSON.parse(result.stdout.toString());
    };
    expect(module({ PATH: "/usr/bin:/bin", HOME: home })).toMatchObject({ changed: false, return: {} });
    // Without a HOME, ~/bin/qmpctl is not /bin/qmpctl.
    expect(module({ PATH: "/usr/bin:/bin" })).toEqual({
      failed: true,
      msg: "the qmpctl parameter starts with ~, and HOME is not set on the managed host",
    });
  });

  test("a qmpctl parameter that is not a path fails the task rather than running PATH's qmpctl", () => {
    const query = { socket: qemu.socket, execute: "query-status" };
    const failure = { failed: true, msg: "the qmpctl parameter must be a path: a string" };
    expect(wrapper({ ...query, qmpctl: 5 })).toEqual(failure);
    expect(wrapper({ ...query, qmpctl: "/opt/qmpctl\n" })).toEqual(failure); // no path holds a control character
    const notFound = {
      failed: true,
      msg: "qmpctl not found on the managed host (or not an executable file): install it on PATH or set the qmpctl " +
        "parameter",
    };
    expect(wrapper({ ...query, qmpctl: '/opt/q"mpctl' })).toEqual(notFound); // decoded, and not there
    expect(wrapper({ ...query, qmpctl: dir })).toEqual(notFound); // a directory
    expect(wrapper({ ...query, qmpctl: join(dir, "wrapper-args.json") })).toEqual(notFound); // not executable
  });

  test("a non-ASCII qmpctl path (which Ansible writes as \\u escapes) runs that binary; null means PATH's", () => {
    const unusual = join(dir, "bïn 😀 é");
    mkdirSync(unusual, { recursive: true });
    const mark = join(dir, "unusual-ran");
    writeFileSync(join(unusual, "qmpctl"), `#!/bin/sh\ntouch ${mark}\nexec ${QMPCTL} "$@"\n`, { mode: 0o755 });
    const query = { socket: qemu.socket, execute: "query-status" };
    expect(wrapper({ ...query, qmpctl: join(unusual, "qmpctl") })).toMatchObject({ changed: false });
    expect(existsSync(mark)).toBe(true);
    expect(wrapper({ ...query, qmpctl: null })).toMatchObject({ changed: false, return: { status: "running" } });
  });

  test("run at a terminal (Ansible's ssh connection gives modules one: -tt), ssh still never prompts (BatchMode)", async () => {
    const record = join(dir, "argv-module");
    const command = `sh -c 'printf "%s\\n" "$@" > "$0"; exec ssh "$@"' '${record}' -F "${sshd.sshConfig}"`;
    const file = join(dir, "tty-args.json");
    writeFileSync(
      file,
      JSON.stringify({ socket: `ssh://vmhost${qemu.socket}`, execute: "query-status", qmpctl: QMPCTL }),
    );
    const terminal = await startTerminal(["sh", join(LIBRARY, "qmp"), file], {
      env: { QMPCTL_SSH_COMMAND: command, HOME: sshd.dir },
    });
    try {
      expect(await terminal.exitStatus(30_000)).toBe(0);
      const screen = (await terminal.waitFor("the result", (rows) => rows.some((row) => row.includes("changed")))).join(
        "",
      );
      expect(screen).toContain('"status":"running"');
      expect(readFileSync(record, "utf8").split("\n")).toContain("BatchMode=yes");
    } finally {
      await terminal.close();
    }
  });
});
