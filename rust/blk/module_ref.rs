// SPDX-License-Identifier: GPL-2.0
//! A reference on this module (`try_module_get`/`module_put`), for objects that outlive every
//! open file of the module and must keep it loaded.

use kernel::bindings;
use kernel::prelude::*;

use crate::sys::helpers;

/// Holds the module loaded while alive.
///
/// # Invariants
/// A reference taken with `try_module_get` on this module, put only in `drop`.
pub(crate) struct ModuleRef(());

impl ModuleRef {
    /// Takes a reference.
    ///
    /// # Errors
    /// `ENODEV` when the module is being unloaded.
    pub(crate) fn get() -> Result<Self> {
        // SAFETY: `__this_module` is this module, alive while its code runs.
        if unsafe { helpers::httpblk_module_get(&raw mut bindings::__this_module) } {
            // INVARIANT: Taken above.
            Ok(ModuleRef(()))
        } else {
            Err(ENODEV)
        }
    }
}

impl Drop for ModuleRef {
    fn drop(&mut self) {
        // SAFETY: By the invariant, a reference we hold.
        unsafe { bindings::module_put(&raw mut bindings::__this_module) };
    }
}
