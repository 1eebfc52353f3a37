#!/usr/bin/env bash
# Builds the test kernel HTTPBLK_KERNEL (7.2 by default, or 6.12) from Debian's
# linux-source-X.Y with Rust enabled, once. Its configuration is tests/kernel/httpblk.config
# plus the few version-specific lines of httpblk-X.Y.config over allnoconfig. The tree lives
# in ~/.cache/httpblk/, keyed by kernel version, configuration and this script, so later runs
# and CI on the same machine reuse it. Prints the tree's path last.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/toolchain.sh"

tarball=/usr/src/linux-source-$HTTPBLK_KERNEL.tar.xz
[ -r "$tarball" ] || { echo "kernel: $tarball missing (run tests/setup.sh)" >&2; exit 1; }
kver=$(dpkg-query -W -f='${Version}' "linux-source-$HTTPBLK_KERNEL")
config=$(mktemp)
trap 'rm -f "$config"' EXIT
cat "$here/httpblk.config" "$here/httpblk-$HTTPBLK_KERNEL.config" >"$config"
key=$(cat "$config" "$here/build.sh" | { echo "$kver $BINDGEN"; cat; } | sha256sum | cut -c1-12)
tree="$HTTPBLK_CACHE/linux-$HTTPBLK_KERNEL-$key"

if [ -f "$tree/.httpblk-built" ]; then
    echo "$tree"
    exit 0
fi

mkdir -p "$HTTPBLK_CACHE"
if [ ! -f "$tree/Makefile" ]; then
    rm -rf "$tree.tmp"
    mkdir -p "$tree.tmp"
    tar -xf "$tarball" -C "$tree.tmp" --strip-components=1
    rm -rf "$tree"
    mv "$tree.tmp" "$tree"
fi

cd "$tree"
kmake() { make "${KMAKE_ARGS[@]}" "$@"; }
if [ ! -f .config.httpblk ]; then
    # Nothing but our configuration: allnoconfig with every line of httpblk.config forced on
    # (or off), the rest at its dependencies' defaults. A line that did not stick (a
    # dependency missing from the file) fails the build here, not a test an hour later.
    kmake KCONFIG_ALLCONFIG="$config" allnoconfig >/dev/null
    missing=0
    while IFS= read -r line; do
        case $line in
            CONFIG_*=*) grep -qxF "$line" .config ;;
            "# CONFIG_"*" is not set") name=${line#\# }; ! grep -q "^${name% is not set}=" .config ;;
            *) continue ;;
        esac || { echo "kernel: '$line' did not stick in .config" >&2; missing=1; }
    done <"$config"
    [ "$missing" = 0 ] || exit 1
    cp .config .config.httpblk
fi
echo "kernel: building $HTTPBLK_KERNEL in $tree on $(nproc) cores (first time only)" >&2
kmake -j"$(nproc)" bzImage modules >"$tree/build.log" 2>&1 || {
    tail -40 "$tree/build.log" >&2
    exit 1
}
touch .httpblk-built
echo "$tree"
