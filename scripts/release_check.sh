#!/usr/bin/env bash
# Build the release (scripts/release.sh) and try what can be tried on this
# machine: the checksums, the x64 binary and the arm64 binary (under
# qemu-user) answering a real QEMU, the macOS binaries' format and code
# signatures (scripts/macho_sign.ts, which signs darwin-arm64 anew to the very
# bytes Bun's signer wrote: its darwin-x64 signature is made the same way).
# Slower than the tests (four builds, and the runtimes' first download):
# CI (.ci/run) runs it before scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh >/dev/null
scripts/release.sh
cd dist/release
sha256sum -c --quiet SHA256SUMS
echo "SHA256SUMS: every file checks"

dir=$(mktemp -d)
trap 'kill "$(cat "$dir/qemu.pid" 2>/dev/null)" 2>/dev/null || true; rm -rf "$dir"' EXIT
../../scripts/qemu.sh "$dir"
expect_status() { # NAME OUTPUT
  if [ "$2" != '{"status":"running","singlestep":false,"running":true}' ]; then
    echo "release_check: $1 printed: $2" >&2
    exit 1
  fi
  echo "$1: exec query-status → $2"
}
expect_status qmpctl-linux-x64 "$(./qmpctl-linux-x64 -s "$dir/qmp.sock" exec query-status)"
expect_status "qmpctl-linux-arm64 (qemu-aarch64-static)" \
  "$(qemu-aarch64-static -L /usr/aarch64-linux-gnu ./qmpctl-linux-arm64 -s "$dir/qmp.sock" exec query-status)"
for pair in "darwin-arm64:Mach-O 64-bit arm64 executable" "darwin-x64:Mach-O 64-bit x86_64 executable" \
  "linux-arm64:ELF 64-bit LSB executable, ARM aarch64" "linux-x64:ELF 64-bit LSB executable, x86-64"; do
  name=qmpctl-${pair%%:*}
  description=$(file -b "$name")
  case "$description" in
    "${pair#*:}"*) echo "$name: $description" | cut -c1-100 ;;
    *) echo "release_check: $name is $description" >&2 && exit 1 ;;
  esac
done
../../node_modules/.bin/bun ../../scripts/macho_sign.ts check qmpctl-darwin-arm64 qmpctl-darwin-x64
../../node_modules/.bin/bun ../../scripts/macho_sign.ts same qmpctl-darwin-arm64
prefix=$dir/prefix
./install.sh "$prefix" >/dev/null
expect_status "install.sh from the release folder" "$("$prefix/bin/qmpctl" -s "$dir/qmp.sock" exec query-status)"
echo "release check: passed"
