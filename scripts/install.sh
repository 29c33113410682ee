#!/bin/sh
# Install qmpctl, its man page and its shell completions under PREFIX.
#   install.sh [PREFIX]               default PREFIX: /usr/local
#   install.sh --uninstall [PREFIX]
# It installs, from beside this script (a release folder, checked against its
# SHA256SUMS) or from a source checkout's dist/: the binary for this machine,
# qmpctl.1, and the bash, zsh and fish completions that the binary prints.
# POSIX sh (the README runs it as 'sh install.sh'; dash on Debian).
set -eu
usage() { sed -n '2,7s/^# \{0,1\}//p' "$0"; }
uninstall=false
if [ "${1:-}" = "--uninstall" ]; then
  uninstall=true
  shift
fi
case "${1:-}" in
  -h | --help) usage && exit 0 ;;
  -*)
    echo "install.sh: unknown option $1 (see install.sh --help)" >&2
    exit 2
    ;;
esac
if [ $# -gt 1 ]; then
  echo "install.sh: one PREFIX at most, options first (see install.sh --help)" >&2
  exit 2
fi
if [ $# -eq 1 ] && [ -z "$1" ]; then # an unset "$PREFIX" in a packaging line: not the system's /usr/local
  echo "install.sh: PREFIX is empty (leave it out for /usr/local)" >&2
  exit 2
fi
prefix=${1:-/usr/local}
# An exported CDPATH would have cd find a relative directory through it (scripts/install.sh run from the
# checkout, with CDPATH=.:/usr) and print the path it went to, into $here: unset, and cd's output discarded.
unset CDPATH
here=$(cd -- "$(dirname "$0")" >/dev/null && pwd)

files="bin/qmpctl
share/man/man1/qmpctl.1
share/bash-completion/completions/qmpctl
share/zsh/site-functions/_qmpctl
share/fish/vendor_completions.d/qmpctl.fish"
if $uninstall; then
  found=$(echo "$files" | while IFS= read -r file; do [ ! -e "$prefix/$file" ] || echo "$file"; done)
  if [ -z "$found" ]; then # a mistyped PREFIX, or the install is under another one
    echo "install.sh: no qmpctl installed under $prefix: nothing removed" >&2
    exit 1
  fi
  # The directories stay: an install does not record which it made, and others may be expected there even
  # empty (Debian makes /usr/local/bin, ~/.profile puts ~/.local/bin on PATH only if it exists).
  # Each file is tried, so that every one that stays is said, with rm's reason, not only the first.
  failures=$(echo "$found" | while IFS= read -r file; do rm -f "$prefix/$file" 2>&1 || true; done)
  if [ -n "$failures" ]; then
    stay=$(echo "$found" | while IFS= read -r file; do [ ! -e "$prefix/$file" ] || echo "$file"; done)
    if [ "$stay" = "$found" ]; then
      echo "install.sh: cannot remove qmpctl from $prefix: nothing removed (run it as a user who may):" >&2
    else
      echo "install.sh: some files stay under $prefix (the others are removed; run it as a user who may):" >&2
    fi
    echo "$failures" >&2
    exit 1
  fi
  echo "removed qmpctl from $prefix"
  exit 0
fi

# The release binary for this machine.
release_name() {
  case "$(uname -s)" in Linux) os=linux ;; Darwin) os=darwin ;; *) return 1 ;; esac
  case "$(uname -m)" in x86_64 | amd64) arch=x64 ;; aarch64 | arm64) arch=arm64 ;; *) return 1 ;; esac
  echo "qmpctl-$os-$arch"
}

# The binary: this machine's release binary beside the script (any mode:
# install sets it), or a source tree's own dist/qmpctl (a checkout, or
# an unpacked source tarball: build.sh beside this script, cli.ts above it).
# Never ../dist/ from a release folder: for /tmp/qmpctl-0.1.0 that is /tmp/dist, anyone's.
name=$(release_name || true)
source_checkout=false
[ -f "$here/build.sh" ] && [ -f "$here/../cli.ts" ] && source_checkout=true
if [ -n "$name" ] && [ -f "$here/$name" ]; then
  binary=$here/$name
elif $source_checkout && [ -f "$here/../dist/qmpctl" ]; then
  binary=$(cd -- "$here/../dist" >/dev/null && pwd)/qmpctl
elif $source_checkout; then
  echo "install.sh: no dist/qmpctl in this source tree: build it first (scripts/build.sh)" >&2
  exit 1
else
  echo "install.sh: no ${name:-qmpctl binary for this machine} beside this script in $here" >&2
  exit 1
fi
manpage=$(dirname "$binary")/qmpctl.1
if [ ! -f "$manpage" ]; then
  echo "install.sh: no qmpctl.1 beside $binary" >&2
  exit 1
fi

# A release folder's SHA256SUMS must list what is installed, with its hash:
# the binary is about to run as the installing user (root, often).
# The tool to hash with: sha256sum (Linux), shasum (macOS), or none.
if command -v sha256sum >/dev/null 2>&1; then
  sha256_tool="sha256sum"
elif command -v shasum >/dev/null 2>&1; then
  sha256_tool="shasum -a 256"
else
  sha256_tool=""
fi
sha256() { $sha256_tool <"$1" | cut -d' ' -f1; }
if [ -f "$here/SHA256SUMS" ]; then
  if [ -z "$sha256_tool" ]; then
    echo "install.sh: neither sha256sum nor shasum is here to check $here/SHA256SUMS: nothing installed" >&2
    exit 1
  fi
  for file in "$binary" "$manpage"; do
    # A line is "HASH  NAME", or "HASH *NAME" as sha256sum -b writes it.
    listed=$(awk -v name="${file##*/}" '{ sub(/\r$/, "") } $2 == name || $2 == "*" name { print $1 }' "$here/SHA256SUMS")
    if [ -z "$listed" ]; then
      echo "install.sh: $file is not in $here/SHA256SUMS: not installing it" >&2
      exit 1
    fi
    if [ "$listed" != "$(sha256 "$file")" ]; then
      echo "install.sh: $file does not match its SHA256SUMS line: not installing it" >&2
      exit 1
    fi
  done
fi

# Files are written first beside the ones they replace, under names no one could guess (one a line in $staged,
# removed again on failure), and renamed into place only once all five are written: a binary that does not run
# here (a truncated download, another machine's binary, a noexec PREFIX), a folder it may not write in or a full
# disk leaves an earlier install as it was. The directories the files go in that are missing (PREFIX too, when
# it is new) are made 0755, whatever the umask, and listed in $made, newest first: taken away again, while
# empty, when nothing gets installed. Those that are there are left as they are (install -d would reset their
# mode: a 0700 ~/.local/bin, a 2775 root:staff /usr/local/bin).
#
# Every file the script makes for itself (the work directory, what it holds, the staged files) is the user's
# alone, whatever the umask: one that takes the user's own bits (0222, 0577) would leave it unable to write or
# read them. The modes of what it installs are set, not taken from the umask (mkdir -m, install -m).
umask 077
tmp="" staged="" staging="" made="" installed=false
cleanup() {
  trap '' INT TERM HUP # a second Ctrl-C must not cut the cleanup short
  rm -rf "$tmp"
  # $staging too: a signal may come between its mktemp and its line in $staged (a renamed one is gone already).
  printf '%s\n' "$staged" "$staging" | while IFS= read -r file; do [ -z "$file" ] || rm -f "$file"; done
  $installed || printf '%s' "$made" | while IFS= read -r dir; do rmdir "$dir" 2>/dev/null || true; done
}
trap cleanup EXIT
trap 'exit 130' INT # dash runs the EXIT trap on exit, not on death by a signal
trap 'exit 143' TERM
trap 'exit 129' HUP
make_dir() { # DIR, and the missing directories above it
  [ -d "$1" ] && return 0
  make_dir "$(dirname "$1")"
  if ! error=$(mkdir -m 0755 "$1" 2>&1); then
    echo "install.sh: cannot make its directories in $prefix (run it as a user who may, or give another" \
      "PREFIX): $(printf '%s\n' "$error" | tail -n 1)" >&2
    exit 1
  fi
  made="$1
$made"
}
for file in $files; do make_dir "$prefix/$(dirname "$file")"; done
# stage WHAT FILE MODE SOURCE: SOURCE written at MODE beside PREFIX/FILE, under the name set in $staging.
stage() {
  dir=$(dirname "$prefix/$2")
  if [ -d "$prefix/$2" ]; then
    error="$prefix/$2 is a directory"
  elif staging=$(mktemp "$dir/.${2##*/}.XXXXXX" 2>"$tmp/errors"); then
    staged="$staged$staging
"
    # Through install -m, so every user's shell can read the completions whatever the installing user's
    # umask (077 would make them 0600).
    install -m "$3" "$4" "$staging" 2>"$tmp/errors" && return 0
    error=$(tail -n 1 "$tmp/errors")
  else
    error=$(tail -n 1 "$tmp/errors")
  fi
  echo "install.sh: cannot write $1 in $dir ($error): nothing installed, an earlier install is as it was" >&2
  exit 1
}
# The new binary runs once, where it is to run (it prints the completions), before anything takes the place
# of an installed file.
tmp=$(mktemp -d)
stage qmpctl bin/qmpctl 0755 "$binary"
new=$staging
does_not_run() {
  why=$(head -n 1 "$tmp/errors")
  echo "install.sh: $binary, copied to $prefix/bin, does not run there (exit status $1${why:+: $why}):" \
    "nothing installed" >&2
  exit 1
}
# First that it is qmpctl: a stripped binary (dh_strip, makepkg's strip) has
# lost qmpctl and is the Bun runtime alone, which runs too (and whose own
# `completions` depends on $SHELL).
status=0
# In a subshell whose stderr is discarded (`exit` keeps it a subshell): a
# binary killed by a signal (a truncated download) would have the shell that
# waited for it print the signal's name ("Bus error") on a line of its own.
("$new" --version >"$tmp/version" 2>"$tmp/errors"; exit $?) 2>/dev/null || status=$?
[ $status -eq 0 ] || does_not_run $status
version=$(head -n 1 "$tmp/version")
case $version in
  "qmpctl "*) ;;
  *)
    echo "install.sh: $binary does not say it is qmpctl (--version: ${version:-nothing}); a stripped binary" \
      "is the Bun runtime alone: nothing installed" >&2
    exit 1
    ;;
esac
for shell in bash zsh fish; do
  status=0
  ("$new" completions $shell >"$tmp/$shell" 2>"$tmp/errors"; exit $?) 2>/dev/null || status=$?
  [ $status -eq 0 ] || does_not_run $status
done
stage "the man page" share/man/man1/qmpctl.1 0644 "$manpage"
man=$staging
stage "the bash completion" share/bash-completion/completions/qmpctl 0644 "$tmp/bash"
bash=$staging
stage "the zsh completion" share/zsh/site-functions/_qmpctl 0644 "$tmp/zsh"
zsh=$staging
stage "the fish completion" share/fish/vendor_completions.d/qmpctl.fish 0644 "$tmp/fish"
fish=$staging
# All written: each renamed over the file it replaces (the binary last).
installed=true
renamed=""
put() { # STAGED FILE
  if ! mv -f "$1" "$prefix/$2" 2>"$tmp/errors"; then
    echo "install.sh: cannot put $prefix/$2 in place ($(tail -n 1 "$tmp/errors")): ${renamed:-nothing}" \
      "installed, the others as they were" >&2
    exit 1
  fi
  renamed="${renamed:+$renamed, }$prefix/$2"
}
put "$man" share/man/man1/qmpctl.1
put "$bash" share/bash-completion/completions/qmpctl
put "$zsh" share/zsh/site-functions/_qmpctl
put "$fish" share/fish/vendor_completions.d/qmpctl.fish
put "$new" bin/qmpctl
staged=""
echo "installed $version from $binary into $prefix"
if [ ! -f "$here/SHA256SUMS" ] && ! $source_checkout; then
  echo "install.sh: no SHA256SUMS beside this script: $binary and its man page were installed unchecked" >&2
fi
