#!/usr/bin/env bash
# Deno stays a first-class way to run qmpctl: run the CLI from source under
# Deno against a throwaway QEMU and check what it prints.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=$(mktemp -d)
trap 'kill "$(cat "$dir/qemu.pid" 2>/dev/null)" "$(cat "$dir/qemu-ga.pid" 2>/dev/null)" 2>/dev/null || true; rm -rf "$dir"' EXIT
scripts/qemu.sh "$dir"
deno="node_modules/.bin/deno run --allow-read --allow-write --allow-env --allow-net cli.ts -s $dir/qmp.sock"
out=$($deno exec query-status)
[ "$(echo "$out" | jq -r .status)" = "running" ] || { echo "deno: unexpected output: $out"; exit 1; }
set +e
$deno exec no-such-command 2>"$dir/err"
code=$?
set -e
[ "$code" -eq 1 ] && grep -q "^qmpctl: CommandNotFound" "$dir/err" || { echo "deno: expected exit 1, got $code"; exit 1; }
set +e
$deno exec query-qmp-schema 2>"$dir/err" | head -c1 >/dev/null
code=${PIPESTATUS[0]}
set -e
[ "$code" -eq 0 ] && [ ! -s "$dir/err" ] || { echo "deno: stdout closed early: exit $code, $(cat "$dir/err")"; exit 1; }
echo "deno: exec query-status → $out; unknown command → exit 1; closed stdout → exit 0"

# The guest agent: qemu-ga on this host, reached through ga wait (retries until it answers).
qemu-ga -m unix-listen -p "$dir/ga.sock" -t "$dir" -f "$dir/qemu-ga.pid" -d
ga="node_modules/.bin/deno run --allow-read --allow-write --allow-env --allow-net cli.ts -s $dir/ga.sock ga"
$ga wait --timeout 10s
set +e
out=$($ga exec -- sh -c 'echo guest; exit 3')
code=$?
set -e
[ "$code" -eq 3 ] && [ "$out" = "guest" ] || { echo "deno: ga exec: expected exit 3 and 'guest', got $code '$out'"; exit 1; }
echo "deno: ga wait → 0; ga exec → its output and exit 3"
