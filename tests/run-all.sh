#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs the toolchain, runs the userspace tests
# (unit, integration, fuzz), builds the 6.12 test kernel once (cached in ~/.cache/httpblk),
# builds httpblk.ko and runs the VM suite. Exit status 0 only if everything passed.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"

bash tests/setup.sh
# Build the kernel first in the background: it is the long pole on a fresh machine.
kernel_log=$(mktemp)
bash tests/kernel/build.sh >"$kernel_log" 2>&1 &
kernel_pid=$!

(cd userspace && cargo fmt --check && cargo clippy -q --all-targets -- -D warnings && cargo test --release 2>&1)

if ! wait "$kernel_pid"; then
    echo "kernel build failed:"; tail -40 "$kernel_log"; exit 1
fi
bash tests/vm/run.sh
