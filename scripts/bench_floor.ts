/**
 * The least a Bun QMP client does for `exec query-status`, as a reference
 * for scripts/bench.ts (built with scripts/build.sh, so with qmpctl's flags):
 * connect, send qmp_capabilities and the command at once, print the reply's
 * return value. No argument parsing, bounds, typed errors or exactness: what
 * qmpctl costs above this is its own work; the rest is the runtime's.
 *   bench_floor SOCKET
 */
let received = "";
Bun.connect({
  unix: process.argv[2],
  socket: {
    open(socket) {
      socket.write('{"execute":"qmp_capabilities"}\n{"execute":"query-status","id":"floor"}\n');
    },
    data(socket, chunk) {
      received += chunk.toString();
      const line = received.split("\n").find((l) => l.includes('"id": "floor"'));
      if (!line) return;
      console.log(JSON.stringify(JSON.parse(line).return));
      socket.end();
    },
  },
});
