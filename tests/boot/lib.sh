# shellcheck shell=bash
# Sourced by tests/boot/run.sh and bench/boot.sh: servers on the host's loopback and one QEMU
# boot at a time (TCG, never KVM), its serial console in a file, every wait bounded in seconds.
# The guest reaches the host's 127.0.0.1 at 10.0.2.2 through QEMU's user networking.

# Kernel messages that fail any boot.
BAD_CONSOLE='BUG:|WARNING:|Oops|Call Trace|blocked for more than|UBSAN|general protection'

# free_port: prints a TCP/UDP port free on 127.0.0.1 right now.
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# serve DIR LOG: `httpblk serve DIR` on 127.0.0.1; sets SERVE_PID and SERVE_PORT.
serve() {
    SERVE_PORT=$(free_port)
    "$B" serve "$1" --listen "127.0.0.1:$SERVE_PORT" 2>>"$2" &
    SERVE_PID=$!
    for _ in $(seq 100); do
        curl -s -o /dev/null "http://127.0.0.1:$SERVE_PORT/" && return 0
        kill -0 "$SERVE_PID" 2>/dev/null || break
        sleep 0.1
    done
    echo "boot: httpblk serve on port $SERVE_PORT did not come up" >&2
    return 1
}

# boot NAME SECONDS APPEND [QEMU ARGS...]: boots $IMG/bzImage with $IMG/initrd.img on 2 vCPUs
# and 2 GiB under TCG, console in $OUT/NAME.console, until the guest reports "HTTPBLK-TEST done"
# (at most SECONDS), then waits at most 60 s for the poweroff the report asks for. Sets
# BOOT_DONE_S (QEMU start to report, s), BOOT_OFF_S (report to QEMU exit, s; empty if QEMU
# had to be killed) and BOOT_LOG. Returns 1 if the guest never reported.
boot() {
    local name=$1 secs=$2 append=$3 start now pid
    shift 3
    BOOT_LOG=$OUT/$name.console
    BOOT_DONE_S="" BOOT_OFF_S=""
    start=$(date +%s.%N)
    qemu-system-x86_64 -accel tcg -machine q35 -cpu max -smp 2 -m 2048 \
        -display none -monitor none -serial "file:$BOOT_LOG" -no-reboot \
        -kernel "$IMG/bzImage" -initrd "$IMG/initrd.img" \
        -append "console=ttyS0 panic=-1 $append" \
        -netdev user,id=n0 -device virtio-net-pci,netdev=n0 "$@" </dev/null >"$OUT/$name.qemu" 2>&1 &
    pid=$!
    while kill -0 "$pid" 2>/dev/null; do
        now=$(date +%s.%N)
        if grep -aq 'HTTPBLK-TEST done' "$BOOT_LOG" 2>/dev/null; then
            BOOT_DONE_S=$(echo "$now - $start" | bc)
            break
        fi
        if (($(echo "$now - $start > $secs" | bc))); then
            break
        fi
        sleep 1
    done
    if [ -n "$BOOT_DONE_S" ]; then
        local t0=$now
        while kill -0 "$pid" 2>/dev/null; do
            now=$(date +%s.%N)
            (($(echo "$now - $t0 > 60" | bc))) && break
            sleep 0.5
        done
        kill -0 "$pid" 2>/dev/null || BOOT_OFF_S=$(printf '%.1f' "$(echo "$now - $t0" | bc)")
        BOOT_DONE_S=$(printf '%.0f' "$BOOT_DONE_S")
    fi
    kill -9 "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    [ -n "$BOOT_DONE_S" ]
}

# fact KEY: the value of KEY=VALUE in the guest's report (first HTTPBLK-TEST line having it).
fact() {
    { tr -d '\r' <"$BOOT_LOG" | grep -ao 'HTTPBLK-TEST .*' | grep -o " $1=[^ ]*" | head -1 |
        cut -d= -f2-; } || true
}
