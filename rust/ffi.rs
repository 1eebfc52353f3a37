// SPDX-License-Identifier: GPL-2.0
//! C functions missing from 6.12's bindings: exported kernel functions declared by hand, and
//! the static-inline wrappers of `helpers.c`. Only the driver-local layer calls these.

use kernel::bindings;
use kernel::ffi::{c_int, c_uint, c_ulong, c_void};

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

    // lib/crypto/sha256.c
    pub(crate) fn sha256(data: *const u8, len: c_uint, out: *mut u8);

    // helpers.c
    pub(crate) fn httpblk_misc_register(fops: *const bindings::file_operations, ctx: *mut c_void) -> c_int;
    pub(crate) fn httpblk_misc_deregister();
    pub(crate) fn httpblk_misc_ctx(file: *mut bindings::file) -> *mut c_void;
    pub(crate) fn httpblk_vmalloc_user(size: c_ulong) -> *mut c_void;
    pub(crate) fn httpblk_rq_copy(rq: *mut bindings::request, skip: c_uint, src: *const c_void, len: c_uint);
    pub(crate) fn httpblk_init_work(
        work: *mut bindings::work_struct,
        func: Option<unsafe extern "C" fn(*mut bindings::work_struct)>,
    );
    pub(crate) fn httpblk_vma_prepare(vma: *mut bindings::vm_area_struct, read_only: bool) -> c_int;
    pub(crate) fn httpblk_md5_alloc() -> *mut CryptoShash;
    pub(crate) fn httpblk_md5_digest(tfm: *mut CryptoShash, data: *const u8, len: c_uint, out: *mut u8) -> c_int;
    pub(crate) fn httpblk_md5_free(tfm: *mut CryptoShash);
}
