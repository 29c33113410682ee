#!/usr/bin/env bash
# Install what a fresh machine lacks: the npm devDependencies (bun, deno,
# typescript, fast-check) from the lockfile, and from Debian: QEMU for the
# real-server tests, socat and jq for comparisons and the demo, tmux for the
# shell's terminal tests, zsh and fish for the completion scripts' checks,
# GNU time for the benchmarks' peak RSS.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x node_modules/.bin/bun ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi

missing=()
for pair in qemu-system-x86_64:qemu-system-x86 socat:socat jq:jq tmux:tmux zsh:zsh fish:fish /usr/bin/time:time; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing from Debian: ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
