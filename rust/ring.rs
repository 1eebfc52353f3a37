// SPDX-License-Identifier: GPL-2.0
//! The fetch ring, kernel side (Documentation/ring.md). The kernel writes submissions into
//! its read-only region and publishes `sq_tail`; the helper fills a slot of its region,
//! writes a completion and publishes `cq_tail`, then calls `IOC_COMMIT`. Every value the
//! helper writes is untrusted: a completion tail more than `nr_slots` ahead kills the device
//! (`EPROTO`), and a completion naming a slot with no fetch of that generation, or one
//! already being checked, is counted as a protocol error and ignored.
#![forbid(unsafe_code)]

use core::mem::{offset_of, size_of};
use core::sync::atomic::Ordering;

use kernel::prelude::*;

use crate::blk::NoIo;
use crate::clock;
use crate::device::Device;
use crate::fetch::{Deferred, Phase, State, MAX_ATTEMPTS};
use crate::ffi::errno;
use crate::uapi::{self, Cqe, HelperHeader, KernelHeader, Sqe};

/// The kernel's ring indexes and fetch generations.
pub(crate) struct RingState {
    pub(crate) sq_tail: u32,
    pub(crate) cq_head: u32,
    pub(crate) next_seq: u32,
}

/// A completion taken off the ring, its fetch marked `completing`.
struct Taken {
    cqe: Cqe,
    block: u64,
}

impl Device {
    /// Posts a submission of the fetch of `b` (a new generation, in its slot) and wakes the
    /// helper.
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
        let sqe = Sqe {
            block: b,
            slot,
            stored_len,
            seq,
            retry: f.attempts,
            reserved: [0; 2],
        };
        let pos = (st.ring.sq_tail % self.nr_slots) as usize;
        // At most `nr_slots` fetches are posted at once, so the entry is free.
        if self
            .kernel_region
            .write(uapi::KERNEL_SQ_OFFSET + pos * size_of::<Sqe>(), sqe)
            .is_err()
        {
            return;
        }
        st.ring.sq_tail = st.ring.sq_tail.wrapping_add(1);
        // Release: the helper that sees the new tail also sees the entry written above.
        if let Ok(tail) = self.kernel_region.index(offset_of!(KernelHeader, sq_tail)) {
            tail.store(st.ring.sq_tail, Ordering::Release);
        }
        self.submitted.notify_all();
    }

    /// `IOC_WAIT`: sleeps until the submission tail differs from `seen`; returns it.
    ///
    /// # Errors
    /// `ENODEV` once the device is dead, `EINTR` on a signal.
    pub(crate) fn wait_submissions(&self, seen: u32) -> Result<u32> {
        let mut st = self.state.lock();
        loop {
            if self.is_dead() {
                return Err(ENODEV);
            }
            if st.ring.sq_tail != seen {
                return Ok(st.ring.sq_tail);
            }
            if self.submitted.wait_interruptible(&mut st) {
                return Err(EINTR);
            }
        }
    }

    /// `IOC_COMMIT`: consumes the helper's completions: checks each block without the lock,
    /// caches the good ones, posts failed ones again (up to `MAX_ATTEMPTS`) and ends fetches.
    ///
    /// # Errors
    /// `ENODEV` when the device is dead, `ENOMEM` (nothing consumed), `EPROTO` (and the device
    /// dies) when the helper's completion tail is impossible.
    pub(crate) fn commit(&self) -> Result {
        let _noio = NoIo::begin();
        let mut taken: KVec<Taken> = KVec::with_capacity(self.nr_slots.get() as usize, GFP_KERNEL)?;
        {
            let mut st = self.state.lock();
            if self.is_dead() {
                return Err(ENODEV);
            }
            // Acquire: entries up to the tail are fully written before we read them.
            let tail = self
                .helper_region
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
                let Ok(cqe) = self
                    .helper_region
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
            self.kernel_region
                .index(offset_of!(KernelHeader, cq_head))?
                .store(tail, Ordering::Release);
        }
        // Copy out and verify without the lock: the claimed slots stay taken meanwhile.
        let mut d = Deferred::new();
        for t in &taken {
            let r = self.check(&t.cqe, t.block);
            self.apply(&mut self.state.lock(), t, r, &mut d);
        }
        self.flush(d);
        Ok(())
    }

    /// Applies the outcome of a checked completion to its fetch, if the fetch still waits
    /// for exactly that completion (the device may have died meanwhile).
    fn apply(
        &self,
        st: &mut State,
        t: &Taken,
        r: Result<kernel::sync::Arc<crate::cache::Block>>,
        d: &mut Deferred,
    ) {
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
                let ns = clock::now_ns().saturating_sub(f.started_ns);
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
