#!/usr/bin/env bash
# VM benchmark (issue: performance you can judge under emulation; demand before readahead).
# One server (`httpblk serve` on 127.0.0.31 in the VM) behind a link shaped with tc netem:
# HTTPBLK_BENCH_RATE (default 8mbit, what the emulated CPU carries with half its time idle), a
# round trip of HTTPBLK_BENCH_RTT (default 200ms). An image of random bytes (256 KiB blocks,
# codec none) and the module loaded with
# readahead_kb=8192: a sequential reader has up to 32 readahead fetches posted. On one
# device, fio reads the first three quarters sequentially (1 MiB, one at a time, direct I/O)
# while, from 10 s later, 4 KiB reads at random, one at a time, hit the last quarter: each at
# the start of a block no read asked for before, so each one misses (guest-lib.sh
# `randlat`). Prints the random reads' latency, p50 and p99, with the sequential reader's
# MB/s and the guest's idle share:
#  - alone: the random reader without the sequential one (the floor: a round trip and one
#    block's transfer);
#  - before: the module loaded with readahead_inflight=256, every readahead fetch posted
#    transfers at once (the driver before demand-first);
#  - after: the default readahead_inflight=4, at most 4 readahead fetches in flight; a miss
#    never waits for a slot or a transfer behind them.
# Each run lasts HTTPBLK_BENCH_SECS (default 150). HTTPBLK_BENCH_MB (default 512) sets the image
# size: the sequential reader must not reach the end of its part. Not a test: a run under 30%
# idle is marked CPU-bound.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
export HTTPBLK_BENCH_MB=${HTTPBLK_BENCH_MB:-512}
. "$here/lib.sh"
rtt=${HTTPBLK_BENCH_RTT:-200ms}
rate=${HTTPBLK_BENCH_RATE:-8mbit}
secs=${HTTPBLK_BENCH_SECS:-150}
st=$(random_store)

{ guest_prelude; cat <<GUEST
a=127.0.0.31
serve_at $st \$a 8080
measured background background 10
# mixed DEV [seq]: the random reader (randlat: 4 KiB at the start of blocks of the last
# quarter, each once), with the sequential one if asked (fio, 1 MiB reads from the start);
# prints the random reads' "p50=MS p99=MS max=MS n=READS", with the sequential reader its
# "bytes= secs=", and the device's I/O errors.
mixed() {
    local seq="" blocks r
    blocks=\$((\$(blockdev --getsize64 \$1) >> 18))
    if [ \$# -gt 1 ]; then
        timeout $((secs + 900)) fio --name=seq --filename=\$1 --readonly --rw=read --bs=1M --direct=1 \
            --ioengine=libaio --iodepth=1 --size=75% --runtime=$secs --output-format=terse \
            --terse-version=3 >$out/seq.terse &
        seq=\$!
    fi
    sleep 10
    r=\$(randlat \$1 \$((blocks * 3 / 4)) \$((blocks / 4)) $((secs - 10)))
    if [ -n "\$seq" ]; then
        wait \$seq
        r="\$r \$(awk -F';' '{printf "bytes=%.0f secs=%.3f", \$6 * 1024, \$9 / 1000}' $out/seq.terse)"
    fi
    echo "\$r errors=\$(cat /sys/block/\$(basename \$1)/httpblk/io_errors)"
}
shape $rtt $rate \$a
fresh readahead_kb=8192; dev=\$(\$B attach http://\$a:8080/rand.hbi \$slow_link)
measured alone mixed \$dev
fresh readahead_kb=8192 readahead_inflight=256; dev=\$(\$B attach http://\$a:8080/rand.hbi \$slow_link)
measured before mixed \$dev seq
echo "before-fetches: n=\$(cat /sys/block/\$(basename \$dev)/httpblk/fetches) readahead=\$(cat /sys/block/\$(basename \$dev)/httpblk/readahead_fetches)"
fresh readahead_kb=8192; dev=\$(\$B attach http://\$a:8080/rand.hbi \$slow_link)
measured after mixed \$dev seq
echo "after-fetches: n=\$(cat /sys/block/\$(basename \$dev)/httpblk/fetches) readahead=\$(cat /sys/block/\$(basename \$dev)/httpblk/readahead_fetches)"
detach_all
echo done
GUEST
} >"$out/guest.sh"
run_guest 3G $((secs * 3 + 900)) >"$out/run.log"
grep -E '^host load|did not finish' "$out/run.log" || true
echo "== demand before readahead: ${mb} MiB of random bytes (256 KiB blocks, codec none), 2 vCPUs under $(under);"
echo "   server at $rate, round trip $rtt; guest idle with nothing read: $(fig background idle)%"
echo "random 4 KiB reads, one at a time, during a sequential read (1 MiB, one at a time, readahead_kb 8192) of another region:"
printf '  %-40s %7s %7s %7s %6s %12s %5s\n' "" "p50 ms" "p99 ms" "max ms" "reads" "seq MB/s" "idle"
row() {
    local cpu=""
    [ -n "$(fig "$1" idle)" ] && [ "$(fig "$1" idle)" -lt 30 ] && cpu="  CPU-bound"
    printf '  %-40s %7s %7s %7s %6s %12s %4s%%%s\n' "$2" "$(fig "$1" p50)" "$(fig "$1" p99)" "$(fig "$1" max)" \
        "$(fig "$1" n)" "$(fig "$1" mbps)" "$(fig "$1" idle)" "$cpu"
}
row alone "alone (no sequential reader)"
row before "before: readahead_inflight=256"
row after "after: readahead_inflight=4 (default)"
echo "  p50 before / after: $(ratio "$(fig before p50)" "$(fig after p50)")x, p99 before / after: $(ratio "$(fig before p99)" "$(fig after p99)")x"
echo "  sequential reader after / before: $(ratio "$(fig after mbps)" "$(fig before mbps)")x"
echo "(figures as the guest printed them: $out/guest.log)"
