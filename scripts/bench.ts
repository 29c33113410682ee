/**
 * The benchmarks behind scripts/bench.sh. Each section starts its own
 * throwaway QEMU, alternates qmpctl and its references run by run, and
 * prints medians, ratios and peak RSS.
 *
 * Peak RSS comes from /usr/bin/time: a child that Bun spawns reports in its
 * own maxrss the pages it shared with Bun before exec (~25 MiB), which hides
 * the size of anything smaller.
 *
 * Peak RSS also depends on the page cache: a binary whose every page is
 * cached (just built or copied) maps more of its file at each page fault
 * (the kernel's fault-around maps cached neighbours) than one whose pages
 * were evicted (after a reboot, or under memory pressure), by ~5 MiB for
 * qmpctl. The exec section shows both.
 */
import { chmodSync, copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { startQemu, type TestQemu } from "../tests/helpers/qemu.ts";
import { compile } from "./bench_build.ts";
import { instructionsIn, underCallgrind } from "./bench_callgrind.ts";
import { benchEvents } from "./bench_events.ts";
import { benchTimeline } from "./bench_timeline.ts";

const QMPCTL = process.env.QMPCTL_BIN ?? "dist/qmpctl";
const RUNS = Number(process.env.BENCH_RUNS ?? 40);

interface Sample {
  ms: number;
  /** User and system CPU time: less disturbed than wall time by other work on the machine. */
  cpuMs: number;
  maxRssKiB: number;
  /** Pages the process touched for the first time (minor faults, from /usr/bin/time). */
  minorFaults: number;
}

const RSS_DIR = mkdtempSync(join(tmpdir(), "qmpctl-bench-rss-"));
const RSS_FILE = join(RSS_DIR, "rss");
process.on("exit", () => rmSync(RSS_DIR, { recursive: true, force: true }));

/**
 * Run a whole process once for its wall and CPU time, then once more under
 * /usr/bin/time for its peak RSS (the wrapper would add its own start-up to
 * the times).
 */
function runOnce(program: string[], stdin?: string, env?: Record<string, string | undefined>): Sample {
  const run = (cmd: string[]) => {
    const result = Bun.spawnSync(cmd, {
      stdin: stdin === undefined ? "ignore" : new Blob([stdin]),
      stdout: "pipe",
      stderr: "pipe",
      env,
    });
    if (result.exitCode !== 0) {
      throw new Error(`${cmd.join(" ")} exited ${result.exitCode}: ${result.stderr.toString()}`);
    }
    return result;
  };
  const started = performance.now();
  const timed = run(program);
  const ms = performance.now() - started;
  run(["/usr/bin/time", "-f", "%M %R", "-o", RSS_FILE, ...program]);
  const [maxRssKiB, minorFaults] = readFileSync(RSS_FILE, "utf8").trim().split("\n").pop()!.split(" ").map(Number);
  return { ms, cpuMs: Number(timed.resourceUsage.cpuTime.total) / 1000, maxRssKiB, minorFaults };
}

/**
 * The references, built by scripts/build.sh (so with qmpctl's flags) into a
 * new temporary `dir` (the caller removes it): `hello`, a Bun program that
 * prints `{}`, and `floor`, scripts/bench_floor.ts (the bare QMP exchange).
 */
function compileReferences(): { dir: string; hello: string; floor: string } {
  const dir = mkdtempSync(join(tmpdir(), "qmpctl-bench-"));
  writeFileSync(join(dir, "hello.ts"), 'console.log("{}");\n');
  return {
    dir,
    hello: compile(join(dir, "hello.ts"), join(dir, "hello")),
    floor: compile("scripts/bench_floor.ts", join(dir, "floor")),
  };
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

function report(name: string, qmpctl: Sample[], socat: Sample[], program = "qmpctl"): void {
  const q = median(qmpctl.map((s) => s.ms));
  const s = median(socat.map((s) => s.ms));
  const rss = Math.max(...qmpctl.map((s) => s.maxRssKiB));
  console.log(
    `${name}: ${program} ${q.toFixed(1)} ms, socat ${s.toFixed(1)} ms, ratio ${(q / s).toFixed(2)}, ` +
      `${program} peak RSS ${(rss / 1024).toFixed(1)} MiB (median of ${RUNS})`,
  );
}

/**
 * `exec query-status` against its floors and its peer, round by round in one
 * run: a compiled Bun program that prints `{}`, and one that does the bare
 * QMP exchange (scripts/bench_floor.ts; also with the runtime features the
 * contract needs, --bounded), both built by scripts/build.sh, so with the
 * same flags; and socat sending the same two requests. Page faults are
 * counted too: on these VMs each first touch of a page costs ~10-20 us, so
 * the pages a program touches (its RSS) are much of its time.
 */
function benchExec(qemu: TestQemu): void {
  const { dir, hello, floor } = compileReferences();
  const requests = '{"execute":"qmp_capabilities"}\n{"execute":"query-status"}\n';
  const programs = {
    qmpctl: [QMPCTL, "-s", qemu.socket, "exec", "query-status"],
    hello: [hello],
    floor: [floor, qemu.socket],
    greeted: [floor, qemu.socket, "--after-greeting"],
    bounded: [floor, qemu.socket, "--bounded"],
  };
  const runs: Record<string, () => Sample> = {
    qmpctl: () => runOnce(programs.qmpctl),
    hello: () => runOnce(programs.hello),
    floor: () => runOnce(programs.floor),
    greeted: () => runOnce(programs.greeted),
    bounded: () => runOnce(programs.bounded),
    // socat sends both requests at once and exits when QEMU, seeing its EOF, closes.
    socat: () => runOnce(["socat", "-", `UNIX-CONNECT:${qemu.socket}`], requests),
  };
  const samples = roundRobin(runs);
  const mib = (peaksKiB: number[]) => `${(Math.max(...peaksKiB) / 1024).toFixed(1)} MiB`;
  // On a copy: a binary read back from disk sits in the page cache in smaller
  // pieces than one just written (Linux 6.18 here), which the kernel maps a
  // few pages at a time: the program then takes ~5 MiB less RSS but ~15%
  // more time, and the later sections would time that state, not this one's.
  const evicted = (program: string[]) => {
    const copy = join(dir, `evicted-${basename(program[0])}`);
    copyFileSync(program[0], copy);
    chmodSync(copy, 0o755);
    Bun.spawnSync(["sync", copy]); // on disk: only clean pages can be evicted
    const peaks: number[] = [];
    for (let i = 0; i < 5; i++) {
      Bun.spawnSync(["dd", `if=${copy}`, "iflag=nocache", "count=0", "status=none"]); // evicts its pages
      peaks.push(runOnce([copy, ...program.slice(1)]).maxRssKiB);
    }
    return mib(peaks);
  };
  const evictedRss = {
    qmpctl: evicted(programs.qmpctl),
    hello: evicted(programs.hello),
    floor: evicted(programs.floor),
  };
  rmSync(dir, { recursive: true, force: true });
  const wall = (name: string) => median(samples[name].map((s) => s.ms));
  const cpu = (name: string) => median(samples[name].map((s) => s.cpuMs));
  const rss = (name: string) => mib(samples[name].map((s) => s.maxRssKiB));
  const faults = (name: string) => median(samples[name].map((s) => s.minorFaults)).toFixed(0);
  const ratio = (f: (name: string) => number, a: string, b: string) => (f(a) / f(b)).toFixed(2);
  console.log(
    `exec query-status (medians of ${RUNS}, alternating): qmpctl ${wall("qmpctl").toFixed(1)} ms, ` +
      `compiled Bun hello ${wall("hello").toFixed(1)} ms, bare Bun QMP exchange ${wall("floor").toFixed(1)} ms ` +
      `(${wall("greeted").toFixed(1)} ms sending after the greeting, as a correct client must), ` +
      `socat ${wall("socat").toFixed(1)} ms; qmpctl/hello ${ratio(wall, "qmpctl", "hello")} (goal <= 1.3), ` +
      `bare/hello ${ratio(wall, "floor", "hello")} (after the greeting ${ratio(wall, "greeted", "hello")}), ` +
      `qmpctl/socat ${ratio(wall, "qmpctl", "socat")}, ` +
      `hello/socat ${ratio(wall, "hello", "socat")}`,
  );
  console.log(
    `  CPU time: qmpctl ${cpu("qmpctl").toFixed(1)} ms, hello ${cpu("hello").toFixed(1)} ms, bare ${
      cpu("floor").toFixed(1)
    } ms, socat ${cpu("socat").toFixed(1)} ms; qmpctl/hello ${ratio(cpu, "qmpctl", "hello")}, bare/hello ${
      ratio(cpu, "floor", "hello")
    }, qmpctl/socat ${ratio(cpu, "qmpctl", "socat")}`,
  );
  console.log(
    `  bare client with the contract's bounds (bench_floor.ts --bounded): ${wall("bounded").toFixed(1)} ms, ` +
      `CPU ${cpu("bounded").toFixed(1)} ms, peak RSS ${rss("bounded")}; qmpctl/bounded ${
        ratio(wall, "qmpctl", "bounded")
      }, bounded/hello ${ratio(wall, "bounded", "hello")}`,
  );
  console.log(
    `  peak RSS, binary in the page cache: qmpctl ${rss("qmpctl")} (goal <= 28 MiB), hello ${rss("hello")}, ` +
      `bare ${rss("floor")}, socat ${rss("socat")}`,
  );
  console.log(
    `  minor page faults: qmpctl ${faults("qmpctl")}, hello ${faults("hello")}, bare ${faults("greeted")}, ` +
      `bounded ${faults("bounded")}; a first touch of a page costs ${faultMicros().toFixed(1)} us here`,
  );
  console.log(
    `  peak RSS, binary's pages evicted first: qmpctl ${evictedRss.qmpctl}, hello ${evictedRss.hello}, ` +
      `bare ${evictedRss.floor}`,
  );
}

/** What touching a fresh page costs this machine, in us (the best of 3 rounds of 8192 pages). */
function faultMicros(pages = 8192): number {
  let best = Infinity;
  for (let round = 0; round < 3; round++) {
    const started = performance.now();
    const bytes = new Uint8Array(pages * 4096);
    for (let i = 0; i < bytes.length; i += 4096) bytes[i] = 1;
    best = Math.min(best, (performance.now() - started) * 1000 / pages);
  }
  return best;
}

/** Each run in turn, RUNS rounds after 3 warm-up rounds; the samples by name. */
function roundRobin(runs: Record<string, () => Sample>): Record<string, Sample[]> {
  const samples: Record<string, Sample[]> = Object.fromEntries(Object.keys(runs).map((k) => [k, []]));
  for (let i = -3; i < RUNS; i++) {
    for (const [name, run] of Object.entries(runs)) {
      const sample = run();
      if (i >= 0) samples[name].push(sample);
    }
  }
  return samples;
}

/**
 * Typed arguments: `exec set_link name=x up=false` with a warm schema cache
 * (query-target, a cache read) against the untyped `exec query-status`, and
 * cold (one query-qmp-schema fetch and a cache write per run), with socat.
 */
async function benchSchema(qemu: TestQemu): Promise<void> {
  await qemu.control.execute("netdev_add", { type: "hubport", id: "x", hubid: 0 }); // something set_link finds
  const cache = mkdtempSync(join(tmpdir(), "qmpctl-bench-cache-"));
  const env = { ...process.env, XDG_CACHE_HOME: cache };
  const setLink = [QMPCTL, "-s", qemu.socket, "exec", "set_link", "name=x", "up=false"];
  const runs: Record<string, () => Sample> = {
    warm: () => runOnce(setLink, undefined, env),
    status: () => runOnce([QMPCTL, "-s", qemu.socket, "exec", "query-status"]),
    socat: () => runOnce(["socat", "-", `UNIX-CONNECT:${qemu.socket}`], '{"execute":"qmp_capabilities"}\n'),
    cold: () => {
      rmSync(join(cache, "qmpctl"), { recursive: true, force: true });
      return runOnce(setLink, undefined, env);
    },
  };
  const samples = roundRobin(runs);
  rmSync(cache, { recursive: true, force: true });
  report("exec set_link name=x up=false, warm schema cache", samples.warm, samples.socat);
  report("exec query-status (untyped)", samples.status, samples.socat);
  report("exec set_link name=x up=false, cold (fetches the schema)", samples.cold, samples.socat);
  const ratio = (a: Sample[], b: Sample[]) => (median(a.map((s) => s.ms)) / median(b.map((s) => s.ms))).toFixed(2);
  console.log(
    `schema: warm set_link / query-status ${ratio(samples.warm, samples.status)} (goal <= 1.1), ` +
      `cold / warm ${ratio(samples.cold, samples.warm)}`,
  );
}

/**
 * Instructions the main thread executes for `exec query-status` and its
 * floors, counted by callgrind: unlike times, the same from run to run on a
 * busy machine, so a change of a few percent shows. Bun's GC timer is off
 * (BUN_GC_TIMER_DISABLE): under valgrind's slowness it fires collections a
 * real run never reaches. Counts leave out the kernel's work (page faults).
 * Then hello and qmpctl with JavaScriptCore's JIT off (BUN_JSC_useJIT=0):
 * what setting up the JIT costs every start, the runtime's own (only the
 * environment turns it off, and a long event stream needs the JIT).
 */
function benchInstructions(qemu: TestQemu): void {
  if (Bun.which("valgrind") === null) {
    console.log("instructions: skipped (needs valgrind: apt-get install valgrind)");
    return;
  }
  const { dir, hello, floor } = compileReferences();
  const count = (program: string[], env?: Record<string, string>) => {
    const out = join(dir, "callgrind.out");
    underCallgrind(program, out, [], env);
    return instructionsIn(`${out}-01`) / 1e6;
  };
  const exec = [QMPCTL, "-s", qemu.socket, "exec", "query-status"];
  const jitOff = { BUN_JSC_useJIT: "0" };
  const counts = {
    hello: count([hello]),
    bare: count([floor, qemu.socket, "--after-greeting"]),
    bounded: count([floor, qemu.socket, "--bounded"]),
    version: count([QMPCTL, "--version"]),
    qmpctl: count(exec),
    "hello, JIT off": count([hello], jitOff),
    "qmpctl, JIT off": count(exec, jitOff),
  };
  rmSync(dir, { recursive: true, force: true });
  console.log(
    `instructions, main thread (millions): ` +
      Object.entries(counts).map(([name, n]) => `${name} ${n.toFixed(2)}`).join(", ") +
      `; qmpctl exec/bounded ${(counts.qmpctl / counts.bounded).toFixed(2)}; the JIT's setup: hello ${
        (counts.hello - counts["hello, JIT off"]).toFixed(2)
      }, qmpctl ${(counts.qmpctl - counts["qmpctl, JIT off"]).toFixed(2)}`,
  );
}

/**
 * The runtime's own threads and heap behind a one-shot `exec query-status`,
 * beside the bounded floor and hello: the threads each starts (named, from
 * strace), and the 16 KiB blocks of JavaScriptCore's heap it holds at exit
 * (BUN_JSC_dumpHeapStatisticsAtVMDestruction) and has allocated, freed ones
 * too (found with BUN_JSC_warmUpMarkedBlockStartAfterBlocks). Past 64 allocated
 * JavaScriptCore starts a thread, JSCWarmUp, that touches 32 more ahead of need; what that
 * costs qmpctl is measured by turning it off from the environment
 * (BUN_JSC_useWarmUpMarkedBlocks=0; the binary cannot turn it off itself).
 */
function benchThreads(qemu: TestQemu): void {
  if (Bun.which("strace") === null) {
    console.log("threads: skipped (needs strace: apt-get install strace)");
    return;
  }
  const { dir, hello, floor } = compileReferences();
  const programs: Record<string, string[]> = {
    qmpctl: [QMPCTL, "-s", qemu.socket, "exec", "query-status"],
    bounded: [floor, qemu.socket, "--bounded"],
    hello: [hello],
  };
  const threads = (program: string[]) => {
    const trace = join(dir, "trace");
    const run = Bun.spawnSync(["strace", "-f", "-qq", "-e", "trace=prctl", "-o", trace, ...program], {
      stdout: "ignore",
      stderr: "pipe",
    });
    if (run.exitCode !== 0) return `unknown (strace: ${run.stderr.toString().trim() || `exit ${run.exitCode}`})`;
    const names = [...readFileSync(trace, "utf8").matchAll(/PR_SET_NAME, "([^"]*)"/g)].map((m) => m[1]);
    return names.length > 0 ? names.join(", ") : "none";
  };
  const heapBlocks = (program: string[]) => {
    const run = Bun.spawnSync(program, {
      stdout: "ignore",
      stderr: "pipe",
      env: { ...process.env, BUN_DESTRUCT_VM_ON_EXIT: "1", BUN_JSC_dumpHeapStatisticsAtVMDestruction: "1" },
    });
    return run.stderr.toString().split("\n").filter((line) => line.startsWith("[")).length;
  };
  // Threads started (clone calls) when JSCWarmUp may start after `after` blocks.
  const clones = (program: string[], after: number) => {
    const trace = join(dir, "clones");
    Bun.spawnSync(["strace", "-f", "-qq", "-e", "trace=clone,clone3", "-o", trace, ...program], {
      stdout: "ignore",
      stderr: "ignore",
      env: { ...process.env, BUN_JSC_warmUpMarkedBlockStartAfterBlocks: String(after) },
    });
    return readFileSync(trace, "utf8").split("\n").filter((line) => line.includes("clone")).length;
  };
  // The blocks a run allocates, freed ones included: the lowest threshold that starts no JSCWarmUp.
  const allocatedBlocks = (program: string[]) => {
    const without = clones(program, 1e6);
    let [low, high] = [1, 400]; // JSCWarmUp starts after `low` blocks, not after `high`
    while (high - low > 1) {
      const middle = (low + high) >> 1;
      if (clones(program, middle) > without) low = middle;
      else high = middle;
    }
    return high;
  };
  for (const [name, program] of Object.entries(programs)) {
    console.log(
      `threads: ${name} starts ${threads(program)}; JSC heap blocks at exit: ${heapBlocks(program)}, ` +
        `allocated: ${allocatedBlocks(program)} (JSCWarmUp starts past 64)`,
    );
  }
  const samples = roundRobin({
    qmpctl: () => runOnce(programs.qmpctl),
    unwarmed: () => runOnce(programs.qmpctl, undefined, { ...process.env, BUN_JSC_useWarmUpMarkedBlocks: "0" }),
  });
  rmSync(dir, { recursive: true, force: true });
  const of = (name: string, key: "ms" | "cpuMs" | "minorFaults") => median(samples[name].map((s) => s[key]));
  const peak = (name: string) => Math.max(...samples[name].map((s) => s.maxRssKiB)) / 1024;
  console.log(
    `  qmpctl without JSCWarmUp (medians of ${RUNS}, alternating): wall ${of("qmpctl", "ms").toFixed(1)} -> ` +
      `${of("unwarmed", "ms").toFixed(1)} ms, CPU ${of("qmpctl", "cpuMs").toFixed(1)} -> ` +
      `${of("unwarmed", "cpuMs").toFixed(1)} ms, minor faults ${of("qmpctl", "minorFaults")} -> ` +
      `${of("unwarmed", "minorFaults")}, peak RSS ${peak("qmpctl").toFixed(1)} -> ${peak("unwarmed").toFixed(1)} MiB`,
  );
}

const SECTIONS: Record<string, (qemu: TestQemu) => Promise<void> | void> = {
  exec: benchExec,
  threads: benchThreads,
  instructions: benchInstructions,
  timeline: (qemu) => benchTimeline(qemu, QMPCTL),
  schema: benchSchema,
  events: benchEvents,
};

const wanted = process.argv.slice(2);
for (const name of wanted.length > 0 ? wanted : Object.keys(SECTIONS)) {
  const section = SECTIONS[name];
  if (!section) throw new Error(`unknown section ${name}; sections: ${Object.keys(SECTIONS).join(", ")}`);
  const qemu = await startQemu();
  try {
    await section(qemu);
  } finally {
    await qemu.stop();
  }
}
