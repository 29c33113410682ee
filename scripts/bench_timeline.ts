/**
 * Where a one-shot `exec query-status` spends the main thread's
 * instructions, phase by phase, beside the bounded floor
 * (scripts/bench_floor.ts --bounded), for `scripts/bench.sh timeline`.
 *
 * A copy of the source tree gets a marker at each phase's end: a call of
 * process.umask(), which nothing else calls, so that callgrind's
 * `--dump-before=umask` writes the count so far there (Bun's umask reads
 * the mask by setting it twice: two dumps a marker, added up here). Every
 * module also gets one at its top: their counts go to the phase they fall
 * in. Each marker costs ~2k instructions, which the figures include. The
 * copy is built with scripts/build.sh, as the real binary is.
 *
 * Then the cost model behind the figures, from programs built with the same
 * flags: what the first run of a function costs (JavaScriptCore decodes and
 * links its bytecode then), and what a module costs. And how many functions
 * and modules each run runs (`BUN_BYTECODE_ORDER_OUT` lists them).
 */
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestQemu } from "../tests/helpers/qemu.ts";
import { compile } from "./bench_build.ts";
import { instructionsIn, underCallgrind } from "./bench_callgrind.ts";

/** A phase ends where `anchor` (unique in `file`) is: before its line, or after it. */
type Marker = [file: string, anchor: string, phase: string, where: "before" | "after"];

const QMPCTL_PHASES: Marker[] = [
  ["cli.ts", "async function main(): Promise<number> {", "the static modules run (cli.ts and its imports)", "after"],
  ["cli.ts", "const { words, options } = parseArgs(", "environment checked, argv parsed", "after"],
  ["cli.ts", "const module = await entry.load();", "the command's module loaded (cli/exec.ts)", "after"],
  ["cli.ts", "return await module.run(context);", "options read, bounds set (SIGINT, --timeout)", "before"],
  ["cli/exec.ts", "return await withClient(context, async", "exec's words and options read", "before"],
  ["lib/client.ts", "const client = new QmpClient(typeof address", "session options read", "before"],
  ["lib/client.ts", "// Bounded until negotiation is answered", "address parsed, client and bounds made", "before"],
  ["lib/client.ts", 'if (this.phase === "closed") { // the wait was abandoned', "socket connected", "before"],
  ["lib/client.ts", "return waiter.resolve(greeting);", "greeting received and parsed", "before"],
  ["lib/client.ts", "this.capabilitiesSent.resolve();", "qmp_capabilities sent", "before"],
  ["cli/session.ts", "prepareStdout(); // while QEMU answers", "the command sent behind it", "before"],
  ["cli/session.ts", "value = await reply;", "replies received and parsed", "after"],
  ["cli/exec.ts", "if (wait && subscription) await events!.printAwaitedEvents", "the return value printed", "before"],
];
/** cli.ts's last statement: the exit with main()'s status. */
const QMPCTL_END = /^exit\(\n[\s\S]*\n\);\n$/m;

const FLOOR_PHASES: Marker[] = [
  ["scripts/bench_floor.ts", 'let received = "";', "bounds set (SIGINT, a timeout, a connect timer)", "before"],
  ["scripts/bench_floor.ts", "    open(socket) {", "socket connected", "after"],
  [
    "scripts/bench_floor.ts",
    "      const line = received.split(",
    "a chunk read (the greeting, then the replies)",
    "before",
  ],
  ["scripts/bench_floor.ts", "      socket.end();", "the reply found", "before"],
  ["scripts/bench_floor.ts", "    process.exit(0);", "the return value printed", "before"],
];

const MODULE = "module";
const marker = (phase: string) =>
  `((globalThis as { __timeline?: string[] }).__timeline ??= []).push(${JSON.stringify(phase)}), process.umask();\n`;
const report = "console.error(`TIMELINE ${JSON.stringify((globalThis as { __timeline?: string[] }).__timeline)}`);\n";

/** Where `anchor` is in `text`, when it is there exactly once. */
function anchorAt(text: string, anchor: string): number | undefined {
  const at = text.indexOf(anchor);
  return at < 0 || text.indexOf(anchor, at + 1) >= 0 ? undefined : at;
}

/** The markers whose anchor is not in the tree at `root` exactly once, and whether cli.ts still ends as expected. */
export function timelineMismatches(root: string): string[] {
  const missing = [...QMPCTL_PHASES, ...FLOOR_PHASES]
    .filter(([file, anchor]) => anchorAt(readFileSync(join(root, file), "utf8"), anchor) === undefined)
    .map(([file, anchor]) => `${file}: ${anchor}`);
  return QMPCTL_END.test(readFileSync(join(root, "cli.ts"), "utf8")) ? missing : [...missing, "cli.ts: its final exit"];
}

function insertMarkers(root: string, markers: Marker[]): void {
  for (const [file, anchor, phase, where] of markers) {
    const path = join(root, file);
    const text = readFileSync(path, "utf8");
    const at = anchorAt(text, anchor);
    if (at === undefined) {
      throw new Error(`${file}: the anchor ${JSON.stringify(anchor)} is not there once (update bench_timeline.ts)`);
    }
    const line = where === "before" ? text.lastIndexOf("\n", at) + 1 : text.indexOf("\n", at) + 1;
    writeFileSync(path, text.slice(0, line) + marker(phase) + text.slice(line));
  }
}

/** A marker at the top of every module of `dir` (after a shebang). */
function markModules(dir: string): void {
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile() || !entry.name.endsWith(".ts")) continue;
    const path = join(entry.parentPath, entry.name);
    const text = readFileSync(path, "utf8");
    const top = text.startsWith("#!") ? text.indexOf("\n") + 1 : 0;
    writeFileSync(path, text.slice(0, top) + marker(MODULE) + text.slice(top));
  }
}

/**
 * Callgrind's counts between markers, folded into phases: a module's count
 * goes to the phase it falls in; before the first phase, the runtime's own
 * start (until the first module runs) stands apart.
 */
function phaseCounts(program: string[], dir: string): [string, number][] {
  const out = join(dir, "callgrind.out");
  const stderr = underCallgrind(program, out, ["--dump-before=umask"]);
  const names = stderr.match(/^TIMELINE (.*)$/m)?.[1];
  if (!names) throw new Error(`${program.join(" ")} under valgrind named no phases: ${stderr}`);
  const phases: [string, number][] = [];
  let pending = 0;
  (JSON.parse(names) as string[]).forEach((name, i) => {
    pending += instructionsIn(`${out}.${2 * i + 1}-01`) + instructionsIn(`${out}.${2 * i + 2}-01`);
    if (name === MODULE && phases.length > 0) return;
    phases.push([
      name === MODULE ? "runtime start, the static chunks loaded, until the first module runs" : name,
      pending,
    ]);
    pending = 0;
  });
  phases.push(["exit", pending + instructionsIn(`${out}-01`)]);
  return phases;
}

/** The functions and modules a run ran, as the runtime lists them for --bytecode-order. */
function ranCounts(program: string[], dir: string): { functions: number; modules: number } {
  const file = join(dir, "order");
  rmSync(file, { force: true });
  Bun.spawnSync(program, { stdout: "ignore", stderr: "ignore", env: { ...process.env, BUN_BYTECODE_ORDER_OUT: file } });
  const lines = readFileSync(file, "utf8").split("\n");
  return {
    functions: lines.filter((line) => line.startsWith("F ")).length,
    modules: lines.filter((line) => line.startsWith("M ")).length,
  };
}

/** Main-thread instructions of a whole run. */
function instructions(program: string[], dir: string): number {
  const out = join(dir, "whole.out");
  underCallgrind(program, out);
  return instructionsIn(`${out}-01`);
}

/**
 * What a function's first run and a module cost: N functions of a few
 * statements each, run or not; and 16 small modules (chunks) imported, or
 * the same code as one.
 */
function costModel(dir: string): { perFunction: number; perModule: number } {
  const N = 50;
  let functions = "";
  for (let i = 0; i < N; i++) {
    functions += `function f${i}(o: { a: number; b: string; c: number[] }, k: number): string {
  let s = 0;
  for (let j = 0; j < o.c.length; j++) s += o.c[j] * ${i};
  const t = o.b.length > ${i} ? o.b.slice(0, ${i}) : o.b;
  if (k > 1000) throw new Error(\`f${i}: \${t} \${k}\`);
  const r = { x: o.a + s, y: t, z: k % 7 === 0 ? "seven" : "other" };
  return r.y + r.x + r.z;
}\n`;
  }
  writeFileSync(
    join(dir, "functions.ts"),
    `${functions}const all = [${Array.from({ length: N }, (_, i) => `f${i}`)}];
let n = 0;
for (let i = 0; i < Number(process.argv[2]); i++) n += all[i]({ a: i, b: "abc", c: [1, 2] }, i).length;
console.log(n);\n`,
  );
  const fn = compile(join(dir, "functions.ts"), join(dir, "functions"));
  const perFunction = (instructions([fn, String(N)], dir) - instructions([fn, "0"], dir)) / N;

  const M = 16;
  let one = "", many = "";
  for (let i = 0; i < M; i++) {
    writeFileSync(join(dir, `m${i}.ts`), `export const v${i} = (x: number) => x + ${i};\n`);
    one += `const v${i} = (x: number) => x + ${i};\n`;
    many += `import { v${i} } from "./m${i}.ts";\n`;
  }
  const sum = `export const sum = (x: number) => ${Array.from({ length: M }, (_, i) => `v${i}(x)`).join(" + ")};\n`;
  writeFileSync(join(dir, "one.ts"), one + sum);
  writeFileSync(join(dir, "many.ts"), many + sum);
  // Each small module is also imported alone (never, at run time), which makes it a chunk of its own.
  let alone = "";
  for (let i = 0; i < M; i++) {
    alone += `else if (which === "m${i}") console.log((await import("./m${i}.ts")).v${i}(1));\n`;
  }
  writeFileSync(
    join(dir, "modules.ts"),
    `const which = process.argv[2];
if (which === "many") console.log((await import("./many.ts")).sum(1));
else if (which === "one") console.log((await import("./one.ts")).sum(1));
${alone}`,
  );
  const mod = compile(join(dir, "modules.ts"), join(dir, "modules"));
  const perModule = (instructions([mod, "many"], dir) - instructions([mod, "one"], dir)) / M;
  return { perFunction, perModule };
}

export function benchTimeline(qemu: TestQemu, qmpctl: string): void {
  if (Bun.which("valgrind") === null) {
    console.log("timeline: skipped (needs valgrind: apt-get install valgrind)");
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), "qmpctl-timeline-"));
  try {
    const tree = join(dir, "tree");
    for (const part of ["cli.ts", "cli", "lib", "scripts", "package.json"]) {
      cpSync(part, join(tree, part), { recursive: true });
    }
    symlinkSync(join(process.cwd(), "node_modules"), join(tree, "node_modules"));
    markModules(join(tree, "cli"));
    markModules(join(tree, "lib"));
    insertMarkers(tree, QMPCTL_PHASES);
    const cli = readFileSync(join(tree, "cli.ts"), "utf8");
    if (!QMPCTL_END.test(cli)) throw new Error("bench_timeline: cli.ts no longer ends in the exit it replaces");
    writeFileSync(
      join(tree, "cli.ts"),
      cli.replace(QMPCTL_END, `const status = await main().catch(exitStatusOf);\n${report}exit(status);`),
    );
    insertMarkers(tree, FLOOR_PHASES);
    const floor = join(tree, "scripts/bench_floor.ts");
    writeFileSync(floor, readFileSync(floor, "utf8").replace(/^(\s*)(process\.exit\(0\);)/m, `$1${report}$1$2`));
    const build = Bun.spawnSync(["scripts/build.sh"], { cwd: tree, stdout: "ignore", stderr: "pipe" });
    if (build.exitCode !== 0) throw new Error(`building the marked copy: ${build.stderr.toString()}`);
    const markedFloor = compile(floor, join(dir, "floor-marked"));

    const print = (title: string, phases: [string, number][]) => {
      console.log(`${title} (main thread, millions of instructions):`);
      for (const [name, n] of phases) console.log(`  ${(n / 1e6).toFixed(2).padStart(5)}  ${name}`);
      console.log(`  ${(phases.reduce((sum, [, n]) => sum + n, 0) / 1e6).toFixed(2).padStart(5)}  total`);
    };
    print(
      "timeline of qmpctl exec query-status",
      phaseCounts([join(tree, "dist/qmpctl"), "-s", qemu.socket, "exec", "query-status"], dir),
    );
    print("timeline of the bounded floor", phaseCounts([markedFloor, qemu.socket, "--bounded"], dir));

    const plainFloor = compile("scripts/bench_floor.ts", join(dir, "floor"));
    const ours = ranCounts([qmpctl, "-s", qemu.socket, "exec", "query-status"], dir);
    const theirs = ranCounts([plainFloor, qemu.socket, "--bounded"], dir);
    const model = costModel(dir);
    console.log(
      `functions run for the first time: qmpctl ${ours.functions} in ${ours.modules} modules, ` +
        `bounded floor ${theirs.functions} in ${theirs.modules}; ` +
        `a function's first run costs ~${(model.perFunction / 1e3).toFixed(0)}k instructions ` +
        `(50 functions of 6 statements), a module ~${(model.perModule / 1e3).toFixed(0)}k (16 small ones)`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
