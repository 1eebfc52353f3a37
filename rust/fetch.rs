// SPDX-License-Identifier: GPL-2.0
//! Fetches and the device state that holds them: which block each ring slot is fetching,
//! which misses wait for a slot (first come, first served), which wait for another device's
//! fetch, and which reads wait for which blocks.
//!
//! A fetch of block `b` is one of:
//! - `Queued`: every slot is busy; it takes the next free one, in ticket order;
//! - `Joined`: another fetch of the same content (any device) holds the pending-table claim;
//!   this device is told when it ends (`joined_fetch_ended`) and stops waiting after half its
//!   I/O timeout in any case (`read`);
//! - `Submitted`: in a slot, posted to the helper with a generation (`seq`) its completion
//!   must echo; `completing` while that completion is being checked (the slot stays taken).
//!
//! Ending a fetch serves or fails the reads waiting for its block and frees its slot for the
//! next queued fetch. What must happen without the lock (ending requests, releasing claims
//! and telling their joiners) is collected in a `Deferred` and done by `Device::flush`.
#![forbid(unsafe_code)]

use core::sync::atomic::Ordering;

use kernel::prelude::*;
use kernel::rbtree::{RBTree, RBTreeNode};
use kernel::sync::{Arc, ArcBorrow};

use crate::blk::Request;
use crate::cache::{Block, Key};
use crate::device::Device;
use crate::ring::RingState;
use crate::sys::compat::TreeCursor;
use crate::sys::time;

/// Fetches of one block that fail verification before its reads fail.
pub(crate) const MAX_ATTEMPTS: u32 = 3;
/// Most blocks one request may span (`Waiting::mask` has a bit for each). A request spans at
/// most two: the disk's largest request is one block.
pub(crate) const MAX_SPAN: u64 = 64;

#[derive(Clone, Copy)]
pub(crate) enum Phase {
    Queued {
        ticket: u64,
    },
    Joined,
    Submitted {
        slot: u32,
        seq: u32,
        completing: bool,
    },
}

pub(crate) struct Fetch {
    pub(crate) key: Key,
    pub(crate) phase: Phase,
    /// Copies the helper delivered that failed the checks.
    pub(crate) attempts: u32,
    /// This fetch holds the pending-table claim on `key`.
    pub(crate) claimed: bool,
    /// A read waits for it (else readahead, which no read has asked for yet).
    pub(crate) demand: bool,
    /// Readahead started it: it counts against `readahead_inflight` until it ends, even once a
    /// read waits for it (else a sequential reader, joining its own readahead, would make room
    /// for more, and misses would share the link with all of it).
    pub(crate) readahead: bool,
    /// When the fetch was first posted (`time::now_ns`), for latency figures.
    pub(crate) started_ns: u64,
}

/// A read waiting for blocks, keyed in `State::waiting` by (first block, request id).
pub(crate) struct Waiting {
    pub(crate) rq: Request,
    /// When it was kept (jiffies): its I/O timeout counts from here.
    pub(crate) start: u64,
    /// Bit `i`: block `first + i` is still missing.
    pub(crate) mask: u64,
    pub(crate) failed: bool,
}

pub(crate) type WaitKey = (u64, usize);

pub(crate) struct State {
    /// The block each slot is fetching.
    pub(crate) slots: KVec<Option<u64>>,
    /// Fetches by block number: concurrent misses of one block share one.
    pub(crate) fetches: RBTree<u64, Fetch>,
    /// Queued fetches by ticket, oldest first.
    pub(crate) queue: RBTree<u64, u64>,
    pub(crate) next_ticket: u64,
    pub(crate) waiting: RBTree<WaitKey, Waiting>,
    pub(crate) ring: RingState,
}

/// A device waiting, in the pending table, for another fetch of the content of its `block`.
pub(crate) struct Joiner {
    pub(crate) device: Arc<Device>,
    pub(crate) block: u64,
}

/// Work collected under the state lock, done by `Device::flush` after it is dropped. Filled
/// by moving tree nodes, so collecting never allocates (and so never fails).
pub(crate) struct Deferred {
    /// Reads to end: with EIO if `failed`, else successfully.
    pub(crate) ended: RBTree<WaitKey, Waiting>,
    /// Ended fetches, by block: their claims are released and the joiners told.
    pub(crate) finished: RBTree<u64, Fetch>,
}

impl Deferred {
    pub(crate) fn new() -> Self {
        Self {
            ended: RBTree::new(),
            finished: RBTree::new(),
        }
    }
}

impl State {
    /// The first block after `after` (from the start if `None`) whose fetch matches `pred`.
    /// A walk that changes the tree between steps resumes here in O(log n), not from the
    /// tree's first node.
    pub(crate) fn next_fetch(
        &mut self,
        after: Option<u64>,
        pred: impl Fn(&Fetch) -> bool,
    ) -> Option<u64> {
        let start = match after {
            None => 0,
            Some(b) => b.checked_add(1)?,
        };
        let mut cur = self.fetches.lower_bound_mut(&start)?;
        loop {
            let (&b, f) = cur.current();
            if pred(f) {
                return Some(b);
            }
            cur = cur.move_next()?;
        }
    }

    pub(crate) fn free_slot(&self) -> Option<u32> {
        self.slots
            .iter()
            .position(Option::is_none)
            .map(|s| s as u32)
    }

    pub(crate) fn free_slots(&self) -> usize {
        self.slots.iter().filter(|s| s.is_none()).count()
    }

    /// Fetches in flight that readahead started.
    pub(crate) fn readahead_in_flight(&self) -> usize {
        self.fetches.values().filter(|f| f.readahead).count()
    }

    /// Moves every fetch and every waiting read to `d`, failed: the device is dying.
    pub(crate) fn fail_everything(&mut self, d: &mut Deferred) {
        while let Some(c) = self.fetches.front_mut() {
            let (_, node) = c.remove_current();
            if let Some(old) = d.finished.insert(node) {
                // Cannot happen (block keys are unique here); keep the claim release anyway.
                d.finished.insert(old);
            }
        }
        for w in self.waiting.values_mut() {
            w.failed = true;
        }
        while let Some(c) = self.waiting.front_mut() {
            let (_, node) = c.remove_current();
            d.ended.insert(node);
        }
        for s in self.slots.iter_mut() {
            *s = None;
        }
        self.queue = RBTree::new();
    }

    /// Whether some waiting read still needs block `b`.
    pub(crate) fn needed(&mut self, b: u64) -> bool {
        self.needed_since(b, u64::MAX)
    }

    /// Whether some waiting read kept at `before` or earlier (jiffies; `u64::MAX`: any) still
    /// needs block `b`.
    pub(crate) fn needed_since(&mut self, b: u64, before: u64) -> bool {
        let lo = (b.saturating_sub(MAX_SPAN - 1), 0usize);
        let mut cur = self.waiting.lower_bound_mut(&lo);
        while let Some(c) = cur {
            let (&(first, _), w) = c.current();
            if first > b {
                break;
            }
            let old_enough = before == u64::MAX || !crate::sys::time::after(w.start, before);
            if b - first < MAX_SPAN && w.mask & (1 << (b - first)) != 0 && old_enough {
                return true;
            }
            cur = c.move_next();
        }
        false
    }
}

impl Device {
    /// Makes sure block `b` (key `key`) is on its way: returns the block when it is cached
    /// (the caller serves it), else leaves a fetch of `b` in `st.fetches`: the one in flight,
    /// a join of another device's fetch of the same content, or a new one of our own.
    ///
    /// # Errors
    /// `EIO` when the device is dead, `ENOMEM`.
    pub(crate) fn need_block(
        self: ArcBorrow<'_, Self>,
        st: &mut State,
        b: u64,
        key: Key,
    ) -> Result<Option<Arc<Block>>> {
        if self.is_dead() {
            return Err(EIO);
        }
        if let Some(f) = st.fetches.get_mut(&b) {
            // A read waits for it now: a new helper gets it as demand.
            f.demand = true;
            return Ok(None);
        }
        // Checked again under the lock: a fetch caches its block before it releases its claim.
        if let Some(blk) = self.cached(b, &key) {
            return Ok(Some(blk));
        }
        let node = RBTreeNode::new(
            b,
            Fetch {
                key,
                phase: Phase::Joined,
                attempts: 0,
                claimed: false,
                demand: true,
                readahead: false,
                started_ns: 0,
            },
            GFP_KERNEL,
        )?;
        let joiner = Joiner {
            device: self.into(),
            block: b,
        };
        if let Ok(true) = self.shared.pending.join(&key, joiner) {
            st.fetches.insert(node);
            self.stats.joined_fetches.fetch_add(1, Ordering::Relaxed);
            return Ok(None);
        }
        // No claim: the other fetch ended meanwhile (its block is cached now, or it failed).
        if let Some(blk) = self.cached(b, &key) {
            return Ok(Some(blk));
        }
        st.fetches.insert(node);
        self.own_fetch(st, b)?;
        Ok(None)
    }

    /// Turns the fetch of `b` (new or joined) into one of our own: claims its key and posts
    /// it to a free slot, or queues it for one.
    ///
    /// # Errors
    /// `ENOMEM` (the fetch is then dropped).
    pub(crate) fn own_fetch(&self, st: &mut State, b: u64) -> Result {
        let Some(f) = st.fetches.get(&b) else {
            return Ok(());
        };
        if !matches!(f.phase, Phase::Joined) {
            return Ok(());
        }
        let key = f.key;
        let slot = if st.queue.iter().next().is_none() {
            st.free_slot()
        } else {
            None
        };
        let queued = match slot {
            Some(_) => None,
            None => {
                let ticket = st.next_ticket;
                match RBTreeNode::new(ticket, b, GFP_KERNEL) {
                    Ok(n) => Some((ticket, n)),
                    Err(e) => {
                        st.fetches.remove(&b);
                        return Err(e);
                    }
                }
            }
        };
        // A claim we cannot record only costs merging: fetch anyway. Without a helper the
        // fetch cannot progress: it claims nothing, so nobody waits on it.
        let claimed = st.ring.regions.is_some() && self.shared.pending.claim(&key).unwrap_or(false);
        let Some(f) = st.fetches.get_mut(&b) else {
            return Ok(());
        };
        f.claimed = claimed;
        match (slot, queued) {
            (Some(slot), _) => self.post(st, b, slot),
            (None, Some((ticket, node))) => {
                st.next_ticket += 1;
                f.phase = Phase::Queued { ticket };
                st.queue.insert(node);
            }
            (None, None) => {}
        }
        Ok(())
    }

    /// Starts fetching block `b` in a free slot if it is neither cached nor in flight anywhere
    /// and more than `reserve` slots are free; readahead and prefetch never queue. Returns
    /// whether it started a fetch.
    pub(crate) fn prefetch(&self, st: &mut State, b: u64, reserve: usize) -> bool {
        let Some(key) = self.key(b) else {
            return false;
        };
        if self.is_dead()
            || st.ring.regions.is_none()
            || st.fetches.get(&b).is_some()
            || st.queue.iter().next().is_some()
            || st.free_slots() <= reserve
        {
            return false;
        }
        if self.shared.pending.contains(&key) || self.shared.cache.contains(&key) {
            return false;
        }
        let Ok(node) = RBTreeNode::new(
            b,
            Fetch {
                key,
                phase: Phase::Joined,
                attempts: 0,
                claimed: false,
                demand: false,
                readahead: true,
                started_ns: 0,
            },
            GFP_KERNEL,
        ) else {
            return false;
        };
        st.fetches.insert(node);
        if self.own_fetch(st, b).is_err() {
            return false;
        }
        self.stats.readahead_fetches.fetch_add(1, Ordering::Relaxed);
        true
    }

    /// Posts the fetch of `b` to `slot` (first submission).
    fn post(&self, st: &mut State, b: u64, slot: u32) {
        let Some(s) = st.slots.get_mut(slot as usize) else {
            return;
        };
        *s = Some(b);
        if let Some(f) = st.fetches.get_mut(&b) {
            f.started_ns = time::now_ns();
        }
        self.stats.fetches.fetch_add(1, Ordering::Relaxed);
        self.submit(st, b);
    }

    /// Ends the fetch of `b` with `result`: serves or fails the reads waiting for it, frees
    /// its slot for the next queued fetch and hands it to `d` (its claim is released there).
    /// A good block must already be in the cache, so that joiners find it.
    pub(crate) fn finish(&self, st: &mut State, b: u64, result: Result<&Block>, d: &mut Deferred) {
        let Some((phase, readahead)) = st.fetches.get(&b).map(|f| (f.phase, f.readahead)) else {
            return;
        };
        let Some(node) = st.fetches.remove_node(&b) else {
            return;
        };
        self.readahead_full.store(false, Ordering::Relaxed);
        match phase {
            Phase::Submitted { slot, .. } => {
                if let Some(s) = st.slots.get_mut(slot as usize) {
                    *s = None;
                }
            }
            Phase::Queued { ticket } => {
                st.queue.remove(&ticket);
            }
            Phase::Joined => {}
        }
        if let Some(old) = d.finished.insert(node) {
            d.finished.insert(old);
        }
        if result.is_err() {
            self.stats.io_errors.fetch_add(1, Ordering::Relaxed);
        }
        self.serve_waiters(st, b, result.map_err(|_| ()), d);
        self.fill_slots(st);
        // Not after a failure: a failing server would get the whole window at once.
        if readahead && result.is_ok() {
            self.readahead_refill(st);
        }
    }

    /// Gives free slots to queued fetches, oldest first.
    pub(crate) fn fill_slots(&self, st: &mut State) {
        while let Some(slot) = st.free_slot() {
            let Some(c) = st.queue.front_mut() else {
                return;
            };
            let (_, node) = c.remove_current();
            let (_, b) = node.to_key_value();
            if matches!(
                st.fetches.get(&b).map(|f| &f.phase),
                Some(Phase::Queued { .. })
            ) {
                self.post(st, b, slot);
            }
        }
    }

    /// Drops the fetch of `b` if it holds no slot and no waiting read needs it any more.
    pub(crate) fn forget_if_unneeded(&self, st: &mut State, b: u64, d: &mut Deferred) {
        let unslotted = matches!(
            st.fetches.get(&b).map(|f| &f.phase),
            Some(Phase::Queued { .. } | Phase::Joined)
        );
        if unslotted && !st.needed(b) {
            if let Some(Phase::Queued { ticket }) = st.fetches.get(&b).map(|f| f.phase) {
                st.queue.remove(&ticket);
            }
            if let Some(node) = st.fetches.remove_node(&b) {
                if let Some(old) = d.finished.insert(node) {
                    d.finished.insert(old);
                }
            }
        }
    }

    /// The other device's fetch that our fetch of `b` joined has ended: serve the block from
    /// the cache, or fetch it ourselves. Called with no lock held. Sleeps.
    pub(crate) fn joined_fetch_ended(&self, b: u64) {
        let mut d = Deferred::new();
        {
            let mut st = self.state.lock();
            let Some(f) = st.fetches.get(&b) else { return };
            if self.is_dead() || !matches!(f.phase, Phase::Joined) {
                return;
            }
            let key = f.key;
            match self.cached(b, &key) {
                Some(blk) => self.finish(&mut st, b, Ok(&blk), &mut d),
                None if st.needed(b) => {
                    if let Err(e) = self.own_fetch(&mut st, b) {
                        self.fail_block(&mut st, b, e, &mut d);
                    }
                }
                None => self.forget_if_unneeded(&mut st, b, &mut d),
            }
        }
        self.flush(d);
    }

    /// Fails the reads waiting for block `b`, which cannot be fetched.
    pub(crate) fn fail_block(&self, st: &mut State, b: u64, _e: Error, d: &mut Deferred) {
        self.stats.io_errors.fetch_add(1, Ordering::Relaxed);
        self.serve_waiters(st, b, Err(()), d);
    }

    /// Does what `d` collected: ends reads, releases claims and tells their joiners. Called
    /// with no lock held. Sleeps.
    pub(crate) fn flush(&self, mut d: Deferred) {
        // Telling joiners makes other devices allocate under their locks.
        let _noio = crate::blk::NoIo::begin();
        while let Some(c) = d.ended.front_mut() {
            let (_, node) = c.remove_current();
            let (_, w) = node.to_key_value();
            w.rq.end(if w.failed { Err(EIO) } else { Ok(()) });
        }
        while let Some(c) = d.finished.front_mut() {
            let (_, node) = c.remove_current();
            let (_, f) = node.to_key_value();
            if f.claimed {
                for j in self.shared.pending.release(&f.key) {
                    j.device.joined_fetch_ended(j.block);
                }
            }
        }
    }
}
