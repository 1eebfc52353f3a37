// SPDX-License-Identifier: GPL-2.0
//! A device's figures: counters kept on the I/O path (relaxed atomics, never a lock). The
//! sysfs files that show them are in `attrs`.
#![forbid(unsafe_code)]

use core::sync::atomic::AtomicU64;

/// Counters for status and sysfs.
#[derive(Default)]
pub(crate) struct Stats {
    pub(crate) reads: AtomicU64,
    pub(crate) read_bytes: AtomicU64,
    pub(crate) cache_hits: AtomicU64,
    pub(crate) cache_misses: AtomicU64,
    pub(crate) fetches: AtomicU64,
    pub(crate) fetched_bytes: AtomicU64,
    pub(crate) verify_failures: AtomicU64,
    pub(crate) decompressed_bytes: AtomicU64,
    pub(crate) decompress_failures: AtomicU64,
    pub(crate) fetch_errors: AtomicU64,
    /// Reads failed by the timeout handler.
    pub(crate) timeouts: AtomicU64,
    pub(crate) protocol_errors: AtomicU64,
    pub(crate) io_errors: AtomicU64,
    /// Writes, flushes and discards refused (the device is read-only; md must never repair).
    pub(crate) writes_refused: AtomicU64,
    pub(crate) readahead_fetches: AtomicU64,
    /// Most readahead fetches in flight at once (bounded by `readahead_inflight`).
    pub(crate) readahead_inflight_max: AtomicU64,
    /// Misses that joined another fetch of the same content instead of fetching.
    pub(crate) joined_fetches: AtomicU64,
    /// Sum and maximum of the time from first submission to verified block, over `fetch_ok`.
    pub(crate) fetch_ok: AtomicU64,
    pub(crate) fetch_ns_total: AtomicU64,
    pub(crate) fetch_ns_max: AtomicU64,
}
