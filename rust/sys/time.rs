// SPDX-License-Identifier: GPL-2.0
//! Clocks: jiffies for I/O deadlines, monotonic nanoseconds for latency statistics.

use kernel::bindings;

/// The current jiffies count.
pub(crate) fn jiffies() -> u64 {
    // SAFETY: `jiffies` is always readable; a volatile read sees the current tick.
    unsafe { core::ptr::read_volatile(&raw const bindings::jiffies) as u64 }
}

/// Whether jiffies value `a` is after `b` (`time_after`: correct across wrap-around).
pub(crate) fn after(a: u64, b: u64) -> bool {
    (b.wrapping_sub(a) as i64) < 0
}

/// Monotonic nanoseconds, for latency figures.
pub(crate) fn now_ns() -> u64 {
    // SAFETY: FFI call without preconditions.
    unsafe { bindings::ktime_get() as u64 }
}

/// Milliseconds to jiffies.
pub(crate) fn ms_to_jiffies(ms: u32) -> u64 {
    kernel::time::msecs_to_jiffies(ms) as u64
}

/// Jiffies to milliseconds.
pub(crate) fn jiffies_to_ms(j: u64) -> u64 {
    // SAFETY: FFI call without preconditions.
    u64::from(unsafe { super::helpers::httpblk_jiffies_to_msecs(j as kernel::ffi::c_ulong) })
}
