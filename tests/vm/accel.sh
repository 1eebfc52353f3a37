#!/usr/bin/env bash
# Prints virtme-ng's acceleration flag: KVM where a guest really boots with it here (probed
# once per kernel tree, with a short timeout), otherwise TCG (--disable-kvm).
kdir=$1
cache=$kdir/.httpblk-kvm
if [ ! -f "$cache" ]; then
    ans=--disable-kvm
    if [ -w /dev/kvm ]; then
        probe=$(mktemp -d)
        timeout 40 vng --run "$kdir/arch/x86/boot/bzImage" --rwdir "$probe" \
            --exec "touch $probe/booted" >/dev/null 2>&1 </dev/null || true
        [ -f "$probe/booted" ] && ans=""
        rm -rf "$probe"
    fi
    echo "$ans" >"$cache"
fi
cat "$cache"
