# The device outlives its helper: cache hits go on, misses wait for `httpblk recover`, and a
# read fails only when no helper comes back within the recovery timeout.

# alive PID: whether PID is a live process (a zombie nobody reaped yet is not).
alive() {
    local st
    st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
    [ -n "$st" ] && [ "$st" != Z ]
}

# kill_helper DEV: SIGKILLs DEV's helper and waits (at most 5 s) until it is gone and the
# kernel shows the device orphaned.
kill_helper() {
    local pid t0=$SECONDS
    pid=$(helper_pid "$1") || fail "no helper state for $1"
    kill -9 "$pid" || fail "no helper $pid to kill"
    while alive "$pid" || [ "$(stat_of "$1" helper)" = attached ]; do
        [ $((SECONDS - t0)) -lt 5 ] || fail "helper $pid of $1 still there 5 s after SIGKILL"
        sleep 0.1
    done
}

# recover DEV [ARGS...]: starts a new helper for DEV (bounded).
recover() { timeout 120 "$B" recover "$@" 2>>"$LOG_DIR/recover.log"; }

# read_ms DEV OFFSET LEN: milliseconds one direct read takes (fails the test on error).
read_ms() {
    python3 - "$@" <<'PY'
import os, sys, time
dev, off, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
fd = os.open(dev, os.O_RDONLY | os.O_DIRECT)
import mmap
buf = mmap.mmap(-1, n)
t0 = time.monotonic()
got = os.preadv(fd, [buf], off)
print(int((time.monotonic() - t0) * 1000))
sys.exit(0 if got == n else 1)
PY
}

test_recover_during_sha256sum() {
    # Proves: a helper killed during a whole-device read and recovered 3 s later costs a pause,
    # not an error: the checksum is right, no read failed, and during the outage a cached
    # block is served in under 100 ms.
    insmod "$KO"
    serve "$W/st" 8080
    dev=$(attach http://127.0.0.1:8080/raw.hbi)
    dd if="$dev" of=/dev/null bs=256k count=1 iflag=direct 2>/dev/null || fail "first read"
    sha "$dev" >"$LOG_DIR/sha" 2>"$LOG_DIR/sha.err" & rd=$!
    sleep 1
    kill_helper "$dev"
    ms=$(read_ms "$dev" 0 4096) || fail "cached read during the outage failed"
    say "cached read during the outage: $ms ms"
    [ "$ms" -lt 100 ] || fail "cached read took $ms ms during the outage"
    [ "$(stat_of "$dev" helper)" = orphaned ] || fail "helper state: $(stat_of "$dev" helper)"
    sleep 3
    recover "$dev" >/dev/null || fail "recover"
    wait "$rd" || fail "sha256sum failed: $(cat "$LOG_DIR/sha.err")"
    [ "$(cut -d' ' -f1 "$LOG_DIR/sha")" = "$(want_sha raw.img)" ] || fail "checksum differs"
    [ "$(stat_of "$dev" io_errors)" = 0 ] || fail "$(stat_of "$dev" io_errors) I/O errors"
    [ "$(stat_of "$dev" helper)" = attached ] || fail "not attached after recover"
}

test_recover_20_kills_mounted_ext4() {
    # Proves: a supervisor that recovers the helper each time it dies keeps a mounted ext4
    # file system whole through 20 kills at random moments of a full read: every file's
    # checksum is right, the file system stays mounted, no I/O error.
    insmod "$KO" cache_mb=8
    serve "$W/st" 8080
    dev=$(attach http://127.0.0.1:8080/ext4.hbi --max-inflight 8)
    mnt=$LOG_DIR/mnt-rec; mkdir -p "$mnt" && mount -o ro "$dev" "$mnt" || fail "mount"
    (cd "$mnt" && sha256sum -c --quiet "$W/manifest.sha256") >"$LOG_DIR/check.out" 2>&1 & rd=$!
    for i in $(seq 20); do
        sleep "0.$((RANDOM % 6 + 2))"
        kill -0 "$rd" 2>/dev/null || break
        kill_helper "$dev"
        # The supervisor: recover until it works (bounded).
        t0=$SECONDS
        until recover "$dev" >/dev/null; do
            [ $((SECONDS - t0)) -lt 30 ] || fail "recover $i kept failing"
            sleep 0.2
        done
    done
    say "killed and recovered $((i)) times"
    wait "$rd" || fail "checksums: $(head -5 "$LOG_DIR/check.out")"
    mountpoint -q "$mnt" || fail "no longer mounted"
    [ "$(stat_of "$dev" io_errors)" = 0 ] || fail "$(stat_of "$dev" io_errors) I/O errors"
    if dmesg | grep -q 'I/O error'; then fail "I/O errors in the kernel log"; fi
    umount "$mnt"
}

test_no_recovery_fails_within_timeout_then_recover() {
    # Proves: without a new helper, waiting reads fail with EIO within recovery_timeout_ms +
    # 1 s, later misses fail at once, nothing hangs; a later recover brings the mounted device
    # back without re-mounting.
    insmod "$KO"
    serve "$W/st" 8080
    dev=$(attach http://127.0.0.1:8080/ext4.hbi --recovery-timeout-ms 2000)
    mnt=$LOG_DIR/mnt-rec; mkdir -p "$mnt" && mount -o ro "$dev" "$mnt" || fail "mount"
    # Blocks of file data well past the metadata the mount read: misses. The first waits
    # for the recovery timeout; 8 others (not in its readahead) are read after it.
    mapfile -t data < <(data_blocks "$W/ext4.img" 40)
    [ "${#data[@]}" -ge 20 ] || fail "ext4.img holds only ${#data[@]} data blocks past block 40"
    waited=${data[0]}
    late=$(printf '%s\n' "${data[@]:8}" | awk 'NR % 2 == 1' | head -8 | tr '\n' ' ')
    kill_helper "$dev"
    expect_eio_within 3 "$dev" 256k "$waited"   # recovery_timeout_ms 2000
    [ "$(stat_of "$dev" helper)" = expired ] || fail "helper state: $(stat_of "$dev" helper)"
    # Past the recovery timeout every read returns at once: a miss with EIO, a hit with data.
    out=$(python3 - "$dev" $late <<'PY'
import os, sys, time, mmap
fd = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECT)
buf = mmap.mmap(-1, 4096)
slowest, eio = 0.0, 0
for b in map(int, sys.argv[2:]):
    t0 = time.monotonic()
    try:
        os.preadv(fd, [buf], b * 262144)
    except OSError as e:
        if e.errno != 5:
            print("errno", e.errno); sys.exit(1)
        eio += 1
    slowest = max(slowest, time.monotonic() - t0)
print(f"{eio} {int(slowest * 1000)}")
PY
    ) || fail "late reads: $out"
    say "8 reads (blocks $late) after the recovery timeout: $out (EIO count, slowest ms)"
    [ "${out%% *}" -gt 0 ] || fail "no late read of blocks $late failed (all cached?)"
    [ "${out##* }" -lt 500 ] || fail "a late read took ${out##* } ms"
    no_stuck_tasks
    recover "$dev" >/dev/null || fail "recover"
    (cd "$mnt" && sha256sum -c --quiet "$W/manifest.sha256") >"$LOG_DIR/check.out" 2>&1 ||
        fail "files after recover: $(head -3 "$LOG_DIR/check.out")"
    umount "$mnt"
}

test_recover_refusals() {
    # Proves: a recovering helper must serve the same index (another is refused with a clear
    # message), a device that has a helper cannot get a second one, and recover needs a
    # device whose helper is gone.
    insmod "$KO"
    serve "$W/st" 8080
    dev=$(attach http://127.0.0.1:8080/raw.hbi)
    if out=$("$B" recover "$dev" 2>&1); then fail "recover of an attached device succeeded"; fi
    say "owned: $out"
    case $out in *"has a helper"*) ;; *) fail "no clear message for an owned device: $out" ;; esac
    kill_helper "$dev"
    if out=$("$B" recover "$dev" http://127.0.0.1:8080/ext4.hbi 2>&1); then
        fail "recover with another image succeeded"
    fi
    say "other index: $out"
    dmesg | grep -q "recover refused: the helper serves another index" || fail "no kernel message for the other index"
    [ "$(stat_of "$dev" helper)" = orphaned ] || fail "the refused recover changed the device"
    recover "$dev" >/dev/null || fail "recover with the recorded URL"
    if out=$("$B" recover "$dev" 2>&1); then fail "a second helper was accepted"; fi
    cmp <(dd if="$dev" bs=1M iflag=direct 2>/dev/null) "$W/raw.img" || fail "data differs"
}

test_remove_on_exit_keeps_old_behaviour() {
    # Proves: with --remove-on-exit the device goes with its helper, as before recovery
    # existed, and nothing stays in D state.
    insmod "$KO"
    serve "$W/st" 8080
    dev=$(attach http://127.0.0.1:8080/raw.hbi --io-timeout-ms 20000 --remove-on-exit)
    ( /usr/bin/python3 "$PWD/randcheck.py" "$dev" "$W/raw.img" 200 8 >/dev/null 2>&1 & )
    sleep 1
    pkill -9 -f "httpblk attach" || fail "no helper to kill"
    t0=$SECONDS
    while [ -b "$dev" ]; do
        [ $((SECONDS - t0)) -lt 5 ] || fail "$dev still present 5 s after its helper died"
        sleep 0.1
    done
    no_stuck_tasks
    rmmod httpblk || fail "rmmod after helper death"
}

test_md_raid1_member_orphaned() {
    # Proves: md RAID1 over two devices keeps serving while one member's helper is dead and
    # not recovered for 10 s: reads that miss on the orphaned member fail after its short
    # recovery timeout and md reads the other member; no member is failed, nothing written.
    insmod "$KO" cache_mb=4
    serve "$W/st" 8080
    a=$(attach http://127.0.0.1:8080/raw.hbi --recovery-timeout-ms 1000 --io-timeout-ms 20000)
    b=$(attach http://127.0.0.1:8080/raw.hbi --recovery-timeout-ms 1000 --io-timeout-ms 20000)
    md_build /dev/md0 "$a" "$b"
    kill_helper "$a"
    t0=$SECONDS
    n=0
    while [ $((SECONDS - t0)) -lt 10 ]; do
        # Parallel readers, so md sends reads to both members.
        readers=""
        for q in 0 1 2 3; do
            dd if=/dev/md0 bs=64k skip=$((q * 96)) count=96 iflag=direct 2>/dev/null | sha256sum >"$LOG_DIR/q$q" &
            readers="$readers $!"
        done
        wait $readers
        for q in 0 1 2 3; do
            [ "$(cut -d' ' -f1 "$LOG_DIR/q$q")" = "$(dd if="$W/raw.img" bs=64k skip=$((q * 96)) count=96 2>/dev/null | sha256sum | cut -d" " -f1)" ] ||
                fail "md data of quarter $q differs (pass $n)"
        done
        n=$((n + 1))
    done
    say "$n passes over md while a member had no helper; orphaned member: $(stat_of "$a" reads) reads, $(stat_of "$a" io_errors) errors"
    grep -A2 '^md0' /proc/mdstat | grep -q '\[UU\]' || fail "a member was failed: $(grep -A2 '^md0' /proc/mdstat)"
    [ "$(stat_of "$a" writes_refused)" = 0 ] && [ "$(stat_of "$b" writes_refused)" = 0 ] ||
        fail "writes reached a member"
    recover "$a" >/dev/null || fail "recover"
    mdadm --stop /dev/md0 >/dev/null
}

test_hostile_recovering_helper() {
    # Proves: a recovering helper is as untrusted as a first one: another index, a bad ABI
    # version, unknown flags and a second owner are refused; garbage on the new ring fails
    # reads (never returns wrong data) and the kernel survives; the device still detaches.
    insmod "$KO"
    serve "$W/st" 8080
    dev=$(attach http://127.0.0.1:8080/raw.hbi --io-timeout-ms 3000)
    kill_helper "$dev"
    "$HTTPBLK_HOSTILE_RECOVER" "${dev#/dev/httpblk}" "$W/st/raw.hbi" "$W/raw.img" ||
        fail "the hostile recovering helper got something accepted"
    no_stuck_tasks
    "$B" detach "$dev" >/dev/null || fail "detach after the hostile helper"
}
