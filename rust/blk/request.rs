// SPDX-License-Identifier: GPL-2.0
//! A typed, owned handle to a started blk-mq request, and the borrowed view a timeout
//! handler gets.
//!
//! blk-mq writes to a request while the driver holds it (its timeout state, its deadline), so
//! no Rust reference to a `struct request` is ever formed: fields are read through the raw
//! pointer, one at a time, as 6.12's `kernel::block::mq::Request` does with `Opaque`.

use core::ptr::NonNull;

use kernel::bindings;
use kernel::prelude::*;

use crate::sys::helpers;

/// The operation of a request.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Op {
    Read,
    Other(u32),
}

/// `REQ_OP_MASK` (include/linux/blk_types.h): the low 8 bits of `cmd_flags`.
const REQ_OP_MASK: u32 = (1 << 8) - 1;

/// A started request that the driver owns until it ends it.
///
/// # Invariants
/// `rq` is a request started with `blk_mq_start_request` and not yet ended; this handle is
/// its only owner (it is neither `Copy` nor `Clone`).
#[must_use = "a request must be ended"]
pub(crate) struct Request {
    rq: NonNull<bindings::request>,
}

// SAFETY: A started request may be completed from any context.
unsafe impl Send for Request {}

impl Request {
    /// # Safety
    /// `rq` must be started, not ended, and owned by the caller.
    pub(super) unsafe fn from_raw(rq: NonNull<bindings::request>) -> Self {
        // INVARIANT: Guaranteed by the caller.
        Self { rq }
    }

    /// Identifies the request while it is in flight (its address), for `TimedOut::id`.
    pub(crate) fn id(&self) -> usize {
        self.rq.as_ptr() as usize
    }

    pub(crate) fn op(&self) -> Op {
        // SAFETY: By the invariant the request is alive; a plain field read.
        let flags = unsafe { (*self.rq.as_ptr()).cmd_flags };
        match flags & REQ_OP_MASK {
            bindings::req_op_REQ_OP_READ => Op::Read,
            other => Op::Other(other),
        }
    }

    /// First sector (512 bytes) of the request.
    pub(crate) fn sector(&self) -> u64 {
        // SAFETY: As in `op`.
        unsafe { (*self.rq.as_ptr()).__sector }
    }

    /// Length of the request in bytes.
    pub(crate) fn bytes(&self) -> u32 {
        // SAFETY: As in `op`.
        unsafe { (*self.rq.as_ptr()).__data_len }
    }

    /// Copies `src` into the request's data at byte offset `skip`.
    ///
    /// # Errors
    /// `EINVAL` when the range does not lie inside the request.
    pub(crate) fn copy_from(&mut self, skip: u32, src: &[u8]) -> Result {
        let len = u32::try_from(src.len()).map_err(|_| EINVAL)?;
        self.check_range(skip, len)?;
        // SAFETY: Owned, started request; the range is inside it (checked above).
        unsafe { helpers::httpblk_rq_copy(self.rq.as_ptr(), skip, src.as_ptr().cast(), len) };
        Ok(())
    }

    /// Fills `len` bytes of the request's data at byte offset `skip` with zeros.
    ///
    /// # Errors
    /// `EINVAL` when the range does not lie inside the request.
    pub(crate) fn zero(&mut self, skip: u32, len: u32) -> Result {
        self.check_range(skip, len)?;
        // SAFETY: As in `copy_from`; a null source means zeros.
        unsafe { helpers::httpblk_rq_copy(self.rq.as_ptr(), skip, core::ptr::null(), len) };
        Ok(())
    }

    fn check_range(&self, skip: u32, len: u32) -> Result {
        match skip.checked_add(len) {
            Some(end) if end <= self.bytes() => Ok(()),
            _ => Err(EINVAL),
        }
    }

    /// Gives the request back to blk-mq without ending it, from `queue_rq` only: blk-mq
    /// dispatches it again shortly (`BLK_STS_RESOURCE`).
    pub(crate) fn busy(self) -> Busy {
        // INVARIANT: The handle is consumed; blk-mq owns the request again once `queue_rq`
        // returns `BLK_STS_RESOURCE`.
        Busy(())
    }

    /// Ends the request with `result`.
    pub(crate) fn end(self, result: Result) {
        let status = match result {
            Ok(()) => bindings::BLK_STS_OK as bindings::blk_status_t,
            // SAFETY: FFI call without preconditions.
            Err(e) => unsafe { bindings::errno_to_blk_status(e.to_errno()) },
        };
        // SAFETY: By the invariant we own a started request; ending consumes the handle.
        unsafe { bindings::blk_mq_end_request(self.rq.as_ptr(), status) };
    }

    /// `request_queue.queuedata` of the request's queue.
    pub(super) fn queuedata(&self) -> *mut kernel::ffi::c_void {
        // SAFETY: A live request points to its live queue.
        unsafe { (*(*self.rq.as_ptr()).q).queuedata }
    }
}

/// Proof that `queue_rq` gave its request back (`Request::busy`).
pub(crate) struct Busy(());

/// A request whose deadline passed, as blk-mq hands it to the timeout handler. The driver
/// still owns the `Request` (somewhere in its own state); this only names it.
pub(crate) struct TimedOut<'a> {
    rq: NonNull<bindings::request>,
    _call: core::marker::PhantomData<&'a ()>,
}

impl TimedOut<'_> {
    /// # Safety
    /// `rq` must be the request of a `.timeout` call in progress; the handle must not outlive
    /// the call.
    pub(super) unsafe fn new(rq: NonNull<bindings::request>) -> Self {
        Self {
            rq,
            _call: core::marker::PhantomData,
        }
    }

    /// The same value as `Request::id` of the owned handle.
    pub(crate) fn id(&self) -> usize {
        self.rq.as_ptr() as usize
    }

    /// First sector (512 bytes) of the request.
    pub(crate) fn sector(&self) -> u64 {
        // SAFETY: The request is alive during the timeout call; a plain field read.
        unsafe { (*self.rq.as_ptr()).__sector }
    }

    /// Length of the request in bytes.
    pub(crate) fn bytes(&self) -> u32 {
        // SAFETY: As in `sector`.
        unsafe { (*self.rq.as_ptr()).__data_len }
    }

    /// Sets the time, in jiffies, after which blk-mq calls the handler again when it returns
    /// `ResetTimer`.
    pub(crate) fn set_timeout(&self, jiffies: u64) {
        let t = jiffies.clamp(1, u64::from(u32::MAX)) as u32;
        // SAFETY: During the timeout call blk-mq reads `timeout` only after the handler
        // returns (`blk_add_timer`); a plain field write.
        unsafe { (*self.rq.as_ptr()).timeout = t };
    }

    pub(super) fn queuedata(&self) -> *mut kernel::ffi::c_void {
        // SAFETY: A live request points to its live queue.
        unsafe { (*(*self.rq.as_ptr()).q).queuedata }
    }
}
