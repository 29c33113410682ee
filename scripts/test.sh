#!/usr/bin/env bash
# Everything CI checks, on a fresh machine too: install, build, type-check,
# format and lint, every test (unit, fake server, real QEMU, terminal), and
# one run of the CLI under Deno.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh

echo "== type-check (tsc --noEmit)"
node_modules/.bin/tsc --noEmit -p .
echo "== format and lint (deno fmt --check, deno lint)"
node_modules/.bin/deno fmt --check --quiet
node_modules/.bin/deno lint --quiet
echo "== doc examples (deno check --doc-only: every @example in lib/ type-checks against the code)"
# deno_doc.json: deno imports every export of a file into its examples, which
# noUnusedLocals (tsconfig.json) would reject; the examples are checked, not run
# (most of them talk to a QEMU).
node_modules/.bin/deno check --quiet --config deno_doc.json --doc-only lib/*.ts lib/schema/*.ts
echo "== API docs (deno doc --lint lib/mod.ts: every public symbol documented, no private type in a public one)"
# It also warns of node_modules' type packages it cannot resolve (Node built-ins): shown only on failure.
doc_lint=$(NO_COLOR=1 node_modules/.bin/deno doc --lint lib/mod.ts 2>&1) ||
  { printf '%s\n' "$doc_lint" | grep -v 'Failed resolving types\|^    at file://.*/node_modules/'; exit 1; }
echo "== the library as a Deno project type-checks it (no Bun types there: lib/bun_api.ts)"
consumer=$(mktemp -d) deno=$PWD/node_modules/.bin/deno
printf 'import { QmpClient } from "%s/lib/mod.ts";\nconsole.log(QmpClient.name);\n' "$PWD" >"$consumer/main.ts"
(cd "$consumer" && "$deno" check --quiet main.ts)
rm -rf "$consumer"

echo "== tests (bun test)"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
node_modules/.bin/bun test --timeout 60000 "$@" 2>&1 | tee "$log" || status=$?

echo "== the CLI under Deno"
scripts/deno_smoke.sh || status=$?

# CI shows only the end of this output: the failures again, each with what bun printed around it (its error).
failures='^(fail)\|^# Unhandled error'
if grep -q "$failures" "$log"; then
  echo "== the failures again (the first five), each with the lines around it"
  sed '/^ *[0-9]* tests\? failed:$/,$d' "$log" | grep -B 25 -A 8 -m 5 "$failures"
fi

passed=$(sed -n 's/^ *\([0-9]\+\) pass$/\1/p' "$log" | tail -1)
failed=$(sed -n 's/^ *\([0-9]\+\) fail$/\1/p' "$log" | tail -1)
echo "tests: ${passed:-0} passed, ${failed:-0} failed"
[ "${passed:-0}" -gt 0 ] || status=1
exit "$status"
