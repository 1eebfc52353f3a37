#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Before kbuild runs: is KDIR a kernel tree httpblk.ko can be built against, with this
# compiler? Says in one line what is missing and what to do, instead of a wall of errors.
#   check-kdir.sh KDIR RUSTC
kdir=$1
rustc=${2:-rustc}
fail() { echo "httpblk: $*" >&2; exit 1; }

[ -f "$kdir/Makefile" ] || fail "KDIR=$kdir is not a kernel tree (no Makefile); pass KDIR=/path/to/linux"
[ -f "$kdir/.config" ] || fail "$kdir has no .config: configure the kernel (with CONFIG_RUST=y) and build it first"
version=$(sed -n 's/^VERSION = //p' "$kdir/Makefile" 2>/dev/null)
patchlevel=$(sed -n 's/^PATCHLEVEL = //p' "$kdir/Makefile" 2>/dev/null)
if [ -z "$version" ] && [ -f "$kdir/include/config/kernel.release" ]; then
    # A distribution's headers: the version from the release string.
    release=$(cat "$kdir/include/config/kernel.release")
    version=${release%%.*}; rest=${release#*.}; patchlevel=${rest%%[.-]*}
fi
case "$version.$patchlevel" in
    6.12 | 7.2) ;;
    *) [ -n "${HTTPBLK_ANY_KERNEL:-}" ] ||
        fail "Linux $version.$patchlevel is not supported (6.12 and 7.2 are); HTTPBLK_ANY_KERNEL=1 tries anyway" ;;
esac
grep -q '^CONFIG_RUST=y' "$kdir/.config" ||
    fail "$kdir was configured without CONFIG_RUST=y: enable Rust support (General setup -> Rust support) and rebuild the kernel"
# The library code httpblk.ko calls (built in or modules): without it modpost would stop at
# undefined symbols.
for opt in LZ4_DECOMPRESS LZO_DECOMPRESS ZSTD_DECOMPRESS ZLIB_INFLATE CRYPTO_MD5 CRYPTO_LIB_SHA256; do
    grep -Eq "^CONFIG_$opt=(y|m)" "$kdir/.config" ||
        fail "$kdir was configured without CONFIG_$opt, which httpblk needs: enable it (=y or =m) and rebuild the kernel"
done
[ -f "$kdir/rust/libkernel.rmeta" ] ||
    fail "$kdir has no Rust metadata (rust/libkernel.rmeta): build the kernel first (make), or see Documentation/operations.md for distribution kernels"
want=$(sed -n 's/^CONFIG_RUSTC_VERSION_TEXT="\(.*\)"$/\1/p' "$kdir/.config")
have=$("$rustc" --version 2>/dev/null) || fail "RUSTC=$rustc does not run: pass the rustc the kernel was built with (RUSTC=...)"
[ "$have" = "$want" ] ||
    fail "RUSTC=$rustc is '$have' but $kdir was built with '$want': pass RUSTC= (and BINDGEN=, LLVM=) as used for the kernel"
exit 0
