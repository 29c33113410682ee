/**
 * A throwaway OpenSSH server for tests, on 127.0.0.1 at a free port, with
 * its own host key, one authorized user key (for root, the user tests run
 * as) and a client ssh_config that trusts exactly that host key: nothing of
 * the system's ssh configuration is read or touched, except that sshd needs
 * its privilege separation directory /run/sshd, made when missing.
 */
import { spawnSync } from "bun";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "./qemu.ts";

export interface TestSshd {
  dir: string;
  port: number;
  /** The client config: Host aliases `vmhost` and `vmhost2` reach this sshd as root; `Host *` has the key. */
  sshConfig: string;
  /** `ssh -F DIR/ssh_config`: the value for QMPCTL_SSH_COMMAND. */
  sshCommand: string;
  /** The user key's private half (for Ansible). */
  userKey: string;
  /** A mark in every ssh command line made with `sshCommand`, for `pgrep -f`. */
  marker: string;
  stop(): Promise<void>;
}

function keygen(path: string): void {
  const result = spawnSync(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "qmpctl-test", "-f", path]);
  if (result.exitCode !== 0) throw new Error(`ssh-keygen failed: ${result.stderr.toString()}`);
}

/** `maxStartups`: sshd's MaxStartups, how many connections may be in their handshake at once. */
export async function startSshd({ maxStartups = 64 } = {}): Promise<TestSshd> {
  const dir = mkdtempSync(join(tmpdir(), "qmpctl-sshd-"));
  const port = freePort();
  keygen(join(dir, "host_key"));
  keygen(join(dir, "user_key"));
  writeFileSync(join(dir, "authorized_keys"), readFileSync(join(dir, "user_key.pub")), { mode: 0o600 });
  writeFileSync(
    join(dir, "sshd_config"),
    [
      "ListenAddress 127.0.0.1",
      `Port ${port}`,
      `HostKey ${dir}/host_key`,
      `AuthorizedKeysFile ${dir}/authorized_keys`,
      `PidFile ${dir}/sshd.pid`,
      "AllowUsers root",
      "PermitRootLogin prohibit-password",
      "PasswordAuthentication no",
      "KbdInteractiveAuthentication no",
      "StrictModes no",
      "UsePAM no",
      "AllowStreamLocalForwarding yes",
      `MaxStartups ${maxStartups}`,
      "MaxSessions 64",
      "Subsystem sftp internal-sftp", // Ansible copies its modules over sftp
      "PrintMotd no",
      "PrintLastLog no",
      "",
    ].join("\n"),
  );
  const hostKey = readFileSync(join(dir, "host_key.pub"), "utf8").split(" ").slice(0, 2).join(" ");
  writeFileSync(join(dir, "known_hosts"), `[127.0.0.1]:${port} ${hostKey}\n`);
  writeFileSync(
    join(dir, "ssh_config"),
    [
      "Host vmhost vmhost2",
      "  HostName 127.0.0.1",
      `  Port ${port}`,
      "  User root",
      "Host *",
      `  IdentityFile ${dir}/user_key`,
      "  IdentitiesOnly yes",
      `  UserKnownHostsFile ${dir}/known_hosts`,
      "  GlobalKnownHostsFile /dev/null",
      "  StrictHostKeyChecking yes",
      "",
    ].join("\n"),
  );
  if (!existsSync("/run/sshd")) mkdirSync("/run/sshd", { mode: 0o755 });
  // sshd re-executes itself, so it needs its absolute path.
  const sshd = Bun.spawn(["/usr/sbin/sshd", "-D", "-e", "-f", join(dir, "sshd_config")], {
    stdin: "ignore",
    stdout: "ignore",
    stderr: "pipe",
  });
  await waitForLine(sshd.stderr, /Server listening on 127\.0\.0\.1 port/, 10_000);
  const sshConfig = join(dir, "ssh_config");
  return {
    dir,
    port,
    sshConfig,
    sshCommand: `ssh -F ${sshConfig}`,
    userKey: join(dir, "user_key"),
    marker: dir,
    async stop() {
      sshd.kill("SIGKILL");
      await sshd.exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Read `stream` until a line matches `pattern` (then keep draining it in the background), or fail after `ms`. */
async function waitForLine(stream: ReadableStream<Uint8Array>, pattern: RegExp, ms: number): Promise<void> {
  const reader = stream.getReader();
  const decoder = new TextDecoder();
  let text = "";
  const deadline = setTimeout(() => reader.cancel(), ms);
  try {
    while (!pattern.test(text)) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`sshd did not start: ${text}`);
      text += decoder.decode(value, { stream: true });
    }
  } finally {
    clearTimeout(deadline);
  }
  void (async () => { // sshd logs every connection: keep its pipe from filling
    while (!(await reader.read().catch(() => ({ done: true }))).done);
  })();
}

/** The ssh processes (and their pids) whose command line holds `marker`: none should outlive a qmpctl run. */
export function sshProcesses(marker: string): string[] {
  return processes(`^ssh .*${marker}`);
}

/** Wait (at most `ms`) for every ssh process with `marker` to be gone; returns those still there. */
export function sshProcessesAfter(marker: string, ms = 2000): Promise<string[]> {
  return processesAfter(`^ssh .*${marker}`, ms);
}

/** The processes whose command line matches `pattern` (`pgrep -af`): "PID COMMAND" each. */
function processes(pattern: string): string[] {
  return spawnSync(["pgrep", "-af", pattern]).stdout.toString().split("\n").filter((line) => line.trim() !== "");
}

/**
 * Wait (at most `ms`) for every process whose command line matches `pattern` (`pgrep -f`) to be gone:
 * what ssh started (a ProxyCommand, a jump host's `ssh -W`). Returns those still there, "PID COMMAND" each.
 */
export async function processesAfter(pattern: string, ms = 2000): Promise<string[]> {
  const deadline = performance.now() + ms;
  let left = processes(pattern);
  while (left.length > 0 && performance.now() < deadline) {
    await Bun.sleep(20);
    left = processes(pattern);
  }
  return left;
}

/** Kill (SIGKILL) the processes of `pgrep -af` lines ("PID COMMAND"): what a failed case left, by pid. */
export function killListed(lines: string[]): void {
  for (const line of lines) {
    try {
      process.kill(Number(line.split(" ")[0]), "SIGKILL");
    } catch {
      // gone meanwhile
    }
  }
}
