#!/usr/bin/env bash
# Boot test: a whole Debian system (systemd) boots with httpblk as its root file system, from an
# image on a web server on the host, under QEMU (TCG, user networking: the guest reaches the
# host's loopback at 10.0.2.2), set up the way a user would (image.sh). One VM at a time.
#
#   install          `make install DESTDIR=stage` puts httpblk.ko in lib/modules/KVER/updates/,
#                    depmod -b and modprobe -d find it, modinfo shows its parameters; the binary,
#                    man pages, completions, systemd unit, initramfs-tools hook and scripts are
#                    in place (the image is made the same way, and its boots use them)
#   root_readonly    root=/dev/httpblk0 ro, URL by IP, the helper given DHCP's name servers
#                    (QEMU's, which forward to the host's resolver: not used): systemd reaches
#                    "running" with no failed unit; the booted system reports the image's
#                    identity (index sha256 from sysfs, the id written into the image); the
#                    helper is named @httpblk; /etc/modprobe.d and the kernel command line's
#                    module options applied; no I/O error anywhere; poweroff within 60 s
#   root_overlay_helper_killed
#                    host name resolved by the helper (a test DNS server on the host), overlayfs
#                    on tmpfs (the system is writable), second-level cache on a virtio disk, and
#                    the helper killed once during the boot: the boot completes, httpblk-root
#                    .service recovered the device, a file read across the outage is intact, no
#                    I/O error; poweroff within 60 s
#
# Every console is checked for oopses and kernel warnings, and the shutdown for errors.
# Prints one line per test and "N passed, M failed"; exits non-zero on any failure.
#   HTTPBLK_BOOT_TIMEOUT=SECS  bound of each boot (default 900; about 60 s on an idle machine)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
. "$repo/tests/lib/toolchain.sh"
. "$here/lib.sh"

kdir=$("$repo/tests/kernel/build.sh" | tail -1)
IMG=$("$here/image.sh" "$kdir")
B=$repo/userspace/target/release/httpblk
OUT=$(mktemp -d /tmp/httpblk-boot.XXXXXX)
kver=$(cat "$kdir/include/config/kernel.release")
digest=$(cat "$IMG/digest")
image_id=$(cat "$IMG/image-id")
timeout=${HTTPBLK_BOOT_TIMEOUT:-900}
echo "boot: image $IMG, logs in $OUT"

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
serve "$IMG/store" "$OUT/serve.log"
pids+=("$SERVE_PID")
url=http://10.0.2.2:$SERVE_PORT/root.hbi

passed=0 failed=0
problems=()
# expect WHAT COMMAND...: records WHAT as a problem of the current test unless COMMAND succeeds.
expect() {
    local what=$1
    shift
    "$@" >/dev/null 2>&1 || problems+=("$what")
}
result() {
    local name=$1 secs=$2
    if [ ${#problems[@]} = 0 ]; then
        echo "PASS $name (${secs} s)"
        passed=$((passed + 1))
    else
        echo "FAIL $name: $(IFS=';'; echo "${problems[*]}")"
        failed=$((failed + 1))
    fi
    problems=()
}
eq() { [ "$1" = "$2" ]; }

# What every boot must show: systemd running, no failed unit, the image's identity, the device
# healthy, no I/O error, a clean console, a poweroff within 60 s without errors.
check_boot() {
    local state
    state=$(fact state)
    expect "systemd is '$state', not running" eq "$state" running
    expect "failed units: $(fact failed)" eq "$(fact failed)" ""
    expect "image id $(fact image-id)" eq "$(fact image-id)" "$image_id"
    expect "index sha256 $(fact index_sha256)" eq "$(fact index_sha256)" "$digest"
    expect "helper $(fact helper)" eq "$(fact helper)" attached
    for c in io_errors timeouts verify_failures; do
        expect "$c $(fact $c)" eq "$(fact $c)" 0
    done
    expect "$(fact ioerrors) I/O errors in the journal" eq "$(fact ioerrors)" 0
    expect "module option from /etc/modprobe.d: cache_mb=$(fact cache_mb)" eq "$(fact cache_mb)" 384
    expect "kernel log: $(grep -aEm1 "$BAD_CONSOLE" "$BOOT_LOG")" \
        sh -c "! grep -aEq '$BAD_CONSOLE' '$BOOT_LOG'"
    expect "no poweroff within 60 s" test -n "$BOOT_OFF_S"
    expect "no 'reboot: Power down'" grep -aq 'reboot: Power down' "$BOOT_LOG"
    local shutdown_errors
    # Not virtio-net's "Unexpected TXQ (0) queue failure: -5": a packet racing the NIC's reset
    # between "Preparing to enter system sleep state S5" and the power-off, every file system
    # already unmounted (seen once in CI; the NIC's driver, not ours).
    shutdown_errors=$(sed -n '/HTTPBLK-TEST done/,$p' "$BOOT_LOG" | tr -d '\r' |
        grep -avE 'net [a-z0-9]+: Unexpected TXQ \([0-9]+\) queue failure' |
        grep -aiE 'fail|error|timed out|blocked' | head -3 || true)
    expect "shutdown: $shutdown_errors" eq "$shutdown_errors" ""
}

# install: `make install` into a staging root (INSTALL_MOD_PATH defaults to DESTDIR), as a
# package build or a user's own install would run it.
t0=$SECONDS
stage=$OUT/stage
if make -s -C "$repo" KDIR="$kdir" "${KMAKE_ARGS[@]}" install DESTDIR="$stage" >"$OUT/install.log" 2>&1; then
    expect "httpblk.ko not in lib/modules/$kver/updates/" test -f "$stage/lib/modules/$kver/updates/httpblk.ko"
    expect "depmod -b does not find httpblk.ko" \
        sh -c "depmod -b '$stage' -n '$kver' 2>/dev/null | grep -q '^updates/httpblk.ko:'"
    expect "modprobe does not resolve httpblk" \
        sh -c "modprobe -d '$stage' -S '$kver' --show-depends httpblk | grep -q 'updates/httpblk.ko'"
    for p in cache_mb max_inflight io_timeout_ms recovery_timeout_ms readahead_kb; do
        expect "modinfo shows no parameter $p" \
            sh -c "modinfo -b '$stage' -k '$kver' -F parm httpblk | grep -q '^$p:'"
    done
    for f in usr/local/bin/httpblk usr/local/share/man/man1/httpblk.1.gz \
        usr/local/share/bash-completion/completions/httpblk etc/systemd/system/httpblk@.service \
        etc/initramfs-tools/hooks/httpblk etc/initramfs-tools/scripts/local-top/httpblk \
        etc/initramfs-tools/scripts/local-bottom/httpblk; do
        expect "$f not installed" test -s "$stage/$f"
    done
    expect "the hook does not name the installed binary" \
        grep -q '^BIN=/usr/local/bin/httpblk$' "$stage/etc/initramfs-tools/hooks/httpblk"
else
    problems+=("make install failed: $(tail -3 "$OUT/install.log" | tr '\n' ' ')")
fi
result install $((SECONDS - t0))

# root_readonly
t0=$SECONDS
if boot root_readonly "$timeout" "root=/dev/httpblk0 ro httpblkroot=$url httpblkdigest=$digest \
        ip=dhcp httpblk.max_inflight=48 httpblktest.poweroff"; then
    check_boot
    expect "root is $(fact root) $(fact fstype) $(fact rootopts)" \
        eq "$(fact root) $(fact fstype) $(fact rootopts | cut -d, -f1)" "/dev/httpblk0 ext4 ro"
    expect "module option from the command line: max_inflight=$(fact max_inflight)" \
        eq "$(fact max_inflight)" 48
    expect "helper's argv[0] is $(fact helper_argv0)" eq "$(fact helper_argv0)" @httpblk
    expect "the helper's name servers are $(fact helper_dns), not DHCP's (10.0.2.3)" \
        eq "$(fact helper_dns)" "10.0.2.3,"
    echo "    running after $(fact uptime) s of uptime, $(fact fetched_bytes) bytes fetched" \
        "of a $(fact image_size)-byte image, poweroff in ${BOOT_OFF_S:-?} s"
else
    problems+=("no report within $timeout s; console: $(tr -d '\r' <"$BOOT_LOG" | tail -3 | tr '\n' ' ')")
fi
result root_readonly $((SECONDS - t0))

# root_overlay_helper_killed
t0=$SECONDS
dns_port=$(free_port)
dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts --bind-interfaces \
    --listen-address=127.0.0.1 --port="$dns_port" --address=/boot.httpblk.test/10.0.2.2 \
    --pid-file= --log-queries --log-facility="$OUT/dnsmasq.log" &
pids+=($!)
truncate -s 0 "$OUT/cache.img"
mkfs.ext4 -q -F -L httpblk-cache "$OUT/cache.img" 256M >/dev/null 2>&1
if boot root_overlay_helper_killed "$timeout" "root=/dev/httpblk0 ro \
        httpblkroot=http://boot.httpblk.test:$SERVE_PORT/root.hbi httpblkdigest=$digest ip=dhcp \
        httpblkdns=10.0.2.2:$dns_port httpblkoverlay=tmpfs httpblkcache=LABEL=httpblk-cache \
        httpblktest.kill httpblktest.poweroff" \
        -drive "file=$OUT/cache.img,format=raw,if=virtio"; then
    check_boot
    expect "root is $(fact fstype), not overlay" eq "$(fact fstype)" overlay
    expect "root not writable" eq "$(fact overlay-write)" written
    expect "the helper did not resolve boot.httpblk.test" grep -q 'query\[A\] boot.httpblk.test' "$OUT/dnsmasq.log"
    expect "helper not killed (old $(fact old_pid), new $(fact new_pid))" \
        sh -c "[ -n '$(fact old_pid)' ] && [ '$(fact old_pid)' != '$(fact new_pid)' ]"
    expect "httpblk-root.service did not recover the device" sh -c "[ '$(fact recovered)' -ge 1 ]"
    expect "file read across the outage differs" eq "$(fact blob)" "$(cat "$IMG/blob.sha256")"
    expect "second-level cache empty" sh -c "[ '$(fact files)' -gt 0 ]"
    echo "    running after $(fact uptime) s of uptime; read across the outage in $(fact read_ms) ms;" \
        "$(fact files) block files cached; poweroff in ${BOOT_OFF_S:-?} s"
else
    problems+=("no report within $timeout s; console: $(tr -d '\r' <"$BOOT_LOG" | tail -3 | tr '\n' ' ')")
fi
result root_overlay_helper_killed $((SECONDS - t0))

echo "boot: $passed passed, $failed failed"
[ "$failed" = 0 ]
