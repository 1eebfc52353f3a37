//! The index file: image geometry, hash algorithm, and per block its digest and stored length.
//! Layout in Documentation/format.md; the offsets are in `uapi` (shared with the kernel).

use crate::digest::{BlockDigest, HashAlg};
use crate::uapi::*;
use crate::{Error, Result};

/// One block of the image as the index records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    pub digest: BlockDigest,
    /// Length of the block file; 0 for an all-zero block, which is not stored.
    pub stored_len: u32,
}

impl Entry {
    pub fn is_zero(&self) -> bool {
        self.stored_len == 0
    }
}

/// A parsed, validated index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Index {
    pub image_size: u64,
    pub block_shift: u8,
    pub hash: HashAlg,
    pub entries: Vec<Entry>,
}

fn bad(msg: impl Into<String>) -> Error {
    Error::BadIndex(msg.into())
}

fn le_u32(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(b[off..off + 4].try_into().unwrap())
}

fn le_u64(b: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(b[off..off + 8].try_into().unwrap())
}

/// Number of blocks an image of `image_size` bytes has.
pub fn block_count(image_size: u64, block_shift: u8) -> u64 {
    image_size.div_ceil(1u64 << block_shift)
}

impl Index {
    pub fn block_size(&self) -> u64 {
        1 << self.block_shift
    }

    /// Uncompressed length of block `i` (the last block may be short).
    pub fn raw_len(&self, i: u64) -> usize {
        let start = i << self.block_shift;
        (self.image_size - start).min(self.block_size()) as usize
    }

    /// Serializes the index.
    pub fn to_bytes(&self) -> Vec<u8> {
        let dlen = self.hash.digest_len();
        let mut out = Vec::with_capacity(INDEX_HEADER_LEN + self.entries.len() * (dlen + 4));
        out.extend_from_slice(&INDEX_MAGIC);
        out.extend_from_slice(&INDEX_VERSION.to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&self.image_size.to_le_bytes());
        out.extend_from_slice(&(self.entries.len() as u64).to_le_bytes());
        out.push(self.block_shift);
        out.push(self.hash.id());
        out.resize(INDEX_HEADER_LEN, 0);
        for e in &self.entries {
            out.extend_from_slice(e.digest.as_bytes());
            out.extend_from_slice(&e.stored_len.to_le_bytes());
        }
        out
    }

    /// Checks an index's header (its first `INDEX_HEADER_LEN` bytes, or all of a shorter
    /// input) and returns the length the whole file must have, so that a reader can refuse
    /// a file that is no index, or one of the wrong length, before reading the rest of it.
    ///
    /// # Errors
    /// `BadIndex` naming the first violated rule.
    pub fn expected_len(b: &[u8]) -> Result<usize> {
        Ok(Header::parse(b)?.file_len())
    }

    /// Parses and validates an index. Never panics; never allocates more than the input
    /// justifies (the entry count is checked against the input length first).
    ///
    /// # Errors
    /// `BadIndex` naming the first violated rule.
    pub fn parse(b: &[u8]) -> Result<Index> {
        let h = Header::parse(b)?;
        let Header {
            image_size,
            count,
            block_shift,
            hash,
        } = h;
        let entry_len = h.entry_len();
        let body = &b[INDEX_HEADER_LEN..];
        if body.len() as u64 != count * entry_len as u64 {
            return Err(bad(format!(
                "{} entry bytes, expected {} for {count} blocks",
                body.len(),
                count * entry_len as u64
            )));
        }
        let max_stored = max_stored_len(block_shift) as u32;
        let mut entries = Vec::with_capacity(count as usize);
        for (i, chunk) in body.chunks_exact(entry_len).enumerate() {
            let digest = BlockDigest::from_slice(&chunk[..hash.digest_len()]);
            let stored_len = le_u32(chunk, hash.digest_len());
            if stored_len == 0 {
                if digest.as_bytes().iter().any(|&x| x != 0) {
                    return Err(bad(format!("block {i}: zero block with a non-zero digest")));
                }
            } else if stored_len as usize <= BLOCK_HEADER_LEN || stored_len > max_stored {
                return Err(bad(format!(
                    "block {i}: stored length {stored_len} out of range"
                )));
            }
            entries.push(Entry { digest, stored_len });
        }
        Ok(Index {
            image_size,
            block_shift,
            hash,
            entries,
        })
    }
}

/// The fixed-size start of an index, validated.
#[derive(Clone, Copy)]
struct Header {
    image_size: u64,
    count: u64,
    block_shift: u8,
    hash: HashAlg,
}

impl Header {
    fn parse(b: &[u8]) -> Result<Header> {
        if b.len() < INDEX_HEADER_LEN {
            return Err(bad(format!(
                "truncated header: {} bytes, need {INDEX_HEADER_LEN}",
                b.len()
            )));
        }
        if b[..8] != INDEX_MAGIC {
            return Err(bad("not an httpblk index (bad magic)"));
        }
        let version = le_u32(b, IDX_OFF_VERSION);
        if version != INDEX_VERSION {
            return Err(bad(format!(
                "unsupported version {version} (this reader knows {INDEX_VERSION})"
            )));
        }
        let flags = le_u32(b, IDX_OFF_FLAGS);
        if flags != 0 {
            return Err(bad(format!("unknown flags {flags:#x}")));
        }
        if b[IDX_OFF_RESERVED..INDEX_HEADER_LEN]
            .iter()
            .any(|&x| x != 0)
        {
            return Err(bad("reserved header bytes are not zero"));
        }
        let image_size = le_u64(b, IDX_OFF_IMAGE_SIZE);
        let count = le_u64(b, IDX_OFF_BLOCK_COUNT);
        let block_shift = b[IDX_OFF_BLOCK_SHIFT];
        let hash = HashAlg::from_id(b[IDX_OFF_HASH])?;
        if !(MIN_BLOCK_SHIFT..=MAX_BLOCK_SHIFT).contains(&block_shift) {
            return Err(bad(format!(
                "block shift {block_shift} outside {MIN_BLOCK_SHIFT}..={MAX_BLOCK_SHIFT}"
            )));
        }
        if image_size == 0 || !image_size.is_multiple_of(512) {
            return Err(bad(format!(
                "image size {image_size} is not a positive multiple of 512"
            )));
        }
        if count != block_count(image_size, block_shift) {
            return Err(bad(format!(
                "block count {count} does not match image size {image_size}"
            )));
        }
        if count > MAX_BLOCKS {
            return Err(bad(format!(
                "{count} blocks exceed the limit of {MAX_BLOCKS}"
            )));
        }
        Ok(Header {
            image_size,
            count,
            block_shift,
            hash,
        })
    }

    fn entry_len(&self) -> usize {
        self.hash.digest_len() + INDEX_ENTRY_LEN_FIELD
    }

    /// At most `INDEX_HEADER_LEN + MAX_BLOCKS * (64 + 4)`, which fits any usize we run on.
    fn file_len(&self) -> usize {
        INDEX_HEADER_LEN + self.count as usize * self.entry_len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Index {
        let hash = HashAlg::Sha256;
        Index {
            image_size: 3 * 4096 + 512,
            block_shift: 12,
            hash,
            entries: vec![
                Entry {
                    digest: hash.digest(b"a"),
                    stored_len: 100,
                },
                Entry {
                    digest: BlockDigest::from_slice(&[0; 32]),
                    stored_len: 0,
                },
                Entry {
                    digest: hash.digest(b"b"),
                    stored_len: 4096 + 16,
                },
                Entry {
                    digest: hash.digest(b"c"),
                    stored_len: 40,
                },
            ],
        }
    }

    #[test]
    fn round_trip() {
        let idx = sample();
        assert_eq!(Index::parse(&idx.to_bytes()).unwrap(), idx);
        assert_eq!(idx.raw_len(3), 512);
        assert_eq!(idx.raw_len(0), 4096);
    }

    #[test]
    fn rejects_truncation_at_every_length() {
        let b = sample().to_bytes();
        for n in 0..b.len() {
            assert!(
                Index::parse(&b[..n]).is_err(),
                "accepted {n} of {} bytes",
                b.len()
            );
        }
    }

    #[test]
    fn rejects_inconsistent_fields() {
        let good = sample().to_bytes();
        let cases: Vec<(usize, u8, &str)> = vec![
            (0, b'X', "magic"),
            (IDX_OFF_VERSION, 2, "version"),
            (IDX_OFF_FLAGS, 1, "flags"),
            (IDX_OFF_BLOCK_SHIFT, 11, "shift"),
            (IDX_OFF_BLOCK_SHIFT, 23, "shift"),
            (IDX_OFF_HASH, 9, "hash"),
            (IDX_OFF_RESERVED + 3, 1, "reserved"),
            (IDX_OFF_IMAGE_SIZE, 1, "size not multiple of 512"),
            (IDX_OFF_BLOCK_COUNT, 9, "count"),
            (INDEX_HEADER_LEN + 36 + 32, 1, "zero block stored length"),
        ];
        for (off, val, what) in cases {
            let mut b = good.clone();
            b[off] = val;
            assert!(Index::parse(&b).is_err(), "accepted bad {what}");
        }
        let mut b = good.clone();
        b.push(0);
        assert!(Index::parse(&b).is_err(), "accepted trailing byte");
        // A stored length larger than a raw block plus header is a lie.
        let mut b = good;
        let off = INDEX_HEADER_LEN + 32;
        b[off..off + 4].copy_from_slice(&(4096u32 + 17).to_le_bytes());
        assert!(Index::parse(&b).is_err());
    }
}
