#!/usr/bin/env bash
# Builds the Debian system the boot test serves, once: Debian 12 minbase plus systemd, udev,
# initramfs-tools and nbd-client (the nbd root the benchmark compares against), from Debian's
# package mirror, as a tarball in ~/.cache/httpblk/ keyed by its recipe. Prints its path.
# 25 s on the project's 2-core machine when idle, 90 s while other VMs ran (a 175 MB tarball).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/toolchain.sh"

PACKAGES=systemd,systemd-sysv,udev,initramfs-tools,zstd,kmod,procps,nbd-client
MIRROR=${HTTPBLK_DEBIAN_MIRROR:-http://deb.debian.org/debian}
# No documentation, man pages or translations: the image stays near 250 MB.
ARGS=(--variant=minbase --mode=root --format=tar --include="$PACKAGES"
      --aptopt='Apt::Install-Recommends "false"'
      --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*'
      --dpkgopt='path-include=/usr/share/doc/*/copyright'
      --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/info/*'
      bookworm)
key=$(printf '%s\n' "${ARGS[@]}" | sha256sum | cut -c1-12)
tar=$HTTPBLK_CACHE/boot-rootfs-$key.tar
if [ ! -f "$tar" ]; then
    mkdir -p "$HTTPBLK_CACHE"
    echo "boot: building the Debian root file system ($tar)" >&2
    start=$SECONDS
    mmdebstrap "${ARGS[@]}" "$tar.tmp" "$MIRROR" >"$tar.log" 2>&1 ||
        { tail -20 "$tar.log" >&2; exit 1; }
    rm -f "$HTTPBLK_CACHE"/boot-rootfs-*.tar
    mv "$tar.tmp" "$tar"
    echo "boot: root file system built in $((SECONDS - start)) s" >&2
fi
echo "$tar"
