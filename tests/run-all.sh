#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs the toolchain, runs the userspace tests
# (unit, integration, fuzz), builds the 7.2 and 6.12 test kernels once (cached in
# ~/.cache/httpblk), builds the module against both and checks its formatting and lints with
# each tree's tools, runs the VM suite on each kernel in VM_KERNELS, then boots a Debian
# system from an image over HTTP on BOOT_KERNEL (tests/boot/). Prints the time of each phase
# and each kernel's results apart. Exit status 0 only if everything passed.
#   HTTPBLK_VM_KERNELS="7.2 6.12" (default)  the kernels the VM suite runs on, in order
#   HTTPBLK_BOOT_KERNEL=7.2 (default)        the kernel the boot test runs on
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
KERNELS=(7.2 6.12)
# Build the kernels first in the background, one after the other (each takes both cores):
# they are the long pole on a fresh machine.
kernel_log=$(mktemp)
(for k in "${KERNELS[@]}"; do HTTPBLK_KERNEL=$k bash tests/kernel/build.sh || exit 1; done) >"$kernel_log" 2>&1 &
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

# The module as each kernel's own tools see it: rustfmt with the tree's settings, clippy.
for k in "${KERNELS[@]}"; do
    (
        export HTTPBLK_KERNEL=$k
        . tests/lib/toolchain.sh
        kdir=$(bash tests/kernel/build.sh | tail -1)
        make -s KDIR="$kdir" "${KMAKE_ARGS[@]}" rustfmtcheck
        make -s KDIR="$kdir" "${KMAKE_ARGS[@]}" clippy
    )
done
# make's own checks of KDIR and the compiler, against fake trees and a real one.
bash tests/kernel/check-kdir-test.sh "$(HTTPBLK_KERNEL=7.2 bash tests/kernel/build.sh | tail -1)" /usr/bin/rustc
phase "module rustfmt, clippy and KDIR checks (${KERNELS[*]})"

VM_KERNELS=(${HTTPBLK_VM_KERNELS:-7.2 6.12})
BOOT_KERNEL=${HTTPBLK_BOOT_KERNEL:-7.2}
declare -A vm_rc
summary=()
for k in "${VM_KERNELS[@]}"; do
    vm_rc[$k]=0
    HTTPBLK_KERNEL=$k bash tests/vm/run.sh || vm_rc[$k]=$?
    phase "VM suite on $k"
    summary+=("VM suite on $k: $([ "${vm_rc[$k]}" = 0 ] && echo passed || echo FAILED)")
    if [ "$k" = "$BOOT_KERNEL" ]; then
        # The boot test, while this kernel's module is the one built.
        boot_rc=0
        if ! wait "$rootfs_pid"; then
            echo "boot test: building its Debian system failed:"; tail -20 "$rootfs_log"; boot_rc=1
        else
            HTTPBLK_KERNEL=$k bash tests/boot/run.sh || boot_rc=$?
        fi
        phase "boot test on $k"
        summary+=("boot test on $k: $([ "$boot_rc" = 0 ] && echo passed || echo FAILED)")
    fi
done
printf '%s\n' "${summary[@]}"
echo "time: all $((SECONDS - t_all)) s"
rc=${boot_rc:-1}
for k in "${VM_KERNELS[@]}"; do [ "${vm_rc[$k]}" = 0 ] || rc=1; done
exit "$rc"
