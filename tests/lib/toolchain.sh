# Sourced by the test scripts: where the toolchain and the caches are.
HTTPBLK_CACHE="${HTTPBLK_CACHE:-$HOME/.cache/httpblk}"
BINDGEN="$HTTPBLK_CACHE/bindgen/bin/bindgen"
export LIBCLANG_PATH=/usr/lib/llvm-19/lib
# The kernel's Rust comes from Debian's rustc-web, never from rustup.
KMAKE_ARGS=(LLVM=-19 RUSTC=/usr/bin/rustc RUST_LIB_SRC=/usr/lib/rustlib/src/rust/library
            BINDGEN="$BINDGEN" HOSTRUSTC=/usr/bin/rustc)
