# Sourced inside the VM by the VM benchmarks' guest scripts (after B, KO, mb and marks are
# set: bench/lib.sh `guest_prelude`).
# Every measured run is a window: the guest's CPU use is sampled from /proc/stat at both ends,
# so each figure comes with the guest's idle share over the run (idle + iowait over all CPU
# time of both vCPUs) and the guest CPU-seconds it cost (server, helper, kernel, netem: all
# of them run in the VM). A figure taken with less than 30% idle is CPU-bound: the emulated
# CPU, not the network, set it (bench/lib.sh judges that on the host).
# Figure lines look like "KEY: mbps=0.49 bytes=... secs=... idle=71 cpu=12.3 cpu_gib=..."
# and are read back on the host by `fig KEY FIELD`.

export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
# The helpers' logs and state outlive the VM, beside the figures: a run with errors can be
# read back.
export HTTPBLK_RUN_DIR=${marks%/*}/run
ip link set lo up

# idle_now: seconds both CPUs spent idle since boot (idle + iowait; tickless idle time is
# kept by the clock, so it is exact even when the host deschedules the emulator), and the
# time now.
idle_now() { echo "$(awk '/^cpu / {print $5 + $6}' /proc/stat) $(date +%s.%N)"; }

# net_now: bytes the shaped links (netem on lo) have sent, TCP segments retransmitted and
# TCP connections opened.
net_now() {
    echo "$(tc -s qdisc show dev lo 2>/dev/null | awk '/^qdisc netem/ {n = 1; next} n && /Sent/ {s += $2; n = 0} END {print s + 0}')" \
        "$(awk '/^Tcp:/ && $NF ~ /^[0-9]+$/ {print $13, $6}' /proc/net/snmp)"
}

# measured KEY CMD...: runs CMD, which prints "k=v ..." fields (a read prints bytes=B
# secs=S), and prints "KEY: " those fields, mbps and cpu_gib (CPU-seconds per GiB read) for
# a read, the window's idle share (percent) and its CPU-seconds: the CPUs' time over the
# window less their idle time, and what the shaped links carried (wire=, bytes with
# retransmissions and HTTP headers), TCP's retransmitted segments (retrans=) and the TCP
# connections opened (opens=). Busy ticks in /proc/stat would undercount: under TCG on a
# loaded host the guest misses timer ticks (about half of them in our runs). Time the host
# took from a busy vCPU counts here as busy, so a loaded host shows as a low idle share. The
# window is also marked in $marks, for the host to note the emulator's own CPU time.
measured() {
    local key=$1 out w0 w1 n0 n1
    shift
    n0=$(net_now)
    echo "start $key" >>"$marks"
    w0=$(idle_now)
    out=$("$@")
    w1=$(idle_now)
    echo "end $key" >>"$marks"
    n1=$(net_now)
    echo "$key: $out $n0 $n1 $w0 $w1" | awk -v hz="$(getconf CLK_TCK)" -v ncpu="$(nproc)" '{
        idle = ($(NF - 1) - $(NF - 3)) / hz; wall = $NF - $(NF - 2)
        total = ncpu * wall; cpu = total - idle
        wire = $(NF - 6) - $(NF - 9); retrans = $(NF - 5) - $(NF - 8); opens = $(NF - 4) - $(NF - 7)
        line = $1
        for (i = 2; i <= NF - 10; i++) { line = line " " $i; split($i, kv, "="); f[kv[1]] = kv[2] }
        if (f["bytes"] > 0 && f["secs"] > 0)
            line = line sprintf(" mbps=%.3f cpu_gib=%.1f", f["bytes"] / 1e6 / f["secs"], cpu * 1073741824 / f["bytes"])
        printf "%s idle=%d cpu=%.1f wall=%.1f wire=%d retrans=%d opens=%d\n", line, (total > 0 ? 100 * idle / total : 0), cpu, wall, wire, retrans, opens
    }'
}

# fio_read DEV BS IODEPTH SECONDS [fio options...]: reads DEV from its start (sequential,
# direct I/O) for at most SECONDS (and the reads then in flight) or to its end; prints
# "bytes=B secs=S errors=E": E counts fio's error and the I/O errors of httpblk devices.
fio_read() {
    local dev=$1 bs=$2 qd=$3 secs=$4 out ioerr
    shift 4
    out=$(timeout $((secs + 900)) fio --name=r --filename="$dev" --readonly --rw=read --bs="$bs" --direct=1 \
        --ioengine=libaio --iodepth="$qd" --runtime="$secs" "$@" --output-format=terse --terse-version=3)
    ioerr=$(cat /sys/block/httpblk*/httpblk/io_errors 2>/dev/null | awk '{s += $1} END {print s + 0}')
    echo "$out" | awk -F';' -v e="$ioerr" '
        NF > 9 {printf "bytes=%.0f secs=%.3f errors=%d", $6 * 1024, $9 / 1000, $5 + e; ok = 1}
        END {if (!ok) printf "errors=fio-failed"}'
}

# Attach options for a shaped link: the link is slowed 50 to 250 times to suit the emulated
# CPU, so the time limits that assume a real link are stretched too: a fetch queued behind
# megabytes on a 4 Mbit/s link is not a stall (the helper would retry it after 10 s, and a
# read behind 16 MiB of fetches would fail after 30 s). The kernel's limit is the highest.
slow_link="--request-timeout-ms 120000 --io-timeout-ms 600000"

# background SECONDS: the idle guest's own CPU use (servers up, nothing read), as a floor for
# the CPU-seconds of slow runs.
background() { sleep "$1"; echo "secs=$1"; }

# shape DELAY RATE ADDR...: every reply from a server on ADDR (on lo) is delayed by DELAY
# (so DELAY is the round trip) and, unless RATE is "none", each address's replies are
# limited to RATE: its own link. A prio qdisc on lo gives each address a band holding its
# netem (the VM kernel has no htb); other traffic (requests, ACKs) takes the last band,
# untouched. Like a real link: lo's MTU is 1500, and a link holds what is on the wire (rate x
# delay) plus a buffer of as much again, then drops, so TCP's congestion control shares it
# (an unbounded queue would hold every fetch's whole body, seconds long: spurious
# retransmissions, and no flow would get its share). Servers keep a connection's congestion
# window between requests, as CDNs configure them (tcp_slow_start_after_idle=0): else a
# keep-alive connection idle for a round trip starts each block, or each nbdkit-curl range,
# from ten segments.
shape() {
    local delay=$1 rate=$2 i=1 a limit
    shift 2
    ip link set lo mtu 1500
    sysctl -qw net.ipv4.tcp_slow_start_after_idle=0
    limit=$(awk -v d="$delay" -v r="$rate" 'BEGIN {
        s = d + 0; if (d ~ /ms$/) s /= 1000; else if (d ~ /us$/) s /= 1e6
        b = r + 0; if (r ~ /kbit$/) b *= 125; else if (r ~ /mbit$/) b *= 125000; else if (r ~ /gbit$/) b *= 125e6
        print (r == "none") ? 10000 : int(2 * b * s / 1500) + 100 }')
    tc qdisc del dev lo root 2>/dev/null
    tc qdisc add dev lo root handle 1: prio bands $(($# + 1)) priomap $(for _ in $(seq 16); do echo $#; done)
    for a in "$@"; do
        tc qdisc add dev lo parent 1:$i handle $((i + 10)): netem delay "$delay" \
            $([ "$rate" = none ] || echo rate "$rate") limit "$limit"
        tc filter add dev lo parent 1: protocol ip prio 1 u32 match ip src "$a/32" flowid 1:$i
        i=$((i + 1))
    done
}
unshape() {
    tc qdisc del dev lo root 2>/dev/null
    ip link set lo mtu 65536
    sysctl -qw net.ipv4.tcp_slow_start_after_idle=1
}

# serve_at DIR ADDR PORT: `httpblk serve DIR` in the background, waited for (bounded).
serve_at() {
    "$B" serve "$1" --listen "$2:$3" 2>/dev/null &
    for _ in $(seq 100); do
        curl -s -o /dev/null "http://$2:$3/" && return 0
        sleep 0.1
    done
    echo "server on $2:$3 did not come up"
    return 1
}

# detach_all: detaches every device (stopping md0 first) and waits, bounded, until no
# helper is left, so the module can be unloaded.
detach_all() {
    local d
    mdadm --stop /dev/md0 >/dev/null 2>&1
    for d in /dev/httpblk[0-9]*; do
        [ -b "$d" ] && timeout 30 "$B" detach "$d" >/dev/null
    done
    for _ in $(seq 100); do
        pgrep -f "httpblk attach" >/dev/null || return 0
        sleep 0.1
    done
}

# fresh [PARAM=VALUE...]: the module reloaded, its cache empty: every read that follows is
# cold. cache_mb is twice the image, so nothing read is evicted.
fresh() {
    detach_all
    rmmod httpblk 2>/dev/null
    insmod "$KO" cache_mb=$((mb * 2)) "$@"
}

# nbd_attach URL: nbdkit's curl plugin serving URL as /dev/nbd0 (nbdkit is started once per
# call and exits with the shell). Bounded: nbdkit takes a while to start under TCG.
nbd_attach() {
    nbdkit -f --exit-with-parent -r -p 10809 -i 127.0.0.1 curl url="$1" timeout=600 2>/dev/null &
    NBDKIT_PID=$!
    for _ in $(seq 60); do
        nbd-client 127.0.0.1 10809 /dev/nbd0 -b 4096 -t 600 >/dev/null 2>&1 && return 0
        sleep 1
    done
    echo "nbd-client could not connect"
    return 1
}
nbd_detach() {
    nbd-client -d /dev/nbd0 >/dev/null 2>&1
    kill "$NBDKIT_PID" 2>/dev/null
    wait "$NBDKIT_PID" 2>/dev/null
    return 0
}

# randlat DEV FIRST COUNT SECONDS: reads 4 KiB (direct I/O) at the start of blocks FIRST to
# FIRST + COUNT - 1 (256 KiB blocks) of DEV, one at a time, in a random order (the same on
# every run), each block once, for at most SECONDS; prints the reads' latency in ms,
# "p50= p99= max= n=". (fio cannot do this: its block alignment turns off its random map, and
# a block read twice is a cache hit.)
randlat() {
    python3 -c '
import mmap, os, random, sys, time
dev, first, count, secs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
fd = os.open(dev, os.O_RDONLY | os.O_DIRECT)
buf = mmap.mmap(-1, 4096)
lat, end = [], time.monotonic() + secs
for b in random.Random(7).sample(range(first, first + count), count):
    if time.monotonic() >= end:
        break
    t = time.monotonic()
    os.preadv(fd, [buf], b << 18)
    lat.append((time.monotonic() - t) * 1000)
lat.sort()
q = lambda f: lat[min(len(lat) - 1, int(f * len(lat)))]
print("p50=%.0f p99=%.0f max=%.0f n=%d" % (q(0.5), q(0.99), lat[-1], len(lat)))
' "$@"
}
