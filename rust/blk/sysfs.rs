// SPDX-License-Identifier: GPL-2.0
//! Read-only sysfs attributes of a disk, in a named group: /sys/block/NAME/GROUP/ATTR.
//!
//! Sysfs keeps pointers to its tables, so `disk_attrs!` builds them in static storage at
//! compile time. Each file's `show` borrows the disk's queue data and lets the driver's
//! `Operations::show` print the attribute by name. `del_gendisk` removes the files and waits
//! for running `show` calls before `Disk` reclaims the queue data.

use core::fmt::{self, Write};

use kernel::bindings;
use kernel::ffi::c_char;
use kernel::prelude::*;
use kernel::str::CStr;
use kernel::types::ForeignOwnable;

use super::Operations;
use crate::sys::helpers;

/// One attribute file.
#[repr(transparent)]
pub(crate) struct Attr(bindings::device_attribute);
// SAFETY: Immutable after compile-time initialisation; sysfs only reads it.
unsafe impl Sync for Attr {}

impl Attr {
    /// A table of read-only (0444) attributes named `names`, printed by `T::show`.
    pub(crate) const fn table<T: Operations, const N: usize>(names: &[&'static CStr]) -> [Attr; N] {
        assert!(names.len() == N);
        // SAFETY: All-zero is a valid device_attribute (no name, no callbacks).
        let mut out: [Attr; N] = unsafe { core::mem::zeroed() };
        let mut i = 0;
        while i < N {
            out[i].0.attr.name = crate::sys::compat::cstr_ptr(names[i]);
            out[i].0.attr.mode = 0o444;
            // 7.x's sysfs.h puts `show` in a union with `show_const`.
            #[cfg(httpblk_sysfs_const)]
            {
                out[i].0.__bindgen_anon_1.show = Some(show_callback::<T>);
            }
            #[cfg(not(httpblk_sysfs_const))]
            {
                out[i].0.show = Some(show_callback::<T>);
            }
            i += 1;
        }
        out
    }
}

/// The NULL-terminated pointer array of an attribute table (`M` = table length + 1).
pub(crate) struct AttrPtrs<const M: usize>([*mut bindings::attribute; M]);
// SAFETY: As for `Attr`.
unsafe impl<const M: usize> Sync for AttrPtrs<M> {}

impl<const M: usize> AttrPtrs<M> {
    pub(crate) const fn new<const N: usize>(attrs: &'static [Attr; N]) -> Self {
        assert!(M == N + 1);
        let mut ptrs = [core::ptr::null_mut(); M];
        let mut i = 0;
        while i < N {
            ptrs[i] = (&raw const attrs[i].0.attr).cast_mut();
            i += 1;
        }
        Self(ptrs)
    }
}

/// A named attribute group.
pub(crate) struct Group(bindings::attribute_group);
// SAFETY: As for `Attr`.
unsafe impl Sync for Group {}

impl Group {
    pub(crate) const fn new<const M: usize>(
        name: &'static CStr,
        attrs: &'static AttrPtrs<M>,
    ) -> Self {
        // SAFETY: All-zero is a valid attribute_group.
        let mut g: bindings::attribute_group = unsafe { core::mem::zeroed() };
        g.name = crate::sys::compat::cstr_ptr(name);
        // 7.x's sysfs.h puts `attrs` in a union with `attrs_const`.
        #[cfg(httpblk_sysfs_const)]
        {
            g.__bindgen_anon_2.attrs = attrs.0.as_ptr().cast_mut();
        }
        #[cfg(not(httpblk_sysfs_const))]
        {
            g.attrs = attrs.0.as_ptr().cast_mut();
        }
        Self(g)
    }
}

/// The NULL-terminated group list `device_add_disk` takes.
pub(crate) struct Groups([*const bindings::attribute_group; 2]);
// SAFETY: As for `Attr`.
unsafe impl Sync for Groups {}

impl Groups {
    pub(crate) const fn new(group: &'static Group) -> Self {
        Self([&raw const group.0, core::ptr::null()])
    }

    pub(crate) fn as_ptr(&'static self) -> *mut *const bindings::attribute_group {
        self.0.as_ptr().cast_mut()
    }
}

/// Declares the disk attributes of an `Operations` type:
/// `disk_attrs!(STATIC, "group", Type, ["attr1", "attr2", ...]);`
macro_rules! disk_attrs {
    ($groups:ident, $name:literal, $ops:ty, [$($attr:literal),+ $(,)?]) => {
        static $groups: $crate::blk::sysfs::Groups = {
            use $crate::blk::sysfs::{Attr, AttrPtrs, Group, Groups};
            const NAMES: &[&kernel::str::CStr] = &[$(kernel::c_str!($attr)),+];
            const N: usize = NAMES.len();
            static ATTRS: [Attr; N] = Attr::table::<$ops, N>(NAMES);
            static PTRS: AttrPtrs<{ N + 1 }> = AttrPtrs::new(&ATTRS);
            static GROUP: Group = Group::new(kernel::c_str!($name), &PTRS);
            Groups::new(&GROUP)
        };
    };
}
pub(crate) use disk_attrs;

/// Formats into the page sysfs hands to `show`, truncating at its end.
struct PageWriter<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl Write for PageWriter<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let n = s.len().min(self.buf.len() - self.pos);
        self.buf[self.pos..self.pos + n].copy_from_slice(&s.as_bytes()[..n]);
        self.pos += n;
        Ok(())
    }
}

/// # Safety
/// Called by sysfs for an attribute of `Attr::table::<T>` on a disk made by `Disk::<T>::new`,
/// with `buf` a page of memory.
unsafe extern "C" fn show_callback<T: Operations>(
    dev: *mut bindings::device,
    attr: *mut bindings::device_attribute,
    buf: *mut c_char,
) -> isize {
    // SAFETY: `dev` is the disk's device; its queue data came from `T::QueueData::into_foreign`
    // and outlives its sysfs files (see the module comment).
    let data = unsafe { T::QueueData::borrow(helpers::httpblk_dev_queuedata(dev)) };
    // SAFETY: Attribute names are NUL-terminated static strings (`Attr::table`).
    let name = unsafe { CStr::from_char_ptr((*attr).attr.name) };
    // SAFETY: Sysfs passes a buffer of one page. The writer gets one byte less: sysfs warns
    // about a `show` that returns a whole page.
    let page =
        unsafe { core::slice::from_raw_parts_mut(buf.cast::<u8>(), bindings::PAGE_SIZE - 1) };
    let mut w = PageWriter { buf: page, pos: 0 };
    match T::show(data, crate::sys::compat::cstr_bytes(name), &mut w) {
        Ok(()) => w.pos as isize,
        Err(_) => EINVAL.to_errno() as isize,
    }
}
