#!/usr/bin/env bash
# Build the single binary: dist/qmpctl (bun build --compile; works offline).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x node_modules/.bin/bun ] || npm ci --no-audit --no-fund
mkdir -p dist
node_modules/.bin/bun build --compile --minify --bytecode --format=esm --sourcemap=none cli.ts --outfile dist/qmpctl >/dev/null
echo "built dist/qmpctl ($(du -h dist/qmpctl | cut -f1))"
