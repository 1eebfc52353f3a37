// SPDX-License-Identifier: GPL-2.0
//! A `GFP_NOIO` allocation scope (`memalloc_noio_save`): 6.12's Rust has no `GFP_NOIO` flag,
//! so the I/O path marks its whole extent instead, as loop's worker does. Inside the scope
//! every allocation behaves as `GFP_NOIO`: reclaim never writes back through a block device,
//! which could be waiting on this very read.

use kernel::ffi::c_uint;

use crate::sys::helpers;

/// Ends the scope it began when dropped. Not `Send`: the scope belongs to the task.
pub(crate) struct NoIo {
    saved: c_uint,
    _not_send: core::marker::PhantomData<*mut ()>,
}

impl NoIo {
    /// Begins a scope; scopes nest.
    pub(crate) fn begin() -> Self {
        // SAFETY: FFI call without preconditions; the flags go back in `drop`, on this task.
        let saved = unsafe { helpers::httpblk_noio_save() };
        Self {
            saved,
            _not_send: core::marker::PhantomData,
        }
    }
}

impl Drop for NoIo {
    fn drop(&mut self) {
        // SAFETY: `saved` came from the matching save on this task (the type is not Send).
        unsafe { helpers::httpblk_noio_restore(self.saved) };
    }
}
