/**
 * ssh:// costs, measured side by side in one alternating run (ratios, not
 * absolute times: the machine is shared): one `exec query-status` on a local
 * socket, over ssh://, and over ssh:// with a warm ControlMaster; then 16
 * one-shot `exec` over ssh:// to 16 monitors of one host (one QEMU with 16
 * QMP sockets), one after another and all at once, without and with
 * connection sharing. A throwaway sshd on 127.0.0.1, as in the tests.
 *
 *   node_modules/.bin/bun scripts/bench_ssh.ts [ROUNDS]   (after scripts/build.sh)
 */
import { appendFileSync, existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { QMPCTL } from "../tests/helpers/cli.ts";
import { startQemu } from "../tests/helpers/qemu.ts";
import { startSshd } from "../tests/helpers/sshd.ts";

const rounds = Number(process.argv[2] ?? 5);
const sshd = await startSshd();
const monitors = mkdtempSync(join(tmpdir(), "qmpctl-bench-"));
const remote = Array.from({ length: 16 }, (_, i) => join(monitors, `m${i}.sock`));
const q = await startQemu({ extraArgs: remote.flatMap((path) => ["-qmp", `unix:${path},server=on,wait=off`]) });
for (const deadline = Date.now() + 10_000; !remote.every((path) => existsSync(path));) {
  if (Date.now() > deadline) throw new Error("QEMU did not create its 16 monitors");
  await Bun.sleep(10);
}

const muxConfig = join(sshd.dir, "ssh_config_mux");
appendFileSync(muxConfig, await Bun.file(sshd.sshConfig).text());
appendFileSync(muxConfig, `  ControlMaster auto\n  ControlPath ${sshd.dir}/cm-%C\n  ControlPersist 60\n`);
const plain = { QMPCTL_SSH_COMMAND: `ssh -F ${sshd.sshConfig}` };
const shared = { QMPCTL_SSH_COMMAND: `ssh -F ${muxConfig}` };

async function exec(address: string, env: Record<string, string>): Promise<void> {
  const child = Bun.spawn([QMPCTL, "-s", address, "--connect-timeout", "60s", "exec", "query-status"], {
    env: { ...process.env, ...env },
    stdout: "pipe",
    stderr: "pipe",
  });
  const [out, err, code] = await Promise.all([
    new Response(child.stdout).text(),
    new Response(child.stderr).text(),
    child.exited,
  ]);
  if (code !== 0) throw new Error(`${address}: exit ${code}: ${err}${out}`);
}

async function timed(work: () => Promise<unknown>): Promise<number> {
  const start = performance.now();
  await work();
  return performance.now() - start;
}

await exec(`ssh://vmhost${remote[0]}`, shared); // starts the master (ControlPersist keeps it)
const cases: Record<string, () => Promise<unknown>> = {
  "1 exec, local socket": () => exec(q.socket, {}),
  "1 exec, ssh://": () => exec(`ssh://vmhost${q.socket}`, plain),
  "1 exec, ssh:// + ControlMaster": () => exec(`ssh://vmhost${q.socket}`, shared),
  "16 exec in a row, ssh://": async () => {
    for (const r of remote) await exec(`ssh://vmhost${r}`, plain);
  },
  "16 exec in a row, ssh:// + ControlMaster": async () => {
    for (const r of remote) await exec(`ssh://vmhost${r}`, shared);
  },
  "16 exec at once, ssh://": () => Promise.all(remote.map((r) => exec(`ssh://vmhost${r}`, plain))),
  "16 exec at once, ssh:// + ControlMaster": () => Promise.all(remote.map((r) => exec(`ssh://vmhost${r}`, shared))),
};
const times: Record<string, number[]> = Object.fromEntries(Object.keys(cases).map((k) => [k, []]));
for (let round = 0; round < rounds; round++) {
  for (const [name, work] of Object.entries(cases)) times[name].push(await timed(work));
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const local = median(times["1 exec, local socket"]);
console.log(`median of ${rounds} alternating rounds (load: ${(await Bun.file("/proc/loadavg").text()).split(" ")[0]})`);
for (const [name, xs] of Object.entries(times)) {
  console.log(`${name.padEnd(42)} ${median(xs).toFixed(0).padStart(6)} ms  ${(median(xs) / local).toFixed(1)}x local`);
}
Bun.spawnSync(["ssh", "-F", muxConfig, "-O", "exit", "vmhost"], { stderr: "ignore" });
await q.stop();
await sshd.stop();
rmSync(monitors, { recursive: true, force: true });
