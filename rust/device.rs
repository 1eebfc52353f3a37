// SPDX-License-Identifier: GPL-2.0
//! One attached image: its index, its fetch ring with the helper, its state, and its
//! lifecycle. The read path is in `read`, fetches and their slots in `fetch`, the ring
//! protocol in `ring`, block checks in `verify`, figures in `stats` and their sysfs files in
//! `attrs`.
//!
//! Nothing waits for the network in a thread of its own: a read that misses is kept in the
//! device's state and ended from whatever ends its last missing block (a completion from the
//! helper, the end of another device's fetch it joined, the device's death) or by blk-mq's
//! timeout handler.
//!
//! Locks: `state` (a mutex) may be held while taking the pending table's mutex or the cache's
//! spinlock, never the reverse; no other device's `state` is taken under it (work for other
//! devices is collected in a `Deferred` and done after it is dropped).
#![forbid(unsafe_code)]

use core::num::NonZeroU32;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use kernel::prelude::*;
use kernel::rbtree::RBTree;
use kernel::sync::{Arc, ArcBorrow, CondVar, Mutex};
use kernel::{new_condvar, new_mutex};

use crate::blk::{self, Request, TimedOut, TimeoutAction};
use crate::cache::{Cache, Key};
use crate::fetch::{Deferred, Joiner, State};
use crate::index::Index;
use crate::pending::Pending;
use crate::ring::{Regions, RingState};
use crate::stats::Stats;
use crate::sys::decompress;
use crate::sys::shash::Hasher;
use crate::sys::time;
use crate::uapi::{self, KernelHeader};

/// Things every device shares.
pub(crate) struct Shared {
    pub(crate) cache: Arc<Cache>,
    /// Blocks being fetched by any device.
    pub(crate) pending: Arc<Pending<Joiner>>,
    pub(crate) codecs: decompress::Pool,
}

/// Settings of a new device, validated by the caller.
pub(crate) struct Params {
    pub(crate) nr_slots: u32,
    pub(crate) io_timeout_ms: u32,
    pub(crate) recovery_timeout_ms: u32,
    /// Remove the device when its helper's file closes, instead of waiting for a new helper.
    pub(crate) remove_on_close: bool,
    /// The source URL, NUL-terminated (for sysfs and status).
    pub(crate) url: [u8; uapi::URL_LEN],
}

#[pin_data]
pub(crate) struct Device {
    pub(crate) id: u32,
    pub(crate) index: Index,
    pub(crate) index_sha256: [u8; 32],
    pub(crate) url: [u8; uapi::URL_LEN],
    pub(crate) hasher: Hasher,
    /// Ring size; non-zero so that `% nr_slots` has no panic path.
    pub(crate) nr_slots: NonZeroU32,
    pub(crate) slot_size: usize,
    /// The I/O timeout in jiffies and as configured.
    pub(crate) io_timeout: u64,
    pub(crate) io_timeout_ms: u32,
    /// How long reads that miss wait for a new helper once the device has none.
    pub(crate) recovery_timeout: u64,
    pub(crate) recovery_timeout_ms: u32,
    pub(crate) remove_on_close: bool,
    /// The block after the last one read, to spot sequential readers for readahead.
    pub(crate) last_read_end: AtomicU64,
    /// The last read continued the one before it: readahead follows the reader.
    pub(crate) sequential: AtomicBool,
    /// The last block readahead has looked at in the current run of sequential reads.
    pub(crate) ahead_checked: AtomicU64,
    /// Readahead stopped at `readahead_inflight`: reads skip it, and the device lock, until a
    /// fetch ends (set and cleared under the state lock).
    pub(crate) readahead_full: AtomicBool,
    dead: AtomicBool,
    pub(crate) started: AtomicBool,
    pub(crate) shared: Arc<Shared>,
    pub(crate) stats: Stats,
    #[pin]
    pub(crate) state: Mutex<State>,
    /// Signalled when the kernel posts a submission or the device dies (the helper waits on
    /// it in `IOC_WAIT`).
    #[pin]
    pub(crate) submitted: CondVar,
}

impl Device {
    /// Creates a device for `index` with its ring.
    ///
    /// # Errors
    /// `ENOMEM`, `EINVAL` for zero slots, or the hasher's error.
    pub(crate) fn new(
        id: u32,
        index: Index,
        index_sha256: [u8; 32],
        p: &Params,
        shared: Arc<Shared>,
    ) -> Result<Arc<Self>> {
        let nr_slots = NonZeroU32::new(p.nr_slots).ok_or(EINVAL)?;
        let hasher = Hasher::new(index.hash_id)?;
        let regions = Regions::new(p.nr_slots, index.block_shift)?;
        let mut slots = KVec::with_capacity(p.nr_slots as usize, GFP_KERNEL)?;
        for _ in 0..p.nr_slots {
            slots.push(None, GFP_KERNEL)?;
        }
        Arc::pin_init(
            try_pin_init!(Device {
                id,
                slot_size: uapi::slot_size(index.block_shift),
                index,
                index_sha256,
                url: p.url,
                last_read_end: AtomicU64::new(u64::MAX),
                sequential: AtomicBool::new(false),
                ahead_checked: AtomicU64::new(0),
                readahead_full: AtomicBool::new(false),
                hasher,
                nr_slots,
                io_timeout: time::ms_to_jiffies(p.io_timeout_ms),
                io_timeout_ms: p.io_timeout_ms,
                recovery_timeout: time::ms_to_jiffies(p.recovery_timeout_ms),
                recovery_timeout_ms: p.recovery_timeout_ms,
                remove_on_close: p.remove_on_close,
                dead: AtomicBool::new(false),
                started: AtomicBool::new(false),
                shared,
                stats: Stats::default(),
                state <- new_mutex!(
                    State {
                        slots,
                        fetches: RBTree::new(),
                        queue: RBTree::new(),
                        next_ticket: 0,
                        waiting: RBTree::new(),
                        ring: RingState {
                            regions: Some(regions),
                            sq_tail: 0,
                            cq_head: 0,
                            next_seq: 1,
                            orphaned_since: None,
                        },
                    },
                    "httpblk:device"
                ),
                submitted <- new_condvar!("httpblk:submitted"),
            }),
            GFP_KERNEL,
        )
    }

    pub(crate) fn is_dead(&self) -> bool {
        self.dead.load(Ordering::Acquire)
    }

    pub(crate) fn capacity_sectors(&self) -> u64 {
        self.index.image_size / 512
    }

    /// The cache key of block `b`; `None` for an all-zero block (never fetched) or a block
    /// past the end.
    pub(crate) fn key(&self, b: u64) -> Option<Key> {
        let e = self.index.entry(b)?;
        (e.stored_len != 0).then(|| {
            Key::new(
                self.index.hash_id,
                self.index.raw_len(b),
                e.digest,
                &self.index_sha256,
            )
        })
    }

    /// Fails every fetch, every waiting read and every future read; releases every claim in
    /// the pending table (so other devices waiting on them fetch for themselves); tells the
    /// helper to stop. Idempotent. Sleeps.
    pub(crate) fn kill(&self) {
        let mut d = Deferred::new();
        {
            let mut st = self.state.lock();
            // Set under the lock: a read that sees the device alive under the lock is kept
            // before this sweep, and one that comes after sees it dead.
            if self.dead.swap(true, Ordering::AcqRel) {
                return;
            }
            let flag = st
                .ring
                .regions
                .as_ref()
                .map(|r| r.kernel.index(core::mem::offset_of!(KernelHeader, dead)));
            if let Some(Ok(flag)) = flag {
                flag.store(1, Ordering::Release);
            }
            st.fail_everything(&mut d);
        }
        self.flush(d);
        self.submitted.notify_all();
    }

    /// The current helper's ring, if the device has a helper.
    pub(crate) fn regions(&self) -> Option<Arc<Regions>> {
        self.state.lock().ring.regions.clone()
    }

    /// Length of the helper's data slots.
    pub(crate) fn slot_size(&self) -> usize {
        self.slot_size
    }

    /// The blk-mq timeout of a request: its I/O timeout (the tick enforces deadlines first;
    /// blk-mq's handler is the backstop, see `read`).
    pub(crate) fn blk_timeout(&self) -> u64 {
        self.io_timeout
    }
}

impl blk::Operations for Device {
    type QueueData = Arc<Device>;

    fn queue_rq(dev: ArcBorrow<'_, Device>, rq: Request) -> core::result::Result<(), blk::Busy> {
        Device::queue_rq(dev, rq)
    }

    fn timeout(dev: ArcBorrow<'_, Device>, rq: &TimedOut<'_>) -> TimeoutAction {
        Device::timeout(dev, rq)
    }

    fn show(
        dev: ArcBorrow<'_, Device>,
        attr: &[u8],
        out: &mut dyn core::fmt::Write,
    ) -> core::fmt::Result {
        dev.show_attr(attr, out)
    }
}
