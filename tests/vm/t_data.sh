# Data path: every byte read from /dev/httpblkN equals the source image.

test_read_whole_and_random() {
    insmod "$KO"
    serve "$W/st" 8080
    dev=$(attach http://127.0.0.1:8080/raw.hbi)
    [ -b "$dev" ] || fail "no device"
    [ "$(blockdev --getsize64 "$dev")" = "$(stat -c %s "$W/raw.img")" ] || fail "size differs"
    [ "$(blockdev --getro "$dev")" = 1 ] || fail "device is writable"
    [ "$(sha "$dev")" = "$(want_sha raw.img)" ] || fail "whole-device sha256 differs"
    echo 3 >/proc/sys/vm/drop_caches
    /usr/bin/python3 "$PWD/randcheck.py" "$dev" "$W/raw.img" 40 8 || fail "random reads differ"
    fio --name=rand --filename="$dev" --readonly --rw=randread --bsrange=4k-1m --direct=1 \
        --ioengine=libaio --iodepth=16 --numjobs=4 --size=24m --io_size=24m --group_reporting \
        --output="$LOG_DIR/fio-rand.txt" || fail "fio random read failed"
    grep -q "err= 0" "$LOG_DIR/fio-rand.txt" || fail "fio reported errors"
    # The disk is read-only: a write stops at the block layer (EPERM), never reaching us.
    local err
    if err=$(dd if=/dev/zero of="$dev" bs=4k count=1 oflag=direct 2>&1); then fail "write succeeded"; fi
    case $err in *"Operation not permitted"*) ;; *) fail "write failed otherwise: $err" ;; esac
    [ "$(stat_of "$dev" writes_refused)" = 0 ] || fail "a userspace write reached the driver"
}

test_md5_small_blocks() {
    insmod "$KO"
    serve "$W/st" 8080
    dev=$(attach http://127.0.0.1:8080/raw-md5.hbi --max-inflight 4)
    [ "$(sha "$dev")" = "$(want_sha raw.img)" ] || fail "sha256 differs (md5 index, 64 KiB blocks)"
}

test_index_pin() {
    insmod "$KO"
    serve "$W/st" 8080
    good=$(sha256sum "$W/st/raw.hbi" | cut -d' ' -f1)
    if attach http://127.0.0.1:8080/raw.hbi --index-digest "$(echo "$good" | tr 0-9a-f 1-9a-f0)"; then
        fail "attached with a wrong index digest"
    fi
    dev=$(attach http://127.0.0.1:8080/raw.hbi --index-digest "$good")
    [ -b "$dev" ] || fail "pinned attach failed"
    "$B" status --json | grep -q "$good" || fail "status does not show the index digest"
}

test_nginx() {
    command -v nginx >/dev/null || skip "nginx not installed"
    insmod "$KO"
    nginx_serve "$W/st" 8081
    dev=$(attach http://127.0.0.1:8081/raw.hbi)
    [ "$(sha "$dev")" = "$(want_sha raw.img)" ] || { nginx_stop 8081; fail "sha256 differs behind nginx"; }
    nginx_stop 8081
}

test_filesystems() {
    insmod "$KO"
    serve "$W/st" 8080
    for fs in ext4 erofs; do
        dev=$(attach http://127.0.0.1:8080/$fs.hbi)
        mnt=$LOG_DIR/mnt-$fs
        mkdir -p "$mnt"
        mount -o ro -t $fs "$dev" "$mnt" || fail "mount $fs"
        (cd "$mnt" && sha256sum --quiet -c "$W/manifest.sha256") >"$LOG_DIR/$fs-check.txt" 2>&1 ||
            { umount "$mnt"; fail "$fs: file checksums differ"; }
        umount "$mnt"
        say "$fs: $(wc -l <"$W/manifest.sha256") files match"
    done
}
