// SPDX-License-Identifier: GPL-2.0
//! Checking a block the helper delivered: its length against the index, its header, its
//! decoded length, and its digest against the index, before any byte of it is cached or
//! reaches a reader. Everything is copied out of shared memory first (the compressed bytes
//! when compressed): the helper can change the slot at any time, the checks run on private
//! memory.
#![forbid(unsafe_code)]

use core::sync::atomic::Ordering;

use kernel::prelude::*;
use kernel::sync::Arc;

use crate::cache::Block;
use crate::device::Device;
use crate::ring::Regions;
use crate::sys::helpers::errno;
use crate::sys::vmalloc::SharedRegion;
use crate::uapi::{self, BlockHeader, Cqe};

fn bad_message() -> Error {
    errno(kernel::bindings::EBADMSG)
}

impl Device {
    /// Copies the block a completion delivered for block `b` out of its slot and checks it.
    ///
    /// # Errors
    /// `EIO` when the helper reported a failure, `EBADMSG` when any check fails, `ENOMEM`.
    pub(crate) fn check(&self, r: &Regions, cqe: &Cqe, b: u64) -> Result<Arc<Block>> {
        if cqe.status != 0 {
            self.stats.fetch_errors.fetch_add(1, Ordering::Relaxed);
            return Err(EIO);
        }
        let checked = self.check_block(&r.helper, cqe, b);
        if let Err(e) = &checked {
            if *e != ENOMEM {
                self.stats.verify_failures.fetch_add(1, Ordering::Relaxed);
            }
        }
        checked
    }

    fn check_block(&self, slots: &SharedRegion, cqe: &Cqe, b: u64) -> Result<Arc<Block>> {
        let entry = self.index.entry(b).ok_or(EIO)?;
        let raw_len = self.index.raw_len(b) as usize;
        let len = cqe.len as usize;
        if cqe.len != entry.stored_len || len < uapi::BLOCK_HEADER_LEN || len > self.slot_size {
            return Err(bad_message());
        }
        self.stats
            .fetched_bytes
            .fetch_add(u64::from(cqe.len), Ordering::Relaxed);
        let slot_off =
            uapi::helper_data_offset(self.nr_slots.get()) + cqe.slot as usize * self.slot_size;
        let h: BlockHeader = slots.read(slot_off)?;
        let payload_len = len - uapi::BLOCK_HEADER_LEN;
        let ok = h.magic == uapi::BLOCK_MAGIC
            && h.version == uapi::BLOCK_VERSION
            && h.reserved == [0; 2]
            && u32::from_le(h.raw_len) as usize == raw_len
            && u32::from_le(h.payload_len) as usize == payload_len
            && (h.codec != uapi::CODEC_NONE || payload_len == raw_len);
        if !ok {
            return Err(bad_message());
        }
        let mut data = KVVec::with_capacity(raw_len, GFP_KERNEL)?;
        data.extend_with(raw_len, 0, GFP_KERNEL)?;
        let payload_off = slot_off + uapi::BLOCK_HEADER_LEN;
        if h.codec == uapi::CODEC_NONE {
            slots.copy_out(payload_off, &mut data)?;
        } else {
            let copy_in = |buf: &mut [u8]| slots.copy_out(payload_off, buf);
            if let Err(e) = self
                .shared
                .codecs
                .decompress(h.codec, payload_len, copy_in, &mut data)
            {
                if e != ENOMEM {
                    self.stats
                        .decompress_failures
                        .fetch_add(1, Ordering::Relaxed);
                    return Err(bad_message());
                }
                return Err(e);
            }
            self.stats
                .decompressed_bytes
                .fetch_add(raw_len as u64, Ordering::Relaxed);
        }
        let digest = self.hasher.digest(&data)?;
        if digest.get(..self.hasher.len()) != Some(entry.digest) {
            return Err(bad_message());
        }
        Ok(Arc::new(Block { data }, GFP_KERNEL)?)
    }
}
