# Shared by the VM benchmarks (sourced after `here` and `repo` are set): the kernel tree, the
# module and the release binary built, the images (an ext4 image of /usr files, a random
# one), a VM runner, and the host side of the figures the guest prints (bench/guest-lib.sh).
#   HTTPBLK_BENCH_MB=1024 (default) sets the image size; HTTPBLK_BENCH_DIR the work directory.
. "$repo/tests/lib/toolchain.sh"
mb=${HTTPBLK_BENCH_MB:-1024}
kdir=$("$repo/tests/kernel/build.sh" | tail -1)
make -s -C "$repo" KDIR="$kdir" "${KMAKE_ARGS[@]}" >/dev/null
(cd "$repo/userspace" && cargo build -q --release)
B=$repo/userspace/target/release/httpblk
work=${HTTPBLK_BENCH_DIR:-$HOME/.cache/httpblk/bench}
mkdir -p "$work"
img=$work/usr-${mb}m.img   # made by the first `store`
# The guest script goes to $out/guest.sh and writes $out/guest.log.
out=$(mktemp -d /tmp/httpblk-bench.XXXXXX)

# store CODEC: prints the directory of the ext4 image stored with CODEC (image name usr),
# made once.
store() {
    local st=$work/st-$mb-$1
    bash "$here/make-fs-image.sh" "$img" "$mb" >&2
    [ -f "$st/usr.hbi" ] || "$B" create "$img" "$st" --codec "$1" --name usr >/dev/null
    echo "$st"
}

# random_store: an image of $mb MiB of random bytes (seeded, so the same on every run; no
# zero block and no repeated one, so every block read is a fetch of its own and a figure does
# not depend on which part of the image a time-bounded read reached), stored with codec
# none and 256 KiB blocks (image name rand); prints the store directory. The raw image is
# $work/raw-random-${mb}m/rand.img.
random_store() {
    local raw=$work/raw-random-${mb}m st=$work/st-random-$mb
    mkdir -p "$raw"
    [ -f "$raw/rand.img" ] || python3 - "$raw/rand.img" "$mb" <<'PY'
import os, random, sys
random.seed(7)
with open(sys.argv[1] + ".tmp", "wb") as f:
    for _ in range(int(sys.argv[2])):
        f.write(random.randbytes(1 << 20))
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
PY
    [ -f "$st/rand.hbi" ] || "$B" create "$raw/rand.img" "$st" --codec none --name rand >/dev/null
    echo "$st"
}

# The guest script starts with this: the guest's helpers (bench/guest-lib.sh) and who it runs.
guest_prelude() {
    echo "exec >$out/guest.log 2>&1"
    echo "set -u"
    echo "B=$B KO=$repo/httpblk.ko mb=$mb marks=$out/marks"
    echo ". $here/guest-lib.sh"
}

accel=$(bash "$repo/tests/vm/accel.sh" "$kdir")
# The kernel is the test suite's (tests/kernel/httpblk.config): lockdep, kmemleak and UBSAN
# built in. Benchmarks turn off what can be turned off at boot: kmemleak, and lockdep's
# proving (it still tracks the locks held). UBSAN's checks stay.
boot_args=${HTTPBLK_BENCH_BOOT_ARGS-kmemleak=off lockdep.prove_locking=0}
# run_guest MEMORY SECONDS: boots the bench kernel on 2 CPUs running $out/guest.sh, at most
# SECONDS; prints what the guest wrote to $out/guest.log and the host's load around the run
# (other VMs on the host slow the guest's emulated CPUs down: its idle share shows it).
# Meanwhile `emulator_cpu` notes the emulator's CPU time at each window the guest marks.
run_guest() {
    local vm rc=0
    echo "host load before: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) CPUs"
    : >"$out/marks"
    timeout "$2" vng --run "$kdir/arch/x86/boot/bzImage" $accel --append "$boot_args" \
        --memory "$1" --cpus 2 --rwdir "$out" --rwdir /tmp --exec "bash $out/guest.sh" \
        >"$out/console.log" 2>&1 &
    vm=$!
    emulator_cpu "$vm" &
    wait "$vm" || rc=$?
    wait
    [ "$rc" = 0 ] || echo "the VM did not finish within $2 s"
    echo "host load after: $(cut -d' ' -f1-3 /proc/loadavg)"
    cat "$out/guest.log"
}

# emulator_cpu PID: while PID (the VM) runs, writes "start|end KEY CPU-SECONDS" to
# $out/emulator-cpu for each window the guest marks in $out/marks (bench/guest-lib.sh
# `measured`), CPU-SECONDS being what the emulator process (every vCPU and I/O thread) has
# used so far. Unlike the guest's own CPU-seconds, these do not grow when other work on the
# host delays the emulator: they are the work the guest's run cost.
emulator_cpu() {
    local qemu="" seen=0 n cpu
    while kill -0 "$1" 2>/dev/null; do
        [ -n "$qemu" ] || qemu=$(pgrep -f "qemu-system.*$out" | head -1)
        n=$(wc -l <"$out/marks")
        if [ -n "$qemu" ] && [ "$n" -gt "$seen" ]; then
            cpu=$(awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) / hz}' "/proc/$qemu/stat" 2>/dev/null)
            sed -n "$((seen + 1)),${n}p" "$out/marks" | sed "s/\$/ $cpu/" >>"$out/emulator-cpu"
            seen=$n
        fi
        sleep 0.2
    done
}

under() { case $accel in *disable*) echo TCG ;; *) echo KVM ;; esac; }

# fig KEY FIELD: one field of the guest's figure line "KEY: k=v ..." (bench/guest-lib.sh).
fig() { awk -v k="$1:" -v f="$2" '$1 == k { for (i = 2; i <= NF; i++) { split($i, kv, "="); if (kv[1] == f) print kv[2] } }' "$out/guest.log"; }

# ratio A B: A / B to two decimals, or nothing if either is missing or B is zero.
ratio() { [ -n "$1" ] && [ -n "$2" ] && awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b }'; }

# emu KEY: the emulator's CPU-seconds over figure KEY's window (see emulator_cpu).
emu() { awk -v k="$1" '$2 == k { if ($1 == "start") a = $3; else b = $3 } END { if (a != "" && b != "") printf "%.1f", b - a }' "$out/emulator-cpu" 2>/dev/null; }
# emu_gib KEY: those per GiB the figure read.
emu_gib() { awk -v c="$(emu "$1")" -v b="$(fig "$1" bytes)" 'BEGIN { if (c != "" && b > 0) printf "%.1f", c * 1073741824 / b }'; }

# show KEY LABEL: a read figure's MB/s, CPU-seconds per GiB of the guest and of the emulator
# on the host, the guest's idle share, what the shaped links carried meanwhile (MB/s, with
# retransmissions and headers) and its errors.
show() {
    local e w
    e=$(fig "$1" errors)
    w=$(awk -v b="$(fig "$1" wire)" -v t="$(fig "$1" wall)" 'BEGIN { if (b > 0 && t > 0) printf "  links %.3f MB/s", b / 1e6 / t }')
    printf '  %-40s %6s MB/s  CPU-s/GiB %7s guest %7s host  idle %3s%%%s%s\n' "$2" "$(fig "$1" mbps)" \
        "$(fig "$1" cpu_gib)" "$(emu_gib "$1")" "$(fig "$1" idle)" "$w" "$([ "$e" = 0 ] || echo "  ERRORS: ${e:-no figure}")"
}

# judge LABEL A B GOAL [FIELD]: "LABEL: Rx (goal >= GOAL): met | not met" for figure A over
# figure B (FIELD, default mbps); GOAL "-" prints the ratio only. A ratio with either run
# under 30% idle is CPU-bound: printed, not judged.
judge() {
    local label=$1 a=$2 b=$3 goal=$4 field=${5:-mbps} r ia ib g=""
    r=$(ratio "$(fig "$a" "$field")" "$(fig "$b" "$field")")
    ia=$(fig "$a" idle) ib=$(fig "$b" idle)
    [ "$goal" = - ] || g=" (goal >= $goal)"
    if [ -z "$r" ] || [ -z "$ia" ] || [ -z "$ib" ]; then
        echo "  $label: no figure (see $out/guest.log)"
    elif [ "$ia" -lt 30 ] || [ "$ib" -lt 30 ]; then
        echo "  $label: ${r}x$g: CPU-bound (idle $ia% / $ib%), not judged"
    elif [ "$goal" = - ]; then
        echo "  $label: ${r}x (idle $ia% / $ib%)"
    elif awk -v r="$r" -v g="$goal" 'BEGIN { exit !(r >= g) }'; then
        echo "  $label: ${r}x$g: met"
    else
        echo "  $label: ${r}x$g: not met"
    fi
}
