#!/usr/bin/env bash
# VM benchmark (issue: in-kernel decompression and cache). Prints figures from one VM boot:
#  - warm sequential (1 MiB) and warm 4 KiB random read (fio, iodepth 32, direct I/O) of
#    /dev/httpblk0, everything in the kernel cache, against a loop device over the raw image
#    on tmpfs (goals: sequential >= 1.6x loop, random >= 1.25x loop);
#  - cold sequential read of an ext4 image of /usr files stored with lz4, lzo and none:
#    MB/s and VM CPU seconds per GiB (helper, server and kernel together: one machine);
#  - warm 4 KiB random reads across 4 devices of the image at iodepth 128 each: aggregate
#    IOPS against the same on 4 loop devices over the raw image on tmpfs;
#  - bytes fetched for two images sharing 90% of their blocks, attached together, against
#    one image alone (goal about 1.1x).
#   HTTPBLK_BENCH_MB=1024 (default) sets the ext4 image size; HTTPBLK_BENCH_PARTS="codecs
#   multi pair" (default all) picks what runs. Not a test: it judges nothing.
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

cat >"$out/guest.sh" <<GUEST
exec >"$out/guest.log" 2>&1
set -u
ip link set lo up
B=$B; W=$work; MB=$mb
sys() { cat /sys/block/\$(basename \$1)/httpblk/\$2; }
cpu() { awk '/^cpu / {print \$2+\$3+\$4+\$7+\$8}' /proc/stat; }
seqread() {  # DEV -> "MB/s cpu_s_per_GiB"
    local c0=\$(cpu) t0=\$(date +%s.%N)
    dd if=\$1 of=/dev/null bs=1M iflag=direct 2>/dev/null
    local t1=\$(date +%s.%N) c1=\$(cpu) size=\$(blockdev --getsize64 \$1)
    echo "\$(echo "scale=1; \$size / 1000000 / (\$t1 - \$t0)" | bc) \$(echo "scale=2; (\$c1 - \$c0) / 100 * 1073741824 / \$size" | bc)"
}
fio_bw() {  # DEV RW BS -> MB/s
    fio --name=b --filename=\$1 --readonly --rw=\$2 --bs=\$3 --direct=1 --ioengine=libaio --iodepth=32 \
        --runtime=15 --time_based --output-format=terse --terse-version=3 | awk -F';' '{printf "%.1f", \$7/1000}'
}
fio_multi_iops() {  # DEV... -> aggregate read IOPS of 4 KiB random reads, iodepth 128 each
    local jobs=() i=0
    for d in "\$@"; do jobs+=(--name=j\$i --filename=\$d); i=\$((i + 1)); done
    fio --readonly --rw=randread --bs=4k --direct=1 --ioengine=libaio --iodepth=128 --runtime=15 \
        --time_based --group_reporting --output-format=terse --terse-version=3 "\${jobs[@]}" |
        awk -F';' '{printf "%d", \$8}'
}
part() { case " ${HTTPBLK_BENCH_PARTS:-codecs multi pair} " in *" \$1 "*) return 0;; esac; return 1; }
part codecs && for codec in none lz4 lzo; do
    \$B serve \$W/st-\$MB-\$codec --listen 127.0.0.1:8080 2>/dev/null & srv=\$!
    sleep 1
    insmod $repo/httpblk.ko cache_mb=\$((MB * 2))
    dev=\$(\$B attach http://127.0.0.1:8080/usr.hbi)
    echo "cold-\$codec: \$(seqread \$dev)"
    if [ \$codec = lz4 ]; then
        echo "warm-seq-httpblk: \$(fio_bw \$dev read 1M)"
        echo "warm-rand4k-httpblk: \$(fio_bw \$dev randread 4k)"
    fi
    \$B detach \$dev >/dev/null; sleep 1; rmmod httpblk; kill \$srv; wait \$srv 2>/dev/null
done
if part codecs; then
mkdir -p /tmp/ram && mount -t tmpfs -o size=\$((MB + 64))M tmpfs /tmp/ram
cp $img /tmp/ram/raw.img
loop=\$(losetup -r -f --show /tmp/ram/raw.img)
echo "warm-seq-loop: \$(fio_bw \$loop read 1M)"
echo "warm-rand4k-loop: \$(fio_bw \$loop randread 4k)"
losetup -d \$loop; umount /tmp/ram
fi
if part multi; then
\$B serve \$W/st-\$MB-none --listen 127.0.0.1:8080 2>/dev/null & srv=\$!
sleep 1
insmod $repo/httpblk.ko cache_mb=\$((MB * 2))
devs=()
for i in 1 2 3 4; do devs+=(\$(\$B attach http://127.0.0.1:8080/usr.hbi)); done
dd if=\${devs[0]} of=/dev/null bs=1M iflag=direct 2>/dev/null   # one read warms the shared cache
echo "warm-rand4k-4dev-httpblk: \$(fio_multi_iops "\${devs[@]}")"
for d in "\${devs[@]}"; do \$B detach \$d >/dev/null; done
sleep 1; rmmod httpblk; kill \$srv; wait \$srv 2>/dev/null
mkdir -p /tmp/ram && mount -t tmpfs -o size=\$((MB + 64))M tmpfs /tmp/ram
cp $img /tmp/ram/raw.img
loops=()
for i in 1 2 3 4; do loops+=(\$(losetup -r -f --show /tmp/ram/raw.img)); done
echo "warm-rand4k-4dev-loop: \$(fio_multi_iops "\${loops[@]}")"
for l in "\${loops[@]}"; do losetup -d \$l; done
umount /tmp/ram
fi
part pair || { echo done; exit 0; }
\$B serve \$W/st-pair --listen 127.0.0.1:8080 2>/dev/null & srv=\$!
sleep 1
insmod $repo/httpblk.ko cache_mb=1024
a=\$(\$B attach http://127.0.0.1:8080/a.hbi)
dd if=\$a of=/dev/null bs=1M iflag=direct 2>/dev/null
echo "pair-one: \$(sys \$a fetched_bytes)"
\$B detach \$a >/dev/null; sleep 1; rmmod httpblk
insmod $repo/httpblk.ko cache_mb=1024
a=\$(\$B attach http://127.0.0.1:8080/a.hbi); b=\$(\$B attach http://127.0.0.1:8080/b.hbi)
dd if=\$a of=/dev/null bs=1M iflag=direct 2>/dev/null & rd=\$!
dd if=\$b of=/dev/null bs=1M iflag=direct 2>/dev/null; wait \$rd   # not the server
echo "pair-both: \$(( \$(sys \$a fetched_bytes) + \$(sys \$b fetched_bytes) ))"
echo done
GUEST
run_guest 6G 3000
f() { awk -v k="$1:" '$1 == k {print $'"${2:-2}"'}' "$out/guest.log"; }
r() { [ -n "$1" ] && [ -n "$2" ] && echo "scale=2; $1 / $2" | bc; }
echo "== in-kernel cache and codecs, ${mb} MiB ext4 of /usr files, $(nproc) vCPUs under $(bash "$repo/tests/vm/accel.sh" "$kdir" | grep -q disable && echo TCG || echo KVM)"
for c in none lz4 lzo; do echo "cold sequential $c: $(f cold-$c) MB/s, $(f cold-$c 3) CPU s/GiB"; done
echo "warm sequential 1M: httpblk $(f warm-seq-httpblk) MB/s, loop $(f warm-seq-loop) MB/s, ratio $(r "$(f warm-seq-httpblk)" "$(f warm-seq-loop)")x (goal >= 1.6)"
echo "warm random 4k:     httpblk $(f warm-rand4k-httpblk) MB/s, loop $(f warm-rand4k-loop) MB/s, ratio $(r "$(f warm-rand4k-httpblk)" "$(f warm-rand4k-loop)")x (goal >= 1.25)"
echo "warm random 4k, 4 devices at QD128: httpblk $(f warm-rand4k-4dev-httpblk) IOPS, loop $(f warm-rand4k-4dev-loop) IOPS, ratio $(r "$(f warm-rand4k-4dev-httpblk)" "$(f warm-rand4k-4dev-loop)")x"
echo "two images sharing 90%: fetched $(f pair-both) bytes together vs $(f pair-one) alone, ratio $(r "$(f pair-both)" "$(f pair-one)")x (goal about 1.1)"
