#!/usr/bin/env bash
# Installs the userspace parts of httpblk: the `httpblk` binary (stripped), its shell completions (bash,
# zsh, fish) and its man pages, all generated from the clap definitions by the binary itself.
#   DESTDIR=/tmp/pkg PREFIX=/usr bash userspace/install.sh
# DESTDIR (default empty) is a staging root; PREFIX defaults to /usr/local. Builds the release
# binary first unless HTTPBLK_BIN names one.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
DESTDIR=${DESTDIR:-}
PREFIX=${PREFIX:-/usr/local}
bin=${HTTPBLK_BIN:-}
if [ -z "$bin" ]; then
    (cd "$here" && cargo build -q --release --bin httpblk)
    bin=$here/target/release/httpblk
fi
root=$DESTDIR$PREFIX
install -d "$root/bin" "$root/share/man/man1" "$root/share/bash-completion/completions" \
    "$root/share/zsh/site-functions" "$root/share/fish/vendor_completions.d"
# Stripped: the release build keeps symbols and line tables for backtraces in development
# (71 MB here; 11 MB stripped).
strip=$(command -v strip || command -v llvm-strip || command -v llvm-strip-19 || true)
if [ -n "$strip" ]; then
    install -m 0755 -s --strip-program="$strip" "$bin" "$root/bin/httpblk"
else
    echo "install.sh: no strip program: installing the binary unstripped" >&2
    install -m 0755 "$bin" "$root/bin/httpblk"
fi
"$bin" completions bash >"$root/share/bash-completion/completions/httpblk"
"$bin" completions zsh >"$root/share/zsh/site-functions/_httpblk"
"$bin" completions fish >"$root/share/fish/vendor_completions.d/httpblk.fish"
man=$(mktemp -d)
trap 'rm -rf "$man"' EXIT
"$bin" man "$man"
for page in "$man"/*.1; do
    gzip -9n <"$page" >"$root/share/man/man1/$(basename "$page").gz"
    chmod 0644 "$root/share/man/man1/$(basename "$page").gz"
done
echo "installed httpblk, completions and $(ls "$man" | wc -l) man pages under $root"
