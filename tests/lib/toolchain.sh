# Sourced by the test scripts: where the toolchain and the caches are, and which kernel.
HTTPBLK_CACHE="${HTTPBLK_CACHE:-$HOME/.cache/httpblk}"
# The test kernel: 7.2 (Debian's linux-source-7.2, trixie-backports) unless HTTPBLK_KERNEL=6.12.
HTTPBLK_KERNEL="${HTTPBLK_KERNEL:-7.2}"
case $HTTPBLK_KERNEL in
    6.12) BINDGEN="$HTTPBLK_CACHE/bindgen/bin/bindgen" ;;
    # 7.2 needs bindgen >= 0.71.1; 6.12's build of the bindings is only tested with 0.69.
    7.2) BINDGEN="$HTTPBLK_CACHE/bindgen-0.72/bin/bindgen" ;;
    *) echo "HTTPBLK_KERNEL=$HTTPBLK_KERNEL: the test kernels are 6.12 and 7.2" >&2; exit 2 ;;
esac
export HTTPBLK_KERNEL
export LIBCLANG_PATH=/usr/lib/llvm-19/lib
# The kernel's Rust comes from Debian's rustc-web, never from rustup.
# Its clippy and rustfmt too (rust-web-clippy, rustfmt-web): a rustup clippy-driver cannot
# read crates built by another rustc.
KMAKE_ARGS=(LLVM=-19 RUSTC=/usr/bin/rustc RUST_LIB_SRC=/usr/lib/rustlib/src/rust/library
            BINDGEN="$BINDGEN" HOSTRUSTC=/usr/bin/rustc CLIPPY_DRIVER=/usr/bin/clippy-driver
            RUSTFMT=/usr/bin/rustfmt)
