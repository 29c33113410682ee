#!/usr/bin/env bash
# Benchmarks, side by side with socat in the same run (ratios, not absolute
# times: these machines are noisy). Usage: scripts/bench.sh [SECTION...]
# Sections: exec, threads (needs strace), instructions and timeline (need valgrind), schema, events (default: all,
# then scripts/bench_many.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh >/dev/null
scripts/build.sh >/dev/null
[ $# -gt 0 ] || node_modules/.bin/bun scripts/bench_many.ts # batch and fan-out: scripts/bench_many.sh
exec node_modules/.bin/bun scripts/bench.ts "$@"
