#!/usr/bin/env bash
# Installs everything httpblk needs to build, run and test on a fresh Debian 12 machine:
# the LLVM/Rust toolchain for the 6.12 kernel, virtme-ng + QEMU for the VM, the peers the
# tests and benchmarks compare against, and bindgen. Idempotent: a second run is quick.
set -euo pipefail

APT_PACKAGES=(
    # kernel build (Rust-for-Linux with LLVM)
    linux-source-6.12 rustc-web rust-web-src rust-web-clippy rustfmt-web clang-19 lld-19 llvm-19 libclang-19-dev
    flex bison bc libelf-dev libssl-dev cpio kmod xz-utils make
    # the VM
    qemu-system-x86 busybox-static python3-pip
    # the boot test's Debian system (its initramfs is made inside it, so the host needs no
    # initramfs-tools)
    mmdebstrap
    # test tools and peers
    nbdkit nbd-client fio nginx lighttpd dnsmasq mdadm erofs-utils squashfs-tools cloop-utils
    e2fsprogs curl lz4 zstd gzip iproute2 procps util-linux
    # HTTPS, redirect and proxy tests: a throw-away CA, Squid as the shared forward cache
    openssl squid
)

need_apt=()
for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need_apt+=("$p")
done
if ((${#need_apt[@]})); then
    # Servers must not start on the machine's ports 80/53/3128 when installed.
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
fi

if ! command -v vng >/dev/null 2>&1; then
    python3 -m pip install -q 'virtme-ng==1.42' 2>/dev/null ||
        python3 -m pip install -q --break-system-packages 'virtme-ng==1.42'
fi

BINDGEN_ROOT="${HOME}/.cache/httpblk/bindgen"
if [ ! -x "$BINDGEN_ROOT/bin/bindgen" ]; then
    cargo install -q bindgen-cli --version 0.69.5 --locked --root "$BINDGEN_ROOT"
fi
echo "setup: toolchain ready"
