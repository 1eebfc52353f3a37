//! Reading cloop images (KNOPPIX's compressed loop format, versions 2, 3 and 4) so that
//! `import-cloop` can turn them into httpblk images.
//!
//! V2: a 128-byte shell preamble ("V2.0" at 0x0b), block size and block count (u32 BE), then
//!     count+1 u64 BE file offsets; every block is zlib.
//! V3: everything at the end: "\nCLOOP3\n" is the last 8 bytes, preceded by the version (u32)
//!     and the offset of the footer table: count, block size, original size, count+1 offsets,
//!     count u32 flags (bit 1 zlib, 2 lzo, 3 xz, 4 lz4; none set = stored).
//! V4: the V2 header either first or as the last 136 bytes ("V4.0" at 0x0b); each u64 offset
//!     carries the compressor in its top 4 bits (0 zlib, 1 none, 2 xz, 3 lz4, 4 lzo).

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::Path;

use crate::codec::Codec;
use crate::error::IoContext;
use crate::{Error, Result};

const HEADROOM: usize = 128;
const HEADER_LEN: usize = HEADROOM + 8;
const SIG_OFFSET: usize = 0x0b;
const V3_SIGNATURE: &[u8] = b"\nCLOOP3\n";
/// Largest cloop block size accepted (cloop itself uses at most a few MiB).
const MAX_BLOCK_SIZE: u32 = 64 << 20;

/// How one cloop block is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Method {
    Codec(Codec),
    Xz,
}

/// An opened cloop image.
pub struct Cloop {
    file: File,
    pub version: u8,
    pub block_size: u32,
    /// Uncompressed size.
    pub size: u64,
    /// (offset, length, method) per block.
    blocks: Vec<(u64, u64, Method)>,
}

fn bad(m: impl Into<String>) -> Error {
    Error::BadCloop(m.into())
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes(b[..4].try_into().unwrap())
}

fn be64(b: &[u8]) -> u64 {
    u64::from_be_bytes(b[..8].try_into().unwrap())
}

fn read_at(f: &File, path: &Path, off: u64, len: u64, file_len: u64) -> Result<Vec<u8>> {
    if off.checked_add(len).is_none_or(|end| end > file_len) || len > (1 << 31) {
        return Err(bad(format!(
            "table at {off}+{len} lies outside the {file_len}-byte file"
        )));
    }
    let mut buf = vec![0; len as usize];
    f.read_exact_at(&mut buf, off).at(path)?;
    Ok(buf)
}

impl Cloop {
    pub fn open(path: &Path) -> Result<Cloop> {
        let file = File::open(path).at(path)?;
        let file_len = file.metadata().at(path)?.len();
        if file_len < HEADER_LEN as u64 {
            return Err(bad(format!(
                "{} bytes is too short for a cloop image",
                file_len
            )));
        }
        let head = read_at(&file, path, 0, HEADER_LEN as u64, file_len)?;
        let tail = read_at(
            &file,
            path,
            file_len - HEADER_LEN as u64,
            HEADER_LEN as u64,
            file_len,
        )?;
        let sig = |h: &[u8]| h[SIG_OFFSET..SIG_OFFSET + 4].to_vec();

        let (version, block_size, count, offsets_at, original) =
            if sig(&head) == b"V2.0" || sig(&head) == b"V4.0" {
                let v = if sig(&head) == b"V2.0" { 2 } else { 4 };
                (
                    v,
                    be32(&head[HEADROOM..]),
                    be32(&head[HEADROOM + 4..]),
                    HEADER_LEN as u64,
                    None,
                )
            } else if sig(&tail) == b"V4.0" {
                let count = be32(&tail[HEADROOM + 4..]) as u64;
                let table = (count + 1) * 8;
                let at = (file_len - HEADER_LEN as u64)
                    .checked_sub(table)
                    .ok_or_else(|| bad("footer block count larger than the file"))?;
                (4, be32(&tail[HEADROOM..]), count as u32, at, None)
            } else if tail.ends_with(V3_SIGNATURE) {
                let n = tail.len();
                let v = be32(&tail[n - 12..]);
                if v != 3 {
                    return Err(bad(format!("cloop v3 footer with version {v}")));
                }
                let at = be64(&tail[n - 20..]);
                let fixed = read_at(&file, path, at, 16, file_len)?;
                (
                    3,
                    be32(&fixed[4..]),
                    be32(&fixed[..4]),
                    at + 16,
                    Some(be64(&fixed[8..])),
                )
            } else {
                return Err(bad("no V2.0, V3 or V4.0 signature found"));
            };

        if block_size == 0 || block_size % 512 != 0 || block_size > MAX_BLOCK_SIZE {
            return Err(bad(format!(
                "block size {block_size} is not a multiple of 512 up to {MAX_BLOCK_SIZE}"
            )));
        }
        if count == 0 {
            return Err(bad("no blocks"));
        }
        let table = read_at(&file, path, offsets_at, (count as u64 + 1) * 8, file_len)?;
        let flags = if version == 3 {
            Some(read_at(
                &file,
                path,
                offsets_at + (count as u64 + 1) * 8,
                count as u64 * 4,
                file_len,
            )?)
        } else {
            None
        };
        let mut blocks = Vec::with_capacity(count as usize);
        for i in 0..count as usize {
            let (a, b) = (be64(&table[i * 8..]), be64(&table[i * 8 + 8..]));
            let (start, end, method) = match version {
                2 => (a, b, Method::Codec(Codec::Zlib)),
                3 => {
                    let f = be32(&flags.as_ref().unwrap()[i * 4..]);
                    let m = match f & 0x1e {
                        0 => Method::Codec(Codec::None),
                        0x02 => Method::Codec(Codec::Zlib),
                        0x04 => Method::Codec(Codec::Lzo),
                        0x08 => Method::Xz,
                        0x10 => Method::Codec(Codec::Lz4),
                        _ => return Err(bad(format!("block {i}: flags {f:#x}"))),
                    };
                    (a, b, m)
                }
                _ => {
                    let m = match a >> 60 {
                        0 => Method::Codec(Codec::Zlib),
                        1 => Method::Codec(Codec::None),
                        2 => Method::Xz,
                        3 => Method::Codec(Codec::Lz4),
                        4 => Method::Codec(Codec::Lzo),
                        x => return Err(bad(format!("block {i}: unknown compressor {x}"))),
                    };
                    (a & 0x0fff_ffff_ffff_ffff, b & 0x0fff_ffff_ffff_ffff, m)
                }
            };
            if end < start || end > file_len || end - start > block_size as u64 * 2 + 4096 {
                return Err(bad(format!(
                    "block {i}: offsets {start}..{end} are inconsistent"
                )));
            }
            blocks.push((start, end - start, method));
        }
        let full = count as u64 * block_size as u64;
        let size = original.unwrap_or(full).min(full);
        Ok(Cloop {
            file,
            version,
            block_size,
            size,
            blocks,
        })
    }

    /// The uncompressed bytes of block `i` (always `block_size` long).
    pub fn read_block(&self, i: usize) -> Result<Vec<u8>> {
        let (off, len, method) = self.blocks[i];
        let mut data = vec![0; len as usize];
        self.file
            .read_exact_at(&mut data, off)
            .map_err(|e| bad(format!("block {i}: {e}")))?;
        let mut out = vec![0; self.block_size as usize];
        let n = match method {
            Method::Xz => {
                return Err(bad(format!(
                    "block {i}: xz-compressed blocks are not supported"
                )))
            }
            Method::Codec(Codec::None) if data.len() <= out.len() => {
                out[..data.len()].copy_from_slice(&data);
                data.len()
            }
            Method::Codec(Codec::Zlib) => {
                let zlib = |e: std::io::Error| bad(format!("block {i}: zlib: {e}"));
                let mut dec = flate2::read::ZlibDecoder::new(&data[..]);
                let mut n = 0;
                while n < out.len() {
                    match dec.read(&mut out[n..]).map_err(zlib)? {
                        0 => break,
                        k => n += k,
                    }
                }
                if n == out.len() && dec.read(&mut [0u8]).map_err(zlib)? > 0 {
                    return Err(bad(format!(
                        "block {i} inflates past the block size {}",
                        out.len()
                    )));
                }
                n
            }
            Method::Codec(Codec::Lz4) => lz4_flex::block::decompress_into(&data, &mut out)
                .map_err(|e| bad(format!("block {i}: lz4: {e}")))?,
            Method::Codec(Codec::Lzo) => {
                // lzo1x decodes exactly the block or fails.
                lzo1x::decompress(&data, &mut out)
                    .map_err(|e| bad(format!("block {i}: lzo: {e:?}")))?;
                out.len()
            }
            Method::Codec(c) => {
                return Err(bad(format!(
                    "block {i}: unexpected {c:?} payload of {len} bytes"
                )))
            }
        };
        // Only the last block may be short (cloop pads it with zeros); a short one elsewhere
        // would shift nothing but silently zero data.
        if n < out.len() && i + 1 != self.blocks.len() {
            return Err(bad(format!(
                "block {i} decodes to {n} bytes, not the block size {}",
                out.len()
            )));
        }
        Ok(out)
    }

    /// The image size rounded up to 512 bytes, as httpblk stores it.
    pub fn httpblk_size(&self) -> u64 {
        self.size.div_ceil(512) * 512
    }

    /// A reader over the uncompressed image (padded with zeros to `httpblk_size`).
    pub fn reader(self) -> CloopReader {
        let left = self.httpblk_size();
        CloopReader {
            cloop: self,
            next: 0,
            buf: Vec::new(),
            pos: 0,
            left,
        }
    }
}

/// Sequential reader of a cloop image's contents.
pub struct CloopReader {
    cloop: Cloop,
    next: usize,
    buf: Vec<u8>,
    pos: usize,
    left: u64,
}

impl Read for CloopReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 || out.is_empty() {
            return Ok(0);
        }
        if self.pos == self.buf.len() {
            self.buf = if self.next < self.cloop.blocks.len() {
                self.cloop
                    .read_block(self.next)
                    .map_err(std::io::Error::other)?
            } else {
                vec![0; 512]
            };
            self.next += 1;
            self.pos = 0;
        }
        let n = out
            .len()
            .min(self.buf.len() - self.pos)
            .min(self.left as usize);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        self.left -= n as u64;
        Ok(n)
    }
}
