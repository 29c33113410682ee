/** Shell completion: the scripts load in their shells, and complete against a real QEMU and a fake one. */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { QMPCTL, qmpctl } from "./helpers/cli.ts";
import { startQemu, type TestQemu } from "./helpers/qemu.ts";
import { executed, freshCacheHome, schemaServer } from "./helpers/schema_fixture.ts";

let qemu: TestQemu;
const home = freshCacheHome();
const bin = mkdtempSync(join(tmpdir(), "qmpctl-bin-")); // `qmpctl` on PATH, as the scripts run it
const scripts: Record<string, string> = {};
beforeAll(async () => {
  symlinkSync(QMPCTL, join(bin, "qmpctl"));
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
  for (const dir of [home, bin]) rmSync(dir, { recursive: true, force: true });
});

const env = (extra: Record<string, string> = {}) => ({
  ...process.env,
  PATH: `${bin}:${process.env.PATH}`,
  XDG_CACHE_HOME: home,
  QMPCTL_SOCKET: "",
  ...extra,
});

function run(argv: string[], extra: Record<string, string> = {}): { code: number; stdout: string; stderr: string } {
  const result = Bun.spawnSync(argv, { env: env(extra), stdout: "pipe", stderr: "pipe" });
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
_qmpctl qmpctl "\${COMP_WORDS[COMP_CWORD]}" "\${COMP_WORDS[COMP_CWORD-1]}"
printf '%s\\n' "\${COMPREPLY[@]}"`;
  const result = run(["bash", "-c", program, "bash", scripts.bash, line], extra);
  expect(result.stderr).toBe("");
  return result.stdout.split("\n").filter((l) => l !== "");
}

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

  test("argument names after the command, union branch members once the tag is given", () => {
    expect(bashComplete(`${s()} exec blockdev-add dri`)).toEqual(["driver="]);
    expect(bashComplete(`${s()} exec blockdev-add driver=null-co node-name=n0 si`)).toEqual(["size="]);
  });

  test("enum values after '=', offered as the part bash replaces", () => {
    expect(bashComplete(`${s()} exec blockdev-add driver=null-`)).toEqual(["null-aio", "null-co"]);
    expect(bashComplete(`${s()} exec set_link name=x up=`)).toEqual(["false", "true"]);
  });

  test("event names after wait-event and --wait-event, with QMPCTL_SOCKET", () => {
    const socket = { QMPCTL_SOCKET: qemu.socket };
    expect(bashComplete("qmpctl wait-event SHUTD", socket)).toEqual(["SHUTDOWN"]);
    expect(bashComplete("qmpctl exec stop --wait-event STO", socket)).toEqual(["STOP"]);
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
