#!/usr/bin/env bash
# Soak test (not in CI): `qmpctl events` for DURATION (default 10m) against a
# real QEMU flooding events, with a slow reader; fds and RSS every 10 s.
#   scripts/soak.sh [DURATION]        e.g. scripts/soak.sh 3m
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x dist/qmpctl ] || scripts/build.sh
exec node_modules/.bin/bun scripts/soak.ts "${1:-10m}"
