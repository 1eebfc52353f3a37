#!/usr/bin/env bash
# make against a tree it cannot build for stops with one line saying what to do
# (scripts/check-kdir.sh): fake trees for each case, and a real one, if given, that passes.
#   check-kdir-test.sh [KDIR RUSTC]
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
pass=0 fail=0

fake_tree() {  # DIR VERSION PATCHLEVEL RUST(y|n) BUILT(y|n) RUSTC_TEXT
    mkdir -p "$1/rust"
    printf 'VERSION = %s\nPATCHLEVEL = %s\nSUBLEVEL = 1\n' "$2" "$3" >"$1/Makefile"
    { [ "$4" = y ] && echo CONFIG_RUST=y || echo "# CONFIG_RUST is not set"
      echo "CONFIG_RUSTC_VERSION_TEXT=\"$6\""
      for opt in LZ4_DECOMPRESS LZO_DECOMPRESS ZSTD_DECOMPRESS ZLIB_INFLATE CRYPTO_MD5 CRYPTO_LIB_SHA256; do
          echo "CONFIG_$opt=y"
      done; } >"$1/.config"
    [ "$5" = y ] && : >"$1/rust/libkernel.rmeta"
    return 0
}

expect() {  # NAME PATTERN KDIR [RUSTC]: make fails with exactly one line matching PATTERN
    local out rc=0
    # Besides make's own "*** [...] Error 1".
    out=$(make -s -C "$repo" KDIR="$3" RUSTC="${4:-rustc}" check-kdir 2>&1 | grep -v '^make: \*\*\*') || rc=$?
    out=${out:-}
    if [ "$rc" != 0 ] && [ "$(printf '%s\n' "$out" | grep -c .)" = 1 ] && printf '%s' "$out" | grep -q "$2"; then
        echo "PASS check_kdir_$1"; pass=$((pass + 1))
    else
        echo "FAIL check_kdir_$1 (exit $rc): $out"; fail=$((fail + 1))
    fi
}

rustc_text=$(rustc --version)
expect not_a_tree "is not a kernel tree" "$t/nothing"
fake_tree "$t/old" 6 6 y y "$rustc_text"
expect unsupported_version "Linux 6.6 is not supported" "$t/old"
fake_tree "$t/norust" 7 2 n y "$rustc_text"
expect no_config_rust "without CONFIG_RUST=y" "$t/norust"
fake_tree "$t/unbuilt" 7 2 y n "$rustc_text"
expect never_built "no Rust metadata" "$t/unbuilt"
fake_tree "$t/nolz4" 7 2 y y "$rustc_text"
sed -i 's/^CONFIG_LZ4_DECOMPRESS=y/# CONFIG_LZ4_DECOMPRESS is not set/' "$t/nolz4/.config"
expect no_lz4 "without CONFIG_LZ4_DECOMPRESS" "$t/nolz4"
fake_tree "$t/otherrustc" 6 12 y y "rustc 1.78.0 (9b00956e5 2024-04-29)"
expect other_rustc "was built with 'rustc 1.78.0" "$t/otherrustc"

if [ $# -ge 2 ]; then  # a real, built tree passes
    if make -s -C "$repo" KDIR="$1" RUSTC="$2" check-kdir; then
        echo "PASS check_kdir_real_tree"; pass=$((pass + 1))
    else
        echo "FAIL check_kdir_real_tree"; fail=$((fail + 1))
    fi
fi
echo "check-kdir: $pass passed, $fail failed"
[ "$fail" = 0 ]
