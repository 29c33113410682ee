#!/usr/bin/env bash
# Many commands and many VMs: batch vs socat pipelined, fan-out vs a shell
# loop of one-shot runs (16 and 64 VMs). Ratios within one alternating run.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh >/dev/null
scripts/build.sh >/dev/null
exec node_modules/.bin/bun scripts/bench_many.ts "$@"
