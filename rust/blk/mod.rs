// SPDX-License-Identifier: GPL-2.0
//! The driver-local blk-mq layer: what 6.12's `kernel::block::mq` lacks (request sector,
//! length and op, data copies, error completion, a timeout handler, per-disk queue data),
//! shaped like newer upstream (`Operations` with `QueueData`, a typed `Request`), plus the
//! memory-management hooks of the I/O path (`NoIo`, `Shrinker`).
//!
//! Everything unsafe about blk-mq lives in this module; the driver above it is safe Rust.

mod disk;
mod module_ref;
mod noio;
mod request;
mod shrinker;
pub(crate) mod sysfs;

pub(crate) use disk::{Disk, DiskParams};
pub(crate) use module_ref::ModuleRef;
pub(crate) use noio::NoIo;
pub(crate) use request::{Busy, Op, Request, TimedOut};
pub(crate) use shrinker::{Shrink, Shrinker};
pub(crate) use sysfs::disk_attrs;

use kernel::types::ForeignOwnable;

/// What a timeout handler did with its request.
pub(crate) enum TimeoutAction {
    /// The driver ended the request (or is ending it right now).
    Done,
    /// Check again after the timeout set with `TimedOut::set_timeout`.
    ResetTimer,
}

/// What a driver implements for its disks.
pub(crate) trait Operations: Sized + 'static {
    /// Data every request of a disk can reach (kept in `request_queue.queuedata`).
    type QueueData: ForeignOwnable + Send + Sync;

    /// Called for each request in process context (the tag set is `BLK_MQ_F_BLOCKING`, inside
    /// a `NoIo` scope): may sleep briefly, never for the network. The request is already
    /// started; the driver ends it now, keeps it and ends it later, or gives it back (`Busy`)
    /// for blk-mq to dispatch again shortly.
    fn queue_rq(
        data: <Self::QueueData as ForeignOwnable>::Borrowed<'_>,
        rq: Request,
    ) -> core::result::Result<(), Busy>;

    /// Called in process context (inside a `NoIo` scope) when a request the driver keeps has
    /// passed its deadline. The driver, which owns the `Request`, ends it or asks for more
    /// time; `rq` only identifies it.
    fn timeout(
        data: <Self::QueueData as ForeignOwnable>::Borrowed<'_>,
        rq: &TimedOut<'_>,
    ) -> TimeoutAction;

    /// Prints the sysfs attribute named `attr` (one of those given to `disk_attrs!`). May sleep.
    fn show(
        data: <Self::QueueData as ForeignOwnable>::Borrowed<'_>,
        attr: &[u8],
        out: &mut dyn core::fmt::Write,
    ) -> core::fmt::Result;
}
