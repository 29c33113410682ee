#!/usr/bin/env bash
# Build the single binary (bun build --compile; works offline) and its man page.
#   scripts/build.sh [--target TARGET] [OUT] [ENTRY]
#   default OUT: dist/qmpctl, ENTRY: cli.ts (both given: from the caller's directory);
#   TARGET e.g. bun-linux-arm64
# (scripts/bench.ts builds its "hello" reference here too, with the same flags.)
# --bytecode precompiles the bundle, which saves ~2 ms of every start-up.
# --splitting keeps each command's modules in chunks of their own inside the
# binary, loaded when the command runs: without it the one bundle holds every
# command (~300 KB), and loading it cost a one-shot exec ~3 ms (38.0 → 34.8 ms
# median, --version 28.0 → 23.6 ms, in one alternating run).
# --compile-jit-policy=10 keeps run-once start-up code in the interpreter
# (~5-8% less CPU for a one-shot exec); the event printers restore the normal
# policy (cli/io/process.ts normalJit) before their long-running loop.
# --bytecode-order (qmpctl only: two passes, see below) packs the bytecode a
# one-shot exec runs onto few pages: peak RSS 34.5 -> 33.5 MiB, time unchanged.
# --compile-exec-argv=--smol (a smaller heap) was measured and is not used: a
# one-shot exec's peak RSS 34.9 (without) vs 35.2 MiB, CPU and faults the same
# (medians of 60, alternating): the run ends before the heap would grow.
# The version is package.json's; from an untagged or modified tree it names
# the commit too (0.1.0+g1a2b3c4, 0.1.0+g1a2b3c4.dirty); a tree outside git
# (an unpacked source tarball) has no commit to name: plain 0.1.0.
# The man page's date, so that a rebuild makes the same page: SOURCE_DATE_EPOCH's
# when it is set (the reproducible-builds convention, a packager's), else the
# commit's; outside git without it, the day (UTC) package.json was last
# changed (a tarball from git archive gives every file the commit's time).
set -euo pipefail
usage="usage: scripts/build.sh [--target TARGET] [OUT] [ENTRY]   (default: dist/qmpctl cli.ts)"
caller=$PWD # OUT and ENTRY given are the caller's paths
cd "$(dirname "$0")/.."
target=()
case "${1:-}" in
  -h | --help)
    echo "$usage"
    exit 0
    ;;
  --target)
    if [ -z "${2:-}" ] || [[ $2 == -* ]]; then
      echo "build.sh: --target needs a target, e.g. bun-linux-arm64" >&2
      echo "$usage" >&2
      exit 2
    fi
    target=(--target "$2")
    shift 2
    ;;
esac
# A word that looks like an option is not taken for OUT or ENTRY (--help would have been built as a file).
for word in "$@"; do
  if [[ $word == -* ]]; then
    echo "build.sh: unknown option $word" >&2
    echo "$usage" >&2
    exit 2
  fi
done
out=${1:-dist/qmpctl}
entry=${2:-cli.ts}
[ $# -lt 1 ] || [[ $out == /* ]] || out=$caller/$out
[ $# -lt 2 ] || [[ $entry == /* ]] || entry=$caller/$entry
[ -x node_modules/.bin/bun ] || npm ci --no-audit --no-fund
mkdir -p "$(dirname "$out")"

suffix=""
man_date=""
if [ -n "${SOURCE_DATE_EPOCH:-}" ]; then
  if ! [[ $SOURCE_DATE_EPOCH =~ ^[0-9]+$ ]]; then
    echo "build.sh: SOURCE_DATE_EPOCH is not a number of seconds: $SOURCE_DATE_EPOCH" >&2
    exit 1
  fi
  # GNU date, or BSD's (macOS)
  man_date=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%d 2>/dev/null || date -u -r "$SOURCE_DATE_EPOCH" +%Y-%m-%d)
fi
# Only qmpctl's own checkout: a source tree unpacked inside another repository (a packager's) is not.
if [ "$(git rev-parse --show-toplevel 2>/dev/null)" = "$(pwd -P)" ]; then
  [ -n "$man_date" ] || man_date=$(TZ=UTC0 git log -1 --date=format-local:%Y-%m-%d --format=%cd) # UTC, as the others
  # Only the release tag, v and package.json's version, makes a release version (not a CI run's tag).
  version=$(sed -n 's/^  "version": "\(.*\)",$/\1/p' package.json)
  git tag --points-at HEAD | grep -qxF "v$version" || suffix="+g$(git rev-parse --short HEAD)"
  if ! git diff --quiet HEAD 2>/dev/null; then suffix="${suffix:-+g$(git rev-parse --short HEAD)}.dirty"; fi
fi

# The binary reads nothing from the directory it runs in: Bun's compiled
# executables otherwise load .env* files and bunfig.toml (whose `preload`
# runs code) from the working directory; tsconfig.json and package.json are
# off by default in Bun 1.4.5 and are turned off explicitly all the same.
no_autoload=(--no-compile-autoload-dotenv --no-compile-autoload-bunfig
  --no-compile-autoload-tsconfig --no-compile-autoload-package-json)
define=(--define "QMPCTL_BUILD_SUFFIX=\"$suffix\"")
build() {
  node_modules/.bin/bun build --compile "${no_autoload[@]}" --splitting --minify --bytecode --compile-jit-policy=10 --format=esm --sourcemap=none \
    "${define[@]}" "$@" "$entry" >/dev/null
}
if [ "$entry" = cli.ts ]; then
  # Two passes: a first binary (for this machine) records the order in which
  # a one-shot exec runs the bytecode; the binary is then built with the
  # bytecode laid out in that order (scripts/bytecode_order.ts says why).
  work=$(mktemp -d "$(dirname "$out")/.build.XXXXXX") # beside OUT: /tmp may be noexec
  trap 'rm -rf "$work"' EXIT
  build --outfile "$work/qmpctl"
  node_modules/.bin/bun scripts/bytecode_order.ts "$work/qmpctl" "$work/order"
  build "${target[@]}" --bytecode-order="$work/order" --outfile "$out"
  [ -n "$man_date" ] || man_date=$(date -u -r package.json +%Y-%m-%d) # outside git (date -r FILE: GNU's and BSD's)
  QMPCTL_MAN_DATE=$man_date node_modules/.bin/bun "${define[@]}" scripts/manpage.ts >"$(dirname "$out")/qmpctl.1"
  echo "built $out ($(du -h "$out" | cut -f1)) and $(dirname "$out")/qmpctl.1"
else
  build "${target[@]}" --outfile "$out"
  echo "built $out ($(du -h "$out" | cut -f1))"
fi
# Bun 1.4.5 leaves a cross-built darwin-x64 binary with the runtime's own
# signature, which no longer holds: macOS would kill it at launch. (Its
# darwin-arm64 signature holds: release_check.sh checks it, untouched.)
[ "${target[1]:-}" != bun-darwin-x64 ] || node_modules/.bin/bun scripts/macho_sign.ts sign "$out"
