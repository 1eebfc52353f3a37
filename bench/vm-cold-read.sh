#!/usr/bin/env bash
# VM benchmark (issues: data path; performance you can judge under emulation): cold
# sequential read through /dev/httpblk0 against nbd + nbdkit's curl plugin reading the raw
# image from the same server (`httpblk serve` on 127.0.0.31), in one VM boot. The image is
# random bytes (httpblk: 256 KiB blocks, codec none, so every block read is a fetch). Each
# read prints MB/s, guest CPU-seconds per GiB read (server, client and kernel: all in the VM)
# and the guest's idle share. Two passes:
#  - network-bound: the server behind a link shaped with tc netem, HTTPBLK_BENCH_WAN_RATE
#    (default 8mbit) with a round trip of HTTPBLK_BENCH_WAN_RTT (default 3s), as in
#    vm-mirrors.sh; two readers, fio 1 MiB sequential reads one at a time (as `dd bs=1M
#    iflag=direct`) and 16 at a time, each for HTTPBLK_BENCH_SECS (default 120).
#    Goal >= 2x nbdkit-curl; a ratio with a run under 30% idle is CPU-bound, not judged.
#    nbdkit's curl plugin (1.32) serves one request at a time on nbd-client's one
#    connection, so it gets 1 MiB per round trip plus transfer whatever the reader: a full
#    link is at most 1 + rate x round trip / 1 MiB times that (3.9x here; 1.2x at 200 ms).
#  - CPU: no shaping, the whole image, 1 MiB reads one at a time: guest CPU-seconds per GiB,
#    httpblk against nbdkit-curl (the MB/s there are the emulated CPU's).
# Shaped links get stretched time limits (guest-lib.sh `slow_link`). HTTPBLK_BENCH_MB
# (default 256) sets the image size. Not a test.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
export HTTPBLK_BENCH_MB=${HTTPBLK_BENCH_MB:-256}
. "$here/lib.sh"
rate=${HTTPBLK_BENCH_WAN_RATE:-8mbit}
rtt=${HTTPBLK_BENCH_WAN_RTT:-3s}
secs=${HTTPBLK_BENCH_SECS:-120}
st=$(random_store)

{ guest_prelude; cat <<GUEST
a=127.0.0.31
serve_at $st \$a 8080; serve_at $work/raw-random-${mb}m \$a 8081
measured background background 10
# pass PREFIX QD SECONDS: httpblk then nbdkit-curl, cold, reads of 1 MiB, QD at a time.
pass() {
    fresh; dev=\$(\$B attach http://\$a:8080/rand.hbi \$slow_link)
    measured \$1-httpblk fio_read \$dev 1M \$2 \$3
    detach_all
    nbd_attach http://\$a:8081/rand.img && measured \$1-nbdkit fio_read /dev/nbd0 1M \$2 \$3
    nbd_detach
}
shape $rtt $rate \$a
pass qd1 1 $secs
pass qd16 16 $secs
unshape
pass cpu 1 600
echo done
GUEST
} >"$out/guest.sh"
run_guest 3G $((secs * 4 + 2400)) >"$out/run.log"
grep -E '^host load|did not finish' "$out/run.log" || true
echo "== cold sequential read vs nbd + nbdkit-curl: ${mb} MiB of random bytes (codec none), 2 vCPUs under $(under)"
echo "   guest idle with nothing read: $(fig background idle)% ($(fig background cpu) CPU-s in $(fig background secs) s)"
cpu_ratio() { echo "  CPU-s per GiB, nbdkit-curl / httpblk: $(ratio "$(fig "$1-nbdkit" cpu_gib)" "$(fig "$1-httpblk" cpu_gib)")x (above 1: httpblk costs less)"; }
for qd in 1 16; do
    echo "server at $rate, round trip $rtt, 1 MiB reads, $qd at a time:"
    show qd$qd-httpblk "httpblk"
    show qd$qd-nbdkit "nbd + nbdkit-curl"
    judge "httpblk / nbdkit-curl" qd$qd-httpblk qd$qd-nbdkit 2
    cpu_ratio qd$qd
done
echo "no shaping, the whole image, 1 MiB reads one at a time (CPU-bound by design):"
show cpu-httpblk "httpblk"
show cpu-nbdkit "nbd + nbdkit-curl"
cpu_ratio cpu
echo "(as the guest printed them: $out/guest.log)"
