# Sourced by the test scripts: where the toolchain and the caches are.
HTTPBLK_CACHE="${HTTPBLK_CACHE:-$HOME/.cache/httpblk}"
BINDGEN="$HTTPBLK_CACHE/bindgen/bin/bindgen"
export LIBCLANG_PATH=/usr/lib/llvm-19/lib
# The kernel's Rust comes from Debian's rustc-web, never from rustup.
# Its clippy and rustfmt too (rust-web-clippy, rustfmt-web): a rustup clippy-driver cannot
# read crates built by another rustc.
KMAKE_ARGS=(LLVM=-19 RUSTC=/usr/bin/rustc RUST_LIB_SRC=/usr/lib/rustlib/src/rust/library
            BINDGEN="$BINDGEN" HOSTRUSTC=/usr/bin/rustc CLIPPY_DRIVER=/usr/bin/clippy-driver
            RUSTFMT=/usr/bin/rustfmt)
