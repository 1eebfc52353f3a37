# Sourced by the guest's tests. Helpers for servers, devices and checks.
# Each test is a function in a t_*.sh file; it returns non-zero (with a message) to fail,
# or calls `skip REASON`.

B=$HTTPBLK_BIN
export HTTPBLK_LOG=${HTTPBLK_LOG:-info,httpblk_core=debug}
export HTTPBLK_RUN_DIR=$LOG_DIR/run
W=$HTTPBLK_WORK          # the prepared images and stores (read-write, shared with the host)
KO=$HTTPBLK_KO

say() { echo "    $*"; }
fail() { echo "    FAIL: $*"; return 1; }
skip() { echo "SKIP: $*" >"$RESULT_NOTE"; exit 77; }

sha() { sha256sum "$1" | cut -d' ' -f1; }
want_sha() { grep " $1\$" "$W/images.sha256" | cut -d' ' -f1; }

# serve DIR PORT [ADDR]: the built-in server in the background, on ADDR:PORT (default
# 127.0.0.1; every 127.x.y.z address is on lo). Its pid is left in SERVE_PID.
serve() {
    local addr=${3:-127.0.0.1}
    "$B" serve "$1" --listen "$addr:$2" 2>>"$LOG_DIR/serve-$addr-$2.log" &
    SERVE_PID=$!
    for _ in $(seq 50); do
        # Our server must be the one answering, not a leftover holding the port.
        kill -0 "$SERVE_PID" 2>/dev/null || fail "server on $addr:$2 exited (port taken?)"
        curl -s -o /dev/null "http://$addr:$2/" && return 0
        sleep 0.1
    done
    fail "server on $addr:$2 did not come up"
}

# nginx_serve DIR PORT [ADDR]: nginx on ADDR:PORT (default 127.0.0.1).
nginx_serve() {
    local addr=${3:-127.0.0.1}
    local conf=$LOG_DIR/nginx-$2.conf
    mkdir -p "$LOG_DIR/nginx-$2"
    cat >"$conf" <<CONF
# The images live under /root: workers must be able to read them.
user root;
worker_processes 2;
pid $LOG_DIR/nginx-$2/pid;
error_log $LOG_DIR/nginx-$2/error.log;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $LOG_DIR/nginx-$2;
    proxy_temp_path $LOG_DIR/nginx-$2;
    fastcgi_temp_path $LOG_DIR/nginx-$2;
    uwsgi_temp_path $LOG_DIR/nginx-$2;
    scgi_temp_path $LOG_DIR/nginx-$2;
    keepalive_requests 100000;
    server { listen $addr:$2; root $1; }
}
CONF
    nginx -e "$LOG_DIR/nginx-$2/error.log" -c "$conf" || fail "nginx did not start"
    for _ in $(seq 50); do
        curl -s -o /dev/null "http://$addr:$2/" && return 0
        sleep 0.1
    done
    fail "nginx on $addr:$2 did not come up"
}

nginx_stop() { kill "$(cat "$LOG_DIR/nginx-$1/pid")" 2>/dev/null || true; }

# Stops every server a test started, so the next test gets its ports back. Bounded.
stop_servers() {
    pkill -CONT -f "$B serve" 2>/dev/null
    pkill -f "$B serve" 2>/dev/null
    pkill -x nginx 2>/dev/null
    pkill -x dnsmasq 2>/dev/null
    pkill -f flakyserve.py 2>/dev/null
    for _ in $(seq 50); do
        pgrep -f "$B serve" >/dev/null || pgrep -x nginx >/dev/null || return 0
        sleep 0.1
    done
    pkill -9 -f "$B serve" 2>/dev/null
    pkill -9 -x nginx 2>/dev/null
    return 0
}

# attach URL [args...]: prints the device path.
attach() { timeout 120 "$B" attach "$@" 2>>"$LOG_DIR/attach.log"; }

# helper_pid DEV: the pid of DEV's current helper, from its state file (JSON, one field a
# line; no python: its start costs 0.6 s under TCG).
helper_pid() {
    local pid
    pid=$(sed -n 's/^ *"pid": *\([0-9]*\),*$/\1/p' "$HTTPBLK_RUN_DIR/$(basename "$1").json" 2>/dev/null | head -1)
    [ -n "$pid" ] && echo "$pid"
}

# detach DEV: detaches and waits (bounded) until its helper has exited, so rmmod can follow.
detach() {
    local pid
    pid=$(helper_pid "$1")
    [ -n "$pid" ] || fail "no helper state for $1"
    "$B" detach "$1" >/dev/null || return 1
    for _ in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    fail "helper $pid of $1 still running after detach"
}

# Stops md arrays built over our devices, so they can be detached.
stop_md() {
    local md
    for md in /dev/md[0-9]*; do
        [ -b "$md" ] && mdadm --stop "$md" >/dev/null 2>&1
    done
    return 0
}

detach_all() {
    local d m
    # A test that failed with a file system still mounted must not keep the module busy.
    for m in $(awk '$1 ~ /^\/dev\/(httpblk|md)[0-9]/ {print $2}' /proc/mounts); do
        umount -l "$m" 2>/dev/null
    done
    stop_md
    for d in /dev/httpblk[0-9]*; do
        # In the background, waited for below at most 5 s: a wedged driver (a detach stuck in
        # D state) must fail its test, not hang the suite.
        [ -b "$d" ] && { "$B" detach "$d" >/dev/null 2>&1 & }
    done
    for _ in $(seq 50); do
        pgrep -f "httpblk (attach|detach|recover)" >/dev/null || return 0
        sleep 0.1
    done
    pkill -9 -f "httpblk (attach|recover)" || true
}

# expect_eio_within SECS DEV BS SKIP: one direct read of DEV (block SKIP of size BS) fails with
# EIO within SECS seconds and leaves no task stuck in D state.
expect_eio_within() {
    local secs=$1 dev=$2 bs=$3 skip=$4 t0 dt err
    t0=$(date +%s)
    if err=$(dd if="$dev" of=/dev/null bs="$bs" skip="$skip" count=1 iflag=direct 2>&1); then
        fail "read of $dev (block $skip of $bs) succeeded"
    fi
    dt=$(( $(date +%s) - t0 ))
    say "EIO after ${dt}s"
    case $err in *"Input/output error"*) ;; *) fail "read failed, but not with EIO: $err" ;; esac
    [ "$dt" -le "$secs" ] || fail "EIO took ${dt}s (limit ${secs}s)"
    no_stuck_tasks
}

# No task of ours may stay in D state.
# A task is stuck when it stays in D state across samples 2 s apart: under TCG any task may be
# caught in D for a moment (a page fault on the shared root file system, a short wait).
no_stuck_tasks() {
    local first stuck i
    d_tasks() { ps -eo pid=,stat=,comm= | awk '$2 ~ /^D/ {print $1 "(" $3 ")"}' | sort; }
    first=$(d_tasks)
    [ -z "$first" ] && return 0
    for i in 1 2 3 4; do
        sleep 0.5
        first=$(comm -12 <(echo "$first") <(d_tasks))
        [ -z "$first" ] && return 0
    done
    stuck=$first
    fail "tasks in D state for 2 s: $(echo $stuck)"
}

# stat_of DEV NAME: one of the device's figures in /sys/block/httpblkN/httpblk/.
stat_of() { cat "/sys/block/$(basename "$1")/httpblk/$2"; }

# data_blocks IMG FROM: the 256 KiB blocks of IMG from block FROM on that hold a non-zero
# byte, one per line. An all-zero block is never fetched (the index marks it), so a test that
# needs a read to miss must pick one of these: how much of an ext4 image is data depends on
# the host's files it was made from.
data_blocks() {
    python3 - "$1" "$2" <<'PY'
import sys
with open(sys.argv[1], "rb") as f:
    f.seek(int(sys.argv[2]) << 18)
    b = int(sys.argv[2])
    while chunk := f.read(1 << 18):
        if chunk.count(0) != len(chunk):
            print(b)
        b += 1
PY
}
