#!/usr/bin/env bash
# VM benchmark (issue: in-kernel decompression and cache). Prints figures from one VM boot:
#  - warm sequential (1 MiB) and warm 4 KiB random read (fio, iodepth 32, direct I/O) of
#    /dev/httpblk0, everything in the kernel cache, against a loop device over the raw image
#    on tmpfs (goals: sequential >= 1.6x loop, random >= 1.25x loop);
#  - cold sequential read of an ext4 image of /usr files stored with lz4, lzo and none:
#    MB/s and guest CPU-seconds per GiB (helper, server and kernel together: one machine);
#  - warm 4 KiB random reads across 4 devices of the image at iodepth 128 each: aggregate
#    IOPS against the same on 4 loop devices over the raw image on tmpfs;
#  - bytes fetched for two images sharing 90% of their blocks, attached together, against
#    one image alone (goal about 1.1x).
#   HTTPBLK_BENCH_MB=1024 (default) sets the ext4 image size; HTTPBLK_BENCH_PARTS="codecs
#   multi pair" (default all) picks what runs. Every figure comes with the guest's idle
#   share (bench/guest-lib.sh); all of them are CPU-bound by design (no shaping). Not a test.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
. "$here/lib.sh"
for codec in none lz4 lzo; do store $codec >/dev/null; done
# Two random images of 256 MiB sharing 90% of their 256 KiB blocks (codec none).
if [ ! -f "$work/st-pair/b.hbi" ]; then
    python3 - "$work" <<'PY'
import os, random, sys
w = sys.argv[1]; random.seed(11); bs = 256 * 1024; n = 1024
a = bytearray(b"".join(random.randbytes(bs) for _ in range(n))); b = bytearray(a)
for i in random.sample(range(n), n // 10):
    b[i * bs:(i + 1) * bs] = random.randbytes(bs)
open(f"{w}/pair-a.img", "wb").write(a); open(f"{w}/pair-b.img", "wb").write(b)
PY
    "$B" create "$work/pair-a.img" "$work/st-pair" --codec none --name a >/dev/null
    "$B" create "$work/pair-b.img" "$work/st-pair" --codec none --name b >/dev/null
fi

{ guest_prelude; cat <<GUEST
W=$work; MB=$mb
sys() { cat /sys/block/\$(basename \$1)/httpblk/\$2; }
fio_warm() {  # DEV RW BS: 15 s of fio, iodepth 32, direct I/O -> "bytes= secs= errors="
    fio_read \$1 \$3 32 15 --rw=\$2 --time_based
}
fio_multi_iops() {  # DEV... -> aggregate read IOPS of 4 KiB random reads, iodepth 128 each
    local jobs=() i=0
    for d in "\$@"; do jobs+=(--name=j\$i --filename=\$d); i=\$((i + 1)); done
    fio --readonly --rw=randread --bs=4k --direct=1 --ioengine=libaio --iodepth=128 --runtime=15 \
        --time_based --group_reporting --output-format=terse --terse-version=3 "\${jobs[@]}" |
        awk -F';' '{printf "iops=%d", \$8}'
}
part() { case " ${HTTPBLK_BENCH_PARTS:-codecs multi pair} " in *" \$1 "*) return 0;; esac; return 1; }
part codecs && for codec in none lz4 lzo; do
    \$B serve \$W/st-\$MB-\$codec --listen 127.0.0.1:8080 2>/dev/null & srv=\$!
    sleep 1
    fresh
    dev=\$(\$B attach http://127.0.0.1:8080/usr.hbi)
    measured cold-\$codec fio_read \$dev 1M 1 3000
    if [ \$codec = lz4 ]; then
        measured warm-seq-httpblk fio_warm \$dev read 1M
        measured warm-rand4k-httpblk fio_warm \$dev randread 4k
    fi
    detach_all; rmmod httpblk; kill \$srv; wait \$srv 2>/dev/null
done
if part codecs; then
mkdir -p /tmp/ram && mount -t tmpfs -o size=\$((MB + 64))M tmpfs /tmp/ram
cp $img /tmp/ram/raw.img
loop=\$(losetup -r -f --show /tmp/ram/raw.img)
measured warm-seq-loop fio_warm \$loop read 1M
measured warm-rand4k-loop fio_warm \$loop randread 4k
losetup -d \$loop; umount /tmp/ram
fi
if part multi; then
\$B serve \$W/st-\$MB-none --listen 127.0.0.1:8080 2>/dev/null & srv=\$!
sleep 1
fresh
devs=()
for i in 1 2 3 4; do devs+=(\$(\$B attach http://127.0.0.1:8080/usr.hbi)); done
dd if=\${devs[0]} of=/dev/null bs=1M iflag=direct 2>/dev/null   # one read warms the shared cache
measured warm-rand4k-4dev-httpblk fio_multi_iops "\${devs[@]}"
detach_all; rmmod httpblk; kill \$srv; wait \$srv 2>/dev/null
mkdir -p /tmp/ram && mount -t tmpfs -o size=\$((MB + 64))M tmpfs /tmp/ram
cp $img /tmp/ram/raw.img
loops=()
for i in 1 2 3 4; do loops+=(\$(losetup -r -f --show /tmp/ram/raw.img)); done
measured warm-rand4k-4dev-loop fio_multi_iops "\${loops[@]}"
for l in "\${loops[@]}"; do losetup -d \$l; done
umount /tmp/ram
fi
part pair || { echo done; exit 0; }
\$B serve \$W/st-pair --listen 127.0.0.1:8080 2>/dev/null & srv=\$!
sleep 1
insmod \$KO cache_mb=1024
a=\$(\$B attach http://127.0.0.1:8080/a.hbi)
dd if=\$a of=/dev/null bs=1M iflag=direct 2>/dev/null
echo "pair-one: bytes=\$(sys \$a fetched_bytes)"
detach_all; rmmod httpblk
insmod \$KO cache_mb=1024
a=\$(\$B attach http://127.0.0.1:8080/a.hbi); b=\$(\$B attach http://127.0.0.1:8080/b.hbi)
dd if=\$a of=/dev/null bs=1M iflag=direct 2>/dev/null & rd=\$!
dd if=\$b of=/dev/null bs=1M iflag=direct 2>/dev/null; wait \$rd   # not the server
echo "pair-both: bytes=\$(( \$(sys \$a fetched_bytes) + \$(sys \$b fetched_bytes) ))"
echo done
GUEST
} >"$out/guest.sh"
run_guest 6G 3000 >"$out/run.log"
grep -E '^host load|did not finish' "$out/run.log" || true
echo "== in-kernel cache and codecs, ${mb} MiB ext4 of /usr files, 2 vCPUs under $(under)"
echo "cold sequential read (fio 1 MiB, one at a time, the whole image; CPU-bound by design):"
for c in none lz4 lzo; do show cold-$c "$c"; done
# Warm reads are CPU-bound by design (nothing crosses the network): their ratio compares the
# CPU cost of a cached read with loop's, so it is judged whatever the idle share.
warm() {  # LABEL A B GOAL
    echo "  $1: httpblk $(fig "$2" mbps) MB/s (idle $(fig "$2" idle)%), loop $(fig "$3" mbps) MB/s" \
        "(idle $(fig "$3" idle)%), ratio $(ratio "$(fig "$2" mbps)" "$(fig "$3" mbps)")x (goal >= $4)"
}
echo "warm (everything in the kernel cache), fio 15 s, iodepth 32, against loop over the raw image on tmpfs:"
warm "sequential 1 MiB" warm-seq-httpblk warm-seq-loop 1.6
warm "random 4 KiB" warm-rand4k-httpblk warm-rand4k-loop 1.25
echo "  random 4 KiB, 4 devices at iodepth 128: httpblk $(fig warm-rand4k-4dev-httpblk iops) IOPS" \
    "(idle $(fig warm-rand4k-4dev-httpblk idle)%), loop $(fig warm-rand4k-4dev-loop iops) IOPS" \
    "(idle $(fig warm-rand4k-4dev-loop idle)%), ratio $(ratio "$(fig warm-rand4k-4dev-httpblk iops)" "$(fig warm-rand4k-4dev-loop iops)")x"
echo "two images sharing 90%: fetched $(fig pair-both bytes) bytes together vs $(fig pair-one bytes) alone," \
    "ratio $(ratio "$(fig pair-both bytes)" "$(fig pair-one bytes)")x (goal about 1.1)"
echo "(as the guest printed them: $out/guest.log)"
