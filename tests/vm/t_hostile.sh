# Crafted indexes, hash collisions, control-file ownership, frozen and killed helpers,
# allocation failures and memory pressure: the driver stays correct and bounded, or fails only
# the device concerned, with EIO.
#
# Every wait here is bounded, and so is every step that a broken driver could wedge (a read,
# an attach, a detach, rmmod): such a step runs in the background and is given up on after its
# time, so that the test fails instead of hanging the suite.

# Milliseconds since the epoch.
hb_ms() { echo $(($(date +%s%N) / 1000000)); }

# hb_bounded SECS OUT CMD...: runs CMD with its output in OUT and waits for it at most SECS
# seconds. Returns CMD's status, or 124 when it is still running then: it is sent SIGKILL but
# not waited for (a task stuck in D state must fail the test, not hang it).
hb_bounded() {
    local secs=$1 out=$2 pid deadline
    shift 2
    "$@" >"$out" 2>&1 &
    pid=$!
    deadline=$(($(hb_ms) + secs * 1000))
    while kill -0 "$pid" 2>/dev/null; do
        if [ "$(hb_ms)" -ge "$deadline" ]; then
            kill -KILL "$pid" 2>/dev/null
            return 124
        fi
        sleep 0.1
    done
    wait "$pid"
}

# hb_wait_ms MS CONDITION: polls CONDITION (shell code) until it holds, for at most MS ms.
hb_wait_ms() {
    local deadline=$(($(hb_ms) + $1))
    until eval "$2"; do
        [ "$(hb_ms)" -lt "$deadline" ] || return 1
        sleep 0.05
    done
}

# hb_attach SECS URL [args...]: attach, given up on after SECS seconds; prints the device.
hb_attach() {
    local secs=$1
    shift
    timeout "$secs" "$B" attach "$@" 2>>"$LOG_DIR/attach.log"
}

# hb_detach SECS DEV: detach; DEV and its helper must be gone within SECS seconds.
hb_detach() {
    local secs=$1 dev=$2 pid
    pid=$(helper_pid "$dev") || { fail "no helper state for $dev"; return 1; }
    hb_bounded "$secs" "$LOG_DIR/detach.txt" "$B" detach "$dev" ||
        { fail "detach of $dev failed or hung: $(cat "$LOG_DIR/detach.txt")"; return 1; }
    hb_wait_ms $((secs * 1000)) "! kill -0 $pid 2>/dev/null && [ ! -b $dev ]" ||
        { fail "$dev or its helper (pid $pid) still there ${secs}s after detach"; return 1; }
}

# hb_rmmod SECS: unload the module, bounded.
hb_rmmod() {
    hb_bounded "$1" "$LOG_DIR/rmmod.txt" rmmod httpblk ||
        { fail "rmmod failed or hung: $(cat "$LOG_DIR/rmmod.txt")"; return 1; }
}

# hb_sha_direct SECS DEV: sha256 of the whole device, read with O_DIRECT, bounded.
hb_sha_direct() {
    local out=$LOG_DIR/sha-direct.txt
    hb_bounded "$1" "$out" sh -c 'dd if="$1" bs=256k iflag=direct 2>/dev/null | sha256sum' sh "$2" ||
        { echo "read of $2 failed or hung" >&2; return 1; }
    cut -d' ' -f1 "$out"
}

# hb_same_block SECS DEV SOURCE BS SKIP: block SKIP (of BS bytes) of DEV, read directly, equals
# that of SOURCE; bounded.
hb_same_block() {
    local out=$LOG_DIR/block.bin
    hb_bounded "$1" "$LOG_DIR/block.err" dd if="$2" of="$out" bs="$4" skip="$5" count=1 iflag=direct ||
        { fail "read of block $5 of $2 failed or hung: $(cat "$LOG_DIR/block.err")"; return 1; }
    cmp -s "$out" <(dd if="$3" bs="$4" skip="$5" count=1 2>/dev/null) ||
        { fail "block $5 of $2 differs from $(basename "$3")"; return 1; }
}

# hb_expect_eio SECS DEV BS SKIP: a direct read of block SKIP (of BS bytes) of DEV fails with
# EIO within SECS seconds.
hb_expect_eio() {
    local secs=$1 dev=$2 bs=$3 skip=$4 out=$LOG_DIR/dd-eio.txt rc=0
    hb_bounded "$secs" "$out" dd if="$dev" of=/dev/null bs="$bs" skip="$skip" count=1 iflag=direct || rc=$?
    case $rc in
        0) fail "read of $dev (block $skip of $bs) succeeded"; return 1 ;;
        124) fail "read of $dev (block $skip of $bs) still running after ${secs}s"; return 1 ;;
    esac
    grep -q "Input/output error" "$out" || { fail "read failed, but not with EIO: $(cat "$out")"; return 1; }
}

test_crafted_index_short_block_alias() {
    # Proves: a crafted index naming a cached SHORT block as its full block 0 reads EIO there.
    # (The cached block, another image's short last block, is never sliced past its end; the
    # driver survives: the other blocks read right, detach and rmmod work.)
    insmod "$KO"
    serve "$W/st-alias" 8080
    local want real crafted got
    want=$(sha "$W/short.img")
    real=$(hb_attach 60 http://127.0.0.1:8080/short.hbi) || fail "attach short.hbi"
    got=$(hb_sha_direct 60 "$real") || fail "reading $real failed or hung"
    [ "$got" = "$want" ] || fail "$real differs from short.img"
    # short.img's last block (3.5 KiB) is cached now; the crafted index names it as block 0.
    crafted=$(hb_attach 60 http://127.0.0.1:8080/short-alias-short.hbi --io-timeout-ms 5000) ||
        fail "attach of the crafted index failed or hung (its partition scan reads block 0)"
    hb_expect_eio 30 "$crafted" 256k 0
    hb_expect_eio 30 "$crafted" 4k 0
    hb_same_block 30 "$crafted" "$W/short.img" 256k 1
    got=$(hb_sha_direct 60 "$real") || fail "rereading $real failed or hung"
    [ "$got" = "$want" ] || fail "$real differs after the crafted device's reads"
    hb_detach 20 "$crafted"
    hb_detach 20 "$real"
    hb_rmmod 30
}

test_crafted_index_alias_across_block_sizes() {
    # Proves: a crafted index naming a cached 64 KiB block as its 256 KiB block 0 reads EIO there.
    # (The 64 KiB block is another image's, with 64 KiB blocks; the driver survives: the other
    # blocks read right, detach and rmmod work.)
    insmod "$KO"
    serve "$W/st-alias" 8080
    local want small crafted got
    want=$(sha "$W/small64k.img")
    small=$(hb_attach 60 http://127.0.0.1:8080/small64k.hbi) || fail "attach small64k.hbi"
    got=$(hb_sha_direct 60 "$small") || fail "reading $small failed or hung"
    [ "$got" = "$want" ] || fail "$small differs from small64k.img"
    # Its block 0 is cached now; the crafted 256 KiB-block index names it as its block 0.
    crafted=$(hb_attach 60 http://127.0.0.1:8080/short-alias-64k.hbi --io-timeout-ms 5000) ||
        fail "attach of the crafted index failed or hung"
    hb_expect_eio 30 "$crafted" 256k 0
    hb_same_block 30 "$crafted" "$W/short.img" 256k 1
    got=$(hb_sha_direct 60 "$small") || fail "rereading $small failed or hung"
    [ "$got" = "$want" ] || fail "$small differs after the crafted device's reads"
    hb_detach 20 "$crafted"
    hb_detach 20 "$small"
    hb_rmmod 30
}

test_md5_collision_not_shared_across_images() {
    # Proves: blocks named by MD5 are never shared between images through the cache.
    # (Two images whose blocks 0 differ but have the same MD5, a real collision: each device
    # reads its own image's bytes although the other image's block is cached.)
    insmod "$KO"
    serve "$W/st-md5x" 8080
    serve "$W/st-md5y" 8081
    local x y got
    # The premise: one MD5 names both blocks 0 (each in its own store), and they differ.
    [ "$(od -An -tx1 -j64 -N16 "$W/st-md5x/md5x.hbi")" = "$(od -An -tx1 -j64 -N16 "$W/st-md5y/md5y.hbi")" ] ||
        fail "blocks 0 of md5x and md5y do not have the same MD5"
    if cmp -s <(head -c 4096 "$W/md5x.img") <(head -c 4096 "$W/md5y.img"); then
        fail "blocks 0 of md5x and md5y are equal"
    fi
    y=$(hb_attach 60 http://127.0.0.1:8081/md5y.hbi) || fail "attach md5y.hbi"
    got=$(hb_sha_direct 60 "$y") || fail "reading $y failed or hung"
    [ "$got" = "$(sha "$W/md5y.img")" ] || fail "$y differs from md5y.img"
    x=$(hb_attach 60 http://127.0.0.1:8080/md5x.hbi) || fail "attach md5x.hbi"
    got=$(hb_sha_direct 60 "$x") || fail "reading $x failed or hung"
    [ "$got" = "$(sha "$W/md5x.img")" ] ||
        fail "$x differs from md5x.img: it was served md5y's block 0, cached under the same MD5"
    got=$(hb_sha_direct 60 "$y") || fail "rereading $y failed or hung"
    [ "$got" = "$(sha "$W/md5y.img")" ] || fail "$y differs from md5y.img after md5x was read"
}

test_old_control_file_cannot_remove_new_device() {
    # Proves: closing a control file whose device was removed never removes a newer device.
    # (A device belongs to the file that added it, not to its id: file A's device is removed
    # with IOC_REMOVE from file B, file C's new device gets the same id, then A is closed.)
    insmod "$KO"
    local rc=0
    hb_bounded 60 "$LOG_DIR/reuse-id.txt" "$HTTPBLK_HOSTILE" --reuse-id "$W/st/raw.hbi" || rc=$?
    cat "$LOG_DIR/reuse-id.txt"
    [ "$rc" = 0 ] ||
        fail "$(sed -n 's/^FAILED: //p' "$LOG_DIR/reuse-id.txt" | head -1 | grep . || tail -1 "$LOG_DIR/reuse-id.txt") (exit $rc)"
    no_stuck_tasks
    hb_rmmod 30
}

test_frozen_helper_does_not_stall_other_devices() {
    # Proves: a device whose helper is frozen stalls only itself, even with 300 reads in flight.
    # (Each of its reads, 4 KiB ones and ones spanning two blocks, fails with EIO within its
    # I/O timeout + 1 s; another device keeps its cached and uncached read throughput, see
    # stallcheck.py for the measure.) Tags for every read at once: a read's time is the driver's.
    insmod "$KO" queue_depth=512
    serve "$W/st" 8080
    serve "$W/st" 8081
    local a b pid d rc=0
    a=$(hb_attach 60 http://127.0.0.1:8080/raw.hbi --io-timeout-ms 3000) || fail "attach A"
    # Another image for B (MD5-named blocks, 64 KiB): nothing A reads is in B's cache.
    b=$(hb_attach 60 http://127.0.0.1:8081/raw-md5.hbi) || fail "attach B"
    for d in "$a" "$b"; do
        echo none >"/sys/block/$(basename "$d")/queue/scheduler" 2>/dev/null || true
    done
    pid=$(helper_pid "$a") || fail "no helper state for $a"
    hb_bounded 400 "$LOG_DIR/stallcheck.txt" python3 "$PWD/stallcheck.py" \
        "$a" "$W/st/raw.hbi" 3000 "$pid" "$b" "$W/raw.img" 300 || rc=$?
    kill -CONT "$pid" 2>/dev/null || true
    cat "$LOG_DIR/stallcheck.txt"
    [ "$rc" != 124 ] || fail "the check still ran after 400 s"
    [ "$rc" = 0 ] || fail "$(sed -n 's/^FAIL: //p' "$LOG_DIR/stallcheck.txt" | head -1 | grep . || tail -1 "$LOG_DIR/stallcheck.txt")"
    no_stuck_tasks
    hb_detach 30 "$a"
    hb_detach 30 "$b"
}

test_killed_helper_releases_joined_fetch() {
    # Proves: killing a helper releases at once the reads joined to its device's stuck fetch.
    # (Device B's read of a block that device A is fetching, A's server frozen, fetches it itself
    # right after A's helper is killed, long before B's own timeout; A goes away within 2 s.)
    insmod "$KO"
    serve "$W/st" 8080
    local a_srv=$SERVE_PID a b pid fa mb a_read b_read t_kill t_gone
    serve "$W/st" 8081
    a=$(hb_attach 60 http://127.0.0.1:8080/raw.hbi) || fail "attach A"
    b=$(hb_attach 60 http://127.0.0.1:8081/raw.hbi --io-timeout-ms 20000) || fail "attach B"
    pid=$(helper_pid "$a") || fail "no helper state for $a"
    # A's fetch of block 40 (far from what the partition scan read) gets stuck: its server is frozen.
    kill -STOP "$a_srv"
    fa=$(stat_of "$a" fetches)
    dd if="$a" of=/dev/null bs=256k skip=40 count=1 iflag=direct 2>"$LOG_DIR/a-dd.err" &
    a_read=$!
    hb_wait_ms 10000 '[ "$(stat_of "$a" fetches)" -gt "$fa" ]' ||
        { kill -CONT "$a_srv"; fail "A did not start fetching block 40"; }
    # B misses the same block and joins A's fetch.
    mb=$(stat_of "$b" cache_misses)
    dd if="$b" of="$LOG_DIR/b-block40" bs=256k skip=40 count=1 iflag=direct 2>"$LOG_DIR/b-dd.err" &
    b_read=$!
    hb_wait_ms 10000 '[ "$(stat_of "$b" cache_misses)" -gt "$mb" ]' ||
        { kill -CONT "$a_srv"; fail "B did not miss block 40"; }
    kill -0 "$b_read" 2>/dev/null || say "note: B's read was done before A's helper was killed"
    kill -KILL "$pid"
    t_kill=$(hb_ms)
    hb_wait_ms 5000 "! kill -0 $b_read 2>/dev/null" ||
        { kill -CONT "$a_srv"; fail "B's read still waiting 5 s after A's helper was killed"; }
    say "B's read done $(($(hb_ms) - t_kill)) ms after A's helper was killed"
    wait "$b_read" || { kill -CONT "$a_srv"; fail "B's read failed: $(cat "$LOG_DIR/b-dd.err")"; }
    cmp -s "$LOG_DIR/b-block40" <(dd if="$W/raw.img" bs=256k skip=40 count=1 2>/dev/null) ||
        { kill -CONT "$a_srv"; fail "B read wrong data for block 40"; }
    # A's device goes away with its helper (detached here if it is still listed), within 2 s.
    t_gone=$(hb_ms)
    if [ -b "$a" ]; then
        hb_bounded 2 "$LOG_DIR/detach.txt" "$B" detach "$a" || true
    fi
    hb_wait_ms $((2000 - ($(hb_ms) - t_gone))) "[ ! -b $a ] && ! kill -0 $a_read 2>/dev/null" ||
        { kill -CONT "$a_srv"; fail "A's device or its read still there 2 s after its helper died"; }
    say "A gone $(($(hb_ms) - t_gone)) ms after B's read was done"
    kill -CONT "$a_srv"
    no_stuck_tasks
    hb_detach 20 "$b"
}

# hb_module_range: sets HB_START and HB_END around httpblk's module memory, its text first.
hb_module_range() {
    local size base text
    read -r size base < <(awk '$1 == "httpblk" {print $2, $6}' /proc/modules)
    text=$(cat /sys/module/httpblk/sections/.text)
    [ "$((base))" != 0 ] || base=$text
    [ "$((text))" != 0 ] || { fail "httpblk's text address is hidden"; return 1; }
    HB_START=$(printf '0x%x' "$((base))")
    HB_END=$(printf '0x%x' "$((base + size))")
    # .text lies inside (both are kernel addresses: negative as bash integers, compared alike).
    [ "$((text))" -ge "$((base))" ] && [ "$((text))" -lt "$((base + size))" ] ||
        { fail "httpblk's .text ($text) is outside $HB_START-$HB_END"; return 1; }
    say "httpblk module memory: $HB_START-$HB_END (.text at $text)"
}

# hb_fault_on NAME PROBABILITY: failures of NAME (failslab or fail_page_alloc), PROBABILITY
# percent of the allocations, sleeping ones too, whose stack passes through HB_START-HB_END.
hb_fault_on() {
    local d=/sys/kernel/debug/$1
    echo 0 >"$d/probability"
    echo 0 >"$d/times"
    # One line per injected failure, no stack (ratelimited).
    echo 1 >"$d/verbose"
    echo 1 >"$d/interval"
    echo 0 >"$d/space"
    echo N >"$d/task-filter"
    echo "$HB_START" >"$d/require-start"
    echo "$HB_END" >"$d/require-end"
    echo 32 >"$d/stacktrace-depth"
    echo N >"$d/ignore-gfp-wait"
    if [ "$1" = failslab ]; then
        echo N >"$d/cache-filter"
    else
        echo N >"$d/ignore-gfp-highmem" # vmalloc's pages are highmem allocations
        echo 0 >"$d/min-order"
    fi
    echo -1 >"$d/times"
    echo "$2" >"$d/probability"
}

hb_fault_off() {
    echo 0 >"/sys/kernel/debug/$1/probability"
    echo 0 >"/sys/kernel/debug/$1/times"
}

# hb_check_dmesg_but_alloc_failures NAME: the kernel log so far, without the reports of failed
# allocations (warn_alloc prints a stack, expected when failures are injected), has nothing
# guest.sh would flag; then clears it, so that guest.sh checks only what comes after.
hb_check_dmesg_but_alloc_failures() {
    local all=$LOG_DIR/$1.dmesg rest=$LOG_DIR/$1-filtered.dmesg
    dmesg >"$all"
    awk '/vmalloc error:|page allocation failure:/ { skip = 1 }
         skip && /<\/TASK>/ { skip = 0; next }
         !skip' "$all" >"$rest"
    dmesg -C
    say "$1: $(grep -c 'FAULT_INJECTION: forcing a failure' "$all") failures reported injected (ratelimited), $(grep -Ec 'vmalloc error:|page allocation failure:' "$all") allocation failure reports"
    if grep -Eq "$BAD_DMESG" "$rest"; then
        fail "$1: kernel log: $(grep -Em1 "$BAD_DMESG" "$rest")"
        return 1
    fi
}

test_failslab_during_reads() {
    # Proves: allocation failures in httpblk's code while reading fail reads with EIO at worst.
    # (Slab, then page allocator failures, injected only where httpblk's code is on the stack,
    # while a device is read through a small cache: no wrong data, no other error, no hang, no
    # crash; once injection stops the device reads right again, detaches and unloads.)
    local dbg=/sys/kernel/debug kind name p rc got
    [ -e $dbg/failslab/require-start ] && [ -e $dbg/fail_page_alloc/require-start ] ||
        skip "no failslab/fail_page_alloc with a stack filter in this kernel"
    insmod "$KO" cache_mb=4
    serve "$W/st" 8080
    dev=$(hb_attach 60 http://127.0.0.1:8080/raw.hbi --io-timeout-ms 3000) || fail "attach"
    hb_module_range
    for kind in failslab:20 fail_page_alloc:20; do
        name=${kind%:*} p=${kind#*:} rc=0
        hb_fault_on "$name" "$p"
        # Passes over the whole device (about 90 of its 96 blocks refetched each time) for about
        # 40 s; a read may fail with EIO, within the I/O timeout (3 s) and some slack.
        hb_bounded 240 "$LOG_DIR/$name-reads.txt" python3 "$PWD/eiocheck.py" \
            "$dev" "$W/raw.img" 262144 4 40 10 || rc=$?
        hb_fault_off "$name"
        sed 's/^/    /' "$LOG_DIR/$name-reads.txt"
        [ "$rc" != 124 ] || fail "$name: reads still running after 240 s"
        [ "$rc" = 0 ] || fail "$name: $(sed -n 's/^FAIL: //p' "$LOG_DIR/$name-reads.txt" | head -1 | grep . || tail -1 "$LOG_DIR/$name-reads.txt")"
        say "$name: io_errors $(stat_of "$dev" io_errors), cache $(stat_of "$dev" cache_bytes) bytes"
        # Injection off: the device has recovered and reads right whole.
        got=$(hb_sha_direct 120 "$dev") || fail "$name: reading after injection failed or hung"
        [ "$got" = "$(want_sha raw.img)" ] || fail "$name: the device does not read right once injection stopped"
        hb_check_dmesg_but_alloc_failures "$name"
    done
    hb_detach 30 "$dev"
    hb_rmmod 30
}

test_cache_shrinker_and_cache_mb() {
    # Proves: the block cache shrinks under reclaim, and a lower cache_mb applies at once.
    # (drop_caches runs its shrinker and empties most of it; cache_mb=1 trims it to 1 MiB
    # without waiting for the next insertion.)
    insmod "$KO" cache_mb=64
    serve "$W/st" 8080
    local dev got full after
    dev=$(hb_attach 60 http://127.0.0.1:8080/raw.hbi) || fail "attach"
    got=$(hb_sha_direct 120 "$dev") || fail "reading $dev failed or hung"
    [ "$got" = "$(want_sha raw.img)" ] || fail "$dev differs from raw.img"
    full=$(stat_of "$dev" cache_bytes)
    say "cache after a full read: $full bytes"
    [ "$full" -ge $((16 << 20)) ] || fail "only $full bytes cached after reading 24 MiB through a 64 MiB cache"
    echo 2 >/proc/sys/vm/drop_caches
    after=$(stat_of "$dev" cache_bytes)
    say "cache after drop_caches: $after bytes"
    [ "$after" -lt $((full / 2)) ] || fail "drop_caches left $after of $full bytes cached: no shrinker"
    got=$(hb_sha_direct 120 "$dev") || fail "rereading $dev failed or hung"
    [ "$got" = "$(want_sha raw.img)" ] || fail "$dev differs from raw.img after the shrink"
    full=$(stat_of "$dev" cache_bytes)
    [ "$full" -ge $((16 << 20)) ] || fail "only $full bytes cached after reading again"
    echo 1 >/sys/module/httpblk/parameters/cache_mb
    hb_wait_ms 500 '[ "$(stat_of "$dev" cache_bytes)" -le $((1 << 20)) ]' ||
        fail "cache_mb=1 left $(stat_of "$dev" cache_bytes) bytes cached 0.5 s later (limit 1048576)"
    got=$(hb_sha_direct 120 "$dev") || fail "reading $dev with a 1 MiB cache failed or hung"
    [ "$got" = "$(want_sha raw.img)" ] || fail "$dev differs from raw.img with a 1 MiB cache"
}
