// SPDX-License-Identifier: GPL-2.0
//! The jiffies clock, for I/O deadlines.

use kernel::bindings;

/// The current jiffies count.
pub(crate) fn jiffies() -> u64 {
    // SAFETY: `jiffies` is always readable; a volatile read sees the current tick.
    unsafe { core::ptr::read_volatile(&raw const bindings::jiffies) as u64 }
}

/// Milliseconds to jiffies.
pub(crate) fn ms_to_jiffies(ms: u32) -> u64 {
    kernel::time::msecs_to_jiffies(ms) as u64
}
