// SPDX-License-Identifier: GPL-2.0
//! The read path. `queue_rq` runs in the submitter's context (the tag set is blocking) and
//! never waits for the network:
//! - blocks in the cache (and all-zero blocks) are copied into the request at once, without
//!   the device lock: a warm read costs one cache lookup and one copy per block;
//! - the request is kept in `State::waiting` with a bit per block still missing, each of them
//!   fetched, queued for a slot or joined to another device's fetch (`need_block`);
//! - whatever ends a block's fetch copies it into every request waiting for it and ends the
//!   requests that have all their blocks (`serve_waiters`).
//!
//! Time limits: a kept read stops waiting on other devices' fetches at half its I/O timeout
//! (it fetches those blocks itself) and fails with EIO at its I/O timeout, counted from when
//! `queue_rq` got it. While the device has no helper, it waits for a new one up to the
//! recovery timeout instead (counted from the helper's loss); once that has passed, misses
//! fail at once; after a recovery its I/O timeout counts afresh. The module's tick
//! (`enforce_deadlines`, every 100 ms while reads are kept) applies these limits; blk-mq's
//! timeout handler (`timeout`) is the backstop that fails a read past its deadline if the
//! tick has not.
#![forbid(unsafe_code)]

use core::sync::atomic::Ordering;

use kernel::prelude::*;
use kernel::rbtree::RBTreeNodeReservation;
use kernel::sync::{Arc, ArcBorrow};

use crate::blk::{Busy, Op, Request, TimedOut, TimeoutAction};
use crate::cache::{Block, Key};
use crate::device::Device;
use crate::fetch::{Deferred, Phase, State, Waiting, MAX_SPAN};
use crate::params;
use crate::sys::compat::TreeCursor;
use crate::sys::time;
use crate::sys::workqueue;

impl Device {
    /// Serves or keeps a request. Sleeps briefly (mutexes, allocations), never on the network.
    /// `Busy` gives the request back to blk-mq, which dispatches it again shortly: memory for
    /// keeping it was short.
    pub(crate) fn queue_rq(
        self: ArcBorrow<'_, Self>,
        mut rq: Request,
    ) -> core::result::Result<(), Busy> {
        if rq.op() != Op::Read {
            // The disk is read-only (`set_disk_ro`): userspace writes stop at the block layer
            // with EPERM; what comes here is an in-kernel writer that ignores the flag (the
            // block layer only warns). It gets EIO: blk-mq has no status for EROFS, and
            // `errno_to_blk_status` would turn one into BLK_STS_IOERR anyway.
            self.stats.writes_refused.fetch_add(1, Ordering::Relaxed);
            rq.end(Err(EIO));
            return Ok(());
        }
        if self.is_dead() {
            rq.end(Err(EIO));
            return Ok(());
        }
        let Some((first, last)) = self.span(rq.sector(), rq.bytes()) else {
            rq.end(Err(EIO));
            return Ok(());
        };
        self.stats.reads.fetch_add(1, Ordering::Relaxed);
        self.stats
            .read_bytes
            .fetch_add(u64::from(rq.bytes()), Ordering::Relaxed);
        // Blocks the cache cannot serve now.
        let mut missing = 0u64;
        for b in first..=last {
            match self.serve_from_cache(&mut rq, b) {
                Ok(true) => {}
                Ok(false) => missing |= 1 << (b - first),
                Err(e) => {
                    rq.end(Err(e));
                    return Ok(());
                }
            }
        }
        if missing == 0 {
            rq.end(Ok(()));
        } else {
            self.keep(rq, first, missing)?;
        }
        self.readahead(first, last);
        Ok(())
    }

    /// First and last block of a read of `len` bytes at `sector`; `None` when it is empty,
    /// past the end of the image or longer than `MAX_SPAN` blocks.
    fn span(&self, sector: u64, len: u32) -> Option<(u64, u64)> {
        let start = sector.checked_mul(512)?;
        let end = start.checked_add(u64::from(len))?;
        if len == 0 || end > self.index.image_size {
            return None;
        }
        let (first, last) = (self.index.block_of(start), self.index.block_of(end - 1));
        (last - first < MAX_SPAN).then_some((first, last))
    }

    /// The cached block under `key` for block `b`, if it has the length `b` needs: a block of
    /// another length (a hostile index naming another block's digest) is a miss.
    pub(crate) fn cached(&self, b: u64, key: &Key) -> Option<Arc<Block>> {
        let blk = self.shared.cache.get(key)?;
        (blk.data.len() == self.index.raw_len(b) as usize).then_some(blk)
    }

    /// Copies block `b` into `rq` if it is all zeros or cached. `Ok(false)`: a miss.
    fn serve_from_cache(&self, rq: &mut Request, b: u64) -> Result<bool> {
        let Some(key) = self.key(b) else {
            copy_block(&self.index, rq, b, None)?;
            return Ok(true);
        };
        match self.cached(b, &key) {
            Some(blk) => {
                self.stats.cache_hits.fetch_add(1, Ordering::Relaxed);
                copy_block(&self.index, rq, b, Some(&blk))?;
                Ok(true)
            }
            None => {
                self.stats.cache_misses.fetch_add(1, Ordering::Relaxed);
                Ok(false)
            }
        }
    }

    /// Keeps a request whose blocks `missing` (bit `i`: block `first + i`) the cache lacked:
    /// gets each on its way and records what it waits for.
    fn keep(
        self: ArcBorrow<'_, Self>,
        mut rq: Request,
        first: u64,
        mut missing: u64,
    ) -> core::result::Result<(), Busy> {
        let id = rq.id();
        let Ok(reservation) = RBTreeNodeReservation::new(GFP_KERNEL) else {
            return Err(rq.busy());
        };
        let outcome = {
            let mut st = self.state.lock();
            let now = time::jiffies();
            let r = match st.ring.orphaned_since {
                // No helper for longer than the recovery timeout: misses fail at once until a
                // helper returns.
                Some(since) if !time::after(since.wrapping_add(self.recovery_timeout), now) => {
                    Err(EIO)
                }
                _ => self.start_missing(&mut st, &mut rq, first, &mut missing),
            };
            match r {
                Ok(()) if missing != 0 => {
                    let w = Waiting {
                        rq,
                        start: now,
                        mask: missing,
                        failed: false,
                    };
                    st.waiting.insert(reservation.into_node((first, id), w));
                    None
                }
                r => Some((rq, r)),
            }
        };
        match outcome {
            None => workqueue::ensure(),
            // Fetches it started stay; the request comes back and finds them.
            Some((rq, Err(e))) if e == ENOMEM => return Err(rq.busy()),
            Some((rq, r)) => rq.end(r),
        }
        Ok(())
    }

    /// `need_block` for every missing block of a request; blocks that turn out cached are
    /// copied in and cleared from `missing`.
    fn start_missing(
        self: ArcBorrow<'_, Self>,
        st: &mut State,
        rq: &mut Request,
        first: u64,
        missing: &mut u64,
    ) -> Result {
        for i in 0..MAX_SPAN {
            if *missing & (1 << i) == 0 {
                continue;
            }
            let b = first + i;
            let Some(key) = self.key(b) else {
                return Err(EIO);
            };
            if let Some(blk) = self.need_block(st, b, key)? {
                copy_block(&self.index, rq, b, Some(&blk))?;
                *missing &= !(1 << i);
            }
        }
        Ok(())
    }

    /// When reads are sequential, starts fetching the `readahead_kb` after block `last`. A
    /// quarter of the slots stay free for demand misses, and at most `readahead_inflight`
    /// readahead fetches are in flight, so a miss shares the link with that many readahead
    /// transfers at most (a readahead fetch counts until it ends, even once a read waits for
    /// it; when it ends, `readahead_refill` takes the next). Blocks already looked at for this
    /// run of sequential reads are not looked at again, and readahead at its bound is skipped
    /// until a fetch ends, so a warm sequential reader rarely takes the device lock.
    fn readahead(&self, first: u64, last: u64) {
        // Not sequential before the end moves: a refill that sees the new end (acquire) sees
        // this too, so it never reads ahead of a random read.
        self.sequential.store(false, Ordering::Relaxed);
        let prev_end = self.last_read_end.swap(last + 1, Ordering::AcqRel);
        // Sequential: this read starts in the block the previous one ended in, or the next.
        let sequential = first == prev_end || first.wrapping_add(1) == prev_end;
        if !sequential {
            self.ahead_checked.store(last, Ordering::Relaxed);
            return;
        }
        self.sequential.store(true, Ordering::Relaxed);
        if self.readahead_full.load(Ordering::Relaxed) {
            return;
        }
        if let Some((from, end)) = self.readahead_window(last) {
            let mut st = self.state.lock();
            self.post_readahead(&mut st, from, end);
        }
    }

    /// A readahead fetch ended well: while the last reads were sequential, readahead takes
    /// more of their window at once, up to the bound, not at the next read (a reader waiting
    /// for the blocks in flight would find nothing fetched beyond them). Called under the
    /// state lock.
    pub(crate) fn readahead_refill(&self, st: &mut State) {
        let end = self.last_read_end.load(Ordering::Acquire);
        if !self.sequential.load(Ordering::Relaxed) {
            return;
        }
        let last = end.saturating_sub(1);
        if let Some((from, end)) = self.readahead_window(last) {
            self.post_readahead(st, from, end);
        }
    }

    /// The blocks readahead may look at after a read that ended in block `last`: from the
    /// first not looked at in this run to `readahead_kb` ahead. `None` when there are none.
    fn readahead_window(&self, last: u64) -> Option<(u64, u64)> {
        let ahead = (u64::from(params::READAHEAD_KB.get()) << 10) >> self.index.block_shift;
        let end = last
            .saturating_add(ahead)
            .min(self.index.nr_blocks.saturating_sub(1));
        let from = last
            .saturating_add(1)
            .max(self.ahead_checked.load(Ordering::Relaxed).saturating_add(1));
        (from <= end).then_some((from, end))
    }

    /// Starts readahead fetches of blocks `from..=end` (`from` > 0) within the bounds above.
    fn post_readahead(&self, st: &mut State, from: u64, end: u64) {
        // Never the last slot: with one slot, no readahead at all.
        let reserve = (self.nr_slots.get() / 4).max(1) as usize;
        let limit = params::READAHEAD_INFLIGHT.get() as usize;
        let mut in_flight = st.readahead_in_flight();
        let mut checked = from - 1;
        for b in from..=end {
            // No helper to fetch for: leave the window where it is, for after a recovery.
            if self.is_dead() || st.ring.regions.is_none() {
                break;
            }
            if in_flight >= limit {
                self.readahead_full.store(true, Ordering::Relaxed);
                break;
            }
            if st.free_slots() <= reserve {
                break;
            }
            if self.prefetch(st, b, reserve) {
                in_flight += 1;
                let peak = &self.stats.readahead_inflight_max;
                peak.fetch_max(in_flight as u64, Ordering::Relaxed);
            }
            checked = b;
        }
        self.ahead_checked.fetch_max(checked, Ordering::Relaxed);
    }

    /// Copies block `b` (or fails it) into every waiting read that still needs it; reads
    /// with all their blocks, or a failed one, move to `d` to be ended.
    pub(crate) fn serve_waiters(
        &self,
        st: &mut State,
        b: u64,
        result: core::result::Result<&Block, ()>,
        d: &mut Deferred,
    ) {
        let lo = (b.saturating_sub(MAX_SPAN - 1), 0usize);
        let mut cur = st.waiting.lower_bound_mut(&lo);
        while let Some(mut c) = cur {
            let (key, done) = {
                let (&key, w) = c.current_mut();
                let first = key.0;
                if first > b {
                    break;
                }
                // `first >= b - (MAX_SPAN - 1)` by the lower bound: the shift is in range.
                let bit = 1u64 << (b - first);
                if w.mask & bit == 0 {
                    (key, false)
                } else {
                    w.mask &= !bit;
                    let copied = match result {
                        Ok(blk) => copy_block(&self.index, &mut w.rq, b, Some(blk)).is_ok(),
                        Err(()) => false,
                    };
                    w.failed |= !copied;
                    (key, w.failed || w.mask == 0)
                }
            };
            cur = if done {
                let (next, node) = c.remove_current();
                d.ended.insert(node);
                // Removing the last node gives the one before it: the walk is over then.
                next.filter(|n| *n.current().0 > key)
            } else {
                c.move_next()
            };
        }
    }

    /// When a kept read must have ended: at its I/O timeout, or while the device has no
    /// helper, at the end of the recovery window.
    fn deadline(&self, st: &State, w: &Waiting) -> u64 {
        match st.ring.orphaned_since {
            Some(since) => since.wrapping_add(self.recovery_timeout),
            None => w.start.wrapping_add(self.io_timeout),
        }
    }

    /// The tick: reads kept for half their I/O timeout stop waiting on other devices'
    /// fetches; reads past their deadline fail with EIO; fetches no read needs any more (and
    /// that hold no slot) are dropped. Returns whether reads are still kept. Sleeps.
    pub(crate) fn enforce_deadlines(&self) -> bool {
        let mut d = Deferred::new();
        let kept = {
            let mut st = self.state.lock();
            let now = time::jiffies();
            if st.ring.orphaned_since.is_none() {
                self.end_joins(&mut st, now.wrapping_sub(self.io_timeout / 2), &mut d);
            }
            // Fail the reads past their deadline.
            let orphan_limit = st
                .ring
                .orphaned_since
                .map(|since| since.wrapping_add(self.recovery_timeout));
            let mut cur = st.waiting.front_mut();
            let mut failed = 0u64;
            while let Some(c) = cur {
                let (&key, w) = c.current();
                let deadline = orphan_limit.unwrap_or(w.start.wrapping_add(self.io_timeout));
                if time::after(deadline, now) {
                    cur = c.move_next();
                    continue;
                }
                let (next, node) = c.remove_current();
                d.ended.insert(node);
                failed += 1;
                cur = next.filter(|n| *n.current().0 > key);
            }
            if failed > 0 {
                self.stats.timeouts.fetch_add(failed, Ordering::Relaxed);
                self.stats.io_errors.fetch_add(failed, Ordering::Relaxed);
                for w in d.ended.values_mut() {
                    w.failed = true;
                }
                self.forget_unneeded(&mut st, &mut d);
            }
            st.waiting.iter().next().is_some()
        };
        self.flush(d);
        kept
    }

    /// Joined fetches needed by a read kept since `before` or earlier become our own.
    fn end_joins(&self, st: &mut State, before: u64, d: &mut Deferred) {
        let mut last = None;
        loop {
            let Some(b) = st.next_fetch(last, |f| matches!(f.phase, Phase::Joined)) else {
                return;
            };
            last = Some(b);
            if st.needed_since(b, before) {
                if let Err(e) = self.own_fetch(st, b) {
                    self.fail_block(st, b, e, d);
                }
            }
        }
    }

    /// Drops every fetch that holds no slot and that no kept read needs.
    pub(crate) fn forget_unneeded(&self, st: &mut State, d: &mut Deferred) {
        let mut last = None;
        loop {
            let Some(b) = st.next_fetch(last, |f| !matches!(f.phase, Phase::Submitted { .. }))
            else {
                return;
            };
            last = Some(b);
            self.forget_if_unneeded(st, b, d);
        }
    }

    /// blk-mq's timeout handler, the backstop of the tick: fails a kept read past its
    /// deadline, or asks to be called again at it.
    pub(crate) fn timeout(self: ArcBorrow<'_, Self>, rq: &TimedOut<'_>) -> TimeoutAction {
        let Some((first, _)) = self.span(rq.sector(), rq.bytes()) else {
            // Not a request this device keeps (those are ended in `queue_rq`).
            rq.set_timeout(self.io_timeout);
            return TimeoutAction::ResetTimer;
        };
        let key = (first, rq.id());
        let mut d = Deferred::new();
        let ended = {
            let mut st = self.state.lock();
            let now = time::jiffies();
            let Some(w) = st.waiting.get(&key) else {
                drop(st);
                // Being ended right now, or still being kept by `queue_rq`: look again later.
                rq.set_timeout(self.io_timeout);
                return TimeoutAction::ResetTimer;
            };
            let deadline = self.deadline(&st, w);
            if time::after(deadline, now) {
                drop(st);
                rq.set_timeout(deadline.wrapping_sub(now));
                return TimeoutAction::ResetTimer;
            }
            let ended = st.waiting.remove(&key);
            self.forget_unneeded(&mut st, &mut d);
            ended
        };
        self.flush(d);
        if let Some(w) = ended {
            self.stats.timeouts.fetch_add(1, Ordering::Relaxed);
            self.stats.io_errors.fetch_add(1, Ordering::Relaxed);
            w.rq.end(Err(EIO));
        }
        TimeoutAction::Done
    }
}

/// Copies the part of block `b` (zeros when `blk` is `None`) that `rq` covers into it.
///
/// # Errors
/// `EIO` when the block does not have the length the index gives it, or the range falls
/// outside the request.
fn copy_block(
    index: &crate::index::Index,
    rq: &mut Request,
    b: u64,
    blk: Option<&Block>,
) -> Result {
    let start = rq.sector().checked_mul(512).ok_or(EIO)?;
    let end = start.checked_add(u64::from(rq.bytes())).ok_or(EIO)?;
    let raw_len = index.raw_len(b);
    let block_start = index.block_start(b);
    let from = start.max(block_start);
    let to = end.min(block_start + u64::from(raw_len));
    if from >= to {
        return Ok(());
    }
    let skip = u32::try_from(from - start).map_err(|_| EIO)?;
    let n = (to - from) as usize;
    match blk {
        None => rq.zero(skip, n as u32),
        Some(blk) => {
            if blk.data.len() != raw_len as usize {
                return Err(EIO);
            }
            let off = (from - block_start) as usize;
            let src = blk.data.get(off..off + n).ok_or(EIO)?;
            rq.copy_from(skip, src)
        }
    }
}
