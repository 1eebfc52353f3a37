// SPDX-License-Identifier: GPL-2.0
//! Memory shared with the helper: zeroed vmalloc pages that the helper maps with mmap().
//!
//! The helper can change this memory at any time, so the kernel never forms a Rust reference
//! to it: it reads and writes through raw pointers, copies data out before checking it, and
//! treats every value it reads as untrusted.

use core::ptr::NonNull;
use core::sync::atomic::AtomicU32;

use kernel::bindings;
use kernel::prelude::*;

use crate::sys::helpers;

/// An mmap-able, page-aligned, zero-initialised region.
///
/// # Invariants
/// `ptr` points to `len` bytes from `httpblk_vmalloc_user`, freed only in `drop`.
pub(crate) struct SharedRegion {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: The region is plain memory; all access goes through raw pointers or atomics.
unsafe impl Send for SharedRegion {}
// SAFETY: As above; concurrent access is what the ring protocol is for.
unsafe impl Sync for SharedRegion {}

impl SharedRegion {
    /// Allocates `len` bytes (a multiple of the page size).
    ///
    /// # Errors
    /// `ENOMEM` when the allocation fails.
    pub(crate) fn new(len: usize) -> Result<Self> {
        // SAFETY: FFI call without preconditions.
        let p = unsafe { helpers::httpblk_vmalloc_user(len as kernel::ffi::c_ulong) };
        let ptr = NonNull::new(p.cast::<u8>()).ok_or(ENOMEM)?;
        // INVARIANT: `ptr` came from vmalloc_user(len).
        Ok(Self { ptr, len })
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Pointer to `len` bytes at `offset`.
    ///
    /// # Errors
    /// `EINVAL` when the range is not inside the region.
    fn at(&self, offset: usize, len: usize) -> Result<*mut u8> {
        match offset.checked_add(len) {
            // SAFETY: In bounds, checked on this line.
            Some(end) if end <= self.len => Ok(unsafe { self.ptr.as_ptr().add(offset) }),
            _ => Err(EINVAL),
        }
    }

    /// A shared ring index at `offset`.
    ///
    /// # Errors
    /// `EINVAL` when `offset` is not 4-byte aligned or not inside the region.
    pub(crate) fn index(&self, offset: usize) -> Result<&AtomicU32> {
        if offset % 4 != 0 {
            return Err(EINVAL);
        }
        let p = self.at(offset, 4)?;
        // SAFETY: Aligned (the region is page-aligned), in bounds and alive as long as
        // `self`; AtomicU32 tolerates concurrent writers, including the helper.
        Ok(unsafe { &*p.cast::<AtomicU32>() })
    }

    /// Reads a `T` at `offset`, which the helper may be writing meanwhile.
    ///
    /// # Errors
    /// `EINVAL` when the range is not inside the region.
    pub(crate) fn read<T: Copy + super::compat::FromBytes>(&self, offset: usize) -> Result<T> {
        let p = self.at(offset, core::mem::size_of::<T>())?;
        if p as usize % core::mem::align_of::<T>() != 0 {
            return Err(EINVAL);
        }
        // SAFETY: In bounds and aligned (checked above); any bit pattern is a valid `T`.
        Ok(unsafe { core::ptr::read_volatile(p.cast::<T>()) })
    }

    /// Writes a `T` at `offset`.
    ///
    /// # Errors
    /// `EINVAL` when the range is not inside the region.
    pub(crate) fn write<T: Copy>(&self, offset: usize, value: T) -> Result {
        let p = self.at(offset, core::mem::size_of::<T>())?;
        if p as usize % core::mem::align_of::<T>() != 0 {
            return Err(EINVAL);
        }
        // SAFETY: In bounds and aligned; the region is writable kernel memory.
        unsafe { core::ptr::write_volatile(p.cast::<T>(), value) };
        Ok(())
    }

    /// Copies `dst.len()` bytes at `offset` into kernel memory.
    ///
    /// The helper may write the range during the copy (a hostile or buggy one): each byte
    /// copied is then old or new, and the caller checks the copy, never the source. The copy
    /// is the kernel's `memcpy` (`httpblk_copy_shared`), as C code copies memory it shares
    /// with userspace, not a Rust copy, for which a concurrent write would be a data race.
    ///
    /// # Errors
    /// `EINVAL` when the range is not inside the region.
    pub(crate) fn copy_out(&self, offset: usize, dst: &mut [u8]) -> Result {
        let p = self.at(offset, dst.len())?;
        // SAFETY: The source range is inside the region (`at`), which lives as long as
        // `self`; `dst` is a distinct kernel buffer of `dst.len()` bytes.
        unsafe {
            helpers::httpblk_copy_shared(dst.as_mut_ptr().cast(), p.cast_const().cast(), dst.len())
        };
        Ok(())
    }

    /// Maps the region into `vma`, read-only for the helper when `read_only`.
    ///
    /// # Errors
    /// `EINVAL` when the mapping is larger than the region, `EPERM` for a writable mapping
    /// of a read-only region.
    ///
    /// # Safety
    /// `vma` must be the VMA of an mmap() call in progress.
    pub(crate) unsafe fn map(&self, vma: *mut bindings::vm_area_struct, read_only: bool) -> Result {
        // SAFETY: The caller passes a live VMA.
        let (start, end) = unsafe {
            let range = &(*vma).__bindgen_anon_1.__bindgen_anon_1;
            (range.vm_start, range.vm_end)
        };
        if end.saturating_sub(start) > self.len {
            return Err(EINVAL);
        }
        // SAFETY: Live VMA, see above.
        kernel::error::to_result(unsafe { helpers::httpblk_vma_prepare(vma, read_only) })?;
        // SAFETY: `ptr` is a vmalloc_user area of `len` bytes; the size was checked.
        kernel::error::to_result(unsafe {
            helpers::remap_vmalloc_range(vma, self.ptr.as_ptr().cast(), 0)
        })
    }
}

impl Drop for SharedRegion {
    fn drop(&mut self) {
        // SAFETY: By the invariant; pages still mapped by the helper keep their own references.
        unsafe { helpers::vfree(self.ptr.as_ptr().cast()) };
    }
}
