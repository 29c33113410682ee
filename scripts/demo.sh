#!/usr/bin/env bash
# Build qmpctl, start a throwaway QEMU, and show it working.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --demo >/dev/null # npm's tools, QEMU and jq only
scripts/build.sh
dir=$(mktemp -d)
trap 'kill "$(cat "$dir/qemu.pid" 2>/dev/null)" 2>/dev/null || true; rm -rf "$dir"' EXIT
scripts/qemu.sh "$dir"
export QMPCTL_SOCKET="$dir/qmp.sock"
export XDG_CACHE_HOME="$dir/cache" # the schema cache of this throwaway QEMU
qmpctl() { dist/qmpctl "$@" 2>&1; } # stderr inline, so the demo reads in order
show() { printf '\n$ %s\n' "$*"; }

show "qmpctl exec query-version | jq"
qmpctl exec query-version | jq
show "qmpctl exec query-status"
qmpctl exec query-status
show "qmpctl exec no-such-command; echo \"exit \$?\""
qmpctl exec no-such-command || echo "exit $?"
show "qmpctl exec no-such-command --raw 2>/dev/null | jq -r .error.class   # the error reply itself, on stdout"
dist/qmpctl exec no-such-command --raw 2>/dev/null | jq -r .error.class || true
show "qmpctl hmp 'info status'"
qmpctl hmp 'info status'
show "qmpctl -s /nonexistent.sock exec query-status; echo \"exit \$?\""
qmpctl -s /nonexistent.sock exec query-status || echo "exit $?"
show "qmpctl exec stop --wait-event STOP    # listens before sending: STOP comes before the reply"
qmpctl exec stop --wait-event STOP
show "qmpctl exec cont; qmpctl wait-event SHUTDOWN --timeout 1s; echo \"exit \$?\""
qmpctl exec cont
qmpctl wait-event SHUTDOWN --timeout 1s || echo "exit $?"
show "qmpctl exec set_link name=123 up=off   # typed by QEMU's schema: name stays a string, up a bool"
qmpctl exec set_link name=123 up=off || echo "exit $?"
show "qmpctl exec set_link name=x up=maybe"
qmpctl exec set_link name=x up=maybe || echo "exit $?"
show "qmpctl -s \"\$dir/*.sock\" exec query-name   # fan-out: both monitors of this QEMU, each line labelled"
qmpctl -s "$dir/*.sock" exec query-name | sed "s|$dir|\$dir|g"
show "printf 'query-status\\nno-such-command\\nquery-name\\n' | qmpctl batch; echo \"exit \$?\"   # pipelined"
printf 'query-status\nno-such-command\nquery-name\n' | qmpctl batch || echo "exit $?"
qmpctl exec blockdev-add driver=null-co node-name=n0 size=1073741824 >/dev/null
qmpctl exec blockdev-add driver=null-co node-name=n1 size=1073741824 >/dev/null
show "qmpctl exec blockdev-backup job-id=b0 device=n0 target=n1 sync=full --wait-job   # n0, n1: null-co nodes of 1 GiB"
qmpctl exec blockdev-backup job-id=b0 device=n0 target=n1 sync=full --wait-job || echo "exit $?"
