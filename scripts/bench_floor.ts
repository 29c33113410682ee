/**
 * The least a Bun QMP client does for `exec query-status`, as a reference
 * for scripts/bench.ts (built with scripts/build.sh, so with qmpctl's flags):
 * connect, send qmp_capabilities and the command, print the reply's return
 * value. No argument parsing, bounds, typed errors or exactness: what qmpctl
 * costs above this is its own work; the rest is the runtime's and QEMU's.
 *   bench_floor SOCKET [--after-greeting]
 * By default both requests go out as soon as the socket opens, which a real
 * client must not do (QEMU may not have accepted it yet: the monitor serves
 * one client at a time). With --after-greeting they go out once the greeting
 * has come, as qmpctl sends them: the floor of a correct client.
 */
const afterGreeting = process.argv[3] === "--after-greeting";
const requests = '{"execute":"qmp_capabilities"}\n{"execute":"query-status","id":"floor"}\n';
let received = "";
let sent = false;
Bun.connect({
  unix: process.argv[2],
  socket: {
    open(socket) {
      if (afterGreeting) return;
      socket.write(requests);
      sent = true;
    },
    data(socket, chunk) {
      received += chunk.toString();
      if (!sent && received.includes("\n")) { // the greeting's line
        socket.write(requests);
        sent = true;
      }
      const line = received.split("\n").find((l) => l.includes('"id": "floor"'));
      if (!line) return;
      console.log(JSON.stringify(JSON.parse(line).return));
      socket.end();
    },
  },
});
