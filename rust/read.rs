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
//! Time limits come from blk-mq's timeout handler (`timeout`): first at half the I/O timeout,
//! when the request stops waiting on other devices' fetches and fetches those blocks itself;
//! then at the I/O timeout, counted from submission, when it fails with EIO. While the device
//! has no helper, a kept read waits for a new one up to the recovery timeout instead (counted
//! from the helper's loss), and once that has passed, misses fail at once.
#![forbid(unsafe_code)]

use core::sync::atomic::Ordering;

use kernel::prelude::*;
use kernel::rbtree::RBTreeNodeReservation;
use kernel::sync::{Arc, ArcBorrow};

use crate::blk::{Op, Request, TimedOut, TimeoutAction};
use crate::cache::{Block, Key};
use crate::clock;
use crate::device::Device;
use crate::fetch::{Deferred, Phase, State, Waiting, MAX_SPAN};
use crate::params;

/// A timeout handler called this close to the deadline fails the read rather than asking
/// blk-mq for a timer that fires a second late.
fn close_enough() -> u64 {
    clock::ms_to_jiffies(100)
}

impl Device {
    /// Serves or keeps a request. Sleeps briefly (mutexes, allocations), never on the network.
    pub(crate) fn queue_rq(self: ArcBorrow<'_, Self>, mut rq: Request) {
        if rq.op() != Op::Read {
            // Read-only device: writes, flushes and discards fail cleanly.
            self.stats.writes_refused.fetch_add(1, Ordering::Relaxed);
            return rq.end(Err(EROFS));
        }
        if self.is_dead() {
            return rq.end(Err(EIO));
        }
        let Some((first, last)) = self.span(rq.sector(), rq.bytes()) else {
            return rq.end(Err(EIO));
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
                Err(e) => return rq.end(Err(e)),
            }
        }
        if missing == 0 {
            rq.end(Ok(()));
        } else {
            self.keep(rq, first, missing);
        }
        self.readahead(first, last);
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
    fn keep(self: ArcBorrow<'_, Self>, mut rq: Request, first: u64, mut missing: u64) {
        let id = rq.id();
        let Ok(reservation) = RBTreeNodeReservation::new(GFP_KERNEL) else {
            return rq.end(Err(ENOMEM));
        };
        let result = {
            let mut st = self.state.lock();
            let r = match st.ring.orphaned_since {
                // No helper for longer than the recovery timeout: misses fail at once until a
                // helper returns.
                Some(since)
                    if !clock::after(
                        since.wrapping_add(self.recovery_timeout),
                        clock::jiffies(),
                    ) =>
                {
                    Err(EIO)
                }
                _ => self.start_missing(&mut st, &mut rq, first, &mut missing),
            };
            if r.is_ok() && missing != 0 {
                let w = Waiting {
                    rq,
                    start: clock::jiffies(),
                    mask: missing,
                    failed: false,
                    joins_ended: false,
                };
                st.waiting.insert(reservation.into_node((first, id), w));
                None
            } else {
                Some((rq, r))
            }
        };
        if let Some((rq, r)) = result {
            rq.end(r);
        }
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
    /// quarter of the slots stay free for demand misses, so readahead never delays them.
    /// Blocks already looked at for this run of sequential reads are not looked at again, so
    /// a warm sequential reader rarely takes the device lock.
    fn readahead(&self, first: u64, last: u64) {
        let prev_end = self.last_read_end.swap(last + 1, Ordering::Relaxed);
        // Sequential: this read starts in the block the previous one ended in, or the next.
        if first != prev_end && first.wrapping_add(1) != prev_end {
            self.ahead_checked.store(last, Ordering::Relaxed);
            return;
        }
        let ahead = (u64::from(params::READAHEAD_KB.get()) << 10) >> self.index.block_shift;
        let end = last
            .saturating_add(ahead)
            .min(self.index.nr_blocks.saturating_sub(1));
        let from = (last + 1).max(self.ahead_checked.load(Ordering::Relaxed).saturating_add(1));
        if end < from {
            return;
        }
        // Never the last slot: with one slot, no readahead at all.
        let reserve = (self.nr_slots.get() / 4).max(1) as usize;
        let mut st = self.state.lock();
        let mut checked = from - 1;
        for b in from..=end {
            if st.free_slots() <= reserve {
                break;
            }
            self.prefetch(&mut st, b, reserve);
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
        let mut cur = st.waiting.cursor_lower_bound(&lo);
        while let Some(mut c) = cur {
            let done = {
                let (&(first, _), w) = c.current_mut();
                if first > b {
                    break;
                }
                let bit = 1u64 << (b - first);
                if w.mask & bit == 0 {
                    false
                } else {
                    w.mask &= !bit;
                    let copied = match result {
                        Ok(blk) => copy_block(&self.index, &mut w.rq, b, Some(blk)).is_ok(),
                        Err(()) => false,
                    };
                    w.failed |= !copied;
                    w.failed || w.mask == 0
                }
            };
            cur = if done {
                let (next, node) = c.remove_current();
                d.ended.insert(node);
                next
            } else {
                c.move_next()
            };
        }
    }

    /// blk-mq's timeout handler; see the module comment.
    pub(crate) fn timeout(self: ArcBorrow<'_, Self>, rq: &TimedOut<'_>) -> TimeoutAction {
        let Some((first, _)) = self.span(rq.sector(), rq.bytes()) else {
            // Not a request this device keeps (those are ended in `queue_rq`).
            rq.set_timeout(1);
            return TimeoutAction::ResetTimer;
        };
        let key = (first, rq.id());
        let mut d = Deferred::new();
        let now = clock::jiffies();
        let ended = {
            let mut st = self.state.lock();
            let orphan_limit = st
                .ring
                .orphaned_since
                .map(|since| since.wrapping_add(self.recovery_timeout));
            let Some(w) = st.waiting.get_mut(&key) else {
                drop(st);
                // Being ended right now by a completion, or still being kept by `queue_rq`:
                // look again soon.
                rq.set_timeout(1);
                return TimeoutAction::ResetTimer;
            };
            let mask = w.mask;
            // Without a helper a read waits for a new one, up to the recovery timeout;
            // with one, up to its I/O timeout (counted afresh after a recovery).
            let deadline = match orphan_limit {
                Some(limit) => limit,
                None => w.start.wrapping_add(self.io_timeout),
            };
            if orphan_limit.is_none() && !w.joins_ended {
                w.joins_ended = true;
                // Stop waiting on other devices' fetches: their servers may be down while
                // ours are fine.
                for i in 0..MAX_SPAN {
                    let b = first + i;
                    if mask & (1 << i) != 0
                        && matches!(st.fetches.get(&b).map(|f| f.phase), Some(Phase::Joined))
                    {
                        if let Err(e) = self.own_fetch(&mut st, b) {
                            self.fail_block(&mut st, b, e, &mut d);
                        }
                    }
                }
            }
            let left = deadline.wrapping_sub(now);
            if clock::after(deadline, now) && left > close_enough() {
                drop(st);
                self.flush(d);
                rq.set_timeout(clock::blk_timeout(left));
                return TimeoutAction::ResetTimer;
            }
            let ended = st.waiting.remove(&key);
            for i in 0..MAX_SPAN {
                if mask & (1 << i) != 0 {
                    self.forget_if_unneeded(&mut st, first + i, &mut d);
                }
            }
            ended
        };
        self.flush(d);
        // `None`: ended by `flush` above (a join turned into a failure).
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
