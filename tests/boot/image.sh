#!/usr/bin/env bash
# Makes what the boot test serves and boots, the way a user would: the Debian system from
# rootfs.sh with the test kernel's modules and httpblk installed into it (`make install
# DESTDIR=...`, so httpblk.ko lands in /lib/modules/KVER/updates/ and the initramfs-tools hook
# and scripts in /etc/initramfs-tools/), its initramfs made inside it by update-initramfs, then
# an ext4 image of it and an httpblk store of that image.
#   image.sh KDIR   prints the output folder: bzImage, initrd.img, root.img (ext4), store/
#                   (root.hbi), digest (index sha256), image-id, blob.sha256
# Cached in ~/.cache/httpblk/boot-image-KEY, keyed by every input; older ones are removed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
. "$repo/tests/lib/toolchain.sh"
kdir=$1
kver=$(cat "$kdir/include/config/kernel.release")

rootfs=$("$here/rootfs.sh")
make -s -C "$repo" KDIR="$kdir" "${KMAKE_ARGS[@]}" >/dev/null
(cd "$repo/userspace" && cargo build -q --release --bin httpblk)
key=$( (echo "$rootfs $kver"
        sha256sum "$kdir/arch/x86/boot/bzImage" "$repo/httpblk.ko" \
            "$repo/userspace/target/release/httpblk" "$repo/Makefile" "$0" "$here"/guest/*
        find "$repo/packaging" -type f -print0 | sort -z | xargs -0 sha256sum) |
      sha256sum | cut -c1-12)
out=$HTTPBLK_CACHE/boot-image-$key
if [ -f "$out/digest" ]; then
    echo "$out"
    exit 0
fi

echo "boot: making the boot image $out" >&2
start=$SECONDS
rm -rf "$out.tmp"
mkdir -p "$out.tmp/tree"
cd "$out.tmp"
t=$PWD/tree
tar -xf "$rootfs" -C "$t"

# The kernel's modules folder (modules.builtin: everything else is built in), then httpblk
# installed like a driver.
make -s -C "$kdir" "${KMAKE_ARGS[@]}" INSTALL_MOD_PATH="$t" modules_install >/dev/null
make -s -C "$repo" KDIR="$kdir" "${KMAKE_ARGS[@]}" install DESTDIR="$t" >install.log 2>&1 ||
    { tail -20 install.log >&2; exit 1; }
cp "$kdir/arch/x86/boot/bzImage" "$t/boot/vmlinuz-$kver"
cp "$kdir/.config" "$t/boot/config-$kver"

# The test's own parts: a console report once booted, a helper killer, known data, identity.
install -m 0755 "$here/guest/httpblk-test-report" "$here/guest/httpblk-test-kill" "$t/usr/local/sbin/"
install -m 0644 "$here"/guest/*.service "$t/etc/systemd/system/"
mkdir -p "$t/etc/systemd/system/multi-user.target.wants" "$t/etc/systemd/system/sysinit.target.wants"
ln -sf ../httpblk-test-report.service "$t/etc/systemd/system/multi-user.target.wants/"
ln -sf ../httpblk-test-kill.service "$t/etc/systemd/system/sysinit.target.wants/"
mkdir -p "$t/usr/local/share/httpblk-test"
head -c 8M /dev/urandom >"$t/usr/local/share/httpblk-test/blob"
sha256sum <"$t/usr/local/share/httpblk-test/blob" | cut -d' ' -f1 >blob.sha256
echo "httpblk-boot-$key-$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')" >image-id
cp image-id "$t/etc/httpblk-test-image"
# What any read-only root needs: a journal in RAM. The options file is what modprobe.d is for.
mkdir -p "$t/etc/systemd/journald.conf.d"
printf '[Journal]\nStorage=volatile\n' >"$t/etc/systemd/journald.conf.d/volatile.conf"
echo "options httpblk cache_mb=384" >"$t/etc/modprobe.d/httpblk.conf"
echo httpblk-boot >"$t/etc/hostname"
echo RESUME=none >"$t/etc/initramfs-tools/conf.d/resume"
chroot "$t" passwd -qd root

# The initramfs, made inside the system it boots (the hook copies what the system has).
unshare --mount --propagation private bash -c "
    mount -t proc proc '$t/proc' && mount -t sysfs sysfs '$t/sys' && mount --rbind /dev '$t/dev' &&
    chroot '$t' update-initramfs -c -k '$kver'" >initramfs.log 2>&1 ||
    { tail -20 initramfs.log >&2; exit 1; }
cp "$t/boot/initrd.img-$kver" initrd.img
cp "$kdir/arch/x86/boot/bzImage" bzImage

mkfs.ext4 -q -F -L httpblk-root -d "$t" root.img 512M >/dev/null
rm -rf "$t"
"$repo/userspace/target/release/httpblk" create root.img store --name root >create.txt
awk '/^index sha256/ {print $3}' create.txt >digest
[ -s digest ] || { cat create.txt >&2; exit 1; }

cd /
for old in "$HTTPBLK_CACHE"/boot-image-*; do
    [ "$old" = "$out.tmp" ] || rm -rf "$old"
done
mv "$out.tmp" "$out"
echo "boot: boot image made in $((SECONDS - start)) s" >&2
echo "$out"
