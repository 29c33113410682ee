#!/usr/bin/env bash
# Build the release: one binary per target, the man page, the install script
# and SHA256SUMS, into dist/release/.
#   scripts/release.sh
# bun fetches each target's runtime from the npm registry (@oven/bun-*) the
# first time; nothing else is downloaded.
set -euo pipefail
case "${1:-}" in
  "") ;;
  -h | --help) sed -n '2,4s/^# \{0,1\}//p' "$0" && exit 0 ;;
  *) echo "release.sh: it takes no arguments (the release goes to dist/release/)" >&2 && exit 2 ;;
esac
cd "$(dirname "$0")/.."
out=dist/release
rm -rf "$out"
mkdir -p "$out"
# One x64 binary per system: since Bun 1.4 the x64 runtime runs on every
# x86-64 with SSE4.2 and picks its AVX2 code at run time; its -baseline
# packages are the same file (oven-sh/bun#36465).
for name in linux-x64 linux-arm64 darwin-arm64 darwin-x64; do
  scripts/build.sh --target "bun-$name" "$out/qmpctl-$name" >/dev/null
  echo "built $out/qmpctl-$name"
done
cp scripts/install.sh "$out/install.sh"
(cd "$out" && sha256sum qmpctl-* qmpctl.1 install.sh >SHA256SUMS)
echo "wrote $out/SHA256SUMS"
