// SPDX-License-Identifier: GPL-2.0
//! The fetch ring, kernel side (Documentation/ring.md). The kernel writes submissions into
//! its read-only region and publishes `sq_tail`; the helper fills a slot of its region,
//! writes a completion and publishes `cq_tail`, then calls `IOC_COMMIT`. Every value the
//! helper writes is untrusted: a completion tail more than `nr_slots` ahead kills the device
//! (`EPROTO`), and a completion naming a slot with no fetch of that generation, or one
//! already being checked, is counted as a protocol error and ignored.
//!
//! Each helper gets a ring of its own (`Regions`): when a helper goes, the device keeps its
//! fetches and kept reads and has no ring (it is orphaned); a new helper (`IOC_RECOVER`) gets
//! new regions and every fetch that held a slot is posted to them again. Memory an old helper
//! may still have mapped is never part of a later ring, and calls on an old helper's file are
//! refused (`ESTALE`), so nothing from an old ring can be taken for a completion of the new.
#![forbid(unsafe_code)]

use core::mem::{offset_of, size_of};
use core::sync::atomic::Ordering;

use kernel::prelude::*;
use kernel::sync::Arc;

use crate::blk::NoIo;
use crate::cache::Block;
use crate::device::Device;
use crate::fetch::{Deferred, Phase, State, MAX_ATTEMPTS};
use crate::sys::helpers::errno;
use crate::sys::time;
use crate::sys::vmalloc::SharedRegion;
use crate::uapi::{self, Cqe, HelperHeader, KernelHeader, Sqe, SQE_DEMAND};

/// One helper's ring: the region only the kernel writes (mapped read-only) and the one the
/// helper writes (completions and data slots).
pub(crate) struct Regions {
    pub(crate) kernel: SharedRegion,
    pub(crate) helper: SharedRegion,
}

impl Regions {
    /// Zeroed regions for `nr_slots` slots of blocks of `1 << block_shift` bytes.
    ///
    /// # Errors
    /// `ENOMEM`.
    pub(crate) fn new(nr_slots: u32, block_shift: u8) -> Result<Arc<Self>> {
        let kernel = SharedRegion::new(uapi::kernel_region_len(nr_slots))?;
        let helper = SharedRegion::new(uapi::helper_region_len(nr_slots, block_shift))?;
        Ok(Arc::new(Regions { kernel, helper }, GFP_KERNEL)?)
    }
}

/// The kernel's side of the current ring.
pub(crate) struct RingState {
    /// The current helper's ring; `None` while the device has no helper.
    pub(crate) regions: Option<Arc<Regions>>,
    pub(crate) sq_tail: u32,
    pub(crate) cq_head: u32,
    /// Generation of the next submission; never reset, so no completion of an earlier ring
    /// or submission can match a fetch.
    pub(crate) next_seq: u32,
    /// Since when (jiffies) the device has had no helper.
    pub(crate) orphaned_since: Option<u64>,
}

impl RingState {
    /// Whether `r` is the current ring.
    pub(crate) fn is(&self, r: &Arc<Regions>) -> bool {
        self.regions.as_ref().is_some_and(|c| Arc::ptr_eq(c, r))
    }
}

fn stale() -> Error {
    errno(kernel::bindings::ESTALE)
}

/// A completion taken off the ring, its fetch marked `completing`.
struct Taken {
    cqe: Cqe,
    block: u64,
}

impl Device {
    /// Posts a submission of the fetch of `b` (a new generation, in its slot) and wakes the
    /// helper. Without a helper the fetch keeps its slot and is posted to the next one.
    pub(crate) fn submit(&self, st: &mut State, b: u64) {
        let seq = st.ring.next_seq;
        st.ring.next_seq = seq.wrapping_add(1);
        let stored_len = self.index.entry(b).map_or(0, |e| e.stored_len);
        let Some(f) = st.fetches.get_mut(&b) else {
            return;
        };
        let slot = match f.phase {
            Phase::Submitted { slot, .. } => slot,
            _ => match st.slots.iter().position(|s| *s == Some(b)) {
                Some(s) => s as u32,
                None => return,
            },
        };
        f.phase = Phase::Submitted {
            slot,
            seq,
            completing: false,
        };
        let flags = if f.demand { SQE_DEMAND } else { 0 };
        let sqe = Sqe {
            block: b,
            slot,
            stored_len,
            seq,
            retry: f.attempts,
            flags,
            reserved: 0,
        };
        let Some(r) = &st.ring.regions else { return };
        let pos = (st.ring.sq_tail % self.nr_slots) as usize;
        // At most `nr_slots` fetches are posted at once, so the entry is free.
        if r.kernel
            .write(uapi::KERNEL_SQ_OFFSET + pos * size_of::<Sqe>(), sqe)
            .is_err()
        {
            return;
        }
        st.ring.sq_tail = st.ring.sq_tail.wrapping_add(1);
        // Release: the helper that sees the new tail also sees the entry written above.
        if let Ok(tail) = r.kernel.index(offset_of!(KernelHeader, sq_tail)) {
            tail.store(st.ring.sq_tail, Ordering::Release);
        }
        self.submitted.notify_all();
    }

    /// `IOC_WAIT` on ring `r`: sleeps until the submission tail differs from `seen`; returns
    /// it.
    ///
    /// # Errors
    /// `ENODEV` once the device is dead, `ESTALE` when `r` is not the current ring, `EINTR`
    /// on a signal.
    pub(crate) fn wait_submissions(&self, r: &Arc<Regions>, seen: u32) -> Result<u32> {
        let mut st = self.state.lock();
        loop {
            if self.is_dead() {
                return Err(ENODEV);
            }
            if !st.ring.is(r) {
                return Err(stale());
            }
            if st.ring.sq_tail != seen {
                return Ok(st.ring.sq_tail);
            }
            if self.submitted.wait_interruptible(&mut st) {
                return Err(EINTR);
            }
        }
    }

    /// `IOC_COMMIT` on ring `r`: consumes the helper's completions: checks each block without
    /// the lock, caches the good ones, posts failed ones again (up to `MAX_ATTEMPTS`) and
    /// ends fetches.
    ///
    /// # Errors
    /// `ENODEV` when the device is dead, `ESTALE` when `r` is not the current ring, `ENOMEM`
    /// (nothing consumed), `EPROTO` (and the device dies) when the helper's completion tail is
    /// impossible.
    pub(crate) fn commit(&self, r: &Arc<Regions>) -> Result {
        let _noio = NoIo::begin();
        let mut taken: KVec<Taken> = KVec::with_capacity(self.nr_slots.get() as usize, GFP_KERNEL)?;
        {
            let mut st = self.state.lock();
            if self.is_dead() {
                return Err(ENODEV);
            }
            if !st.ring.is(r) {
                return Err(stale());
            }
            // Acquire: entries up to the tail are fully written before we read them.
            let tail = r
                .helper
                .index(offset_of!(HelperHeader, cq_tail))?
                .load(Ordering::Acquire);
            let n = tail.wrapping_sub(st.ring.cq_head);
            if n > self.nr_slots.get() {
                drop(st);
                self.protocol_error(format_args!(
                    "completion tail {} is {} ahead of the head",
                    tail, n
                ));
                return Err(errno(kernel::bindings::EPROTO));
            }
            for i in 0..n {
                let pos = (st.ring.cq_head.wrapping_add(i) % self.nr_slots) as usize;
                let Ok(cqe) = r
                    .helper
                    .read::<Cqe>(uapi::HELPER_CQ_OFFSET + pos * size_of::<Cqe>())
                else {
                    drop(st);
                    self.protocol_error(format_args!("completion {} outside the ring", pos));
                    return Err(errno(kernel::bindings::EPROTO));
                };
                match claim(&mut st, &cqe) {
                    // Cannot fail: at most `nr_slots` entries, the capacity reserved above.
                    Some(block) => taken.push(Taken { cqe, block }, GFP_KERNEL)?,
                    None => {
                        self.stats.protocol_errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            st.ring.cq_head = tail;
            r.kernel
                .index(offset_of!(KernelHeader, cq_head))?
                .store(tail, Ordering::Release);
        }
        // Copy out and verify without the lock: the claimed slots stay taken meanwhile.
        let mut d = Deferred::new();
        for t in &taken {
            let checked = self.check(r, &t.cqe, t.block);
            self.apply(&mut self.state.lock(), t, checked, &mut d);
        }
        self.flush(d);
        Ok(())
    }

    /// Applies the outcome of a checked completion to its fetch, if the fetch still waits
    /// for exactly that completion (the device may have died, or the fetch been posted to a
    /// new helper, meanwhile).
    fn apply(&self, st: &mut State, t: &Taken, r: Result<Arc<Block>>, d: &mut Deferred) {
        let Some(f) = st.fetches.get_mut(&t.block) else {
            return;
        };
        match f.phase {
            Phase::Submitted {
                seq,
                completing: true,
                ..
            } if seq == t.cqe.seq => {}
            _ => return,
        }
        let key = f.key;
        match r {
            Ok(block) => {
                let ns = time::now_ns().saturating_sub(f.started_ns);
                self.stats.fetch_ok.fetch_add(1, Ordering::Relaxed);
                self.stats.fetch_ns_total.fetch_add(ns, Ordering::Relaxed);
                self.stats.fetch_ns_max.fetch_max(ns, Ordering::Relaxed);
                // Cached before the claim is released, so joiners find it. A full cache only
                // costs a refetch later.
                let _ = self.shared.cache.insert(key, block.clone());
                self.finish(st, t.block, Ok(&block), d);
            }
            Err(e) => {
                f.attempts += 1;
                // A copy that failed the checks is asked for again (the helper tries another
                // server); a fetch the helper itself gave up on is not.
                if t.cqe.status == 0 && f.attempts < MAX_ATTEMPTS {
                    self.submit(st, t.block);
                } else {
                    self.finish(st, t.block, Err(e), d);
                }
            }
        }
    }

    /// The helper owning ring `r` is gone: the device keeps its fetches and kept reads and
    /// waits for a new helper (see `read` for how long reads wait). Its claims in the pending
    /// table are released, so other devices waiting on its fetches fetch for themselves.
    pub(crate) fn orphan(&self, r: &Arc<Regions>) {
        let mut released = KVec::new();
        let waiting = {
            let mut st = self.state.lock();
            if self.is_dead() || !st.ring.is(r) {
                return;
            }
            st.ring.regions = None;
            st.ring.orphaned_since = Some(time::jiffies());
            for f in st.fetches.values_mut() {
                // A claim that cannot be noted for release stays: its joiners stop waiting
                // on it after half their I/O timeout anyway.
                if f.claimed && released.push(f.key, GFP_KERNEL).is_ok() {
                    f.claimed = false;
                }
            }
            st.waiting.iter().count()
        };
        for key in &released {
            for j in self.shared.pending.release(key) {
                j.device.joined_fetch_ended(j.block);
            }
        }
        // Kept reads now wait for the end of the recovery window.
        crate::sys::workqueue::ensure();
        pr_info!(
            "httpblk{}: helper gone; {} reads wait up to {} ms for a new one (httpblk recover)\n",
            self.id,
            waiting,
            self.recovery_timeout_ms
        );
    }

    /// `IOC_RECOVER`: a new helper serving the index with SHA-256 `sha` takes over the
    /// orphaned device. Every fetch that held a slot is posted to the new ring; kept reads get
    /// a full I/O timeout from now.
    ///
    /// # Errors
    /// `EINVAL` when the index differs, `EBUSY` when a helper owns the device, `ENODEV` when
    /// it is dead, `ENOMEM`.
    pub(crate) fn recover(&self, sha: &[u8; 32]) -> Result<Arc<Regions>> {
        if *sha != self.index_sha256 {
            pr_err!(
                "httpblk{}: recover refused: the helper serves another index\n",
                self.id
            );
            return Err(EINVAL);
        }
        // Checked before allocating the regions (up to a few hundred MiB), and again after.
        let owned = |st: &State| match (self.is_dead(), st.ring.regions.is_some()) {
            (true, _) => Err(ENODEV),
            (false, true) => Err(EBUSY),
            (false, false) => Ok(()),
        };
        owned(&self.state.lock())?;
        let regions = Regions::new(self.nr_slots.get(), self.index.block_shift)?;
        let mut st = self.state.lock();
        owned(&st)?;
        st.ring.regions = Some(regions.clone());
        st.ring.sq_tail = 0;
        st.ring.cq_head = 0;
        st.ring.orphaned_since = None;
        let now = time::jiffies();
        for w in st.waiting.values_mut() {
            w.start = now;
        }
        let mut reposted = 0;
        for slot in 0..st.slots.len() {
            if let Some(Some(b)) = st.slots.get(slot).copied() {
                // Fetches made without a helper claimed nothing: claim now, so others merge.
                if let Some(f) = st.fetches.get_mut(&b) {
                    if !f.claimed {
                        f.claimed = self.shared.pending.claim(&f.key).unwrap_or(false);
                    }
                }
                self.submit(&mut st, b);
                reposted += 1;
            }
        }
        drop(st);
        // Kept reads now count their I/O timeout afresh.
        crate::sys::workqueue::ensure();
        pr_info!(
            "httpblk{}: recovered by a new helper; {} fetches posted again\n",
            self.id,
            reposted
        );
        Ok(regions)
    }

    pub(crate) fn protocol_error(&self, what: core::fmt::Arguments<'_>) {
        self.stats.protocol_errors.fetch_add(1, Ordering::Relaxed);
        pr_err!(
            "httpblk{}: helper broke the ring protocol ({}); failing the device\n",
            self.id,
            what
        );
        self.kill();
    }
}

/// Checks that a completion names a slot with a fetch of that generation not already being
/// completed, and marks it `completing`. Returns the fetch's block.
fn claim(st: &mut State, cqe: &Cqe) -> Option<u64> {
    let b = (*st.slots.get(cqe.slot as usize)?)?;
    let f = st.fetches.get_mut(&b)?;
    match f.phase {
        Phase::Submitted {
            slot,
            seq,
            completing: false,
        } if slot == cqe.slot && seq == cqe.seq => {
            f.phase = Phase::Submitted {
                slot,
                seq,
                completing: true,
            };
            Some(b)
        }
        _ => None,
    }
}
