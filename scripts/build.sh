#!/usr/bin/env bash
# Build the single binary (bun build --compile; works offline).
#   scripts/build.sh [OUT] [ENTRY]   default OUT: dist/qmpctl, ENTRY: cli.ts
# (scripts/bench.ts builds its "hello" reference here too, with the same flags.)
# --bytecode precompiles the bundle, which saves ~2 ms of every start-up.
# --compile-jit-policy=10 keeps run-once start-up code in the interpreter
# (~5-8% less CPU for a one-shot exec); the event printers restore the normal
# policy (cli/io.ts normalJit) before their long-running loop.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-dist/qmpctl}
entry=${2:-cli.ts}
[ -x node_modules/.bin/bun ] || npm ci --no-audit --no-fund
mkdir -p "$(dirname "$out")"
node_modules/.bin/bun build --compile --minify --bytecode --compile-jit-policy=10 --format=esm --sourcemap=none "$entry" --outfile "$out" >/dev/null
echo "built $out ($(du -h "$out" | cut -f1))"
