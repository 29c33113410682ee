#!/usr/bin/env bash
# Build the release: one binary per target, the man page, the install script
# and SHA256SUMS, into dist/release/.
#   scripts/release.sh
# bun fetches each target's runtime from the npm registry (@oven/bun-*) the
# first time; nothing else is downloaded.
set -euo pipefail
cd "$(dirname "$0")/.."
out=dist/release
rm -rf "$out"
mkdir -p "$out"
declare -A targets=(
  [linux-x64]=bun-linux-x64
  [linux-x64-baseline]=bun-linux-x64-baseline
  [linux-arm64]=bun-linux-arm64
  [darwin-arm64]=bun-darwin-arm64
  [darwin-x64]=bun-darwin-x64
)
for name in linux-x64 linux-x64-baseline linux-arm64 darwin-arm64 darwin-x64; do
  scripts/build.sh --target "${targets[$name]}" "$out/qmpctl-$name" >/dev/null
  echo "built $out/qmpctl-$name"
done
cp scripts/install.sh "$out/install.sh"
(cd "$out" && sha256sum qmpctl-* qmpctl.1 install.sh >SHA256SUMS)
echo "wrote $out/SHA256SUMS"
