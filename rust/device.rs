// SPDX-License-Identifier: GPL-2.0
//! One attached image: its index, its fetch ring with the helper, and the read path.
//!
//! Read path (process context, one work item per request): a block is served from the cache,
//! or waits on the one fetch in flight for it (this device's, or for up to half the I/O
//! timeout another device's fetch of the same content, see `pending`), or starts that fetch in
//! a free slot. The helper
//! fills the slot and posts a completion; `commit` copies the block out of shared memory,
//! checks it against its digest, caches it and wakes the waiters. A block that fails the
//! check is fetched again, up to `MAX_ATTEMPTS` times, then the reads fail with EIO. No read
//! waits longer than the device's I/O timeout.
//!
//! Locks: `state` (a mutex) may be held while taking the cache's or the pending table's
//! mutex, never the reverse.
//! Everything here may sleep except `Device::queue_rq`.

use core::mem::offset_of;
use core::num::NonZeroU32;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use kernel::prelude::*;
use kernel::rbtree::{RBTree, RBTreeNode, RBTreeNodeReservation};
use kernel::sync::lock::mutex::MutexBackend;
use kernel::sync::lock::Guard;
use kernel::sync::{Arc, ArcBorrow, CondVar, CondVarTimeoutResult, LockedBy, Mutex};
use kernel::{new_condvar, new_mutex};

use crate::blk::{self, Op, Request, Workqueue};
use crate::cache::{self, Block, Cache};
use crate::clock;
use crate::codec;
use crate::digest::Hasher;
use crate::params;
use crate::pending::Pending;
use crate::ffi::errno;
use crate::index::Index;
use crate::shmem::SharedRegion;
use crate::uapi::{self, Cqe, HelperHeader, KernelHeader, Sqe};

/// Fetches of one block that fail verification before its reads fail.
const MAX_ATTEMPTS: u32 = 3;

// SAFETY: plain integers, every bit pattern is valid.
unsafe impl kernel::types::FromBytes for Cqe {}

/// Things every device shares.
pub(crate) struct Shared {
    pub(crate) cache: Arc<Cache>,
    /// Blocks being fetched by any device.
    pub(crate) pending: Arc<Pending>,
    pub(crate) codecs: codec::Pool,
    pub(crate) wq: Workqueue,
}

/// Settings of a new device, validated by the caller.
pub(crate) struct Params {
    pub(crate) nr_slots: u32,
    pub(crate) io_timeout_ms: u32,
    /// The source URL, NUL-terminated (for sysfs and status).
    pub(crate) url: [u8; uapi::URL_LEN],
}

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
    pub(crate) timeouts: AtomicU64,
    pub(crate) protocol_errors: AtomicU64,
    pub(crate) io_errors: AtomicU64,
    /// Writes, flushes and discards refused (the device is read-only; md must never repair).
    pub(crate) writes_refused: AtomicU64,
    pub(crate) readahead_fetches: AtomicU64,
    /// Misses that waited on another fetch of the same content instead of fetching.
    pub(crate) joined_fetches: AtomicU64,
    /// Sum and maximum of the time from submission to verified block, over `fetch_ok`.
    pub(crate) fetch_ok: AtomicU64,
    pub(crate) fetch_ns_total: AtomicU64,
    pub(crate) fetch_ns_max: AtomicU64,
}

/// One fetch in flight in a slot.
struct Fetch {
    block: u64,
    slot: u32,
    /// When the first submission was posted (`clock::now_ns`).
    started_ns: u64,
    /// The key this fetch claimed in `Shared::pending`, released when it ends.
    claimed: Option<cache::Key>,
    inner: LockedBy<FetchInner, State>,
}

struct FetchInner {
    /// Generation of the current submission; a completion must echo it.
    seq: u32,
    attempts: u32,
    /// A completion for the current submission is being checked.
    completing: bool,
    result: Option<Result<Arc<Block>>>,
}

/// How a miss proceeds: wait for a fetch, or the block is already here.
enum Step {
    Wait(Arc<Fetch>),
    Done(Arc<Block>),
}

struct State {
    /// The fetch occupying each slot.
    slots: KVec<Option<Arc<Fetch>>>,
    /// Fetches in flight by block number: concurrent misses share one.
    inflight: RBTree<u64, Arc<Fetch>>,
    /// Tickets of the misses waiting for a free slot, oldest first.
    slot_queue: RBTree<u64, ()>,
    next_ticket: u64,
    sq_tail: u32,
    cq_head: u32,
    next_seq: u32,
}

#[pin_data]
pub(crate) struct Device {
    pub(crate) id: u32,
    pub(crate) index: Index,
    pub(crate) index_sha256: [u8; 32],
    pub(crate) url: [u8; uapi::URL_LEN],
    hasher: Hasher,
    /// Ring size; non-zero so that `% nr_slots` has no panic path.
    nr_slots: NonZeroU32,
    slot_size: usize,
    pub(crate) kernel_region: SharedRegion,
    pub(crate) helper_region: SharedRegion,
    io_timeout: u64,
    io_timeout_ms: u32,
    /// The block after the last one read, to spot sequential readers for readahead.
    last_read_end: AtomicU64,
    dead: AtomicBool,
    pub(crate) started: AtomicBool,
    pub(crate) shared: Arc<Shared>,
    pub(crate) stats: Stats,
    #[pin]
    state: Mutex<State>,
    /// Signalled when a fetch ends, a slot frees up, or the device dies.
    #[pin]
    changed: CondVar,
    /// Signalled when the kernel posts a submission (the helper waits on it).
    #[pin]
    submitted: CondVar,
}

impl Device {
    /// Creates a device for `index` with its ring.
    ///
    /// # Errors
    /// `ENOMEM`, or the hasher's error.
    pub(crate) fn new(id: u32, index: Index, index_sha256: [u8; 32], p: &Params, shared: Arc<Shared>) -> Result<Arc<Self>> {
        let hasher = Hasher::new(index.hash_id)?;
        let kernel_region = SharedRegion::new(uapi::kernel_region_len(p.nr_slots))?;
        let helper_region = SharedRegion::new(uapi::helper_region_len(p.nr_slots, index.block_shift))?;
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
                hasher,
                nr_slots: NonZeroU32::new(p.nr_slots).ok_or(EINVAL)?,
                kernel_region,
                helper_region,
                io_timeout: clock::ms_to_jiffies(p.io_timeout_ms),
                io_timeout_ms: p.io_timeout_ms,
                dead: AtomicBool::new(false),
                started: AtomicBool::new(false),
                shared,
                stats: Stats::default(),
                state <- new_mutex!(
                    State {
                        slots,
                        inflight: RBTree::new(),
                        slot_queue: RBTree::new(),
                        next_ticket: 0,
                        sq_tail: 0,
                        cq_head: 0,
                        next_seq: 1,
                    },
                    "httpblk:device"
                ),
                changed <- new_condvar!("httpblk:changed"),
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

    /// Fails every fetch and every future read; tells the helper to stop. Idempotent.
    pub(crate) fn kill(&self) {
        if self.dead.swap(true, Ordering::AcqRel) {
            return;
        }
        let mut g = self.state.lock();
        self.kernel_region.index(offset_of!(KernelHeader, dead)).store(1, Ordering::Release);
        for slot in 0..self.nr_slots.get() {
            if let Some(f) = g.slots[slot as usize].clone() {
                self.finish(&mut g, &f, Err(EIO));
            }
        }
        drop(g);
        self.changed.notify_all();
        self.submitted.notify_all();
    }

    // ---- read path -------------------------------------------------------------------------

    /// Serves a read request. Sleeps.
    fn read(&self, rq: &mut Request) -> Result {
        let start = rq.sector() * 512;
        let len = rq.bytes() as u64;
        let end = start.checked_add(len).ok_or(EIO)?;
        if len == 0 || end > self.index.image_size {
            return Err(EIO);
        }
        self.stats.reads.fetch_add(1, Ordering::Relaxed);
        self.stats.read_bytes.fetch_add(len, Ordering::Relaxed);
        let shift = self.index.block_shift;
        let (first, last) = (start >> shift, (end - 1) >> shift);
        // Start every missing block of the request before waiting for the first.
        for b in first..=last {
            self.prefetch(b, 0)?;
        }
        self.readahead(first, last);
        for b in first..=last {
            let block_start = b << shift;
            let from = start.max(block_start);
            let to = end.min(block_start + self.index.raw_len(b) as u64);
            let skip = (from - start) as u32;
            let n = (to - from) as usize;
            match self.block(b)? {
                None => rq.zero(skip, n as u32),
                Some(blk) => {
                    let off = (from - block_start) as usize;
                    rq.copy_from(skip, &blk.data[off..off + n]);
                }
            }
        }
        Ok(())
    }

    fn cache_key(&self, b: u64) -> Option<cache::Key> {
        let e = self.index.entry(b);
        (e.stored_len != 0).then(|| cache::key(self.index.hash_id, e.digest))
    }

    /// Starts fetching block `b` if it is neither cached nor in flight and more than `reserve`
    /// slots are free.
    fn prefetch(&self, b: u64, reserve: usize) -> Result {
        let Some(key) = self.cache_key(b) else { return Ok(()) };
        let mut g = self.state.lock();
        // Optional work: never ahead of misses queued for a slot.
        if g.inflight.get(&b).is_some()
            || g.slot_queue.keys().next().is_some()
            || g.slots.iter().filter(|s| s.is_none()).count() <= reserve
        {
            return Ok(());
        }
        if self.shared.pending.contains(&key) || self.shared.cache.contains(&key) {
            return Ok(());
        }
        if self.start_fetch(&mut g, b, key)?.is_some() && reserve > 0 {
            self.stats.readahead_fetches.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    /// When reads are sequential, starts fetching the `readahead_kb` after block `last`. A
    /// quarter of the slots stay free for demand misses, so readahead never delays them.
    fn readahead(&self, first: u64, last: u64) {
        let prev_end = self.last_read_end.swap(last + 1, Ordering::Relaxed);
        // Sequential: this read starts in the block the previous one ended in, or the next.
        if first != prev_end && first.wrapping_add(1) != prev_end {
            return;
        }
        let ahead = (u64::from(params::READAHEAD_KB.get()) << 10) >> self.index.block_shift;
        let end = last.saturating_add(ahead).min(self.index.nr_blocks.saturating_sub(1));
        // Never the last slot: with one slot, no readahead at all.
        let reserve = (self.nr_slots.get() / 4).max(1) as usize;
        for b in last + 1..=end {
            if self.prefetch(b, reserve).is_err() {
                break;
            }
        }
    }

    /// The contents of block `b` (`None` for a zero block), waiting for its fetch if needed.
    fn block(&self, b: u64) -> Result<Option<Arc<Block>>> {
        let Some(key) = self.cache_key(b) else { return Ok(None) };
        if let Some(blk) = self.shared.cache.get(&key) {
            self.stats.cache_hits.fetch_add(1, Ordering::Relaxed);
            return Ok(Some(blk));
        }
        self.stats.cache_misses.fetch_add(1, Ordering::Relaxed);
        let now = clock::jiffies();
        let deadline = now + self.io_timeout;
        // Past this, a fetch of the same content by another device is not waited for: that
        // device's servers may be down while ours are fine.
        let join_until = now + self.io_timeout / 2;
        let mut joined = false;
        // Our place in the queue for a free slot, once we had to wait for one.
        let mut ticket: Option<u64> = None;
        let mut g = self.state.lock();
        let step = loop {
            if self.is_dead() {
                break Err(EIO);
            }
            if let Some(f) = g.inflight.get(&b) {
                break Ok(Step::Wait(f.clone()));
            }
            // Looked up before the cache: a fetch caches its block before releasing its claim.
            let elsewhere = self.shared.pending.contains(&key);
            // It may have completed between the lookup above and taking the lock.
            if let Some(blk) = self.shared.cache.get(&key) {
                if joined {
                    self.stats.joined_fetches.fetch_add(1, Ordering::Relaxed);
                }
                break Ok(Step::Done(blk));
            }
            if elsewhere && clock::jiffies() < join_until {
                // Not holding up the queue meanwhile.
                self.leave_slot_queue(&mut g, &mut ticket);
                drop(g);
                self.shared.pending.wait(&key, join_until);
                joined = true;
                g = self.state.lock();
                continue;
            }
            // Slots go to waiters first come, first served: otherwise, with few slots and many
            // readers, one reader can lose every race until its timeout.
            let first_in_line = match ticket {
                Some(t) => g.slot_queue.keys().next() == Some(&t),
                None => g.slot_queue.keys().next().is_none(),
            };
            if first_in_line {
                match self.start_fetch(&mut g, b, key) {
                    Ok(Some(f)) => break Ok(Step::Wait(f)),
                    Ok(None) => {}
                    Err(e) => break Err(e),
                }
            }
            if ticket.is_none() {
                let node = match RBTreeNode::new(g.next_ticket, (), GFP_KERNEL) {
                    Ok(n) => n,
                    Err(e) => break Err(e.into()),
                };
                ticket = Some(g.next_ticket);
                g.next_ticket += 1;
                g.slot_queue.insert(node);
            }
            if let Err(e) = self.wait(&mut g, deadline) {
                break Err(e);
            }
        };
        self.leave_slot_queue(&mut g, &mut ticket);
        let fetch = match step? {
            Step::Wait(f) => f,
            Step::Done(blk) => return Ok(Some(blk)),
        };
        loop {
            if let Some(r) = &fetch.inner.access(&g).result {
                return r.clone().map(Some);
            }
            if self.is_dead() {
                return Err(EIO);
            }
            self.wait(&mut g, deadline)?;
        }
    }

    /// Gives up a place in the slot queue; the next in line may now take a slot.
    fn leave_slot_queue(&self, g: &mut Guard<'_, State, MutexBackend>, ticket: &mut Option<u64>) {
        if let Some(t) = ticket.take() {
            g.slot_queue.remove(&t);
            self.changed.notify_all();
        }
    }

    /// Sleeps until something changes or `deadline` passes (then EIO).
    fn wait(&self, g: &mut Guard<'_, State, MutexBackend>, deadline: u64) -> Result {
        let now = clock::jiffies();
        if now >= deadline {
            self.stats.timeouts.fetch_add(1, Ordering::Relaxed);
            return Err(EIO);
        }
        match self.changed.wait_interruptible_timeout(g, (deadline - now) as _) {
            CondVarTimeoutResult::Timeout => {
                self.stats.timeouts.fetch_add(1, Ordering::Relaxed);
                Err(EIO)
            }
            _ => Ok(()),
        }
    }

    /// Puts a new fetch of block `b` (cache key `key`) in a free slot. `None` when every slot
    /// is busy.
    fn start_fetch(&self, g: &mut Guard<'_, State, MutexBackend>, b: u64, key: cache::Key) -> Result<Option<Arc<Fetch>>> {
        let Some(slot) = g.slots.iter().position(|s| s.is_none()) else { return Ok(None) };
        let inner = FetchInner { seq: 0, attempts: 0, completing: false, result: None };
        let reservation = RBTreeNodeReservation::new(GFP_KERNEL)?;
        let claimed = self.shared.pending.claim(&key)?.then_some(key);
        let fetch = Fetch { block: b, slot: slot as u32, started_ns: clock::now_ns(), claimed, inner: LockedBy::new(&self.state, inner) };
        // Every claim must reach `finish`, or be released here.
        let fetch = match Arc::new(fetch, GFP_KERNEL) {
            Ok(f) => f,
            Err(e) => {
                if claimed.is_some() {
                    self.shared.pending.release(&key);
                }
                return Err(e.into());
            }
        };
        let node = reservation.into_node(b, fetch.clone());
        g.inflight.insert(node);
        g.slots[slot] = Some(fetch.clone());
        self.stats.fetches.fetch_add(1, Ordering::Relaxed);
        self.submit(g, &fetch);
        Ok(Some(fetch))
    }

    /// Posts a submission for `fetch` (new generation) and wakes the helper.
    fn submit(&self, g: &mut Guard<'_, State, MutexBackend>, fetch: &Fetch) {
        let seq = g.next_seq;
        g.next_seq = g.next_seq.wrapping_add(1);
        let inner = fetch.inner.access_mut(&mut **g);
        inner.seq = seq;
        inner.completing = false;
        let sqe = Sqe {
            block: fetch.block,
            slot: fetch.slot,
            stored_len: self.index.entry(fetch.block).stored_len,
            seq,
            retry: inner.attempts,
            reserved: [0; 2],
        };
        // PANIC: `sq_tail % nr_slots` < nr_slots, so the entry lies inside the kernel region.
        let pos = (g.sq_tail % self.nr_slots) as usize;
        self.kernel_region.write(uapi::KERNEL_SQ_OFFSET + pos * core::mem::size_of::<Sqe>(), sqe);
        g.sq_tail = g.sq_tail.wrapping_add(1);
        // Release: the helper that sees the new tail also sees the entry written above.
        self.kernel_region.index(offset_of!(KernelHeader, sq_tail)).store(g.sq_tail, Ordering::Release);
        self.submitted.notify_all();
    }

    /// Ends `fetch` with `result`, freeing its slot.
    fn finish(&self, g: &mut Guard<'_, State, MutexBackend>, fetch: &Fetch, result: Result<Arc<Block>>) {
        if result.is_err() {
            self.stats.io_errors.fetch_add(1, Ordering::Relaxed);
        }
        fetch.inner.access_mut(&mut **g).result = Some(result);
        g.slots[fetch.slot as usize] = None;
        g.inflight.remove(&fetch.block);
        if let Some(k) = &fetch.claimed {
            self.shared.pending.release(k);
        }
    }

    // ---- helper side -----------------------------------------------------------------------

    /// `IOC_WAIT`: sleeps until the submission tail differs from `seen`; returns it.
    ///
    /// # Errors
    /// `ENODEV` once the device is dead, `EINTR` on a signal.
    pub(crate) fn wait_submissions(&self, seen: u32) -> Result<u32> {
        let mut g = self.state.lock();
        loop {
            if self.is_dead() {
                return Err(ENODEV);
            }
            if g.sq_tail != seen {
                return Ok(g.sq_tail);
            }
            if self.submitted.wait_interruptible(&mut g) {
                return Err(EINTR);
            }
        }
    }

    /// `IOC_COMMIT`: consumes the helper's completions.
    ///
    /// # Errors
    /// `EPROTO` (and the device dies) when the helper's completion tail is impossible.
    pub(crate) fn commit(&self) -> Result {
        let mut taken = KVec::new();
        {
            let mut g = self.state.lock();
            if self.is_dead() {
                return Err(ENODEV);
            }
            // Acquire: entries up to the tail are fully written before we read them.
            let tail = self.helper_region.index(offset_of!(HelperHeader, cq_tail)).load(Ordering::Acquire);
            let n = tail.wrapping_sub(g.cq_head);
            if n > self.nr_slots.get() {
                drop(g);
                self.protocol_error(format_args!("completion tail {} is {} ahead of the head", tail, n));
                return Err(errno(kernel::bindings::EPROTO));
            }
            for i in 0..n {
                // PANIC: the position is < nr_slots, inside the completion ring.
                let pos = (g.cq_head.wrapping_add(i) % self.nr_slots) as usize;
                let cqe: Cqe = self.helper_region.read(uapi::HELPER_CQ_OFFSET + pos * core::mem::size_of::<Cqe>());
                match self.claim(&mut g, &cqe) {
                    Some(f) => taken.push((cqe, f), GFP_KERNEL)?,
                    None => {
                        self.stats.protocol_errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            g.cq_head = tail;
            self.kernel_region.index(offset_of!(KernelHeader, cq_head)).store(tail, Ordering::Release);
        }
        // Copy out and verify without the lock: claimed slots stay reserved meanwhile.
        let mut checked = KVec::with_capacity(taken.len(), GFP_KERNEL)?;
        for (cqe, f) in taken {
            let r = self.check(&cqe, &f);
            checked.push((cqe.status == 0, f, r), GFP_KERNEL)?;
        }
        let mut g = self.state.lock();
        for (fetched, f, r) in checked {
            if f.inner.access(&g).result.is_some() {
                continue; // killed meanwhile
            }
            match r {
                Ok(block) => {
                    if let Some(key) = self.cache_key(f.block) {
                        // A full cache only costs a refetch later.
                        let _ = self.shared.cache.insert(key, block.clone());
                    }
                    let ns = clock::now_ns().saturating_sub(f.started_ns);
                    self.stats.fetch_ok.fetch_add(1, Ordering::Relaxed);
                    self.stats.fetch_ns_total.fetch_add(ns, Ordering::Relaxed);
                    self.stats.fetch_ns_max.fetch_max(ns, Ordering::Relaxed);
                    self.finish(&mut g, &f, Ok(block));
                }
                Err(e) => {
                    let inner = f.inner.access_mut(&mut *g);
                    inner.attempts += 1;
                    if fetched && inner.attempts < MAX_ATTEMPTS {
                        self.submit(&mut g, &f);
                    } else {
                        self.finish(&mut g, &f, Err(e));
                    }
                }
            }
        }
        drop(g);
        self.changed.notify_all();
        Ok(())
    }

    /// Checks that a completion names a slot with a fetch of that generation not already being
    /// completed, and claims it.
    fn claim(&self, g: &mut Guard<'_, State, MutexBackend>, cqe: &Cqe) -> Option<Arc<Fetch>> {
        let f = g.slots.get(cqe.slot as usize)?.clone()?;
        let inner = f.inner.access_mut(&mut **g);
        if inner.seq != cqe.seq || inner.completing || inner.result.is_some() {
            return None;
        }
        inner.completing = true;
        Some(f)
    }

    /// Copies a completed block out of its slot and verifies it.
    fn check(&self, cqe: &Cqe, f: &Fetch) -> Result<Arc<Block>> {
        if cqe.status != 0 {
            self.stats.fetch_errors.fetch_add(1, Ordering::Relaxed);
            return Err(EIO);
        }
        let entry = self.index.entry(f.block);
        let raw_len = self.index.raw_len(f.block);
        if cqe.len != entry.stored_len {
            self.stats.verify_failures.fetch_add(1, Ordering::Relaxed);
            return Err(errno(kernel::bindings::EBADMSG));
        }
        self.stats.fetched_bytes.fetch_add(cqe.len as u64, Ordering::Relaxed);
        let slot_off = uapi::helper_data_offset(self.nr_slots.get()) + f.slot as usize * self.slot_size;
        let mut header = [0u8; uapi::BLOCK_HEADER_LEN];
        self.helper_region.copy_out(slot_off, &mut header);
        let payload_len = cqe.len as usize - uapi::BLOCK_HEADER_LEN;
        let codec = header[5];
        let ok = header[..4] == uapi::BLOCK_MAGIC
            && header[4] == uapi::BLOCK_VERSION
            && header[6] == 0
            && header[7] == 0
            && u32::from_le_bytes([header[8], header[9], header[10], header[11]]) as usize == raw_len
            && u32::from_le_bytes([header[12], header[13], header[14], header[15]]) as usize == payload_len
            && (codec != uapi::CODEC_NONE || payload_len == raw_len);
        if !ok {
            self.stats.verify_failures.fetch_add(1, Ordering::Relaxed);
            return Err(errno(kernel::bindings::EBADMSG));
        }
        let mut data = KVVec::with_capacity(raw_len, GFP_KERNEL)?;
        data.extend_with(raw_len, 0, GFP_KERNEL)?;
        let payload_off = slot_off + uapi::BLOCK_HEADER_LEN;
        // One copy out of shared memory (of the compressed bytes, when compressed); everything
        // after works on private memory the helper cannot change.
        if codec == uapi::CODEC_NONE {
            self.helper_region.copy_out(payload_off, &mut data);
        } else {
            let copy_in = |buf: &mut [u8]| self.helper_region.copy_out(payload_off, buf);
            if let Err(e) = self.shared.codecs.decompress(codec, payload_len, copy_in, &mut data) {
                self.stats.decompress_failures.fetch_add(1, Ordering::Relaxed);
                return Err(e);
            }
            self.stats.decompressed_bytes.fetch_add(raw_len as u64, Ordering::Relaxed);
        }
        let digest = self.hasher.digest(&data)?;
        if digest[..self.hasher.len()] != *entry.digest {
            self.stats.verify_failures.fetch_add(1, Ordering::Relaxed);
            return Err(errno(kernel::bindings::EBADMSG));
        }
        Ok(Arc::new(Block { data }, GFP_KERNEL)?)
    }

    fn protocol_error(&self, what: core::fmt::Arguments<'_>) {
        self.stats.protocol_errors.fetch_add(1, Ordering::Relaxed);
        pr_err!("httpblk{}: helper broke the ring protocol ({}); failing the device\n", self.id, what);
        self.kill();
    }

    /// Length of the helper's data slots.
    pub(crate) fn slot_size(&self) -> usize {
        self.slot_size
    }
}

blk::disk_attrs!(ATTRS, "httpblk", Device, [
    "index_sha256", "url", "image_size", "block_size", "hash", "nr_slots", "io_timeout_ms",
    "reads", "read_bytes", "cache_hits", "cache_misses", "fetches", "readahead_fetches",
    "joined_fetches", "fetched_bytes", "decompressed_bytes", "fetch_latency_avg_us", "fetch_latency_max_us",
    "verify_failures", "decompress_failures", "fetch_errors", "timeouts", "protocol_errors",
    "io_errors", "writes_refused", "cache_bytes", "cache_limit_bytes", "cache_blocks", "cache_evictions",
]);

impl Device {
    /// The sysfs attributes of this device's disk.
    pub(crate) fn attrs() -> &'static blk::sysfs::Groups {
        &ATTRS
    }

    /// Prints sysfs attribute `name`: one value and a newline.
    fn show_attr(&self, name: &[u8], out: &mut dyn core::fmt::Write) -> core::fmt::Result {
        let s = &self.stats;
        let c = &self.shared.cache;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let value = match name {
            b"index_sha256" => {
                for b in self.index_sha256 {
                    write!(out, "{:02x}", b)?;
                }
                return writeln!(out);
            }
            b"url" => {
                let end = self.url.iter().position(|&b| b == 0).unwrap_or(self.url.len());
                for &b in &self.url[..end] {
                    // URLs are ASCII; anything else is shown escaped.
                    if b.is_ascii_graphic() {
                        out.write_char(b as char)?;
                    } else {
                        write!(out, "%{:02X}", b)?;
                    }
                }
                return writeln!(out);
            }
            b"hash" => return writeln!(out, "{}", if self.index.hash_id == uapi::HASH_MD5 { "md5" } else { "sha256" }),
            b"image_size" => self.index.image_size,
            b"block_size" => 1u64 << self.index.block_shift,
            b"nr_slots" => u64::from(self.nr_slots.get()),
            b"io_timeout_ms" => u64::from(self.io_timeout_ms),
            b"reads" => get(&s.reads),
            b"read_bytes" => get(&s.read_bytes),
            b"cache_hits" => get(&s.cache_hits),
            b"cache_misses" => get(&s.cache_misses),
            b"fetches" => get(&s.fetches),
            b"readahead_fetches" => get(&s.readahead_fetches),
            b"joined_fetches" => get(&s.joined_fetches),
            b"fetched_bytes" => get(&s.fetched_bytes),
            b"decompressed_bytes" => get(&s.decompressed_bytes),
            b"fetch_latency_avg_us" => get(&s.fetch_ns_total) / get(&s.fetch_ok).max(1) / 1000,
            b"fetch_latency_max_us" => get(&s.fetch_ns_max) / 1000,
            b"verify_failures" => get(&s.verify_failures),
            b"decompress_failures" => get(&s.decompress_failures),
            b"fetch_errors" => get(&s.fetch_errors),
            b"timeouts" => get(&s.timeouts),
            b"protocol_errors" => get(&s.protocol_errors),
            b"io_errors" => get(&s.io_errors),
            b"writes_refused" => get(&s.writes_refused),
            b"cache_bytes" => c.bytes() as u64,
            b"cache_limit_bytes" => u64::from(params::CACHE_MB.get()) << 20,
            b"cache_blocks" => c.len() as u64,
            b"cache_evictions" => get(&c.evictions),
            _ => return Err(core::fmt::Error),
        };
        writeln!(out, "{}", value)
    }
}

impl blk::Operations for Device {
    type QueueData = Arc<Device>;

    fn queue_rq(dev: ArcBorrow<'_, Device>, rq: Request) {
        if rq.op() != Op::Read {
            // Read-only device: writes, flushes and discards fail cleanly.
            dev.stats.writes_refused.fetch_add(1, Ordering::Relaxed);
            rq.end(Err(EROFS));
        } else if dev.is_dead() {
            rq.end(Err(EIO));
        } else {
            rq.defer(&dev.shared.wq);
        }
    }

    fn work(dev: ArcBorrow<'_, Device>, mut rq: Request) {
        let r = dev.read(&mut rq);
        rq.end(r);
    }

    fn show(dev: ArcBorrow<'_, Device>, attr: &kernel::str::CStr, out: &mut dyn core::fmt::Write) -> core::fmt::Result {
        dev.show_attr(attr.as_bytes(), out)
    }
}
