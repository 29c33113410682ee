#!/usr/bin/env bash
# The cost of sharing a monitor: `qmpctl exec query-status` and 1000
# pipelined commands through `qmpctl proxy` against the same QEMU directly,
# alternated in one run (ratios, not absolute times: these machines are noisy).
# Usage: scripts/bench_proxy.sh   (BENCH_RUNS=N to change the number of rounds)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh >/dev/null
scripts/build.sh >/dev/null
exec node_modules/.bin/bun scripts/bench_proxy.ts "$@"
