// SPDX-License-Identifier: GPL-2.0
//! A registered memory shrinker (6.12's `shrinker_alloc`/`shrinker_register`/`shrinker_free`),
//! so that memory pressure can reclaim what a driver holds.

use core::marker::PhantomData;
use core::ptr::NonNull;

use kernel::bindings;
use kernel::ffi::{c_int, c_ulong};
use kernel::prelude::*;
use kernel::sync::{Arc, ArcBorrow};
use kernel::types::ForeignOwnable;

use crate::sys::helpers;

/// What a shrinkable object offers reclaim. Both calls run in reclaim context: they must not
/// sleep on anything an allocation could be waiting for (no mutex that is held while
/// allocating), and must not allocate.
pub(crate) trait Shrink: Send + Sync + 'static {
    /// Objects that could be freed now.
    fn count(&self) -> usize;
    /// Frees up to `nr` objects; returns how many were freed, or `None` when no progress
    /// can be made now.
    fn scan(&self, nr: usize) -> Option<usize>;
}

/// # Invariants
/// `shrinker` is registered with `private_data` from `Arc::<T>::into_foreign`; both are
/// released only in `drop`.
pub(crate) struct Shrinker<T: Shrink> {
    shrinker: NonNull<bindings::shrinker>,
    _t: PhantomData<Arc<T>>,
}

// SAFETY: The shrinker is only touched in `new` and `drop`; `T` is Send + Sync.
unsafe impl<T: Shrink> Send for Shrinker<T> {}
// SAFETY: As above.
unsafe impl<T: Shrink> Sync for Shrinker<T> {}

impl<T: Shrink> Shrinker<T> {
    /// Registers a shrinker named `name` (shown in debugfs) for `target`.
    ///
    /// # Errors
    /// `ENOMEM`.
    pub(crate) fn new(name: &'static CStr, target: Arc<T>) -> Result<Self> {
        // SAFETY: `name` is NUL-terminated and static.
        let s = NonNull::new(unsafe { helpers::httpblk_shrinker_alloc(name.as_char_ptr()) })
            .ok_or(ENOMEM)?;
        // SAFETY: A fresh, unregistered shrinker that we own.
        unsafe {
            let p = s.as_ptr();
            (*p).count_objects = Some(count_callback::<T>);
            (*p).scan_objects = Some(scan_callback::<T>);
            (*p).seeks = bindings::DEFAULT_SEEKS as c_int;
            (*p).private_data = crate::sys::compat::into_foreign(target);
            bindings::shrinker_register(p);
        }
        // INVARIANT: Registered above with `private_data` from into_foreign.
        Ok(Self {
            shrinker: s,
            _t: PhantomData,
        })
    }
}

impl<T: Shrink> Drop for Shrinker<T> {
    fn drop(&mut self) {
        // SAFETY: By the invariant. `shrinker_free` waits until no callback runs, so the
        // private data is unused afterwards and can be reclaimed.
        unsafe {
            let data = (*self.shrinker.as_ptr()).private_data;
            bindings::shrinker_free(self.shrinker.as_ptr());
            drop(<Arc<T> as ForeignOwnable>::from_foreign(data));
        }
    }
}

/// # Safety
/// Called by reclaim with a registered shrinker of ours.
unsafe extern "C" fn count_callback<T: Shrink>(
    s: *mut bindings::shrinker,
    _sc: *mut bindings::shrink_control,
) -> c_ulong {
    // SAFETY: `private_data` came from into_foreign and lives until `shrinker_free`, which
    // waits for this call.
    let t: ArcBorrow<'_, T> = unsafe { <Arc<T> as ForeignOwnable>::borrow((*s).private_data) };
    t.count() as c_ulong
}

/// # Safety
/// Called by reclaim with a registered shrinker of ours and a valid shrink control.
unsafe extern "C" fn scan_callback<T: Shrink>(
    s: *mut bindings::shrinker,
    sc: *mut bindings::shrink_control,
) -> c_ulong {
    // SAFETY: As in `count_callback`; `sc` is valid for this call.
    let (t, nr): (ArcBorrow<'_, T>, usize) = unsafe {
        (
            <Arc<T> as ForeignOwnable>::borrow((*s).private_data),
            (*sc).nr_to_scan,
        )
    };
    match t.scan(nr) {
        Some(freed) => freed as c_ulong,
        None => !0, // SHRINK_STOP
    }
}
