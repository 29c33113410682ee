#!/usr/bin/env bash
# Start a throwaway QEMU with no guest and print its QMP socket paths:
#   scripts/qemu.sh DIR [extra QEMU args...]  → DIR/qmp.sock, DIR/control.sock, DIR/qemu.pid
# Stop it with: kill "$(cat DIR/qemu.pid)"
set -euo pipefail
dir=$1
shift
mkdir -p "$dir"
qemu-system-x86_64 -machine none -nodefaults -display none \
  -qmp "unix:$dir/qmp.sock,server=on,wait=off" \
  -qmp "unix:$dir/control.sock,server=on,wait=off" \
  -daemonize -pidfile "$dir/qemu.pid" "$@"
for _ in $(seq 100); do [ -S "$dir/qmp.sock" ] && [ -S "$dir/control.sock" ] && break; sleep 0.05; done
if [ ! -S "$dir/qmp.sock" ] || [ ! -S "$dir/control.sock" ]; then
  echo "qemu.sh: no QMP socket in $dir after 5s" >&2
  exit 1
fi
