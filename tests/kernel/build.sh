#!/usr/bin/env bash
# Builds the Linux 6.12 test kernel (Debian's linux-source-6.12) with Rust enabled, once.
# The tree lives in ~/.cache/httpblk/, keyed by kernel version + config fragment + virtme-ng
# version, so later runs and CI on the same machine reuse it. Prints the tree's path last.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/toolchain.sh"

tarball=/usr/src/linux-source-6.12.tar.xz
[ -r "$tarball" ] || { echo "kernel: $tarball missing (run tests/setup.sh)" >&2; exit 1; }
kver=$(dpkg-query -W -f='${Version}' linux-source-6.12)
key=$(printf '%s\n' "$kver" "$(vng --version 2>&1 | head -1)" "$(cat "$here/httpblk.config")" | sha256sum | cut -c1-12)
tree="$HTTPBLK_CACHE/linux-6.12-$key"

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
    # virtme-ng's VM base config, then our fragment on top.
    vng --kconfig --force >/dev/null
    scripts/kconfig/merge_config.sh -m .config "$here/httpblk.config" >/dev/null
    kmake olddefconfig >/dev/null
    missing=0
    for opt in CONFIG_RUST CONFIG_MD_RAID1 CONFIG_CRYPTO_LZO CONFIG_CRYPTO_LZ4 CONFIG_CRYPTO_ZSTD \
               CONFIG_EROFS_FS CONFIG_EXT4_FS CONFIG_DEBUG_KMEMLEAK CONFIG_NET_SCH_NETEM \
               CONFIG_BLK_DEV_NBD CONFIG_ZLIB_INFLATE CONFIG_VIRTIO_FS CONFIG_NET_9P_VIRTIO \
               CONFIG_UBSAN CONFIG_FAILSLAB CONFIG_FAIL_PAGE_ALLOC CONFIG_FAULT_INJECTION_STACKTRACE_FILTER; do
        grep -q "^$opt=y" .config || { echo "kernel: $opt did not stick in .config" >&2; missing=1; }
    done
    [ "$missing" = 0 ] || exit 1
    cp .config .config.httpblk
fi
echo "kernel: building $tree on $(nproc) cores (first time only)" >&2
kmake -j"$(nproc)" bzImage modules >"$tree/build.log" 2>&1 || {
    tail -40 "$tree/build.log" >&2
    exit 1
}
touch .httpblk-built
echo "$tree"
