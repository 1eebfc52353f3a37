// SPDX-License-Identifier: GPL-2.0
//! Clocks: jiffies for I/O deadlines, monotonic nanoseconds for latency statistics.

use kernel::bindings;

/// The current jiffies count.
pub(crate) fn jiffies() -> u64 {
    // SAFETY: `jiffies` is always readable; a volatile read sees the current tick.
    unsafe { core::ptr::read_volatile(&raw const bindings::jiffies) as u64 }
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
