# Shared by the VM benchmarks (sourced after `here` and `repo` are set): the kernel tree, the
# module and the release binary built, the ext4 image of /usr files, and a VM runner.
#   HTTPBLK_BENCH_MB=1024 (default) sets the image size; HTTPBLK_BENCH_DIR the work directory.
. "$repo/tests/lib/toolchain.sh"
mb=${HTTPBLK_BENCH_MB:-1024}
kdir=$("$repo/tests/kernel/build.sh" | tail -1)
make -s -C "$repo" KDIR="$kdir" "${KMAKE_ARGS[@]}" >/dev/null
(cd "$repo/userspace" && cargo build -q --release)
B=$repo/userspace/target/release/httpblk
work=${HTTPBLK_BENCH_DIR:-$HOME/.cache/httpblk/bench}
mkdir -p "$work"
img=$work/usr-${mb}m.img
bash "$here/make-fs-image.sh" "$img" "$mb"
# The guest script goes to $out/guest.sh and writes $out/guest.log.
out=$(mktemp -d /tmp/httpblk-bench.XXXXXX)

# store CODEC: prints the directory of the image stored with CODEC (image name usr), made once.
store() {
    local st=$work/st-$mb-$1
    [ -f "$st/usr.hbi" ] || "$B" create "$img" "$st" --codec "$1" --name usr >/dev/null
    echo "$st"
}

# run_guest MEMORY SECONDS: boots the bench kernel on 2 CPUs running $out/guest.sh, at most
# SECONDS; prints what the guest wrote to $out/guest.log.
run_guest() {
    timeout "$2" vng --run "$kdir/arch/x86/boot/bzImage" $(bash "$repo/tests/vm/accel.sh" "$kdir") \
        --memory "$1" --cpus 2 --rwdir "$out" --rwdir /tmp --exec "bash $out/guest.sh" \
        >"$out/console.log" 2>&1 || true
    cat "$out/guest.log"
}
