#!/usr/bin/env bash
# Host side of the VM suite: builds the test kernel (cached), httpblk.ko and the userspace
# binaries, prepares test images, boots the kernel under virtme-ng and runs guest.sh there.
# Prints one line per test and "N passed, M failed"; exits non-zero on any failure.
#   HTTPBLK_KERNEL=7.2|6.12  the test kernel (default 7.2)
#   HTTPBLK_TESTS=REGEX   run only matching tests
#   HTTPBLK_REPEAT=N      run them N times over in the one VM
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
. "$repo/tests/lib/toolchain.sh"

kdir=$("$repo/tests/kernel/build.sh" | tail -1)
echo "vm: kernel $HTTPBLK_KERNEL, $kdir"
make -s -C "$repo" KDIR="$kdir" "${KMAKE_ARGS[@]}" >/dev/null
(cd "$repo/userspace" && cargo build -q --release --bins --examples)
bin=$repo/userspace/target/release

work=$HTTPBLK_CACHE/vm-data-$(cat "$here/prepare.sh" "$repo"/tests/golden/* | sha256sum | cut -c1-12)
HTTPBLK_BIN=$bin/httpblk HTTPBLK_GOLDEN_STORE=$bin/examples/golden_store bash "$here/prepare.sh" "$work"

out=$(mktemp -d /tmp/httpblk-vm.XXXXXX)
# A snapshot of what is tested: rebuilding while the VM runs must not change it.
mkdir "$out/bin"
cp "$bin/httpblk" "$bin/examples/hostile_helper" "$bin/examples/hostile_recover" "$repo/httpblk.ko" "$repo/Documentation/operations.md" "$out/bin/"
cat >"$out/env" <<ENV
export HTTPBLK_BIN=$out/bin/httpblk
export HTTPBLK_HOSTILE=$out/bin/hostile_helper
export HTTPBLK_HOSTILE_RECOVER=$out/bin/hostile_recover
export HTTPBLK_KO=$out/bin/httpblk.ko
export HTTPBLK_OPS_DOC=$out/bin/operations.md
export HTTPBLK_WORK=$work
export HTTPBLK_OUT=$out
export HTTPBLK_TESTS='${HTTPBLK_TESTS:-}'
export HTTPBLK_REPEAT='${HTTPBLK_REPEAT:-1}'
ENV

accel=$("$here/accel.sh" "$kdir")
echo "vm: booting ($accel), logs in $out"
# The guest's root is the host's, over 9p, read-only: cache it in the guest (virtme-ng mounts
# it uncached), since every command a test runs is loaded from it. Nothing on it changes
# while the guest runs; what the guest writes goes to its --rwdir, mounted apart.
timeout $((3000 * ${HTTPBLK_REPEAT:-1})) vng --run "$kdir/arch/x86/boot/bzImage" $accel --memory 3G --cpus 2 \
    --append "$(bash "$here/../lib/rootflags.sh")" \
    --rwdir "$out" --exec "bash -c '. $out/env; bash $here/guest.sh'" >"$out/console.log" 2>&1 || true

if [ ! -f "$out/finished" ]; then
    echo "vm: the guest did not finish; console tail:"
    tail -30 "$out/console.log"
    [ -f "$out/results.txt" ] && cat "$out/results.txt"
    exit 1
fi
cat "$out/results.txt"
pass=$(grep -c '^PASS' "$out/results.txt" || true)
fail=$(grep -c '^FAIL' "$out/results.txt" || true)
skips=$(grep -c '^SKIP' "$out/results.txt" || true)
echo "vm ($HTTPBLK_KERNEL): $pass passed, $fail failed, $skips skipped"
[ "$fail" = 0 ] && [ "$pass" -gt 0 ]
