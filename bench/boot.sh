#!/usr/bin/env bash
# Boot benchmark (issue: boot a whole system over HTTP): the boot test's Debian image (systemd,
# 512 MiB ext4, tests/boot/image.sh) booted under QEMU (TCG, 2 vCPUs, 2 GiB, user networking
# to servers on the host's loopback) with its root file system
#   httpblk          from `httpblk serve` (lz4, 256 KiB blocks), no second-level cache
#   httpblk-64k      the same image cut into 64 KiB blocks
#   httpblk-ra0      256 KiB blocks without the driver's readahead (httpblk.readahead_kb=0)
#   httpblk+cache    the same with an empty second-level cache disk (filled by this boot)
#   httpblk warm     the same again, second-level cache warm
#   nbd              the raw image over nbd: nbdkit's curl plugin (on the host) reading it from
#                    the same `httpblk serve`, nbd-client in the same initramfs
#   local            the raw image as a local virtio disk
# Prints, for each, the time from kernel start to systemd's "running" (the guest's uptime when
# `systemctl is-system-running --wait` returned) and what crossed the network or was read from
# disk; HTTPBLK_BENCH_ROUNDS rounds (default 2). Not a test; one VM at a time.
#
# Time is QEMU's instruction-counted virtual time (-icount shift=0,sleep=on: one instruction is
# one nanosecond, a 1 GIPS machine; idle time passes as real time), so other VMs on the host
# do not blur it: two boots of one configuration agree within a few tenths of a second, where
# the wall clock of a shared 2-core machine varies by 2x. HTTPBLK_BENCH_ICOUNT=0 measures
# plain TCG instead (then the wall clock counts, with its noise).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
. "$repo/tests/lib/toolchain.sh"
. "$repo/tests/boot/lib.sh"
kdir=$("$repo/tests/kernel/build.sh" | tail -1)
IMG=$("$repo/tests/boot/image.sh" "$kdir")
B=$repo/userspace/target/release/httpblk
OUT=$(mktemp -d /tmp/httpblk-bench-boot.XXXXXX)
rounds=${HTTPBLK_BENCH_ROUNDS:-2}
icount=()
[ "${HTTPBLK_BENCH_ICOUNT:-1}" = 0 ] || icount=(-icount shift=0,sleep=on)
digest=$(cat "$IMG/digest")
echo "bench: image $IMG, logs in $OUT"

pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done' EXIT
# One server for all: the store (store/root.hbi), the raw image (root.img) and the image cut
# into 64 KiB blocks (store64/root64.hbi, made here).
mkdir -p "$OUT/www"
ln -s "$IMG/store" "$IMG/root.img" "$OUT/www/"
"$B" create "$IMG/root.img" "$OUT/www/store64" --block-size 65536 --name root64 >"$OUT/create64.txt"
digest64=$(awk '/^index sha256/ {print $3}' "$OUT/create64.txt")
serve "$OUT/www" "$OUT/serve.log"
pids+=("$SERVE_PID")
nbd_port=$(free_port)

httpblk_args="root=/dev/httpblk0 ro httpblkroot=http://10.0.2.2:$SERVE_PORT/store/root.hbi \
    httpblkdigest=$digest ip=dhcp httpblktest.poweroff"
cache_args="$httpblk_args httpblkcache=LABEL=httpblk-cache"
httpblk64_args="root=/dev/httpblk0 ro httpblkroot=http://10.0.2.2:$SERVE_PORT/store64/root64.hbi \
    httpblkdigest=$digest64 ip=dhcp httpblktest.poweroff"
nbd_args="root=/dev/nbd0 ro nbdroot=10.0.2.2:$nbd_port/root ip=dhcp httpblktest.poweroff"
local_args="root=/dev/vda ro httpblktest.poweroff"
stored=$(awk '/^bytes/ {print $4}' "$IMG/create.txt")
used_blocks=$(awk '/^blocks/ {print $2 - $6}' "$IMG/create.txt")
image_size=$(stat -c %s "$IMG/root.img")

# run NAME APPEND [QEMU ARGS]: one boot; prints a result line.
run() {
    local name=$1 append=$2
    shift 2
    if ! boot "$name" 1500 "$append" "$@" "${icount[@]}"; then
        echo "$name: no report (console $BOOT_LOG)"
        return
    fi
    printf '%-20s running at %6s s uptime (%s s wall); net rx %s B; disk %s B; %s; %s\n' \
        "$name" "$(fact uptime)" "$BOOT_DONE_S" "$(fact rx_bytes)" "$(fact read_bytes)" "$(fact state)" \
        "$(tr -d '\r' <"$BOOT_LOG" | grep -ao 'HTTPBLK-TEST analyze .*' | cut -d' ' -f3-)"
    [ -z "$(fact fetches)" ] ||
        echo "    httpblk: $(fact fetches) fetches ($(fact readahead_fetches) readahead), $(fact fetched_bytes) B" \
            "received, $(fact decompressed_bytes) B decoded, $(fact fetch_latency_avg_us) us per fetch"
}

# run_nbd NAME: one nbd boot, with its own nbdkit (its stats filter writes when it exits).
run_nbd() {
    nbdkit -f -i 127.0.0.1 -p "$nbd_port" --filter=stats curl \
        "url=http://127.0.0.1:$SERVE_PORT/root.img" statsfile="$OUT/$1.nbdkit" 2>"$OUT/$1.nbdkit.log" &
    local nbdkit_pid=$!
    run "$1" "$nbd_args"
    kill "$nbdkit_pid"
    wait "$nbdkit_pid" 2>/dev/null || true
    echo "$1: nbdkit $(grep -m1 '^read:' "$OUT/$1.nbdkit" || echo 'read: ?')"
}

for r in $(seq "$rounds"); do
    echo "round $r"
    run "httpblk-$r" "$httpblk_args"
    run "httpblk-64k-$r" "$httpblk64_args"
    run "httpblk-ra0-$r" "$httpblk_args httpblk.readahead_kb=0"
    rm -f "$OUT/cache.img"
    mkfs.ext4 -q -L httpblk-cache "$OUT/cache.img" 512M >/dev/null 2>&1
    run "httpblk-cache-cold-$r" "$cache_args" -drive "file=$OUT/cache.img,format=raw,if=virtio"
    run "httpblk-cache-warm-$r" "$cache_args" -drive "file=$OUT/cache.img,format=raw,if=virtio"
    run_nbd "nbd-$r"
    run "local-$r" "$local_args" -drive "file=$IMG/root.img,format=raw,if=virtio,readonly=on"
done
echo "image: $image_size bytes, $used_blocks non-zero blocks of 256 KiB, $stored bytes stored (lz4)"
