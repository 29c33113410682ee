#!/usr/bin/env bash
# Deno stays a first-class way to run qmpctl: run the CLI from source under
# Deno against a throwaway QEMU and check what it prints. Each run is bounded
# (timeout 120s: the first one compiles the sources), and each check says
# which part failed: the CLI's exit status, or what it printed.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=$(mktemp -d)
trap 'kill "$(cat "$dir/qemu.pid" 2>/dev/null)" 2>/dev/null || true; rm -rf "$dir"' EXIT
scripts/qemu.sh "$dir"
# Through deno.json's task, so that its permissions are the ones checked.
qmpctl_deno() { timeout 120 node_modules/.bin/deno task -q qmpctl "$@"; }
deno() { qmpctl_deno -s "$dir/qmp.sock" "$@"; }
fail() {
  echo "deno: $*" >&2
  exit 1
}

code=0
out=$(deno exec query-status) || code=$?
[ "$code" -eq 0 ] || fail "exec query-status: exit $code (124: timed out)"
status=$(echo "$out" | jq -r .status 2>/dev/null) || fail "exec query-status printed no JSON: $out"
[ "$status" = "running" ] || fail "exec query-status: status '$status', not running: $out"

code=0
deno exec no-such-command 2>"$dir/err" || code=$?
[ "$code" -eq 1 ] || fail "exec no-such-command: expected exit 1, got $code: $(cat "$dir/err")"
grep -q "^qmpctl: CommandNotFound" "$dir/err" || fail "exec no-such-command: stderr is not a CommandNotFound line: $(cat "$dir/err")"

set +e
deno exec query-qmp-schema 2>"$dir/err" | head -c1 >/dev/null
code=${PIPESTATUS[0]}
set -e
[ "$code" -eq 0 ] || fail "stdout closed early: expected exit 0, got $code: $(cat "$dir/err")"
[ ! -s "$dir/err" ] || fail "stdout closed early: stderr not empty: $(cat "$dir/err")"

# A full disk: exit 74 saying so (Deno throws a failed write at once, where Bun reports it later).
code=0
deno exec query-status >/dev/full 2>"$dir/err" || code=$?
[ "$code" -eq 74 ] || fail "exec > /dev/full: expected exit 74, got $code: $(cat "$dir/err")"
grep -q "^qmpctl: could not write the output: no space left" "$dir/err" || fail "exec > /dev/full: stderr: $(cat "$dir/err")"

# Run without a permission qmpctl needs: exit 2 naming it, not an internal error. Without -s the socket is
# QMPCTL_SOCKET's, the variable named (not one of Bun's, which Deno does not read).
code=0
QMPCTL_SOCKET="$dir/qmp.sock" timeout 120 node_modules/deno/deno run -q --allow-net cli.ts exec query-status \
  2>"$dir/err" || code=$?
[ "$code" -eq 2 ] || fail "deno run without --allow-env: expected exit 2, got $code: $(cat "$dir/err")"
grep -q 'Requires env access to "QMPCTL_SOCKET".*deno task qmpctl' "$dir/err" ||
  fail "deno run without --allow-env: stderr: $(cat "$dir/err")"

# The same for a permission a connection needs (read, for a UNIX socket's path): not a connection error (exit 3).
code=0
timeout 120 node_modules/deno/deno run -q --allow-env --allow-net cli.ts -s "$dir/qmp.sock" exec query-status 2>"$dir/err" ||
  code=$?
[ "$code" -eq 2 ] && grep -q "Requires read access.*deno task qmpctl" "$dir/err" ||
  fail "deno run without --allow-read: expected exit 2 naming it, got $code: $(cat "$dir/err")"

# A TCP host name without --allow-net: the same (Deno's lookup fails as EPERM, which is not the system's refusal).
code=0
timeout 120 node_modules/deno/deno run -q --allow-env --allow-read --allow-write cli.ts -s localhost:4444 \
  exec query-status 2>"$dir/err" || code=$?
[ "$code" -eq 2 ] && grep -q 'Requires net access to "localhost:4444".*deno task qmpctl' "$dir/err" ||
  fail "-s localhost:4444 without --allow-net: expected exit 2 naming it, got $code: $(cat "$dir/err")"

# A word that is not UTF-8 (Deno makes its bytes U+FFFD; the task cannot read /proc/self/cmdline's): exit 2
# saying so, nothing sent (-v shows no message). QMPCTL_SOCKET likewise: Deno will not decode it.
code=0
deno -v exec qom-get path=$'/machine\xff' property=type 2>"$dir/err" || code=$?
[ "$code" -eq 2 ] && [ "$(wc -l <"$dir/err")" -eq 1 ] &&
  grep -q "^qmpctl: 'path=/machine.*' holds U+FFFD, which may stand for bytes that are not UTF-8 (command-line word 6)" \
    "$dir/err" || fail "a word that is not UTF-8: expected exit 2 and one line saying so, got $code: $(cat "$dir/err")"
code=0
QMPCTL_SOCKET="$dir/qmp.sock"$'\xff' qmpctl_deno exec query-status 2>"$dir/err" || code=$?
[ "$code" -eq 2 ] && grep -q "^qmpctl: QMPCTL_SOCKET is not valid UTF-8" "$dir/err" ||
  fail "QMPCTL_SOCKET not UTF-8: expected exit 2 saying so, got $code: $(cat "$dir/err")"

# A file under /dev such as /dev/stdin: Deno asks --allow-all, which the task does not grant (exit 2, saying so).
code=0
echo query-status | deno batch /dev/stdin >/dev/null 2>"$dir/err" || code=$?
[ "$code" -eq 2 ] && grep -q 'Requires all access to "/dev/stdin".*(deno task qmpctl does not grant it; - names stdin and stdout)$' "$dir/err" ||
  fail "batch /dev/stdin: expected exit 2 naming --allow-all, got $code: $(cat "$dir/err")"

# The task runs qmpctl in the directory it is started from: a relative path is the user's.
code=0
(cd "$dir" && timeout 120 "$OLDPWD/node_modules/.bin/deno" task -q --config "$OLDPWD/deno.json" qmpctl -s qmp.sock \
  exec query-status) >/dev/null 2>"$dir/err" || code=$?
[ "$code" -eq 0 ] || fail "deno task from another directory, -s qmp.sock relative to it: exit $code: $(cat "$dir/err")"

# ssh:// runs ssh: without --allow-run, exit 2 naming that permission (not "ssh exited with status 127");
# through the task, which grants it, ssh runs (none listens on localhost's port 22 here: ssh's own reason).
code=0
timeout 120 node_modules/deno/deno run -q --allow-net --allow-read --allow-env --allow-write --allow-sys=uid,getegid cli.ts \
  -s "ssh://localhost$dir/qmp.sock" exec query-status 2>"$dir/err" || code=$?
[ "$code" -eq 2 ] || fail "ssh:// without --allow-run: expected exit 2, got $code: $(cat "$dir/err")"
grep -q 'Requires run access to "ssh"' "$dir/err" || fail "ssh:// without --allow-run: stderr: $(cat "$dir/err")"
code=0
QMPCTL_SSH_COMMAND="$dir/no-such-ssh" qmpctl_deno -s "ssh://localhost$dir/qmp.sock" exec query-status 2>"$dir/err" ||
  code=$?
[ "$code" -eq 3 ] && grep -q "cannot run $dir/no-such-ssh: .*ENOENT" "$dir/err" ||
  fail "ssh:// with a missing ssh: expected exit 3 naming it, got $code: $(cat "$dir/err")"

# The schema cache under Deno: a typed exec writes an entry (the owner check
# has the uid), under a directory writable by this user's own group too (it
# has the gid); a link planted as the cache directory is not followed (Deno
# resolves links before it opens, O_NOFOLLOW or not): its target keeps its
# mode and its files.
mkdir -p "$dir/cache" "$dir/linked" "$dir/victim" "$dir/group"
chmod 777 "$dir/victim"
chmod 775 "$dir/group"
echo keep >"$dir/victim/keep"
ln -s "$dir/victim" "$dir/linked/qmpctl"
for home in cache linked group/cache; do
  code=0
  XDG_CACHE_HOME="$dir/$home" deno exec qom-list path=/machine >/dev/null 2>"$dir/err" </dev/null || code=$?
  [ "$code" -eq 0 ] || fail "typed exec (cache in $home): exit $code: $(cat "$dir/err")"
done
for home in cache group/cache; do
  ls "$dir/$home/qmpctl" | grep -q '^schema-' || fail "typed exec wrote no schema cache entry: $(ls -la "$dir/$home/qmpctl" 2>&1)"
done
[ "$(stat -c %a "$dir/victim")" = 777 ] && [ "$(ls "$dir/victim")" = keep ] ||
  fail "a link planted as the cache directory was followed: $(stat -c %a "$dir/victim") $(ls "$dir/victim")"

code=0
version=$(qmpctl_deno --version 2>"$dir/err") || code=$?
[ "$code" -eq 0 ] || fail "deno task qmpctl --version: exit $code: $(cat "$dir/err")"
[[ "$version" == "qmpctl "* ]] || fail "deno task qmpctl --version printed: $version"

# The guest agent: qemu-ga on this host, reached through ga wait (retries until it answers).
qemu-ga -m unix-listen -p "$dir/ga.sock" -t "$dir" -f "$dir/qemu-ga.pid" -d
trap 'kill "$(cat "$dir/qemu.pid" 2>/dev/null)" "$(cat "$dir/qemu-ga.pid" 2>/dev/null)" 2>/dev/null || true; rm -rf "$dir"' EXIT
ga() { qmpctl_deno -s "$dir/ga.sock" ga "$@"; }
code=0
ga wait --timeout 10s || code=$?
[ "$code" -eq 0 ] || fail "ga wait: exit $code"
code=0
guest=$(ga exec -- sh -c 'echo guest; exit 3') || code=$?
[ "$code" -eq 3 ] && [ "$guest" = "guest" ] || fail "ga exec: expected exit 3 and 'guest', got $code '$guest'"

# The library under Deno: a guest agent channel with no agent behind it (it
# accepts and never reads) ends at the connect timeout, and the process then
# exits by itself (node:net's end() alone kept the socket open until the peer
# closed it, which it never does).
python3 -c 'import socket, sys, time
s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(); c, _ = s.accept(); time.sleep(60)' \
  "$dir/silent.sock" </dev/null >/dev/null 2>&1 &
silent_pid=$!
while [ ! -S "$dir/silent.sock" ]; do sleep 0.05; done
cat >"$dir/silent.ts" <<EOF
import { GuestAgent } from "$PWD/lib/mod.ts";
await GuestAgent.connect("$dir/silent.sock", { connectTimeout: 300 }).catch((error) => console.log(error.code));
EOF
code=0
printed=$(timeout 30 node_modules/.bin/deno run -q -A "$dir/silent.ts" 2>"$dir/err") || code=$?
kill "$silent_pid" 2>/dev/null || true
[ "$code" -eq 0 ] && [ "$printed" = CONNECT_TIMEOUT ] ||
  fail "library, a silent agent channel: expected CONNECT_TIMEOUT and an exit, got exit $code (124: it did not exit) '$printed': $(cat "$dir/err")"

# A peer that sends what is not a greeting at once, before Deno's connect has returned: connect throws every
# time (it once resolved a client already closed), for the monitor's client and the agent's.
python3 -c 'import socket, sys
s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(64)
while True:
    c, _ = s.accept(); c.sendall(b"garbage\n"); c.close()' "$dir/garbage.sock" </dev/null >/dev/null 2>&1 &
garbage_pid=$!
while [ ! -S "$dir/garbage.sock" ]; do sleep 0.05; done
cat >"$dir/garbage.ts" <<TS
import { GuestAgent, QmpClient } from "$PWD/lib/mod.ts";
let resolved = 0;
for (let i = 0; i < 20; i++) {
  await QmpClient.connect("$dir/garbage.sock", { connectTimeout: 3000 }).then(() => resolved++, () => {});
  await GuestAgent.connect("$dir/garbage.sock", { connectTimeout: 3000 }).then(() => resolved++, () => {});
}
console.log(resolved);
TS
code=0
printed=$(timeout 60 node_modules/.bin/deno run -q -A "$dir/garbage.ts" 2>"$dir/err") || code=$?
kill "$garbage_pid" 2>/dev/null || true
[ "$code" -eq 0 ] && [ "$printed" = 0 ] ||
  fail "library, a peer sending garbage at once: expected every connect to throw, got exit $code, $printed resolved: $(cat "$dir/err")"

# The library's refusals and bounds under Deno: a host name without --allow-net is a ConnectionError whose
# cause is Deno's own NotCapable, and a connectTimeout past a timer's range (2^31 ms) is no error at once
# (Deno fires such a timer at once): the caller's signal ends the wait.
cat >"$dir/bounds.ts" <<TS
import { QmpClient } from "$PWD/lib/mod.ts";
const denied = await QmpClient.connect("localhost:1", { connectTimeout: 1000 }).catch((e) => e.cause);
const started = performance.now();
const long = await QmpClient.connect("$dir/silent2.sock", { connectTimeout: 2 ** 31, signal: AbortSignal.timeout(300) })
  .catch((e) => e.code);
console.log(denied instanceof Deno.errors.NotCapable, long, performance.now() - started >= 250);
TS
python3 -c 'import socket, sys, time
s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(); c, _ = s.accept(); time.sleep(30)' \
  "$dir/silent2.sock" </dev/null >/dev/null 2>&1 &
silent2_pid=$!
while [ ! -S "$dir/silent2.sock" ]; do sleep 0.05; done
code=0
printed=$(timeout 30 node_modules/.bin/deno run -q --no-prompt --allow-read --allow-write --allow-env \
  --allow-net="unix:$dir/silent2.sock" "$dir/bounds.ts" 2>"$dir/err") || code=$?
kill "$silent2_pid" 2>/dev/null || true
[ "$code" -eq 0 ] && [ "$printed" = "true TIMEOUT true" ] ||
  fail "library, NotCapable and a long connectTimeout: expected 'true TIMEOUT true', got exit $code '$printed': $(cat "$dir/err")"

# proxy -- QEMU: QEMU's exit status (0 when it quits on the SIGTERM passed on), not the signal's.
qmpctl_deno proxy --listen "$dir/shared.sock" -- qemu-system-x86_64 -machine none -nodefaults -display none \
  2>"$dir/proxy.err" &
proxy_pid=$!
code=0
node_modules/.bin/deno task -q qmpctl -s "$dir/shared.sock" --wait-socket 60s exec query-status >/dev/null || code=$?
[ "$code" -eq 0 ] || fail "exec through proxy -- QEMU: exit $code: $(cat "$dir/proxy.err")"
pkill -TERM -f "cli.ts proxy --listen $dir/shared.sock"
code=0
wait "$proxy_pid" || code=$?
[ "$code" -eq 0 ] || fail "proxy -- QEMU sent SIGTERM: expected exit 0 (QEMU's), got $code: $(cat "$dir/proxy.err")"

echo "deno: exec query-status → $out; unknown command → exit 1; closed stdout → exit 0; full disk → exit 74;" \
  "a permission missing → exit 2 (ssh:// without --allow-run too, a host name without --allow-net, a /dev file without --allow-all);" \
  "a word or QMPCTL_SOCKET not UTF-8 → exit 2, nothing sent; a relative path from another directory;" \
  "a missing ssh named; deno task → $version; schema cache written (in a group-writable directory too), a planted link not followed;" \
  "proxy -- QEMU stopped → QEMU's 0; ga exec → its output and exit 3; the library exits after a silent channel's timeout;" \
  "its connect throws when the peer sends garbage at once; a host name refused is Deno's NotCapable; a connectTimeout of 2^31 ms waits"
