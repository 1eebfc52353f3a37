#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs the toolchain, runs the userspace tests
# (unit, integration, fuzz), builds the 6.12 test kernel once (cached in ~/.cache/httpblk),
# checks the module's formatting and lints, builds httpblk.ko, runs the VM suite, then boots a
# Debian system from an image over HTTP (tests/boot/). Prints the time of each phase. Exit
# status 0 only if everything passed.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"

t_all=$SECONDS
phase_start=$SECONDS
phase() {  # NAME: prints how long the phase that just ended took
    echo "time: $1 $((SECONDS - phase_start)) s"
    phase_start=$SECONDS
}

bash tests/setup.sh
phase setup
# Build the kernel first in the background: it is the long pole on a fresh machine.
kernel_log=$(mktemp)
bash tests/kernel/build.sh >"$kernel_log" 2>&1 &
kernel_pid=$!
# The boot test's Debian system (mmdebstrap, from Debian's mirror; cached) meanwhile too.
rootfs_log=$(mktemp)
bash tests/boot/rootfs.sh >"$rootfs_log" 2>&1 &
rootfs_pid=$!

(cd userspace && cargo fmt --check && cargo clippy -q --all-targets -- -D warnings && cargo test --release 2>&1)
phase "userspace tests"

if ! wait "$kernel_pid"; then
    echo "kernel build failed:"; tail -40 "$kernel_log"; exit 1
fi
phase "kernel build (the rest of it)"

# The module as the kernel's own tools see it: rustfmt with the tree's settings, clippy.
. tests/lib/toolchain.sh
kdir=$(tail -1 "$kernel_log")
make -s KDIR="$kdir" "${KMAKE_ARGS[@]}" rustfmtcheck
make -s KDIR="$kdir" "${KMAKE_ARGS[@]}" clippy
phase "module rustfmt and clippy"

vm_rc=0
bash tests/vm/run.sh || vm_rc=$?
phase "VM suite"

boot_rc=0
if ! wait "$rootfs_pid"; then
    echo "boot test: building its Debian system failed:"; tail -20 "$rootfs_log"; boot_rc=1
else
    bash tests/boot/run.sh || boot_rc=$?
fi
phase "boot test"
echo "time: all $((SECONDS - t_all)) s"
[ "$vm_rc" = 0 ] && [ "$boot_rc" = 0 ]
