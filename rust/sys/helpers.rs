// SPDX-License-Identifier: GPL-2.0
//! C functions missing from 6.12's bindings: exported kernel functions declared by hand, and
//! the static-inline wrappers of `helpers.c`. Only the driver-local layer calls these.

use kernel::bindings;
use kernel::ffi::{c_int, c_uint, c_ulong, c_void};

/// An errno the prelude does not name.
pub(crate) fn errno(e: u32) -> kernel::error::Error {
    kernel::error::Error::from_errno(-(e as i32))
}

/// A random number (`get_random_u64`).
pub(crate) fn random_u64() -> u64 {
    // SAFETY: FFI call without preconditions.
    unsafe { bindings::get_random_u64() }
}

/// Possible CPUs (`nr_cpu_ids`). A uniprocessor kernel (User-Mode Linux, say) makes it the
/// constant 1, a macro bindgen does not see.
pub(crate) fn nr_cpu_ids() -> u32 {
    #[cfg(CONFIG_SMP)]
    // SAFETY: Set at boot and never changed afterwards.
    return unsafe { bindings::nr_cpu_ids };
    #[cfg(not(CONFIG_SMP))]
    return 1;
}

/// `struct httpblk_dec` (helpers.c), opaque to Rust.
#[repr(C)]
pub(crate) struct Dec {
    _opaque: [u8; 0],
}

/// Codecs of `httpblk_dec_alloc`, as `HTTPBLK_DEC_*` in helpers.h.
pub(crate) const DEC_LZO: c_int = 0;
pub(crate) const DEC_LZ4: c_int = 1;
pub(crate) const DEC_ZSTD: c_int = 2;

/// `struct crypto_shash`, opaque to Rust.
#[repr(C)]
pub(crate) struct CryptoShash {
    _opaque: [u8; 0],
}

// Kernel structs are passed by pointer only; bindgen leaves some of them empty.
#[allow(improper_ctypes)]
extern "C" {
    // mm/vmalloc.c
    pub(crate) fn vfree(addr: *const c_void);
    pub(crate) fn remap_vmalloc_range(
        vma: *mut bindings::vm_area_struct,
        addr: *mut c_void,
        pgoff: c_ulong,
    ) -> c_int;

    // helpers.c
    pub(crate) fn httpblk_misc_register(
        fops: *const bindings::file_operations,
        ctx: *mut c_void,
    ) -> c_int;
    pub(crate) fn httpblk_misc_deregister();
    pub(crate) fn httpblk_misc_ctx(file: *mut bindings::file) -> *mut c_void;
    pub(crate) fn httpblk_dev_queuedata(dev: *mut bindings::device) -> *mut c_void;
    pub(crate) fn httpblk_vmalloc_user(size: c_ulong) -> *mut c_void;
    pub(crate) fn httpblk_rq_copy(
        rq: *mut bindings::request,
        skip: c_uint,
        src: *const c_void,
        len: c_uint,
    );
    pub(crate) fn httpblk_copy_shared(dst: *mut c_void, src: *const c_void, len: usize);
    pub(crate) fn httpblk_sha256(data: *const u8, len: usize, out: *mut u8);
    pub(crate) fn httpblk_jiffies_to_msecs(j: c_ulong) -> c_uint;
    pub(crate) fn httpblk_tick_setup(func: Option<unsafe extern "C" fn()>) -> c_int;
    pub(crate) fn httpblk_tick_arm(delay: c_ulong);
    pub(crate) fn httpblk_tick_teardown();
    pub(crate) fn httpblk_module_get(module: *mut bindings::module) -> bool;
    pub(crate) fn httpblk_noio_save() -> c_uint;
    pub(crate) fn httpblk_noio_restore(flags: c_uint);
    pub(crate) fn httpblk_shrinker_alloc(
        name: *const kernel::ffi::c_char,
    ) -> *mut bindings::shrinker;
    pub(crate) fn httpblk_vma_prepare(vma: *mut bindings::vm_area_struct, read_only: bool)
        -> c_int;
    pub(crate) fn httpblk_md5_alloc() -> *mut CryptoShash;
    pub(crate) fn httpblk_md5_digest(
        tfm: *mut CryptoShash,
        data: *const u8,
        len: c_uint,
        out: *mut u8,
    ) -> c_int;
    pub(crate) fn httpblk_md5_free(tfm: *mut CryptoShash);
    pub(crate) fn httpblk_dec_alloc(codec: c_int) -> *mut Dec;
    pub(crate) fn httpblk_dec_run(
        d: *mut Dec,
        src: *const u8,
        slen: c_uint,
        dst: *mut u8,
        dlen: *mut c_uint,
    ) -> c_int;
    pub(crate) fn httpblk_dec_free(d: *mut Dec);
    pub(crate) fn httpblk_zlib_alloc() -> *mut c_void;
    pub(crate) fn httpblk_zlib_inflate(
        s: *mut c_void,
        src: *const u8,
        slen: c_uint,
        dst: *mut u8,
        dlen: *mut c_uint,
    ) -> c_int;
    pub(crate) fn httpblk_zlib_free(s: *mut c_void);
}
