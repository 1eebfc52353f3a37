#!/usr/bin/env bash
# VM benchmark (issues: mirrors, DNS and md RAID1; performance you can judge under emulation).
# Network-bound: `httpblk serve` on 127.0.0.31-34 in the VM, each behind its own link shaped
# with tc netem on lo (bench/guest-lib.sh `shape`), slow enough that the emulated CPU is not
# the limit. Every read is cold (module reloaded), of an image of random bytes (256 KiB
# blocks, codec none: every block read is a fetch), by fio with 1 MiB reads, iodepth 16,
# direct I/O; each prints MB/s, guest CPU-seconds per GiB and the guest's idle share. A ratio
# with a run under 30% idle is CPU-bound: printed, not judged. From one VM boot:
#  - latency hiding: one device against `--max-inflight 1` (the seed's one fetch at a time),
#    one server at HTTPBLK_BENCH_WAN_RATE (default 8mbit) with a round trip of
#    HTTPBLK_BENCH_WAN_RTT (default 3s), each read for HTTPBLK_BENCH_WAN_SECS (default 120).
#    Goal >= 10x. One fetch at a time gets a block per round trip plus its transfer, a full
#    link 1 + rate x round trip / block size times that: 12x on 1 MB/s x 3 s. The emulated
#    CPU needs about 0.9 CPU-s per MB on a shaped link, so 1 MB/s is what it carries with
#    half its time idle; at a 200 ms round trip the same bound would be 1.8x, whatever the
#    driver did: the round trip is stretched as the rate is cut (time dilation).
#  - bandwidth across servers, each at HTTPBLK_BENCH_RATE (default 2mbit), round trip
#    HTTPBLK_BENCH_RTT (default 200ms), each read for HTTPBLK_BENCH_SECS (default 90): md
#    RAID1 over 2 and over 4 devices (one server each) against one device (goals >= 1.8x and
#    >= 3.5x), and one device with the same 4 servers as mirrors against md RAID1 over them;
#    then md RAID1 again with four readers, each sequential over its own quarter of the
#    image (4 reads in flight each), against one device read so: md keeps one sequential
#    stream on one member, and spreads separate streams.
# Shaped links get stretched time limits (guest-lib.sh `slow_link`). HTTPBLK_BENCH_MB
# (default 256) sets the image size. Not a test.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
export HTTPBLK_BENCH_MB=${HTTPBLK_BENCH_MB:-256}
. "$here/lib.sh"
wan_rate=${HTTPBLK_BENCH_WAN_RATE:-8mbit}
wan_rtt=${HTTPBLK_BENCH_WAN_RTT:-3s}
wan_secs=${HTTPBLK_BENCH_WAN_SECS:-120}
rate=${HTTPBLK_BENCH_RATE:-2mbit}
rtt=${HTTPBLK_BENCH_RTT:-200ms}
secs=${HTTPBLK_BENCH_SECS:-90}
st=$(random_store)

{ guest_prelude; cat <<GUEST
servers="127.0.0.31 127.0.0.32 127.0.0.33 127.0.0.34"
for a in \$servers; do serve_at $st \$a 8080; done
readers4="--numjobs=4 --size=25% --offset_increment=25% --group_reporting"
url() { echo http://\$1:8080/rand.hbi; }
# md N: md RAID1 over devices on the first N servers, as /dev/md0.
md() {
    local devs="" a
    for a in \$(echo \$servers | cut -d' ' -f1-\$1); do devs="\$devs \$(\$B attach \$(url \$a) \$slow_link)"; done
    mdadm --build /dev/md0 --level=1 --raid-devices=\$1 --assume-clean \$devs >/dev/null 2>&1
}
measured background background 10

shape $wan_rtt $wan_rate \$servers
fresh; dev=\$(\$B attach \$(url 127.0.0.31) \$slow_link)
measured hide-one fio_read \$dev 1M 16 $wan_secs
fresh; dev=\$(\$B attach \$(url 127.0.0.31) \$slow_link --max-inflight 1)
measured hide-inflight1 fio_read \$dev 1M 16 $wan_secs

shape $rtt $rate \$servers
fresh; dev=\$(\$B attach \$(url 127.0.0.31) \$slow_link)
measured one fio_read \$dev 1M 16 $secs
fresh; md 2; measured md2 fio_read /dev/md0 1M 16 $secs
fresh; md 4; measured md4 fio_read /dev/md0 1M 16 $secs
fresh; dev=\$(\$B attach \$(for a in \$servers; do url \$a; done) \$slow_link)
measured mirrors4 fio_read \$dev 1M 16 $secs
# Four readers, each sequential over its own quarter, 4 reads in flight each (16 in all).
fresh; dev=\$(\$B attach \$(url 127.0.0.31) \$slow_link)
measured one-4r fio_read \$dev 1M 4 $secs \$readers4
fresh; md 2; measured md2-4r fio_read /dev/md0 1M 4 $secs \$readers4
fresh; md 4; measured md4-4r fio_read /dev/md0 1M 4 $secs \$readers4
\$B status >$out/status.txt
detach_all
echo done
GUEST
} >"$out/guest.sh"
run_guest 3G $((wan_secs * 2 + secs * 7 + 2400)) >"$out/run.log"
grep -E '^host load|did not finish' "$out/run.log" || true
echo "== latency hiding, md RAID1 and mirrors: ${mb} MiB of random bytes (256 KiB blocks, codec none), 2 vCPUs under $(under)"
echo "   guest idle with nothing read: $(fig background idle)% ($(fig background cpu) CPU-s in $(fig background secs) s)"
echo "one server at $wan_rate, round trip $wan_rtt:"
show hide-one "one device (64 fetches in flight)"
show hide-inflight1 "one device, --max-inflight 1"
judge "latency hiding" hide-one hide-inflight1 10
echo "servers at $rate each, round trip $rtt:"
show one "one device, one server"
show md2 "md RAID1 over 2 devices, one server each"
show md4 "md RAID1 over 4 devices"
show mirrors4 "one device with the 4 servers as mirrors"
judge "md RAID1 over 2 / one device" md2 one 1.8
judge "md RAID1 over 4 / one device" md4 one 3.5
judge "4 mirrors / md RAID1 over 4" mirrors4 md4 -
echo "four readers, each sequential over its own quarter of the image:"
show one-4r "one device, one server"
show md2-4r "md RAID1 over 2 devices"
show md4-4r "md RAID1 over 4 devices"
judge "md RAID1 over 2 / one device, 4 readers" md2-4r one-4r 1.8
judge "md RAID1 over 4 / one device, 4 readers" md4-4r one-4r 3.5
echo "(as the guest printed them: $out/guest.log)"
