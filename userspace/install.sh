#!/usr/bin/env bash
# Installs the userspace parts of httpblk: the `httpblk` binary, its shell completions (bash,
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
install -m 0755 "$bin" "$root/bin/httpblk"
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
