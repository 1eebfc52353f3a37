// SPDX-License-Identifier: GPL-2.0
//! An owned workqueue on which deferred requests run (one work item per request, so that many
//! requests can wait for the network at once).

use core::ptr::NonNull;

use kernel::bindings;
use kernel::prelude::*;

/// # Invariants
/// `wq` is a live workqueue from `alloc_workqueue`, destroyed only in `drop`.
pub(crate) struct Workqueue {
    wq: NonNull<bindings::workqueue_struct>,
}

// SAFETY: workqueues are used from any context by design.
unsafe impl Send for Workqueue {}
// SAFETY: as above.
unsafe impl Sync for Workqueue {}

impl Workqueue {
    /// An unbound, reclaim-safe workqueue named `name`.
    ///
    /// # Errors
    /// `ENOMEM`.
    pub(crate) fn new(name: &'static CStr) -> Result<Self> {
        // SAFETY: `name` is a NUL-terminated static string; "%s" consumes it.
        let wq = unsafe {
            bindings::alloc_workqueue(
                c"%s".as_ptr().cast(),
                bindings::wq_flags_WQ_UNBOUND | bindings::wq_flags_WQ_MEM_RECLAIM,
                0,
                name.as_char_ptr(),
            )
        };
        // INVARIANT: checked non-null, from alloc_workqueue.
        Ok(Self { wq: NonNull::new(wq).ok_or(ENOMEM)? })
    }

    pub(super) fn as_ptr(&self) -> *mut bindings::workqueue_struct {
        self.wq.as_ptr()
    }
}

impl Drop for Workqueue {
    fn drop(&mut self) {
        // SAFETY: by the invariant; destroy_workqueue drains pending work first.
        unsafe { bindings::destroy_workqueue(self.wq.as_ptr()) };
    }
}
