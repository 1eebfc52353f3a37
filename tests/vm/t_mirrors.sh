# Mirrors, DNS and md RAID1: servers on several loopback addresses dying, lying and moving.

# mirror_urls NAME ADDR...: the index URL of NAME on port 8080 of each address.
mirror_urls() {
    local name=$1 a
    shift
    for a in "$@"; do echo "http://$a:8080/$name.hbi"; done
}

# mirror_field DEV ADDR FIELD: a figure of one mirror address from `httpblk status --json`.
mirror_field() {
    "$B" status --json | python3 -c '
import json, sys
dev, addr, field = sys.argv[1:]
for row in json.load(sys.stdin):
    if row["device"] == dev:
        for m in row.get("mirrors", []):
            if m["address"] == addr:
                print(m[field]); sys.exit(0)
print("absent")' "$1" "$2" "$3"
}

# mirror_is DEV ADDR STATE: whether that mirror address of DEV is in STATE now.
mirror_is() { [ "$(mirror_field "$1" "$2" state)" = "$3" ]; }

# wait_for SECS CMD...: runs CMD until it succeeds, for at most SECS seconds. CMD is run anew
# each time (pass a function, not a `[ "$(...)" ]` whose substitution the caller's shell would
# expand once: that made these waits compare one stale value over and over).
wait_for() {
    local secs=$1 t0=$SECONDS
    shift
    while :; do
        "$@" && return 0
        [ $((SECONDS - t0)) -lt "$secs" ] || return 1
        sleep 0.2
    done
}

test_mirror_server_dies_during_read() {
    # Proves: with three mirrors (nginx and two `httpblk serve`), stopping one during a full
    # read loses nothing: no read error, identical data; the dead one shows as down in status.
    insmod "$KO"
    nginx_serve "$W/st-lz4" 8080 127.0.0.11
    for a in 127.0.0.12 127.0.0.13; do serve "$W/st-lz4" 8080 $a; done
    victim=$SERVE_PID
    dev=$(attach $(mirror_urls ext4 127.0.0.11 127.0.0.12 127.0.0.13)) || fail "attach"
    sha "$dev" >"$LOG_DIR/sha" & rd=$!
    sleep 2
    kill "$victim"
    wait "$rd"
    [ "$(cat "$LOG_DIR/sha")" = "$(want_sha ext4.img)" ] || fail "data differs"
    # A fast machine can end that read before the kill, and then nothing has asked the dead
    # server yet. Re-read through an emptied cache until a fetch has gone to it (each 4 MiB
    # direct read has many fetches in flight, so every live-looking mirror gets some).
    echo 1 >/sys/module/httpblk/parameters/cache_mb
    for round in 1 2 3; do
        mirror_is "$dev" 127.0.0.13:8080 down && break
        [ "$(dd if="$dev" bs=4M iflag=direct 2>/dev/null | sha256sum | cut -d' ' -f1)" = "$(want_sha ext4.img)" ] ||
            fail "data differs on re-read $round"
    done
    [ "$(stat_of "$dev" io_errors)" = 0 ] || fail "$(stat_of "$dev" io_errors) I/O errors"
    "$B" status >"$LOG_DIR/status.txt"
    for a in 127.0.0.11 127.0.0.12 127.0.0.13; do say "$a: $(mirror_field "$dev" $a:8080 state), $(mirror_field "$dev" $a:8080 bytes) bytes"; done
    mirror_is "$dev" 127.0.0.13:8080 down || fail "the stopped mirror is not shown down after 3 re-reads"
    used=0
    for a in 127.0.0.11 127.0.0.12; do [ "$(mirror_field "$dev" $a:8080 bytes)" -gt 0 ] && used=$((used + 1)); done
    [ "$used" = 2 ] || fail "reads were not spread over the live mirrors"
}

test_mirror_corrupt_server_never_reaches_reader() {
    # Proves: a mirror that serves a corrupted block costs a verify failure, never bad bytes:
    # the kernel rejects the copy and the helper asks the other mirror.
    insmod "$KO"
    serve "$W/st-corrupt" 8080 127.0.0.11   # block 0 damaged
    serve "$W/st" 8080 127.0.0.12
    dev=$(attach $(mirror_urls raw 127.0.0.11 127.0.0.12)) || fail "attach"
    [ "$(sha "$dev")" = "$(want_sha raw.img)" ] || fail "data differs"
    say "verify failures $(stat_of "$dev" verify_failures), rejected at 127.0.0.11: $(mirror_field "$dev" 127.0.0.11:8080 rejected)"
    [ "$(stat_of "$dev" io_errors)" = 0 ] || fail "$(stat_of "$dev" io_errors) I/O errors"
    # Several rounds through a small cache, so the damaged copy is met at least once.
    echo 1 >/sys/module/httpblk/parameters/cache_mb
    for _ in 1 2 3 4; do
        cmp <(dd if="$dev" bs=256k count=1 iflag=direct 2>/dev/null) <(head -c 262144 "$W/raw.img") || fail "block 0 differs"
        dd if="$dev" of=/dev/null bs=1M skip=4 count=2 iflag=direct 2>/dev/null
    done
    [ "$(stat_of "$dev" io_errors)" = 0 ] || fail "$(stat_of "$dev" io_errors) I/O errors"
    [ "$(stat_of "$dev" verify_failures)" -gt 0 ] || fail "the damaged mirror was never asked (test proves nothing)"
}

test_all_mirrors_down_then_back() {
    # Proves: with every server down a read fails with EIO within io_timeout_ms and no task
    # hangs; when the servers return, reads work again without re-attaching.
    insmod "$KO"
    serve "$W/st" 8080 127.0.0.11; s1=$SERVE_PID
    serve "$W/st" 8080 127.0.0.12; s2=$SERVE_PID
    dev=$(attach $(mirror_urls raw 127.0.0.11 127.0.0.12) --io-timeout-ms 4000) || fail "attach"
    kill "$s1" "$s2"; wait "$s1" "$s2" 2>/dev/null || true
    expect_eio_within 6 "$dev" 256k 40   # io_timeout_ms 4000
    serve "$W/st" 8080 127.0.0.11
    serve "$W/st" 8080 127.0.0.12
    wait_for 30 mirror_is "$dev" 127.0.0.11:8080 up || fail "mirror not back up"
    [ "$(sha "$dev")" = "$(want_sha raw.img)" ] || fail "data differs after the servers came back"
}

test_dns_answers_change_during_read() {
    # Proves: a host name stands for all its A records; when the DNS answer changes during a
    # read, the new address is used and the removed one dropped, with no read error.
    insmod "$KO"
    local hosts=$LOG_DIR/dns-hosts
    printf '127.0.0.21 img.test\n127.0.0.22 img.test\n' >"$hosts"
    dnsmasq --keep-in-foreground --user=root --port=53 --listen-address=127.0.0.53 --bind-interfaces \
        --no-resolv --no-hosts --local=/test/ --addn-hosts="$hosts" --local-ttl=1 --log-queries \
        --log-facility="$LOG_DIR/dnsmasq.log" --pid-file="$LOG_DIR/dnsmasq.pid" &
    dns=$!
    for a in 127.0.0.21 127.0.0.22 127.0.0.23; do serve "$W/st-lz4" 8080 $a; done
    sleep 1
    kill -0 "$dns" || fail "dnsmasq did not start"
    dev=$(attach http://img.test:8080/ext4.hbi --dns-server 127.0.0.53:53) || fail "attach"
    [ "$(mirror_field "$dev" 127.0.0.21:8080 state)" != absent ] || fail "first A record unused"
    [ "$(mirror_field "$dev" 127.0.0.22:8080 state)" != absent ] || fail "second A record unused"
    sha "$dev" >"$LOG_DIR/sha" & rd=$!
    sleep 1
    printf '127.0.0.22 img.test\n127.0.0.23 img.test\n' >"$hosts"
    kill -HUP "$dns"   # dnsmasq rereads its hosts files
    wait "$rd"
    [ "$(cat "$LOG_DIR/sha")" = "$(want_sha ext4.img)" ] || fail "data differs"
    [ "$(stat_of "$dev" io_errors)" = 0 ] || fail "$(stat_of "$dev" io_errors) I/O errors"
    wait_for 30 mirror_is "$dev" 127.0.0.21:8080 absent || fail "removed address still used"
    wait_for 30 mirror_is "$dev" 127.0.0.23:8080 up || fail "new address not taken up"
    # A read after the change goes to the current addresses (a 1 MiB cache forces fetches).
    echo 1 >/sys/module/httpblk/parameters/cache_mb
    dd if="$dev" of=/dev/null bs=1M iflag=direct 2>/dev/null || fail "read after the change"
    say "after the change: .22 $(mirror_field "$dev" 127.0.0.22:8080 bytes) bytes, .23 $(mirror_field "$dev" 127.0.0.23:8080 bytes) bytes"
    [ "$(mirror_field "$dev" 127.0.0.23:8080 bytes)" -gt 0 ] || fail "the new address served nothing"
}

# md_build MD DEV...: RAID1 over the devices: no superblock, no resync. md makes it read-only
# by itself, since its members are (raid1 then never writes repair data to a member).
md_build() {
    local md=$1
    shift
    mdadm --build "$md" --level=1 --raid-devices=$# --assume-clean "$@" >>"$LOG_DIR/mdadm.log" 2>&1 ||
        fail "mdadm --build: $(tail -1 "$LOG_DIR/mdadm.log")"
    [ "$(cat /sys/block/$(basename "$md")/md/array_state)" = readonly ] ||
        fail "array is $(cat /sys/block/$(basename "$md")/md/array_state), not readonly"
}

test_md_raid1_server_dies_during_read() {
    # Proves: md RAID1 over three devices, each on its own server, reads identical data with
    # no error while one server is stopped mid-read, and spreads reads over the members.
    # (A stopped server fails its requests at once; the timeout is for a slow one, and TCG is
    # slow: see test_md_raid1_bad_member_never_repaired.)
    insmod "$KO"
    devs=""
    for a in 127.0.0.11 127.0.0.12 127.0.0.13; do
        serve "$W/st-lz4" 8080 $a
        devs="$devs $(attach http://$a:8080/ext4.hbi --io-timeout-ms 20000)" || fail "attach"
    done
    victim=$SERVE_PID
    md_build /dev/md0 $devs
    sha /dev/md0 >"$LOG_DIR/sha" & rd=$!
    sleep 2
    kill "$victim"
    wait "$rd"
    [ "$(cat "$LOG_DIR/sha")" = "$(want_sha ext4.img)" ] || fail "md data differs"
    for d in $devs; do say "$d: $(stat_of $d reads) reads, $(stat_of $d io_errors) errors, $(stat_of $d writes_refused) writes refused"; done
    grep -A2 '^md0' /proc/mdstat | sed 's/^/    /'
    busy=0
    for d in $devs; do
        [ "$(stat_of $d writes_refused)" = 0 ] || fail "md wrote to $d"
        [ "$(stat_of $d reads)" -gt 0 ] && busy=$((busy + 1))
    done
    [ "$busy" -ge 2 ] || fail "md read from only one member"
}

test_md_raid1_bad_member_never_repaired() {
    # Proves: a member whose reads fail (its server gone) makes md read another member, and
    # md never writes repair data to it: the array is read-only, the member stays in it.
    # (Members share the kernel's cache, so the failing member must miss blocks nobody read.)
    insmod "$KO"
    serve "$W/st" 8080 127.0.0.11; s1=$SERVE_PID
    serve "$W/st" 8080 127.0.0.12
    bad=$(attach http://127.0.0.11:8080/raw.hbi --io-timeout-ms 3000) || fail "attach"
    # The good member's timeout is generous: under TCG, with md's retries and readahead, its
    # 16 fetches in flight share about 1.5 MB/s, so one 256 KiB block can take 3 s.
    good=$(attach http://127.0.0.12:8080/raw.hbi --io-timeout-ms 20000) || fail "attach"
    kill "$s1"; wait "$s1" 2>/dev/null || true
    md_build /dev/md0 "$bad" "$good"
    # Parallel readers, so md sends reads to both members.
    readers=""
    for q in 0 1 2 3; do
        dd if=/dev/md0 bs=64k skip=$((q * 96)) count=96 iflag=direct 2>/dev/null | sha256sum >"$LOG_DIR/q$q" &
        readers="$readers $!"
    done
    wait $readers   # not the servers
    for q in 0 1 2 3; do
        [ "$(cut -d' ' -f1 "$LOG_DIR/q$q")" = "$(dd if="$W/raw.img" bs=64k skip=$((q * 96)) count=96 2>/dev/null | sha256sum | cut -d" " -f1)" ] ||
            fail "md data of quarter $q differs"
    done
    say "bad member: $(stat_of "$bad" reads) reads, $(stat_of "$bad" io_errors) errors, $(stat_of "$bad" writes_refused) writes refused"
    [ "$(stat_of "$bad" io_errors)" -gt 0 ] || fail "md never read the failing member (test proves nothing)"
    [ "$(stat_of "$bad" writes_refused)" = 0 ] || fail "md tried to write repair data to the failing member"
    [ "$(stat_of "$good" writes_refused)" = 0 ] || fail "md tried to write to the good member"
    grep -q '\[UU\]' /proc/mdstat || fail "a member was failed: $(grep -A1 '^md0' /proc/mdstat)"
}
