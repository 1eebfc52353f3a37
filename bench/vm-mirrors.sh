#!/usr/bin/env bash
# VM benchmark (issue: mirrors, DNS and md RAID1). Cold sequential read of an ext4 image of
# /usr files (codec none) from `httpblk serve` on 127.0.0.31-34, with tc netem adding
# HTTPBLK_BENCH_DELAY (default 20ms) to every server's replies. Prints, from one VM boot:
#  - one device with its normal concurrency against `--max-inflight 1` (the seed's one request
#    at a time), delay only (goal >= 10x);
#  - with each server also limited to HTTPBLK_BENCH_RATE (default 100mbit): md RAID1 over 2 and
#    over 4 devices, one server each, against one device (goals >= 1.8x and >= 3.5x), and one
#    device with 4 mirrors against md RAID1 over the same 4 servers.
# The reader is fio (1 MiB sequential, iodepth 16, direct I/O) on every device alike.
#   HTTPBLK_BENCH_MB=1024 (default) sets the image size. Not a test: it judges nothing.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
. "$here/lib.sh"
delay=${HTTPBLK_BENCH_DELAY:-20ms}
rate=${HTTPBLK_BENCH_RATE:-100mbit}
st=$(store none)

cat >"$out/guest.sh" <<GUEST
exec >"$out/guest.log" 2>&1
set -u
ip link set lo up
B=$B; KO=$repo/httpblk.ko; URL=usr.hbi
servers="127.0.0.31 127.0.0.32 127.0.0.33 127.0.0.34"
for a in \$servers; do \$B serve $st --listen \$a:8080 2>/dev/null & done
sleep 1
# shape [RATE]: every server's replies delayed by $delay, and limited to RATE if given: a prio
# qdisc on lo whose band i holds server i's netem (the VM kernel has no htb); other traffic
# takes the last band, untouched.
shape() {
    tc qdisc del dev lo root 2>/dev/null
    tc qdisc add dev lo root handle 1: prio bands 5 priomap 4 4 4 4 4 4 4 4 4 4 4 4 4 4 4 4
    local i=1 a
    for a in \$servers; do
        tc qdisc add dev lo parent 1:\$i handle \$((i + 10)): netem delay $delay \${1:+rate \$1} limit 100000
        tc filter add dev lo parent 1: protocol ip prio 1 u32 match ip src \$a/32 flowid 1:\$i
        i=\$((i + 1))
    done
}
fresh() { rmmod httpblk 2>/dev/null; insmod \$KO cache_mb=$((mb * 2)); }
rd() {  # DEV -> MB/s
    fio --name=b --filename=\$1 --readonly --rw=read --bs=1M --direct=1 --ioengine=libaio --iodepth=16 \
        --output-format=terse --terse-version=3 | awk -F';' '{printf "%.2f", \$7/1000}'
}
detach_all() { for d in /dev/httpblk[0-9]*; do [ -b \$d ] && \$B detach \$d >/dev/null; done; sleep 1; }
md() {  # N: md RAID1 over N devices on the first N servers -> MB/s
    local devs="" a
    for a in \$(echo \$servers | cut -d' ' -f1-\$1); do devs="\$devs \$(\$B attach http://\$a:8080/\$URL)"; done
    mdadm --build /dev/md0 --level=1 --raid-devices=\$1 --assume-clean \$devs >/dev/null 2>&1
    rd /dev/md0
    mdadm --stop /dev/md0 >/dev/null 2>&1
}

shape
fresh; dev=\$(\$B attach http://127.0.0.31:8080/\$URL); echo "delay-one: \$(rd \$dev)"; detach_all
fresh; dev=\$(\$B attach http://127.0.0.31:8080/\$URL --max-inflight 1); echo "delay-inflight1: \$(rd \$dev)"; detach_all
shape $rate
fresh; dev=\$(\$B attach http://127.0.0.31:8080/\$URL); echo "rate-one: \$(rd \$dev)"; detach_all
fresh; echo "rate-md2: \$(md 2)"; detach_all
fresh; echo "rate-md4: \$(md 4)"; detach_all
fresh; dev=\$(\$B attach \$(for a in \$servers; do echo http://\$a:8080/\$URL; done)); echo "rate-mirrors4: \$(rd \$dev)"
\$B status >$out/status.txt; detach_all
echo done
GUEST
run_guest 4G 5400
f() { awk -v k="$1:" '$1 == k {print $2}' "$out/guest.log"; }
r() { [ -n "$1" ] && [ -n "$2" ] && echo "scale=2; $1 / $2" | bc; }
echo "== mirrors and md RAID1, ${mb} MiB ext4 of /usr files (codec none), replies delayed $delay," \
    "$(nproc) vCPUs under $(bash "$repo/tests/vm/accel.sh" "$kdir" | grep -q disable && echo TCG || echo KVM)"
echo "one device: $(f delay-one) MB/s, --max-inflight 1: $(f delay-inflight1) MB/s, ratio $(r "$(f delay-one)" "$(f delay-inflight1)")x (goal >= 10)"
echo "servers limited to $rate: one device $(f rate-one) MB/s"
echo "  md RAID1 over 2: $(f rate-md2) MB/s, ratio $(r "$(f rate-md2)" "$(f rate-one)")x (goal >= 1.8)"
echo "  md RAID1 over 4: $(f rate-md4) MB/s, ratio $(r "$(f rate-md4)" "$(f rate-one)")x (goal >= 3.5)"
echo "  one device with 4 mirrors: $(f rate-mirrors4) MB/s, ratio $(r "$(f rate-mirrors4)" "$(f rate-one)")x; md over 4 vs 4 mirrors $(r "$(f rate-md4)" "$(f rate-mirrors4)")x"
