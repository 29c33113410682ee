#!/usr/bin/env bash
# Benchmarks, side by side with socat in the same run (ratios, not absolute
# times: these machines are noisy). Usage: scripts/bench.sh [SECTION...]
# Sections: exec, schema, events (default: all).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh >/dev/null
scripts/build.sh >/dev/null
exec node_modules/.bin/bun scripts/bench.ts "$@"
