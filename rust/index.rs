// SPDX-License-Identifier: GPL-2.0
//! The image index as the kernel sees it: parsed and checked once when a device is added,
//! then only read. Layout in Documentation/format.md; offsets in `uapi`.
#![forbid(unsafe_code)]

use kernel::prelude::*;

use crate::uapi::*;

/// One block of the image.
pub(crate) struct Entry<'a> {
    pub(crate) digest: &'a [u8],
    /// Length of the block file; 0 for an all-zero block.
    pub(crate) stored_len: u32,
}

/// # Invariants
/// `raw` passed every check of `parse`: its header is consistent and it holds exactly
/// `nr_blocks` entries of `digest_len + 4` bytes with valid stored lengths.
pub(crate) struct Index {
    pub(crate) image_size: u64,
    pub(crate) block_shift: u8,
    pub(crate) hash_id: u8,
    pub(crate) nr_blocks: u64,
    digest_len: usize,
    raw: KVVec<u8>,
}

/// The little-endian `u32` at `off`; 0 past the end (callers check lengths first).
fn le32(b: &[u8], off: usize) -> u32 {
    b.get(off..off + 4)
        .and_then(|s| s.try_into().ok())
        .map_or(0, u32::from_le_bytes)
}

fn le64(b: &[u8], off: usize) -> u64 {
    u64::from(le32(b, off)) | (u64::from(le32(b, off + 4)) << 32)
}

macro_rules! reject {
    ($($arg:tt)*) => {{
        pr_err!("bad index: {}\n", format_args!($($arg)*));
        return Err(EINVAL);
    }};
}

impl Index {
    /// Checks an index received from the helper.
    ///
    /// # Errors
    /// `EINVAL`, with the reason logged, for any inconsistency.
    pub(crate) fn parse(raw: KVVec<u8>) -> Result<Self> {
        let b = &raw[..];
        if b.len() < INDEX_HEADER_LEN || b[..8] != INDEX_MAGIC {
            reject!("no httpblk index header");
        }
        if le32(b, IDX_OFF_VERSION) != INDEX_VERSION || le32(b, IDX_OFF_FLAGS) != 0 {
            reject!("unsupported version or flags");
        }
        if b[IDX_OFF_RESERVED..INDEX_HEADER_LEN]
            .iter()
            .any(|&x| x != 0)
        {
            reject!("reserved header bytes are not zero");
        }
        let image_size = le64(b, IDX_OFF_IMAGE_SIZE);
        let nr_blocks = le64(b, IDX_OFF_BLOCK_COUNT);
        let block_shift = b[IDX_OFF_BLOCK_SHIFT];
        let hash_id = b[IDX_OFF_HASH];
        let digest_len = match hash_id {
            HASH_SHA256 => 32,
            HASH_MD5 => 16,
            _ => reject!("unknown hash {}", hash_id),
        };
        if !(MIN_BLOCK_SHIFT..=MAX_BLOCK_SHIFT).contains(&block_shift) {
            reject!("block shift {}", block_shift);
        }
        if image_size == 0 || image_size % 512 != 0 {
            reject!("image size {}", image_size);
        }
        let bs = 1u64 << block_shift;
        if nr_blocks > MAX_BLOCKS || nr_blocks != image_size.div_ceil(bs) {
            reject!("{} blocks for {} bytes", nr_blocks, image_size);
        }
        let entry_len = digest_len + INDEX_ENTRY_LEN_FIELD;
        if (b.len() - INDEX_HEADER_LEN) as u64 != nr_blocks * entry_len as u64 {
            reject!(
                "{} bytes of entries for {} blocks",
                b.len() - INDEX_HEADER_LEN,
                nr_blocks
            );
        }
        let max_stored = max_stored_len(block_shift) as u32;
        for (i, e) in b[INDEX_HEADER_LEN..].chunks_exact(entry_len).enumerate() {
            let stored_len = le32(e, digest_len);
            let bad = if stored_len == 0 {
                e[..digest_len].iter().any(|&x| x != 0)
            } else {
                stored_len as usize <= BLOCK_HEADER_LEN || stored_len > max_stored
            };
            if bad {
                reject!("block {}: stored length {}", i, stored_len);
            }
        }
        // INVARIANT: Every check above passed.
        Ok(Self {
            image_size,
            block_shift,
            hash_id,
            nr_blocks,
            digest_len,
            raw,
        })
    }

    /// Entry of block `i`; `None` past the last block.
    pub(crate) fn entry(&self, i: u64) -> Option<Entry<'_>> {
        if i >= self.nr_blocks {
            return None;
        }
        let el = self.digest_len + INDEX_ENTRY_LEN_FIELD;
        // Cannot overflow: `parse` checked that `nr_blocks` entries fit in `raw`.
        let off = INDEX_HEADER_LEN + i as usize * el;
        let e = self.raw.get(off..off + el)?;
        Some(Entry {
            digest: e.get(..self.digest_len)?,
            stored_len: le32(e, self.digest_len),
        })
    }

    /// Decoded length of block `i` (the last block may be short); 0 past the last block.
    pub(crate) fn raw_len(&self, i: u64) -> u32 {
        if i >= self.nr_blocks {
            return 0;
        }
        let start = i << self.block_shift;
        // `parse` checked that block `nr_blocks - 1` starts inside the image.
        self.image_size
            .saturating_sub(start)
            .min(1u64 << self.block_shift) as u32
    }

    /// The block holding byte `pos`.
    pub(crate) fn block_of(&self, pos: u64) -> u64 {
        pos >> self.block_shift
    }

    /// First byte of block `b`.
    pub(crate) fn block_start(&self, b: u64) -> u64 {
        b << self.block_shift
    }
}
