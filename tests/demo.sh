#!/usr/bin/env bash
# The main job, end to end: make an ext4 image, serve it with `httpblk serve`, and in a VM
# running the Rust-enabled test kernel (7.2; HTTPBLK_KERNEL=6.12 for the other) load httpblk.ko, attach the image, mount it and list it.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
bash tests/setup.sh
. tests/lib/toolchain.sh
kdir=$(bash tests/kernel/build.sh | tail -1)
make -s KDIR="$kdir" "${KMAKE_ARGS[@]}"
(cd userspace && cargo build -q --release)
B=$repo/userspace/target/release/httpblk

demo=$(mktemp -d /tmp/httpblk-demo.XXXXXX)
mkdir "$demo/src"
cp -a /usr/share/perl "$demo/src/"
mkfs.ext4 -q -F -d "$demo/src" "$demo/disk.img" 64M
"$B" create "$demo/disk.img" "$demo/store" | tee "$demo/create.txt"
digest=$(awk '/index sha256/ {print $3}' "$demo/create.txt")

cat >"$demo/guest.sh" <<GUEST
set -e
exec >"$demo/guest.log" 2>&1
ip link set lo up
insmod $repo/httpblk.ko
$B serve $demo/store --listen 127.0.0.1:8080 & sleep 1
dev=\$($B attach http://127.0.0.1:8080/disk.hbi --index-digest $digest)
mkdir -p $demo/mnt && mount -o ro \$dev $demo/mnt
echo "attached \$dev:"; $B status
df -h $demo/mnt; ls $demo/mnt/perl | head
umount $demo/mnt; $B detach \$dev
GUEST
vng --run "$kdir/arch/x86/boot/bzImage" $(bash tests/vm/accel.sh "$kdir") --memory 2G \
    --rwdir "$demo" --exec "bash $demo/guest.sh" >"$demo/console.log" 2>&1 || true
cat "$demo/guest.log"
