#!/usr/bin/env bash
# Runs inside the VM: loads the module once per test as needed, runs every test function,
# checks dmesg after each for oopses, warnings, lockdep reports and leaks.
set -u
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
cd "$(dirname "$0")"
OUT=$HTTPBLK_OUT
LOG_DIR=$OUT/logs
mkdir -p "$LOG_DIR"
RESULTS=$OUT/results.txt
: >"$RESULTS"
export LOG_DIR
ip link set lo up
mount -t debugfs none /sys/kernel/debug 2>/dev/null || true
dmesg -n 1

. ./lib.sh

# No test may take longer (the slowest takes about 2 minutes under TCG).
TEST_TIMEOUT=600

BAD_DMESG='BUG:|WARNING:|Oops|Call Trace|circular locking|possible recursive locking|sleeping function called|UBSAN|KASAN|blocked for more than|refcount_t|list_del corruption|general protection'

run_test() {
    local name=$1
    RESULT_NOTE=$LOG_DIR/$name.note
    export RESULT_NOTE
    : >"$RESULT_NOTE"
    dmesg -C
    local start=$SECONDS rc pid timer ended
    # In its own process group, so that a test stuck past TEST_TIMEOUT is killed whole.
    set -m
    ( set -eu; "$name" ) >"$LOG_DIR/$name.log" 2>&1 &
    pid=$!
    set +m
    # Whichever ends first: the test, or the timer (no polling: a test's time is its own).
    sleep "$TEST_TIMEOUT" &
    timer=$!
    wait -n -p ended "$pid" "$timer"
    rc=$?
    if [ "${ended:-}" = "$timer" ]; then
        echo "    FAIL: still running after ${TEST_TIMEOUT}s, killed" >>"$LOG_DIR/$name.log"
        kill -KILL -- "-$pid" 2>/dev/null
        wait "$pid"
        rc=$?
    else
        kill "$timer" 2>/dev/null
        wait "$timer" 2>/dev/null
    fi
    detach_all
    stop_servers
    lsmod | grep -q '^httpblk' && { rmmod httpblk 2>>"$LOG_DIR/$name.log" || true; }
    dmesg >"$LOG_DIR/$name.dmesg"
    if [ "$rc" = 77 ]; then
        echo "SKIP $name: $(cat "$RESULT_NOTE")" >>"$RESULTS"
    elif grep -Eq "$BAD_DMESG" "$LOG_DIR/$name.dmesg"; then
        echo "FAIL $name: kernel log: $(grep -Em1 "$BAD_DMESG" "$LOG_DIR/$name.dmesg")" >>"$RESULTS"
    elif [ "$rc" = 0 ]; then
        echo "PASS $name ($((SECONDS - start)) s)" >>"$RESULTS"
    else
        echo "FAIL $name: $(grep -m1 'FAIL:' "$LOG_DIR/$name.log" || tail -1 "$LOG_DIR/$name.log")" >>"$RESULTS"
    fi
    tail -1 "$RESULTS"
}

for f in t_*.sh; do
    . "./$f"
done
tests=$(declare -F | awk '{print $3}' | grep '^test_' | sort)
[ -n "${HTTPBLK_TESTS:-}" ] && tests=$(echo "$tests" | grep -E "$HTTPBLK_TESTS")
# HTTPBLK_REPEAT=N runs the selected tests N times over, in one VM (a flaky test shows up).
for round in $(seq "${HTTPBLK_REPEAT:-1}"); do
    for t in $tests; do
        run_test "$t"
    done
done

# Leaks: kmemleak over everything the suite did, module loaded and unloaded many times.
if [ -w /sys/kernel/debug/kmemleak ]; then
    echo scan >/sys/kernel/debug/kmemleak; sleep 5; echo scan >/sys/kernel/debug/kmemleak
    cat /sys/kernel/debug/kmemleak >"$LOG_DIR/kmemleak.txt"
    if grep -q 'httpblk' "$LOG_DIR/kmemleak.txt"; then
        echo "FAIL kmemleak: leaks in httpblk (logs/kmemleak.txt)" >>"$RESULTS"
    else
        echo "PASS kmemleak ($(grep -c 'unreferenced object' "$LOG_DIR/kmemleak.txt") reports, none from httpblk)" >>"$RESULTS"
    fi
else
    echo "FAIL kmemleak: /sys/kernel/debug/kmemleak missing in the test kernel" >>"$RESULTS"
fi
echo done >"$OUT/finished"
# A wedged driver leaves tasks in D state, which would hang the VM's shutdown (until run.sh's
# timeout): then power off at once, the results being written.
if ps -eo stat= | grep -q '^D'; then
    sync
    echo o >/proc/sysrq-trigger
fi
