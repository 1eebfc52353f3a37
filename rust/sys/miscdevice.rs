// SPDX-License-Identifier: GPL-2.0
//! The control character device (/dev/httpblk-control): a misc device whose file operations
//! trampoline into a safe `FileOps` implementation with per-open state.

use core::marker::PhantomData;

use kernel::bindings;
use kernel::ffi::{c_int, c_long, c_uint, c_ulong, c_void};
use kernel::prelude::*;
use kernel::types::ForeignOwnable;

use crate::sys::helpers;

/// Whether the calling task has `CAP_SYS_ADMIN`.
pub(crate) fn capable_sys_admin() -> bool {
    // SAFETY: FFI call without preconditions.
    unsafe { bindings::capable(bindings::CAP_SYS_ADMIN as c_int) }
}

/// A VMA handed to `FileOps::mmap`.
pub(crate) struct Vma {
    vma: *mut bindings::vm_area_struct,
}

impl Vma {
    /// The mmap offset in bytes (`vm_pgoff` counts pages of the kernel's page size).
    pub(crate) fn offset(&self) -> u64 {
        // SAFETY: The VMA is live for the mmap call.
        let pgoff = unsafe { (*self.vma).vm_pgoff as u64 };
        pgoff
            .checked_shl(kernel::page::PAGE_SHIFT as u32)
            .filter(|o| o >> kernel::page::PAGE_SHIFT == pgoff)
            .unwrap_or(u64::MAX)
    }

    /// Maps `region` into this VMA.
    pub(crate) fn map(
        &self,
        region: &crate::sys::vmalloc::SharedRegion,
        read_only: bool,
    ) -> Result {
        // SAFETY: The VMA belongs to the mmap call in progress.
        unsafe { region.map(self.vma, read_only) }
    }
}

/// File operations of the control device.
pub(crate) trait FileOps: Sized + 'static {
    /// Shared by every open file (given at registration).
    type Context: ForeignOwnable + Send + Sync;
    /// Per-open state.
    type File: ForeignOwnable + Send + Sync;

    fn open(ctx: <Self::Context as ForeignOwnable>::Borrowed<'_>) -> Result<Self::File>;
    fn ioctl(
        file: <Self::File as ForeignOwnable>::Borrowed<'_>,
        cmd: u32,
        arg: usize,
    ) -> Result<isize>;
    fn mmap(file: <Self::File as ForeignOwnable>::Borrowed<'_>, vma: &Vma) -> Result;
    /// The last reference to the file is gone (the helper exited or closed it).
    fn release(file: Self::File);
}

struct FopsTable<T>(PhantomData<T>);

impl<T: FileOps> FopsTable<T> {
    const FOPS: bindings::file_operations = {
        // SAFETY: All-zero is a valid file_operations (no callbacks).
        let mut f: bindings::file_operations = unsafe { core::mem::zeroed() };
        // Open files pin the module, so rmmod is refused while a helper runs.
        f.owner = &raw mut bindings::__this_module;
        f.open = Some(open_callback::<T>);
        f.release = Some(release_callback::<T>);
        f.unlocked_ioctl = Some(ioctl_callback::<T>);
        // Every argument is a pointer to a fixed-layout struct: 32-bit callers only need
        // their pointer widened (`compat_ptr`). A kernel without 32-bit userspace has none.
        #[cfg(CONFIG_COMPAT)]
        {
            f.compat_ioctl = Some(bindings::compat_ptr_ioctl);
        }
        f.mmap = Some(mmap_callback::<T>);
        f
    };
}

/// The registered control device; deregistered on drop.
///
/// # Invariants
/// Registered with `httpblk_misc_register` and context `ctx` from `T::Context::into_foreign`.
pub(crate) struct Registration<T: FileOps> {
    ctx: *mut c_void,
    _t: PhantomData<T>,
}

// SAFETY: The context is Send + Sync; the registration itself is just a token.
unsafe impl<T: FileOps> Send for Registration<T> {}
// SAFETY: As above.
unsafe impl<T: FileOps> Sync for Registration<T> {}

impl<T: FileOps> Registration<T> {
    /// Registers the control device (only one may exist).
    ///
    /// # Errors
    /// The errno of `misc_register`.
    pub(crate) fn new(ctx: T::Context) -> Result<Self> {
        let ctx = super::compat::into_foreign(ctx);
        // SAFETY: FOPS is 'static; `ctx` stays valid until deregistration.
        let r = kernel::error::to_result(unsafe {
            helpers::httpblk_misc_register(&FopsTable::<T>::FOPS, ctx)
        });
        if let Err(e) = r {
            // SAFETY: From into_foreign above; the device never became visible.
            drop(unsafe { T::Context::from_foreign(ctx) });
            return Err(e);
        }
        // INVARIANT: Registered above.
        Ok(Self {
            ctx,
            _t: PhantomData,
        })
    }
}

impl<T: FileOps> Drop for Registration<T> {
    fn drop(&mut self) {
        // SAFETY: By the invariant. After deregistration no new open can start; open files
        // pin the module, so none exists while the module unloads.
        unsafe {
            helpers::httpblk_misc_deregister();
            drop(T::Context::from_foreign(self.ctx));
        }
    }
}

/// # Safety
/// Called by the VFS through misc_open with a fresh file.
unsafe extern "C" fn open_callback<T: FileOps>(
    _inode: *mut bindings::inode,
    file: *mut bindings::file,
) -> c_int {
    if !capable_sys_admin() {
        return EPERM.to_errno();
    }
    // SAFETY: `misc_open` set `private_data` to our miscdevice.
    let ctx = unsafe { helpers::httpblk_misc_ctx(file) };
    if ctx.is_null() {
        return ENODEV.to_errno();
    }
    // SAFETY: The context lives as long as the registration, which outlives every open.
    let ctx = unsafe { T::Context::borrow(ctx) };
    match T::open(ctx) {
        Ok(state) => {
            // SAFETY: The file is ours until release.
            unsafe { (*file).private_data = super::compat::into_foreign(state) };
            0
        }
        Err(e) => e.to_errno(),
    }
}

/// # Safety
/// Called by the VFS once, when the last reference to the file goes.
unsafe extern "C" fn release_callback<T: FileOps>(
    _inode: *mut bindings::inode,
    file: *mut bindings::file,
) -> c_int {
    // SAFETY: Set by open_callback; release is the last user.
    let state = unsafe { T::File::from_foreign((*file).private_data) };
    T::release(state);
    0
}

/// # Safety
/// Called by the VFS on an open file.
unsafe extern "C" fn ioctl_callback<T: FileOps>(
    file: *mut bindings::file,
    cmd: c_uint,
    arg: c_ulong,
) -> c_long {
    // SAFETY: Set by open_callback; valid until release, which cannot run during this call.
    let state = unsafe { T::File::borrow((*file).private_data) };
    match T::ioctl(state, cmd, arg) {
        Ok(v) => v as c_long,
        Err(e) => e.to_errno() as c_long,
    }
}

/// # Safety
/// Called by the VFS on an open file with a VMA being set up.
unsafe extern "C" fn mmap_callback<T: FileOps>(
    file: *mut bindings::file,
    vma: *mut bindings::vm_area_struct,
) -> c_int {
    // SAFETY: As in ioctl_callback.
    let state = unsafe { T::File::borrow((*file).private_data) };
    match T::mmap(state, &Vma { vma }) {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}
