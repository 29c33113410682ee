/** Shell completion: the scripts load in their shells, and complete against a real QEMU and a fake one. */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import { AGENT_COMMANDS } from "../lib/agent_schema.ts";
import { COMMANDS, GLOBAL_OPTIONS } from "../cli/registry.ts";
import { refusedNames } from "../cli/options.ts";
import { asTheShellReadsIt } from "../cli/completions.ts";
import { QMPCTL, qmpctl } from "./helpers/cli.ts";
import { startQemu, type TestQemu } from "./helpers/qemu.ts";
import { executed, freshCacheHome, schemaServer, SMALL_SCHEMA } from "./helpers/schema_fixture.ts";
import { startTerminal } from "./helpers/terminal.ts";

let qemu: TestQemu;
const home = freshCacheHome();
const bin = mkdtempSync(join(tmpdir(), "qmpctl-bin-")); // `qmpctl` on PATH, as the scripts run it
// The directory the shells complete in: local files to offer (or not).
const files = mkdtempSync(join(tmpdir(), "qmpctl-files-"));
const FILE_NAMES = ["backup.sql", "vm1.sock", "vm2.img"];
const scripts: Record<string, string> = {};
beforeAll(async () => {
  symlinkSync(QMPCTL, join(bin, "qmpctl"));
  for (const name of FILE_NAMES) writeFileSync(join(files, name), "");
  mkdirSync(join(files, "images"));
  for (const shell of ["bash", "zsh", "fish"]) {
    const result = await qmpctl(["completions", shell]);
    expect(result.code).toBe(0);
    scripts[shell] = join(bin, `qmpctl.${shell}`);
    await Bun.write(scripts[shell], result.stdout);
  }
  qemu = await startQemu();
});
afterAll(async () => {
  await qemu?.stop();
  for (const dir of [home, bin, files]) rmSync(dir, { recursive: true, force: true });
});

const env = (extra: Record<string, string> = {}) => ({
  ...process.env,
  PATH: `${bin}:${process.env.PATH}`,
  XDG_CACHE_HOME: home,
  QMPCTL_SOCKET: "",
  ...extra,
});

function run(argv: string[], extra: Record<string, string> = {}): { code: number; stdout: string; stderr: string } {
  const result = Bun.spawnSync(argv, { env: env(extra), cwd: files, stdout: "pipe", stderr: "pipe" });
  return { code: result.exitCode, stdout: result.stdout.toString(), stderr: result.stderr.toString() };
}

/**
 * Complete `line` (the cursor at its end) in bash as bash would call the
 * function: COMP_LINE and COMP_POINT, and COMP_WORDS/COMP_CWORD split at
 * blanks and at '=' and ':' (COMP_WORDBREAKS). Returns COMPREPLY.
 */
function bashComplete(line: string, extra: Record<string, string> = {}): string[] {
  const program = `
source "$1"
COMP_LINE=$2; COMP_POINT=\${#2}
COMP_WORDS=(); for w in $(sed 's/\\([=:]\\)/ \\1 /g' <<<"$2"); do COMP_WORDS+=("$w"); done
[[ $2 == *" " ]] && COMP_WORDS+=("")
COMP_CWORD=$(( \${#COMP_WORDS[@]} - 1 ))
[[ -z \${BREAKS-} ]] || COMP_WORDBREAKS=$BREAKS # bash sets its own at start
_qmpctl qmpctl "\${COMP_WORDS[COMP_CWORD]}" "\${COMP_WORDS[COMP_CWORD-1]}"
printf '%s\\n' "\${COMPREPLY[@]}"`;
  const result = run(["bash", "-c", program, "bash", scripts.bash, line], extra);
  expect(result.stderr).toBe("");
  return result.stdout.split("\n").filter((l) => l !== "");
}

test('a word as bash reads it: quotes, \\ escapes (\\ in double quotes before $ ` " \\ only), $NAME, a leading ~', () => {
  process.env.QMPCTL_TEST_X = "xx";
  const home = process.env.HOME;
  const reads: [string, string][] = [
    ["~", `${home}`],
    ["~/a", `${home}/a`],
    ["~\\/a", "~/a"],
    ["~$QMPCTL_TEST_X/a", "~xx/a"],
    ["~root/x", "~root/x"],
    ["~bob", "~bob"],
    ['"~/a"', "~/a"],
    ["q\\'uote", "q'uote"],
    ['"q\'uote"', "q'uote"],
    ["dol\\$x", "dol$x"],
    ["'dol$x'", "dol$x"],
    ['"bs\\x"', "bs\\x"],
    ["bs\\\\x", "bs\\x"],
    ['"a\\"b\\$c\\\\"', 'a"b$c\\'],
    ['"${QMPCTL_TEST_X}/a"', "xx/a"],
    ["'open", "open"],
  ];
  for (const [typed, read] of reads) expect(asTheShellReadsIt(typed), typed).toBe(read);
  expect(asTheShellReadsIt("~/a", false)).toBe("~/a"); // after --socket=
  delete process.env.QMPCTL_TEST_X;
});

describe("the scripts", () => {
  test.each(["bash", "zsh", "fish"])("%s -n accepts the %s script", (shell) => {
    const result = run([shell, "-n", scripts[shell]]);
    expect(result).toEqual({ code: 0, stdout: "", stderr: "" });
  });

  test("an unknown shell is a usage error", async () => {
    expect(await qmpctl(["completions", "tcsh"])).toMatchObject({
      code: 2,
      stderr: "qmpctl: completions takes one of: bash, zsh, fish\n",
    });
  });
});

describe("bash completion against QEMU", () => {
  const s = () => `qmpctl -s ${qemu.socket}`;

  test("subcommands and options need no QEMU", () => {
    expect(bashComplete("qmpctl wa")).toEqual(["wait-event"]);
    expect(bashComplete("qmpctl exec --ar")).toEqual(["--args"]);
    expect(bashComplete("qmpctl completions ")).toEqual(["bash", "fish", "zsh"]);
  });

  test("QMP command names after exec", () => {
    expect(bashComplete(`${s()} exec query-stat`)).toEqual(["query-stats", "query-stats-schemas", "query-status"]);
  });

  test("a socket whose name has a blank, escaped with a backslash as bash completes a file name", () => {
    const spaced = join(qemu.dir, "my vm.qmp");
    symlinkSync(qemu.socket, spaced);
    try {
      expect(bashComplete(`qmpctl -s ${spaced.replaceAll(" ", "\\ ")} exec query-stat`))
        .toEqual(["query-stats", "query-stats-schemas", "query-status"]);
    } finally {
      rmSync(spaced);
    }
  });

  test("argument names after the command, union branch members once the tag is given", () => {
    expect(bashComplete(`${s()} exec blockdev-add dri`)).toEqual(["driver="]);
    expect(bashComplete(`${s()} exec blockdev-add driver=null-co node-name=n0 si`)).toEqual(["size="]);
  });

  test("enum values after '=', offered as the part bash replaces", () => {
    expect(bashComplete(`${s()} exec blockdev-add driver=null-`)).toEqual(["null-aio", "null-co"]);
    expect(bashComplete(`${s()} exec set_link name=x up=`)).toEqual(["false", "true"]);
  });

  test("qmpctl typed as ~/DIR/qmpctl or $HOME/DIR/qmpctl is run as the shell would run it", () => {
    for (const program of [`~/${basename(bin)}/qmpctl`, `$HOME/${basename(bin)}/qmpctl`]) {
      expect(bashComplete(`${program} wa`, { HOME: dirname(bin) })).toEqual(["wait-event"]);
    }
  });

  test("-s as the shell will read it: ~, $NAME and quotes (bash hands the word over as typed)", () => {
    const dir = dirname(qemu.socket), name = basename(qemu.socket);
    const extra = { HOME: dir, VMDIR: dir };
    for (const socket of [`~/${name}`, `$VMDIR/${name}`, `"\${HOME}/${name}"`, `'${qemu.socket}'`]) {
      expect(bashComplete(`qmpctl -s ${socket} exec query-stat`, extra)).toEqual([
        "query-stats",
        "query-stats-schemas",
        "query-status",
      ]);
    }
  });

  test("inside a quote not closed yet, nothing: bash would put it in place of the whole quoted word", () => {
    expect(bashComplete(`${s()} exec human-monitor-command command-line=info `)).toContain("cpu-index=");
    for (const open of ["'command-line=info ", '"command-line=info ', "command-line='info ", '"it\\"s ']) {
      expect(bashComplete(`${s()} exec human-monitor-command ${open}`)).toEqual([]);
    }
    // Nor a file name there: 'my ba' would become 'backup.sql', what was typed lost.
    expect(bashComplete('qmpctl ga cp "my ba')).toEqual([]);
    expect(bashComplete("qmpctl ga cp ba")).toEqual(["backup.sql"]); // the control
    // Quotes closed (an escaped one is no quote): the words go on as before.
    for (const closed of ["'command-line=info'", '"command-line=info"', "command-line=it\\'s"]) {
      expect(bashComplete(`${s()} exec human-monitor-command ${closed} cpu`)).toEqual(["cpu-index="]);
    }
  });

  test("a socket whose name holds a quote, \\ or $, typed as bash reads it, or handed over read (zsh, fish)", () => {
    const dir = mkdtempSync(join(tmpdir(), "qmpctl-completion-names-"));
    try {
      const names = ["q'uote.sock", "dol$x.sock", "bs\\x.sock", 'dq"uote.sock'];
      for (const name of names) symlinkSync(qemu.socket, join(dir, name));
      const typed = [`q\\'uote`, `"q'uote`, `dol\\$x`, `'dol$x`, `bs\\\\x`, `"bs\\x`, `dq\\"uote`, `"dq\\"uote`];
      for (const word of typed) { // DIR/NAME.sock, in the word's quotes if it has one
        const quote = /^['"]/.test(word) ? word[0] : "";
        const socket = `${quote}${dir}/${word.slice(quote.length)}.sock${quote}`;
        expect(bashComplete(`qmpctl -s ${socket} exec set_lin`, { x: "ZZ" }), socket).toEqual(["set_link"]);
      }
      for (const name of names) { // zsh's words and fish's tokens come with their quotes and escapes undone
        const result = run([QMPCTL, "completions", "complete", "--", "-s", join(dir, name), "exec", "set_lin"]);
        expect(result.stdout, name).toBe("set_link\n");
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("event names after wait-event and --wait-event, with QMPCTL_SOCKET", () => {
    const socket = { QMPCTL_SOCKET: qemu.socket };
    expect(bashComplete("qmpctl wait-event SHUTD", socket)).toEqual(["SHUTDOWN"]);
    expect(bashComplete("qmpctl exec stop --wait-event STO", socket)).toEqual(["STOP"]);
    expect(bashComplete("qmpctl exec stop --wait-event=STO", socket)).toEqual(["STOP"]); // the part after =
    expect(bashComplete("qmpctl events STOP RESU", socket)).toEqual(["RESUME"]); // events NAME...
    // Several VMs by a glob: the names of the first that answers (a stale socket file sorts first here).
    const fleet = mkdtempSync(join(tmpdir(), "qmpctl-completion-fleet-"));
    Bun.spawnSync([
      "python3",
      "-c",
      "import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])",
      join(fleet, "a0.sock"),
    ]);
    symlinkSync(qemu.socket, join(fleet, "vm1.sock"));
    const glob = { QMPCTL_SOCKET: join(fleet, "*.sock") };
    expect(bashComplete("qmpctl wait-event SHUTD", glob)).toEqual(["SHUTDOWN"]);
    rmSync(fleet, { recursive: true, force: true });
    expect(bashComplete(`qmpctl -s ${join(dirname(qemu.socket), "nomatch*.sock")} wait-event SHUTD`)).toEqual([]);
  });

  test("job wait: the ids of QEMU's jobs, each once", async () => {
    for (const name of ["src", "dst"]) {
      await qemu.control.execute("blockdev-add", { driver: "null-co", "node-name": name, size: 1 << 26 });
    }
    // 1 byte a second: the backup runs until it is cancelled.
    const backup = { device: "src", target: "dst", sync: "full", speed: 1 };
    await qemu.control.execute("blockdev-backup", { "job-id": "nightly", ...backup });
    try {
      expect(bashComplete(`${s()} job wait `)).toEqual(["nightly"]);
      expect(bashComplete(`${s()} job wait nightly `)).toEqual([]);
      expect(bashComplete(`${s()} job wait x`)).toEqual([]);
      expect(bashComplete("qmpctl job wait ")).toEqual([]); // no socket: no connection
    } finally {
      await qemu.control.execute("job-cancel", { id: "nightly" });
    }
  });

  test("without a socket, no QMP names and no error", () => {
    expect(bashComplete("qmpctl exec query-stat")).toEqual([]);
  });
});

describe("fish and zsh completion against QEMU", () => {
  test("fish: complete -C gives whole candidates", () => {
    const line = `qmpctl -s ${qemu.socket} exec blockdev-add driver=null-`;
    const result = run(["fish", "-c", `source ${scripts.fish}; complete -C '${line}'`]);
    expect(result.stdout).toBe("driver=null-aio\ndriver=null-co\n");
  });

  test("fish and zsh: qmpctl typed as ~/DIR/qmpctl or $HOME/DIR/qmpctl is run as the shell would run it", () => {
    const extra = { HOME: dirname(bin) };
    for (const program of [`~/${basename(bin)}/qmpctl`, `$HOME/${basename(bin)}/qmpctl`]) {
      const fish = run(["fish", "-c", `source ${scripts.fish}; complete -C '${program} wa'`], extra);
      expect(fish.stdout).toBe("wait-event\n");
      const zshProgram = `
compdef() { :; }
compadd() { local array=\${@[-1]}; print -r -- "$1 \${(j:,:)\${(P)array}}"; }
source "$1"
words=("$2" wa); CURRENT=2; PREFIX=wa
_qmpctl`;
      const zsh = run(["zsh", "-f", "-c", zshProgram, "zsh", scripts.zsh, program], extra);
      expect(zsh.stdout).toBe("-S \n-a wait-event\n");
    }
  });

  test("zsh: the candidates reach compadd, those ending in '=' without a space", () => {
    // compadd and compdef only exist inside zsh's completion system: stand-ins print what they get.
    const program = `
compdef() { :; }
compadd() { local array=\${@[-1]}; print -r -- "$1 \${(j:,:)\${(P)array}}"; }
source "$1"
words=(qmpctl -s "$2" exec blockdev-add dri); CURRENT=6; PREFIX=dri
_qmpctl`;
    const result = run(["zsh", "-f", "-c", program, "zsh", scripts.zsh, qemu.socket]);
    expect(result.stdout).toBe("-S driver=\n-a \n");
  });
});

describe("completions complete", () => {
  test("a name from QEMU that holds shell syntax is never offered: the shell would insert it, and Enter run it", async () => {
    const schema = structuredClone(SMALL_SCHEMA) as { name: string; "meta-type": string; values?: string[] }[];
    for (const name of ["qx$(touch${IFS}pwned)", "qx`id`", "qx-safe"]) {
      schema.push({ name, "meta-type": "command", "arg-type": "0", "ret-type": "0" } as (typeof schema)[number]);
    }
    const modes = schema.find((type) => type.values?.includes("fast"))!; // typed's mode= enum
    modes.values!.push("w`id>pwned`");
    const server = schemaServer({ schema });
    try {
      const complete = (...words: string[]) =>
        qmpctl(["completions", "complete", "--", "-s", server.path, "exec", ...words], {
          env: { XDG_CACHE_HOME: freshCacheHome() },
        });
      expect((await complete("qx")).stdout).toBe("qx-safe\n");
      expect((await complete("typed", "mode=")).stdout).toBe("mode=fast\nmode=off\nmode=slow\n");
    } finally {
      server.stop();
    }
  });

  test("a TAB reads the cache: the schema is fetched once", async () => {
    const server = schemaServer();
    const cache = freshCacheHome();
    try {
      const complete = (word: string) =>
        qmpctl(["completions", "complete", "--", "-s", server.path, "exec", "set_link", word], {
          env: { XDG_CACHE_HOME: cache },
        });
      expect((await complete("")).stdout).toBe("name=\nup=\n");
      expect((await complete("u")).stdout).toBe("up=\n");
      expect(executed(server).filter((n) => n === "query-qmp-schema")).toHaveLength(1);
    } finally {
      server.stop();
      rmSync(cache, { recursive: true, force: true });
    }
  });
});

describe("the words of ga, job, migrate and proxy (no QEMU, no agent)", () => {
  test("ga: its forms and the agent's commands, from the built-in table", () => {
    expect(bashComplete("qmpctl ga e")).toEqual(["exec"]);
    expect(bashComplete("qmpctl ga ")).toEqual(["cp", "exec", "wait", ...Object.keys(AGENT_COMMANDS)]);
    expect(bashComplete("qmpctl ga guest-file-f")).toEqual(["guest-file-flush"]);
  });

  test("ga: the arguments of an agent command and their values, as for exec", () => {
    expect(bashComplete("qmpctl ga guest-exec ")).toEqual([
      "arg.",
      "arg=",
      "capture-output=",
      "env.",
      "env=",
      "input-data=",
      "path=",
    ]);
    expect(bashComplete("qmpctl ga guest-exec path=/bin/ls capture-output=s")).toEqual([
      "separated",
      "stderr",
      "stdout",
    ]);
    expect(bashComplete("qmpctl ga guest-file-seek handle=1 w")).toEqual(["whence="]);
    expect(bashComplete("qmpctl ga guest-ping ")).toEqual([]);
  });

  test("ga exec, ga wait and an unknown agent command take no words of their own", () => {
    expect(bashComplete("qmpctl ga exec ")).toEqual([]);
    expect(bashComplete("qmpctl ga exec -- ")).toEqual([]);
    expect(bashComplete("qmpctl ga exec df --")).toEqual([]); // df's own option, not one of qmpctl's
    expect(bashComplete("qmpctl ga wait ")).toEqual([]);
    expect(bashComplete("qmpctl ga guest-frobnicate ")).toEqual([]);
  });

  test("ga: the options of one form only after it (ga exec --stdin, ga guest-ping --args), all before a form", () => {
    const ga = (line: string) => bashComplete(line).filter((o) => ["--args", "--stdin", "--env", "--json"].includes(o));
    expect(ga("qmpctl ga --")).toEqual(["--args", "--stdin", "--env", "--json"]);
    expect(ga("qmpctl ga exec --")).toEqual(["--stdin", "--env", "--json"]);
    expect(ga("qmpctl ga guest-ping --")).toEqual(["--args"]);
    expect(ga("qmpctl ga cp --")).toEqual([]);
    expect(ga("qmpctl ga wait --")).toEqual([]);
    // --raw and --pretty where the form prints what they shape: ga exec --pretty with --json only.
    const output = (line: string) => bashComplete(line).filter((o) => o === "--raw" || o === "--pretty");
    expect(output("qmpctl ga guest-ping --")).toEqual(["--pretty", "--raw"]);
    expect(output("qmpctl ga exec --")).toEqual([]);
    expect(output("qmpctl ga exec --json --")).toEqual(["--pretty"]);
    expect(output("qmpctl ga cp --")).toEqual([]);
    expect(output("qmpctl ga wait --")).toEqual([]);
  });

  test("an option given already is not offered again, unless it may be repeated (--socket, --env)", () => {
    const offered = (line: string) => bashComplete(line);
    expect(offered("qmpctl ga --json --")).not.toContain("--json");
    expect(offered("qmpctl -p exec query-status --")).not.toContain("--pretty");
    expect(offered("qmpctl exec query-status --timeout 5s --")).not.toContain("--timeout");
    expect(offered("qmpctl ga exec --env A=1 --")).toContain("--env");
    expect(offered("qmpctl -s a.sock exec --")).toContain("--socket");
  });

  test("an option a command refuses is not offered: --jobs for the event waits, the global ones for ansible", () => {
    expect(bashComplete("qmpctl wait-event STOP --j")).toEqual([]);
    expect(bashComplete("qmpctl job wait --j")).toEqual([]);
    expect(bashComplete("qmpctl exec query-status --j")).toEqual(["--jobs"]);
    expect(bashComplete("qmpctl ansible args.json --").sort()).toEqual(["--help", "--verbose", "--version"]);
  });

  test("fish: complete -C offers the agent's words", () => {
    const result = run(["fish", "-c", `source ${scripts.fish}; complete -C 'qmpctl ga e'; complete -C 'qmpctl job '`]);
    expect(result).toEqual({ code: 0, stdout: "exec\nwait\n", stderr: "" });
  });

  test("job and migrate: wait", () => {
    expect(bashComplete("qmpctl job ")).toEqual(["wait"]);
    expect(bashComplete("qmpctl migrate w")).toEqual(["wait"]);
    expect(bashComplete("qmpctl job wait ")).toEqual([]);
  });

  test("proxy: in the QEMU command line (after -- or not) nothing, neither options nor files (it is the user's)", () => {
    expect(bashComplete("qmpctl proxy --listen x.sock -- ")).toEqual([]);
    expect(bashComplete("qmpctl proxy --listen x.sock -- qemu-system-x86_64 -")).toEqual([]);
    expect(bashComplete("qmpctl proxy --listen x.sock -- qemu-system-x86_64 vm")).toEqual([]);
    expect(bashComplete("qmpctl proxy --listen x.sock qemu-system-x86_64 -")).toEqual([]);
  });
});

describe("local files where a file goes", () => {
  test("bash: -s, ga --stdin, ga cp's local side, batch, proxy --listen", () => {
    const sorted = (line: string) => bashComplete(line).sort(); // compgen -f lists in directory order
    expect(sorted("qmpctl -s vm")).toEqual(["vm1.sock", "vm2.img"]);
    expect(sorted("qmpctl --socket=vm")).toEqual(["vm1.sock", "vm2.img"]); // the part after '=', which bash replaces
    expect(sorted("qmpctl ga exec --stdin ba")).toEqual(["backup.sql"]);
    expect(sorted("qmpctl ga cp ")).toEqual([...FILE_NAMES, "images"].sort());
    expect(sorted("qmpctl ga cp :/etc/hostname vm2")).toEqual(["vm2.img"]);
    expect(sorted("qmpctl proxy --listen vm")).toEqual(["vm1.sock", "vm2.img"]);
    expect(sorted("qmpctl batch ba")).toEqual(["backup.sql"]); // batch FILE
  });

  test("bash: a socket written unix:PATH completes its PATH, the part bash replaces", () => {
    const sorted = (line: string) => bashComplete(line).sort();
    expect(sorted("qmpctl -s unix:vm")).toEqual(["vm1.sock", "vm2.img"]);
    expect(sorted("qmpctl --socket=unix:vm1")).toEqual(["vm1.sock"]);
    expect(sorted("qmpctl proxy --listen unix:vm1")).toEqual(["vm1.sock"]);
    // Where ':' does not break words, bash replaces the whole word: the unix: is offered with the name.
    expect(bashComplete("qmpctl -s unix:vm1", { BREAKS: " \t\n" })).toEqual(["unix:vm1.sock"]);
  });

  test("bash: not where no file goes", () => {
    expect(bashComplete("qmpctl ga cp :/etc/host")).toEqual([]); // the guest's side
    expect(bashComplete("qmpctl ga cp vm1.sock :/tmp/x ")).toEqual([]);
    expect(bashComplete("qmpctl ga exec --env ")).toEqual([]);
    expect(bashComplete("qmpctl proxy --listen-mode ")).toEqual([]);
    // After an HMP line's words, -s is the line's own flag (as parsing takes it), not qmpctl's socket.
    expect(bashComplete("qmpctl hmp info block -s vm")).toEqual([]);
    expect(bashComplete("qmpctl -s tcp:vm")).toEqual([]); // a TCP address, or an ssh:// one, names no local file
    expect(bashComplete("qmpctl -s ssh://vm")).toEqual([]);
    expect(bashComplete("qmpctl ga exec --stdin unix:vm")).toEqual([]); // a file named so, which there is not
  });

  test("fish: complete -C offers the files", () => {
    const result = run(["fish", "-c", `source ${scripts.fish}; complete -C 'qmpctl ga exec --stdin ba'`]);
    expect(result).toEqual({ code: 0, stdout: "backup.sql\n", stderr: "" });
    const assigned = run(["fish", "-c", `source ${scripts.fish}; complete -C 'qmpctl --socket=vm1'`]);
    expect(assigned).toEqual({ code: 0, stdout: "--socket=vm1.sock\n", stderr: "" });
    const unix = run(["fish", "-c", `source ${scripts.fish}; complete -C 'qmpctl -s unix:vm1'`]);
    expect(unix).toEqual({ code: 0, stdout: "unix:vm1.sock\n", stderr: "" });
    const both = run(["fish", "-c", `source ${scripts.fish}; complete -C 'qmpctl --socket=unix:vm1'`]);
    expect(both).toEqual({ code: 0, stdout: "--socket=unix:vm1.sock\n", stderr: "" });
  });

  test("fish: a file name typed with ~/, $HOME/ or an opening quote is completed, spelled as typed, as fish expands it", () => {
    const quoted = (line: string) => `'${line.replaceAll("\\", "\\\\").replaceAll("'", "\\'")}'`; // fish's single quotes
    const complete = (line: string) =>
      run(["fish", "-c", `source ${scripts.fish}; complete -C ${quoted(line)}`], { HOME: files }).stdout;
    expect(complete("qmpctl -s ~/vm1")).toBe("~/vm1.sock\n");
    expect(complete("qmpctl -s $HOME/vm1")).toBe("$HOME/vm1.sock\n");
    expect(complete("qmpctl --socket=~/vm1")).toBe("--socket=~/vm1.sock\n");
    expect(complete("qmpctl -s 'vm1")).toBe("vm1.sock\n"); // a quote not closed yet
    expect(complete('qmpctl -s "$HOME/vm1')).toBe("$HOME/vm1.sock\n"); // fish expands $HOME in double quotes
    expect(complete('qmpctl -s "~/vm1')).toBe(""); // and ~ in none: a file named ~ would be meant
  });

  test("zsh: the word is left to _files", () => {
    const program = `
compdef() { :; }
compadd() { print -r -- "compadd $*"; }
_files() { print -r -- "_files $PREFIX"; }
compset() { [[ $1 == -P && $PREFIX == $~2* ]] && IPREFIX+=\${(M)PREFIX#$~2} && PREFIX=\${PREFIX#$~2}; }
source "$1"
words=(qmpctl ga cp vm); CURRENT=4; PREFIX=vm
_qmpctl
words=(qmpctl --socket=vm); CURRENT=2; PREFIX=--socket=vm
_qmpctl
words=(qmpctl -s unix:vm); CURRENT=3; PREFIX=unix:vm IPREFIX=
_qmpctl
words=(qmpctl ga cp :/etc/host); CURRENT=4; PREFIX=:/etc/host
_qmpctl`;
    const result = run(["zsh", "-f", "-c", program, "zsh", scripts.zsh]);
    expect(result.stdout).toBe(
      "_files vm\n_files vm\n_files vm\ncompadd -S  -a unspaced\ncompadd -a spaced\n",
    );
  });
});

describe("every option of every command is offered after it (not a global one it refuses)", () => {
  test.each(Object.keys(COMMANDS))("%s", (name) => {
    const taken = GLOBAL_OPTIONS.filter((o) => !refusedNames(COMMANDS[name].refuses).includes(o.name));
    const expected = [...taken, ...COMMANDS[name].options].map((o) => `--${o.name}`);
    expect(bashComplete(`qmpctl ${name} --`)).toEqual(expected);
  });
});

describe("a real TAB on a terminal", () => {
  /** Each shell, started on a terminal with the printed script loaded, at a bare prompt. */
  const shells: Record<string, { argv: string[]; setup: string }> = {
    bash: { argv: ["bash", "--norc", "--noprofile", "-i"], setup: "source SCRIPT" },
    zsh: { argv: ["zsh", "-f", "-i"], setup: "autoload -U compinit; compinit -u; source SCRIPT; PS1='$ '" },
    fish: { argv: ["fish", "-i"], setup: "function fish_prompt; echo '$ '; end; source SCRIPT" },
  };
  async function completeOnTerminal(shell: string, typed: string, expected: string): Promise<void> {
    const { argv, setup } = shells[shell];
    // HOME is the files directory (no user configuration there), and where the shell starts.
    const terminal = await startTerminal(argv, { env: env({ PS1: "$ ", HOME: files, XDG_CONFIG_HOME: files }) });
    try {
      await terminal.type(`cd ${files}; ${setup.replace("SCRIPT", scripts[shell])}; clear`);
      await terminal.press("Enter");
      await terminal.waitFor("a prompt", (s) => s.length === 1 && s[0].trimEnd() === "$", 30_000);
      await terminal.type(typed);
      await terminal.press("Tab");
      await terminal.waitFor(`the line to read ${expected}`, (s) => s[0] === `$ ${expected}`, 10_000);
    } finally {
      await terminal.close();
    }
  }

  test.each(["bash", "zsh", "fish"])("%s: a TAB over ssh:// never lets ssh prompt on the terminal", async (shell) => {
    const record = join(files, `ssh-${shell}.txt`), fakeSsh = join(bin, `record-ssh-${shell}`);
    writeFileSync(
      fakeSsh,
      // Written aside, then renamed: the test reads the record once it exists, never half-written.
      `#!/bin/sh\n{ [ -t 0 ] && echo tty || echo notty; printf '%s\\n' "$@"; } > ${record}.new\n` +
        `mv ${record}.new ${record}\nexit 255\n`,
      {
        mode: 0o755,
      },
    );
    const { argv, setup } = shells[shell];
    const terminal = await startTerminal(argv, {
      env: env({ PS1: "$ ", HOME: files, XDG_CONFIG_HOME: files, QMPCTL_SSH_COMMAND: fakeSsh }),
    });
    try {
      await terminal.type(`cd ${files}; ${setup.replace("SCRIPT", scripts[shell])}; clear`);
      await terminal.press("Enter");
      await terminal.waitFor("a prompt", (s) => s.length === 1 && s[0].trimEnd() === "$", 30_000);
      await terminal.type("qmpctl -s ssh://vmhost/run/vm.qmp exec query-st");
      await terminal.press("Tab");
      for (const deadline = Date.now() + 10_000; !existsSync(record) && Date.now() < deadline;) await Bun.sleep(20);
      // ssh ran without the terminal as its stdin, and told never to ask (a password, a host key)
      expect(readFileSync(record, "utf8").split("\n")).toEqual(expect.arrayContaining(["notty", "BatchMode=yes"]));
    } finally {
      await terminal.close();
    }
  }, 45_000);

  test("bash: 'qmpctl ga e<TAB>' becomes 'qmpctl ga exec'", async () => {
    await completeOnTerminal("bash", "qmpctl ga e", "qmpctl ga exec");
  }, 45_000);

  test("bash: a file name inside a quote not closed yet is completed (bash reads the quote)", async () => {
    await completeOnTerminal("bash", "qmpctl ga exec --stdin 'ba", "qmpctl ga exec --stdin 'backup.sql'");
  }, 45_000);

  test.each(["bash", "zsh", "fish"])("%s: 'qmpctl ga exec --stdin ba<TAB>' completes the local file", async (shell) => {
    await completeOnTerminal(shell, "qmpctl ga exec --stdin ba", "qmpctl ga exec --stdin backup.sql");
  }, 45_000);

  test.each(["bash", "zsh", "fish"])("%s: 'qmpctl -s unix:vm1<TAB>' completes the socket's path", async (shell) => {
    await completeOnTerminal(shell, "qmpctl -s unix:vm1", "qmpctl -s unix:vm1.sock");
  }, 45_000);
});
