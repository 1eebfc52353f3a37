// SPDX-License-Identifier: GPL-2.0
//! In-kernel block decompression: lzo, lz4 and zstd through lib/'s decoders (what the crypto
//! API's compressors of the same names call; 7.x has no `crypto_comp` any more), zlib through
//! lib/zlib_inflate (crypto "deflate" is raw deflate with a 2 KiB window and cannot read zlib
//! streams).
//!
//! `Decompressor` wraps one transform (or one zlib stream with its workspace) and frees it in
//! `Drop`. `Pool` keeps a few of each codec (one per CPU, at most `MAX_WIDTH`), made on first
//! use and reused after; a transform is used by one caller at a time (the zstd and zlib ones
//! hold per-stream state). The private copy of the compressed input is allocated per block
//! and freed right after, so no buffer outlives the block it served.
//!
//! Context: process context; `Pool::decompress` may sleep.

use core::ptr::NonNull;
use core::sync::atomic::{AtomicUsize, Ordering};

use kernel::new_mutex;
use kernel::prelude::*;
use kernel::sync::Mutex;

use crate::sys::helpers::{self, errno};
use crate::uapi::{CODEC_LZ4, CODEC_LZO, CODEC_ZLIB, CODEC_ZSTD};

/// The compressed codecs, in pool order.
const CODECS: [u8; 4] = [CODEC_LZO, CODEC_LZ4, CODEC_ZSTD, CODEC_ZLIB];
/// Most transforms kept per codec, however many CPUs there are: each zstd or zlib one holds
/// a workspace of a few hundred KiB.
const MAX_WIDTH: usize = 8;

/// One ready decompressor.
///
/// # Invariants
/// The pointer is live, from `httpblk_dec_alloc` (`Lib`) or `httpblk_zlib_alloc` (`Zlib`),
/// and is freed only in `drop`.
enum Decompressor {
    Lib(NonNull<helpers::Dec>),
    Zlib(NonNull<kernel::ffi::c_void>),
}

// SAFETY: A transform may move between threads; `Pool` gives each to one user at a time.
unsafe impl Send for Decompressor {}

impl Decompressor {
    /// Makes a decompressor for `codec`. Sleeps.
    ///
    /// # Errors
    /// `EINVAL` for an unknown codec; `ENOMEM` otherwise.
    fn new(codec: u8) -> Result<Self> {
        let lib = match codec {
            CODEC_LZO => helpers::DEC_LZO,
            CODEC_LZ4 => helpers::DEC_LZ4,
            CODEC_ZSTD => helpers::DEC_ZSTD,
            CODEC_ZLIB => {
                // SAFETY: FFI call without preconditions; returns NULL on failure.
                let s = unsafe { helpers::httpblk_zlib_alloc() };
                // INVARIANT: Allocated above.
                return Ok(Decompressor::Zlib(NonNull::new(s).ok_or(ENOMEM)?));
            }
            _ => return Err(EINVAL),
        };
        // SAFETY: FFI call without preconditions; returns a decoder or an ERR_PTR.
        let d = kernel::error::from_err_ptr(unsafe { helpers::httpblk_dec_alloc(lib) })?;
        // INVARIANT: Allocated above.
        Ok(Decompressor::Lib(NonNull::new(d).ok_or(ENOMEM)?))
    }

    /// Decompresses `src` into `dst`; returns the length written.
    ///
    /// # Errors
    /// The codec's error (`EINVAL` and the like) for a corrupt stream or one longer than `dst`.
    fn run(&mut self, src: &[u8], dst: &mut [u8]) -> Result<usize> {
        let mut dlen = dst.len() as u32;
        let r = match self {
            // SAFETY: Live decoder (invariant); `src` and `dst` are valid for their lengths
            // and `dlen` tells the codec how much of `dst` it may write.
            Decompressor::Lib(d) => unsafe {
                helpers::httpblk_dec_run(
                    d.as_ptr(),
                    src.as_ptr(),
                    src.len() as u32,
                    dst.as_mut_ptr(),
                    &mut dlen,
                )
            },
            // SAFETY: As above, for the zlib stream.
            Decompressor::Zlib(s) => unsafe {
                helpers::httpblk_zlib_inflate(
                    s.as_ptr(),
                    src.as_ptr(),
                    src.len() as u32,
                    dst.as_mut_ptr(),
                    &mut dlen,
                )
            },
        };
        kernel::error::to_result(r)?;
        // A codec never reports more than it was given room for; do not trust that either.
        Ok((dlen as usize).min(dst.len()))
    }
}

impl Drop for Decompressor {
    fn drop(&mut self) {
        match self {
            // SAFETY: By the invariant, freed once, here.
            Decompressor::Lib(d) => unsafe { helpers::httpblk_dec_free(d.as_ptr()) },
            // SAFETY: As above.
            Decompressor::Zlib(s) => unsafe { helpers::httpblk_zlib_free(s.as_ptr()) },
        }
    }
}

/// A pool member: a decompressor made on first use.
struct Member {
    dec: Option<Decompressor>,
}

/// Decompressors shared by every device: `width` members per codec.
pub(crate) struct Pool {
    members: KVec<Pin<KBox<Mutex<Member>>>>,
    width: usize,
    next: AtomicUsize,
}

impl Pool {
    /// A pool with one member per possible CPU (at most `MAX_WIDTH`) for each codec.
    /// Allocates no transform yet.
    ///
    /// # Errors
    /// `ENOMEM`.
    pub(crate) fn new() -> Result<Self> {
        let width = (crate::sys::helpers::nr_cpu_ids() as usize).clamp(1, MAX_WIDTH);
        let mut members = KVec::with_capacity(CODECS.len() * width, GFP_KERNEL)?;
        for _ in 0..CODECS.len() * width {
            members.push(
                KBox::pin_init(
                    new_mutex!(Member { dec: None }, "httpblk:codec"),
                    GFP_KERNEL,
                )?,
                GFP_KERNEL,
            )?;
        }
        Ok(Pool {
            members,
            width,
            next: AtomicUsize::new(0),
        })
    }

    /// Decompresses a `codec` stream that `fill` copies into a buffer of `len` bytes, into
    /// `dst`, which it must fill exactly. Sleeps.
    ///
    /// # Errors
    /// `EINVAL` for an unknown codec, `ENOMEM`, the error of `fill`, or `EBADMSG` when the
    /// stream is corrupt or decodes to another length than `dst.len()`.
    pub(crate) fn decompress(
        &self,
        codec: u8,
        len: usize,
        fill: impl FnOnce(&mut [u8]) -> Result,
        dst: &mut [u8],
    ) -> Result {
        let c = CODECS.iter().position(|&c| c == codec).ok_or(EINVAL)?;
        // The compressed bytes, copied out of memory the helper can still change.
        let mut input = KVVec::with_capacity(len, GFP_KERNEL)?;
        input.extend_with(len, 0, GFP_KERNEL)?;
        fill(&mut input)?;
        let pick = self.next.fetch_add(1, Ordering::Relaxed) % self.width;
        let m = self.members.get(c * self.width + pick).ok_or(EINVAL)?;
        let mut m = m.lock();
        if m.dec.is_none() {
            m.dec = Some(Decompressor::new(codec)?);
        }
        let Some(dec) = m.dec.as_mut() else {
            return Err(EINVAL);
        };
        match dec.run(&input, dst) {
            Ok(n) if n == dst.len() => Ok(()),
            _ => Err(errno(kernel::bindings::EBADMSG)),
        }
    }
}
