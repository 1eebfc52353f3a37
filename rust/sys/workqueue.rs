// SPDX-License-Identifier: GPL-2.0
//! The module's tick: a delayed work item that runs every `PERIOD` while any device keeps
//! reads or has no helper, and calls `Ticked::tick` on what `Tick::start` was given. It gives
//! read deadlines a precision of `PERIOD`: blk-mq's own timer fires about a second late, and
//! cannot be re-armed from outside its timeout handler when a device's state changes (its
//! helper goes or comes back).
//!
//! Context: `tick` runs in process context on a reclaim-safe workqueue, inside a `NoIo`
//! scope.

use core::marker::PhantomData;
use core::sync::atomic::{AtomicPtr, Ordering};

use kernel::ffi::c_ulong;
use kernel::prelude::*;
use kernel::sync::{Arc, ArcBorrow};
use kernel::types::ForeignOwnable;

use crate::blk::NoIo;
use crate::sys::helpers;
use crate::sys::time;

/// What the tick drives.
pub(crate) trait Ticked: Send + Sync + 'static {
    /// Enforces deadlines; returns whether anything still needs the tick.
    fn tick(&self) -> bool;
}

/// How often the tick runs while needed.
fn period() -> u64 {
    time::ms_to_jiffies(100)
}

/// The object the running tick acts on (from `Arc::into_foreign`); null when stopped.
static TARGET: AtomicPtr<kernel::ffi::c_void> = AtomicPtr::new(core::ptr::null_mut());

/// The running tick; `Drop` stops it.
///
/// # Invariants
/// `TARGET` holds an `Arc<T>` from `into_foreign` and the C tick is set up, until `drop`.
pub(crate) struct Tick<T: Ticked>(PhantomData<Arc<T>>);

impl<T: Ticked> Tick<T> {
    /// Sets the tick up for `target` (only one tick exists). It runs once `ensure` is called.
    ///
    /// # Errors
    /// `ENOMEM`.
    pub(crate) fn start(target: Arc<T>) -> Result<Self> {
        let p = super::compat::into_foreign(target);
        TARGET.store(p, Ordering::Release);
        // SAFETY: `callback::<T>` reads `TARGET`, set above to an `Arc<T>`.
        let r = unsafe { helpers::httpblk_tick_setup(Some(callback::<T>)) };
        if let Err(e) = kernel::error::to_result(r) {
            TARGET.store(core::ptr::null_mut(), Ordering::Release);
            // SAFETY: From `into_foreign` above; no tick was set up to use it.
            drop(unsafe { Arc::<T>::from_foreign(p) });
            return Err(e);
        }
        // INVARIANT: Target stored and tick set up above.
        Ok(Tick(PhantomData))
    }
}

/// Makes sure the tick runs within `PERIOD` (it keeps running while `Ticked::tick` says so).
/// Only devices call it, and only while the `Tick` lives: the module makes its `Tick` before
/// any device can exist and drops it at unload, when none is left (an attached device, and an
/// open control file that could add one, keep the module loaded).
pub(crate) fn ensure() {
    if !TARGET.load(Ordering::Acquire).is_null() {
        // SAFETY: `TARGET` is set while the tick is set up (`Tick` invariant), and the caller
        // is a device, so the `Tick` is not being dropped meanwhile (see above): seeing
        // `TARGET` set, the workqueue is alive for this call.
        unsafe { helpers::httpblk_tick_arm(period() as c_ulong) };
    }
}

impl<T: Ticked> Drop for Tick<T> {
    fn drop(&mut self) {
        // SAFETY: By the invariant the tick is set up; after teardown no callback runs.
        unsafe { helpers::httpblk_tick_teardown() };
        let p = TARGET.swap(core::ptr::null_mut(), Ordering::AcqRel);
        if !p.is_null() {
            // SAFETY: From `into_foreign` in `start`; no callback uses it any more.
            drop(unsafe { Arc::<T>::from_foreign(p) });
        }
    }
}

/// # Safety
/// Called by the tick's work item only, while `TARGET` holds an `Arc<T>`.
unsafe extern "C" fn callback<T: Ticked>() {
    let p = TARGET.load(Ordering::Acquire);
    if p.is_null() {
        return;
    }
    // SAFETY: Set by `Tick::start`; `Tick::drop` clears it only after the work item stopped.
    let target: ArcBorrow<'_, T> = unsafe { Arc::<T>::borrow(p) };
    let _noio = NoIo::begin();
    if target.tick() {
        // SAFETY: The tick is set up (we run in it).
        unsafe { helpers::httpblk_tick_arm(period() as c_ulong) };
    }
}
