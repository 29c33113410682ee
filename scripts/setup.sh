#!/usr/bin/env bash
# Install what a fresh machine lacks: the npm devDependencies (bun, deno,
# typescript, fast-check) from the lockfile, and from Debian: QEMU for the
# real-server tests, qemu-guest-agent (qemu-ga, run on this host) for the guest
# agent tests, socat and jq for comparisons and the demo, tmux for the
# shell's terminal tests, zsh, fish and bash-completion for the completion
# scripts' checks, man-db for the man page, qemu-user-static and the arm64 C
# library to run the arm64 release binary, strace to see which files the
# built binary opens, OpenSSH's client and server for the ssh:// tests,
# ansible-core for the Ansible module's tests, GNU time for the benchmarks'
# peak RSS; and what tests call that a minimal Debian lacks: python3 (fake
# peers), pgrep (procps), ss (iproute2: what an ssh master listens on),
# strip (binutils: install.sh's refusal of a stripped binary).
#   scripts/setup.sh --demo: only what scripts/demo.sh needs (the npm tools, QEMU, jq)
set -euo pipefail
cd "$(dirname "$0")/.."
demo=false
case "${1:-}" in
  "") ;;
  --demo) demo=true ;;
  *)
    echo "usage: scripts/setup.sh [--demo]   (--demo: only what scripts/demo.sh needs)" >&2
    exit 2
    ;;
esac

if [ ! -x node_modules/.bin/bun ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi

missing=()
commands=(qemu-system-x86_64:qemu-system-x86 jq:jq)
files=()
if ! $demo; then
  commands+=(qemu-ga:qemu-guest-agent strace:strace socat:socat tmux:tmux zsh:zsh fish:fish man:man-db file:file
    qemu-aarch64-static:qemu-user-static ssh:openssh-client /usr/sbin/sshd:openssh-server
    ansible-playbook:ansible-core /usr/bin/time:time python3:python3 pgrep:procps ss:iproute2
    strip:binutils)
  files+=(/usr/share/bash-completion/bash_completion:bash-completion
    /usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1:libc6-arm64-cross)
fi
for pair in "${commands[@]}"; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
done
for pair in "${files[@]}"; do
  [ -e "${pair%%:*}" ] || missing+=("${pair#*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing from Debian: ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
