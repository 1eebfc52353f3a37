# In-kernel decompression, the shared cache, readahead, module parameters and sysfs figures.

test_golden_vectors_decode_in_kernel() {
    # Proves: the kernel's lzo/lz4/zstd (crypto API) and zlib (lib/zlib_inflate) decoders read
    # the checked-in vectors that userspace wrote, byte for byte.
    # The cache is keyed by content, so each codec gets a fresh module (an empty cache); the
    # five vectors of one codec differ, so they are attached and read together.
    serve "$W/golden" 8080
    n=0
    for dir in "$W"/golden/*/; do
        codec=$(basename "$dir")
        lsmod | grep -q '^httpblk' && rmmod httpblk
        insmod "$KO"
        devs=()
        for hbi in "$dir"*.hbi; do
            dev=$(attach "http://127.0.0.1:8080/$codec/$(basename "$hbi")") || fail "attach $codec/$hbi"
            devs+=("$dev:$(basename "$hbi" .hbi)")
        done
        for d in "${devs[@]}"; do
            dev=${d%%:*} name=${d#*:}
            [ "$(sha "$dev")" = "$(sha "$PWD/../golden/$name.raw")" ] || fail "$codec/$name decodes wrong in the kernel"
            [ "$(stat_of "$dev" decompressed_bytes)" -gt 0 ] || fail "$codec/$name was not decompressed in the kernel"
            n=$((n + 1))
        done
        for d in "${devs[@]}"; do detach "${d%%:*}"; done
    done
    say "$n golden vectors decoded in the kernel"
    [ "$n" = 20 ] || fail "expected 20 golden images (5 sector-sized inputs x 4 codecs), found $n"
}

test_compressed_filesystems() {
    # Proves: an ext4 image stored with each codec reads back identical and mounts, every
    # file matching; blocks were fetched compressed and decompressed in the kernel.
    for codec in lzo lz4 zstd zlib; do
        # Equal content shares cache entries whatever its codec: start each with an empty cache.
        lsmod | grep -q '^httpblk' && rmmod httpblk
        insmod "$KO"
        serve "$W/st-$codec" 8080
        dev=$(attach http://127.0.0.1:8080/ext4.hbi) || fail "attach $codec"
        [ "$(sha "$dev")" = "$(want_sha ext4.img)" ] || fail "$codec: device sha256 differs"
        fetched=$(stat_of "$dev" fetched_bytes); decoded=$(stat_of "$dev" decompressed_bytes)
        say "$codec: fetched $fetched bytes, decompressed to $decoded"
        [ "$decoded" -gt "$fetched" ] || fail "$codec: nothing was decompressed in the kernel"
        mnt=$LOG_DIR/mnt-$codec; mkdir -p "$mnt"
        mount -o ro -t ext4 "$dev" "$mnt" || fail "mount ($codec)"
        (cd "$mnt" && sha256sum --quiet -c "$W/manifest.sha256") >"$LOG_DIR/$codec-check.txt" 2>&1 ||
            { umount "$mnt"; fail "$codec: file checksums differ"; }
        umount "$mnt"
        detach "$dev"
        kill "$SERVE_PID"; wait "$SERVE_PID" 2>/dev/null || true
    done
}

test_corrupt_compressed_block_never_reaches_reader() {
    # Proves: a compressed block whose payload is damaged (header intact) fails its reads with
    # EIO after decompression or verification fails; every other block still reads right.
    insmod "$KO"
    serve "$W/st-lz4-corrupt" 8080
    bad=$(cat "$W/st-lz4-corrupt/corrupt-block")
    dev=$(attach http://127.0.0.1:8080/ext4.hbi --io-timeout-ms 5000)
    bs=$(stat_of "$dev" block_size)
    if dd if="$dev" of=/dev/null bs="$bs" skip="$bad" count=1 iflag=direct 2>/dev/null; then
        fail "read of a damaged compressed block succeeded"
    fi
    failures=$(( $(stat_of "$dev" decompress_failures) + $(stat_of "$dev" verify_failures) ))
    [ "$failures" -gt 0 ] || fail "no decompress or verify failure counted"
    next=$((bad + 1))
    cmp <(dd if="$dev" bs="$bs" skip="$next" count=4 iflag=direct 2>/dev/null) \
        <(dd if="$W/ext4.img" bs="$bs" skip="$next" count=4 2>/dev/null) || fail "blocks after the damaged one differ"
}

test_shared_cache_across_devices() {
    # Proves: the cache is shared and keyed by content: a second device of the same image,
    # fed by another server, reads everything from the cache and fetches nothing.
    insmod "$KO"
    serve "$W/st-lz4" 8080
    "$B" serve "$W/st-lz4" --listen 127.0.0.1:8081 2>>"$LOG_DIR/serve-8081.log" &
    sleep 1
    a=$(attach http://127.0.0.1:8080/ext4.hbi); b=$(attach http://127.0.0.1:8081/ext4.hbi)
    [ "$(sha "$a")" = "$(want_sha ext4.img)" ] || fail "first device differs"
    [ "$(sha "$b")" = "$(want_sha ext4.img)" ] || fail "second device differs"
    say "fetched: first $(stat_of "$a" fetched_bytes) bytes, second $(stat_of "$b" fetched_bytes) bytes"
    [ "$(stat_of "$b" fetched_bytes)" = 0 ] || fail "the second device fetched blocks the cache held"
    [ "$(stat_of "$b" cache_hits)" -gt 0 ] || fail "no cache hits counted"
}

test_concurrent_devices_fetch_shared_blocks_once() {
    # Proves: misses are merged module-wide: two devices of one image on two servers, read at
    # the same time, fetch together about what one device fetches alone (not twice).
    insmod "$KO"
    serve "$W/st" 8080
    "$B" serve "$W/st" --listen 127.0.0.1:8081 2>>"$LOG_DIR/serve-8081.log" &
    sleep 1
    a=$(attach http://127.0.0.1:8080/raw.hbi)
    [ "$(sha "$a")" = "$(want_sha raw.img)" ] || fail "lone device differs"
    alone=$(stat_of "$a" fetched_bytes)
    detach "$a" && rmmod httpblk && insmod "$KO" || fail "reload"
    a=$(attach http://127.0.0.1:8080/raw.hbi); b=$(attach http://127.0.0.1:8081/raw.hbi)
    sha "$a" >"$LOG_DIR/sha-a" & rd=$!
    [ "$(sha "$b")" = "$(want_sha raw.img)" ] || fail "second device differs"
    wait "$rd"
    [ "$(cat "$LOG_DIR/sha-a")" = "$(want_sha raw.img)" ] || fail "first device differs"
    both=$(( $(stat_of "$a" fetched_bytes) + $(stat_of "$b" fetched_bytes) ))
    joined=$(( $(stat_of "$a" joined_fetches) + $(stat_of "$b" joined_fetches) ))
    say "fetched: $alone bytes alone, $both by both together ($joined misses joined another fetch)"
    [ "$both" -le $((alone * 11 / 10)) ] || fail "both devices fetched $both bytes, over 1.1x one device's $alone"
}

test_joined_fetch_of_a_stalled_device_falls_back() {
    # Proves: a miss waiting on another device's fetch does not share that device's fate: with
    # the other device's server frozen, it fetches the block itself within its own timeout.
    insmod "$KO" io_timeout_ms=4000
    serve "$W/st" 8080
    "$B" serve "$W/st" --listen 127.0.0.1:8081 2>>"$LOG_DIR/serve-8081.log" &
    sleep 1
    a=$(attach http://127.0.0.1:8080/raw.hbi); b=$(attach http://127.0.0.1:8081/raw.hbi)
    f0=$(stat_of "$b" fetches)
    kill -STOP "$SERVE_PID"
    # Block 40: far from what the partition scan at attach read (and cached).
    dd if="$a" of=/dev/null bs=256k skip=40 count=1 iflag=direct 2>/dev/null & stalled=$!
    sleep 0.5
    cmp <(dd if="$b" bs=256k skip=40 count=1 iflag=direct 2>/dev/null) <(dd if="$W/raw.img" bs=256k skip=40 count=1 2>/dev/null) ||
        fail "the device with a live server did not read the block"
    if wait "$stalled"; then fail "the read of the device with a frozen server succeeded"; fi
    say "second device: $(( $(stat_of "$b" fetches) - f0 )) fetches; first device: $(stat_of "$a" timeouts) timeouts"
    [ "$(stat_of "$b" fetches)" -gt "$f0" ] || fail "the second device did not fetch the block itself"
    kill -CONT "$SERVE_PID"
    no_stuck_tasks
    [ "$(sha "$a")" = "$(want_sha raw.img)" ] || fail "first device differs once its server is back"
}

test_module_parameters() {
    # Proves: modinfo describes every parameter, out-of-range values are refused at load,
    # cache_mb bounds the cache (evicting), max_inflight caps the ring, writable ones apply.
    for p in max_devices cache_mb queue_depth nr_hw_queues io_timeout_ms max_inflight readahead_kb readahead_inflight; do
        modinfo -p "$KO" | grep -q "^$p:.\+" || fail "modinfo lacks a description of $p"
    done
    if insmod "$KO" cache_mb=0 2>/dev/null; then fail "cache_mb=0 was accepted"; fi
    if insmod "$KO" max_inflight=100000 2>/dev/null; then fail "max_inflight=100000 was accepted"; fi
    insmod "$KO" cache_mb=2 max_inflight=4 io_timeout_ms=7000 max_devices=2 || fail "insmod with parameters"
    [ "$(cat /sys/module/httpblk/parameters/cache_mb)" = 2 ] || fail "cache_mb not shown in sysfs"
    serve "$W/st" 8080
    dev=$(attach http://127.0.0.1:8080/raw.hbi)
    [ "$(stat_of "$dev" nr_slots)" = 4 ] || fail "max_inflight=4 did not cap the ring ($(stat_of "$dev" nr_slots) slots)"
    [ "$(stat_of "$dev" io_timeout_ms)" = 7000 ] || fail "io_timeout_ms default not applied"
    [ "$(sha "$dev")" = "$(want_sha raw.img)" ] || fail "data differs with a 2 MiB cache"
    cached=$(stat_of "$dev" cache_bytes)
    say "cache: $cached bytes held, $(stat_of "$dev" cache_evictions) evictions"
    [ "$cached" -le $((2 << 20)) ] || fail "cache holds $cached bytes over its 2 MiB bound"
    [ "$(stat_of "$dev" cache_evictions)" -gt 0 ] || fail "a 24 MiB read through a 2 MiB cache evicted nothing"
    echo 64 >/sys/module/httpblk/parameters/cache_mb || fail "cache_mb is not writable"
    [ "$(stat_of "$dev" cache_limit_bytes)" = $((64 << 20)) ] || fail "cache_mb change not applied"
    if echo 0 >/sys/module/httpblk/parameters/cache_mb 2>/dev/null; then fail "cache_mb=0 accepted at runtime"; fi
    b=$(attach http://127.0.0.1:8080/raw-md5.hbi) || fail "second device"
    if attach http://127.0.0.1:8080/ext4.hbi >/dev/null 2>&1; then fail "max_devices=2 allowed a third device"; fi
    detach "$b"
}

# ra_settled DEV: readahead_fetches of DEV once it has stopped changing for a second (readahead
# runs on by itself as its fetches end), bounded.
ra_settled() {
    local ra=-1 now
    for _ in $(seq 30); do
        now=$(stat_of "$1" readahead_fetches)
        [ "$now" = "$ra" ] && break
        ra=$now
        sleep 1
    done
    echo "$ra"
}

test_readahead() {
    # Proves: a sequential reader gets blocks fetched ahead of it; readahead_inflight bounds
    # the readahead fetches in flight (their high-water mark stays at 2 with 2 while readahead
    # goes on past 2 x 2, each fetch that ends starting the next; with 256 it goes higher);
    # readahead_kb=0 turns it off. Counted over two reads from block 40 alone, once udev's
    # probe of the new disk (its start and end) and the readahead it started are over.
    insmod "$KO" readahead_kb=2048
    serve "$W/st" 8080
    dev=$(attach http://127.0.0.1:8080/raw.hbi)
    dd if="$dev" of=/dev/null bs=64k count=128 iflag=direct 2>/dev/null || fail "sequential read"
    ra=$(stat_of "$dev" readahead_fetches)
    say "readahead fetches: $ra of $(stat_of "$dev" fetches)"
    [ "$ra" -gt 0 ] || fail "no readahead on a sequential read"
    detach "$dev"
    for lim in 2 256; do
        rmmod httpblk && insmod "$KO" readahead_kb=8192 readahead_inflight=$lim
        dev=$(attach http://127.0.0.1:8080/raw.hbi)
        timeout 30 udevadm settle 2>/dev/null || true
        ra0=$(ra_settled "$dev")
        dd if="$dev" of=/dev/null bs=256k skip=40 count=2 iflag=direct 2>/dev/null || fail "read, readahead_inflight=$lim"
        ra=$(($(ra_settled "$dev") - ra0))
        peak=$(stat_of "$dev" readahead_inflight_max)
        say "readahead_inflight=$lim: $ra readahead fetches, at most $peak in flight"
        detach "$dev"
        if [ "$lim" = 2 ]; then
            [ "$peak" -ge 1 ] && [ "$peak" -le 2 ] || fail "$peak readahead fetches in flight with readahead_inflight=2"
            [ "$ra" -gt 4 ] || fail "readahead stopped at $ra fetches with readahead_inflight=2"
        else
            [ "$peak" -gt 2 ] || fail "only $peak readahead fetches in flight with readahead_inflight=256"
        fi
    done
    echo 0 >/sys/module/httpblk/parameters/readahead_kb
    echo 3 >/proc/sys/vm/drop_caches
    rmmod httpblk && insmod "$KO" readahead_kb=0
    dev=$(attach http://127.0.0.1:8080/raw.hbi)
    dd if="$dev" of=/dev/null bs=64k count=128 iflag=direct 2>/dev/null || fail "sequential read"
    [ "$(stat_of "$dev" readahead_fetches)" = 0 ] || fail "readahead with readahead_kb=0"
}

test_sysfs_and_status() {
    # Proves: per-device figures are in sysfs and `httpblk status` shows them.
    insmod "$KO"
    serve "$W/st-lz4" 8080
    dev=$(attach http://127.0.0.1:8080/ext4.hbi)
    dd if="$dev" of=/dev/null bs=1M count=4 iflag=direct 2>/dev/null
    [ "$(stat_of "$dev" index_sha256)" = "$(sha "$W/st-lz4/ext4.hbi")" ] || fail "index_sha256 differs"
    [ "$(stat_of "$dev" url)" = "http://127.0.0.1:8080/ext4.hbi" ] || fail "url: $(stat_of "$dev" url)"
    [ "$(stat_of "$dev" reads)" -gt 0 ] || fail "no reads counted"
    # Every attribute the driver lists reads as one line and is documented.
    local f name value
    for f in /sys/block/"$(basename "$dev")"/httpblk/*; do
        name=$(basename "$f")
        value=$(cat "$f") || fail "reading $name failed"
        [ -n "$value" ] && [ "$(printf '%s\n' "$value" | wc -l)" = 1 ] || fail "$name: '$value'"
        grep -q "\`$name\`" "$HTTPBLK_OPS_DOC" || fail "$name is not in Documentation/operations.md"
    done
    "$B" status >"$LOG_DIR/status.txt" || fail "status failed"
    grep -q "cache hits" "$LOG_DIR/status.txt" || fail "status shows no statistics"
    "$B" status --json | python3 -c 'import json,sys; r=json.load(sys.stdin)[0]["kernel"]; assert r["reads"] > 0 and r["decompressed_bytes"] > 0, r' ||
        fail "status --json lacks the kernel figures"
}
