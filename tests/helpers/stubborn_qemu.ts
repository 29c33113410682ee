/**
 * A QEMU stuck at shutdown (hung I/O), faked for `qmpctl proxy -- PROGRAM`: real QEMU exits on SIGTERM and
 * SIGINT whatever its options (-no-shutdown too), so a QEMU that does not act on a stop is a script.
 */
import { existsSync, readFileSync } from "node:fs";
import { processesNaming, waitUntil } from "./process_state.ts";

/**
 * The fake's command line: it ignores SIGTERM and SIGINT from its first instant (sh's trap, kept through
 * exec, so a --timeout that runs out while python starts finds them ignored), writes its pid to `pidFile`,
 * then, with `connect`, connects to the monitor socket the proxy gives it in -chardev, greets and answers
 * every command with {"return": {}}; without, it never connects.
 */
export function stubbornQemu(pidFile: string, connect: boolean): string[] {
  const script = String.raw`
import json, os, re, socket, sys, time
open(sys.argv[1], "w").write(str(os.getpid()))
if sys.argv[2] != "connect":
    while True: time.sleep(60)
chardev = sys.argv[sys.argv.index("-chardev") + 1]
path = re.search(r"(?:^|,)path=((?:[^,]|,,)*)", chardev).group(1).replace(",,", ",")
monitor = socket.socket(socket.AF_UNIX)
monitor.connect(path)
greeting = {"QMP": {"version": {"qemu": {"major": 7, "minor": 2, "micro": 0}, "package": ""}, "capabilities": []}}
monitor.sendall(json.dumps(greeting).encode() + b"\r\n")
try:
    for line in monitor.makefile("rb"):
        if line.strip():
            monitor.sendall(json.dumps({"return": {}, "id": json.loads(line).get("id")}).encode() + b"\r\n")
except OSError:
    pass  # the proxy closed the connection: this QEMU lives on all the same
while True: time.sleep(60)
`;
  const shell = `trap "" TERM INT; exec python3 -c "$0" "$@"`;
  return ["sh", "-c", shell, script, pidFile, connect ? "connect" : "silent"];
}

/** The pid the fake wrote to `pidFile`, once it has (its signals are then ignored). */
export async function stubbornQemuPid(pidFile: string): Promise<number> {
  await waitUntil(() => existsSync(pidFile) && readFileSync(pidFile, "utf8") !== "", "the fake QEMU wrote its pid");
  return Number(readFileSync(pidFile, "utf8"));
}

/**
 * Kill every fake started with `pidFile` (and what names it, the proxy that ran it): a test's cleanup, which
 * finds a fake a failed test left before it read its pid too (it ignores the SIGTERM that ends the proxy).
 */
export function killStubbornQemus(pidFile: string): void {
  for (const pid of processesNaming(`\0${pidFile}\0`)) {
    try {
      process.kill(pid, "SIGKILL");
    } catch { /* it ended meanwhile */ }
  }
}
