// SPDX-License-Identifier: GPL-2.0
//! A typed, owned handle to a started blk-mq request.

use core::ptr::NonNull;

use kernel::bindings;
use kernel::prelude::*;

use super::Workqueue;
use crate::ffi;

/// Per-request driver data (the blk-mq PDU), set up once in `init_request`.
#[repr(C)]
pub(super) struct Pdu {
    /// The work item that runs a deferred request. First field: `work` and the PDU share an
    /// address.
    pub(super) work: bindings::work_struct,
}

/// The operation of a request.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Op {
    Read,
    Other(u32),
}

/// A started request that the driver owns until it ends or defers it.
///
/// # Invariants
/// `rq` is a request started with `blk_mq_start_request` and not yet ended; this handle is
/// its only owner (it is neither `Copy` nor `Clone`).
#[must_use = "a request must be ended or deferred"]
pub(crate) struct Request {
    rq: NonNull<bindings::request>,
}

// SAFETY: a started request may be completed from any context.
unsafe impl Send for Request {}

/// `REQ_OP_MASK` (include/linux/blk_types.h): the low 8 bits of `cmd_flags`.
const REQ_OP_MASK: u32 = (1 << 8) - 1;

impl Request {
    /// # Safety
    /// `rq` must be started, not ended, and owned by the caller.
    pub(super) unsafe fn from_raw(rq: *mut bindings::request) -> Self {
        // INVARIANT: guaranteed by the caller.
        Self { rq: NonNull::new(rq).expect("blk-mq passed a null request") }
    }

    fn raw(&self) -> &bindings::request {
        // SAFETY: by the invariant the request is alive while we own it.
        unsafe { self.rq.as_ref() }
    }

    pub(crate) fn op(&self) -> Op {
        match self.raw().cmd_flags & REQ_OP_MASK {
            bindings::req_op_REQ_OP_READ => Op::Read,
            other => Op::Other(other),
        }
    }

    /// First sector (512 bytes) of the request.
    pub(crate) fn sector(&self) -> u64 {
        self.raw().__sector
    }

    /// Length of the request in bytes.
    pub(crate) fn bytes(&self) -> u32 {
        self.raw().__data_len
    }

    /// Copies `src` into the request's data at byte offset `skip`.
    pub(crate) fn copy_from(&mut self, skip: u32, src: &[u8]) {
        assert!(skip as u64 + src.len() as u64 <= self.bytes() as u64);
        // SAFETY: owned, started request; the range is inside it (checked above).
        unsafe { ffi::httpblk_rq_copy(self.rq.as_ptr(), skip, src.as_ptr().cast(), src.len() as u32) };
    }

    /// Fills `len` bytes of the request's data at byte offset `skip` with zeros.
    pub(crate) fn zero(&mut self, skip: u32, len: u32) {
        assert!(skip as u64 + len as u64 <= self.bytes() as u64);
        // SAFETY: as in `copy_from`; a null source means zeros.
        unsafe { ffi::httpblk_rq_copy(self.rq.as_ptr(), skip, core::ptr::null(), len) };
    }

    /// Ends the request with `result`.
    pub(crate) fn end(self, result: Result) {
        let status = match result {
            Ok(()) => bindings::BLK_STS_OK as bindings::blk_status_t,
            // SAFETY: FFI call without preconditions.
            Err(e) => unsafe { bindings::errno_to_blk_status(e.to_errno()) },
        };
        // SAFETY: by the invariant we own a started request; ending consumes the handle.
        unsafe { bindings::blk_mq_end_request(self.rq.as_ptr(), status) };
    }

    /// Hands the request to `wq`; `Operations::work` gets it back in process context.
    pub(crate) fn defer(self, wq: &Workqueue) {
        // SAFETY: the PDU follows the request (blk_mq_rq_to_pdu); `work` was set up by
        // `init_request`. Ownership passes to the work item.
        unsafe {
            let pdu = self.rq.as_ptr().add(1).cast::<Pdu>();
            bindings::queue_work_on(bindings::wq_misc_consts_WORK_CPU_UNBOUND as _, wq.as_ptr(), &raw mut (*pdu).work);
        }
    }

    /// The request whose PDU holds `work`.
    ///
    /// # Safety
    /// `work` must be the work item of a deferred request's PDU.
    pub(super) unsafe fn from_work(work: *mut bindings::work_struct) -> Self {
        // SAFETY: `work` is the first field of the PDU, which follows the request.
        unsafe { Self::from_raw(work.cast::<bindings::request>().sub(1)) }
    }

    /// `request_queue.queuedata` of the request's queue.
    pub(super) fn queuedata(&self) -> *const kernel::ffi::c_void {
        // SAFETY: a live request points to its live queue.
        unsafe { (*self.raw().q).queuedata }
    }
}
