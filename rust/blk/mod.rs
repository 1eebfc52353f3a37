// SPDX-License-Identifier: GPL-2.0
//! The driver-local blk-mq layer: what 6.12's `kernel::block::mq` lacks (request sector,
//! length and op, data copies, error completion, deferred completion on a workqueue, per-disk
//! queue data), shaped like newer upstream (`Operations` with `QueueData`, a typed `Request`).
//!
//! Everything unsafe about blk-mq lives in this module; the driver above it is safe Rust.

mod disk;
mod request;
pub(crate) mod sysfs;
mod workqueue;

pub(crate) use disk::{Disk, DiskParams};
pub(crate) use sysfs::disk_attrs;
pub(crate) use request::{Op, Request};
pub(crate) use workqueue::Workqueue;

use kernel::types::ForeignOwnable;

/// What a driver implements for its disks.
pub(crate) trait Operations: Sized + 'static {
    /// Data every request of a disk can reach (kept in `request_queue.queuedata`).
    type QueueData: ForeignOwnable + Send + Sync;

    /// Called for each request, in atomic context: must not sleep. The request is already
    /// started; the driver ends it or defers it to a workqueue.
    fn queue_rq(data: <Self::QueueData as ForeignOwnable>::Borrowed<'_>, rq: Request);

    /// Called in process context for a request deferred with `Request::defer`.
    fn work(data: <Self::QueueData as ForeignOwnable>::Borrowed<'_>, rq: Request);

    /// Prints the sysfs attribute `attr` (one of those given to `disk_attrs!`). May sleep.
    fn show(
        data: <Self::QueueData as ForeignOwnable>::Borrowed<'_>,
        attr: &kernel::str::CStr,
        out: &mut dyn core::fmt::Write,
    ) -> core::fmt::Result;
}
