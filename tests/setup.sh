#!/usr/bin/env bash
# Installs everything httpblk needs to build, run and test on a fresh Debian 12 machine:
# the LLVM/Rust toolchain for the 6.12 and 7.2 kernels (7.2's source from trixie-backports,
# pinned so that nothing else comes from there), virtme-ng + QEMU for the VM, the peers the
# tests and benchmarks compare against, and bindgen. Idempotent: a second run is quick.
# Prints a line per step; the package manager's log is kept in a file, shown if it fails.
set -euo pipefail
log=${HTTPBLK_SETUP_LOG:-/tmp/httpblk-setup.log}
: >"$log"
step() {  # WHAT COMMAND...: runs COMMAND with its output in the log
    local what=$1
    shift
    echo "setup: $what"
    "$@" >>"$log" 2>&1 || { echo "setup: $what failed; its log ($log):" >&2; tail -40 "$log" >&2; exit 1; }
}

# Linux 7.2's source: Debian's trixie-backports, for linux-source-7.2 alone.
backports=/etc/apt/sources.list.d/httpblk-trixie-backports.sources
if [ ! -f "$backports" ]; then
    cat >"$backports" <<'SRC'
Types: deb
URIs: http://deb.debian.org/debian
Suites: trixie-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
    cat >/etc/apt/preferences.d/httpblk-trixie-backports <<'PIN'
Package: *
Pin: release n=trixie-backports
Pin-Priority: -1

Package: linux-source-7.2
Pin: release n=trixie-backports
Pin-Priority: 500
PIN
fi

APT_PACKAGES=(
    # kernel build (Rust-for-Linux with LLVM)
    linux-source-6.12 linux-source-7.2 rustc-web rust-web-src rust-web-clippy rustfmt-web clang-19 lld-19 llvm-19 libclang-19-dev
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
    step "apt-get update" apt-get update -qq
    step "installing ${#need_apt[@]} Debian packages" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
fi

if ! command -v vng >/dev/null 2>&1; then
    step "installing virtme-ng" sh -c "python3 -m pip install -q 'virtme-ng==1.42' ||
        python3 -m pip install -q --break-system-packages 'virtme-ng==1.42'"
fi

# One bindgen per kernel: 6.12's bindings are tested with 0.69, 7.2 needs >= 0.71.1.
install_bindgen() {  # VERSION ROOT
    [ -x "$2/bin/bindgen" ] && return 0
    step "building bindgen $1 (first time only)" cargo install -q bindgen-cli --version "$1" --locked --root "$2"
}
install_bindgen 0.69.5 "${HOME}/.cache/httpblk/bindgen"
install_bindgen 0.72.1 "${HOME}/.cache/httpblk/bindgen-0.72"
echo "setup: toolchain ready"
