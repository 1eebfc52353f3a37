# Bad input and failures: nothing corrupt reaches a reader, errors come within the timeout,
# and a dead helper leaves no stuck task behind.

test_corrupt_block_never_reaches_reader() {
    insmod "$KO"
    serve "$W/st-corrupt" 8080
    dev=$(attach http://127.0.0.1:8080/raw.hbi --io-timeout-ms 5000)
    expect_eio_within 10 "$dev" 4k 0   # io_timeout_ms 5000 bounds it
    # Every other block still reads and matches the source.
    cmp <(dd if="$dev" bs=256k skip=1 iflag=direct 2>/dev/null) <(dd if="$W/raw.img" bs=256k skip=1 2>/dev/null) ||
        fail "blocks after the corrupt one differ"
}

test_lying_server_wrong_length() {
    insmod "$KO"
    serve "$W/st-long" 8080   # block 0's file is longer than the index says
    dev=$(attach http://127.0.0.1:8080/raw.hbi --io-timeout-ms 5000)
    expect_eio_within 10 "$dev" 4k 0
}

test_server_down_gives_eio_within_timeout() {
    insmod "$KO"
    serve "$W/st" 8080
    dev=$(attach http://127.0.0.1:8080/raw.hbi --io-timeout-ms 3000)
    dd if="$dev" of=/dev/null bs=256k count=1 iflag=direct 2>/dev/null || fail "first read failed"
    kill "$SERVE_PID"; wait "$SERVE_PID" 2>/dev/null || true
    expect_eio_within 20 "$dev" 4k 4000
}

test_flaky_server_costs_time_not_eio() {
    # 25% of requests answered 500, 10% closed unanswered: the helper retries within the
    # device's I/O timeout, so the whole device reads back intact.
    insmod "$KO"
    local log=$LOG_DIR/flaky.log
    /usr/bin/python3 "$PWD/flakyserve.py" "$W/st" 8080 "$log" 2>>"$LOG_DIR/flaky.err" &
    for _ in $(seq 50); do curl -s -o /dev/null http://127.0.0.1:8080/ && break; sleep 0.1; done
    dev=$(attach http://127.0.0.1:8080/raw.hbi) || fail "attach through the flaky server"
    [ "$(timeout 300 dd if="$dev" bs=1M iflag=direct 2>/dev/null | sha256sum | cut -d' ' -f1)" = "$(want_sha raw.img)" ] ||
        fail "the whole device differs"
    [ "$(stat_of "$dev" io_errors)" = 0 ] || fail "io_errors $(stat_of "$dev" io_errors)"
    local failed dropped
    failed=$(grep -c '^500 ' "$log"); dropped=$(grep -c '^drop ' "$log")
    say "$(wc -l <"$log") requests, $failed answered 500, $dropped dropped"
    [ "$failed" -ge 5 ] && [ "$dropped" -ge 3 ] || fail "the server was not flaky enough"
    detach "$dev"
}

test_rmmod_refused_while_attached() {
    insmod "$KO"
    serve "$W/st" 8080
    dev=$(attach http://127.0.0.1:8080/raw.hbi)
    if rmmod httpblk 2>/dev/null; then fail "rmmod succeeded with $dev attached"; fi
    "$B" detach "$dev"
    sleep 1
    rmmod httpblk || fail "rmmod after detach"
}

test_attach_detach_50_times() {
    insmod "$KO"
    serve "$W/st" 8080
    for i in $(seq 50); do
        dev=$(attach http://127.0.0.1:8080/raw-md5.hbi --max-inflight 2) || fail "attach $i"
        dd if="$dev" of=/dev/null bs=64k count=2 iflag=direct 2>/dev/null || fail "read $i"
        detach "$dev"
    done
    rmmod httpblk
    for i in $(seq 5); do insmod "$KO" && rmmod httpblk || fail "insmod/rmmod $i"; done
}

test_hostile_helper() {
    insmod "$KO"
    "$HTTPBLK_HOSTILE" "$W/st/raw.hbi" || fail "hostile helper run failed"
    no_stuck_tasks
}
