// SPDX-License-Identifier: GPL-2.0
//! Block digests in the kernel: SHA-256 through lib/crypto, MD5 through the crypto API.

use core::ptr::NonNull;

use kernel::prelude::*;

use crate::sys::helpers;
use crate::uapi::{HASH_MD5, HASH_SHA256};

/// Longest digest (SHA-256).
pub(crate) const MAX_DIGEST_LEN: usize = 32;

/// A hash algorithm ready to use.
pub(crate) enum Hasher {
    Sha256,
    /// # Invariants
    /// A live shash transform from `httpblk_md5_alloc`, freed in `drop`.
    Md5(NonNull<helpers::CryptoShash>),
}

// SAFETY: An unkeyed shash transform may be used concurrently (each call has its own desc).
unsafe impl Send for Hasher {}
// SAFETY: As above.
unsafe impl Sync for Hasher {}

impl Hasher {
    /// The hasher for an index hash id.
    ///
    /// # Errors
    /// `EINVAL` for an unknown id; the crypto API's error when MD5 is unavailable.
    pub(crate) fn new(id: u8) -> Result<Self> {
        match id {
            HASH_SHA256 => Ok(Hasher::Sha256),
            HASH_MD5 => {
                // SAFETY: FFI call without preconditions; returns a pointer or an ERR_PTR.
                let tfm = kernel::error::from_err_ptr(unsafe { helpers::httpblk_md5_alloc() })?;
                // INVARIANT: Allocated above.
                Ok(Hasher::Md5(NonNull::new(tfm).ok_or(ENOMEM)?))
            }
            _ => Err(EINVAL),
        }
    }

    pub(crate) fn len(&self) -> usize {
        match self {
            Hasher::Sha256 => 32,
            Hasher::Md5(_) => 16,
        }
    }

    /// Hashes `data` into the first `self.len()` bytes of the result.
    ///
    /// # Errors
    /// The crypto API's error (MD5 only).
    pub(crate) fn digest(&self, data: &[u8]) -> Result<[u8; MAX_DIGEST_LEN]> {
        let mut out = [0u8; MAX_DIGEST_LEN];
        match self {
            // SAFETY: `data` and `out` are valid for their lengths; SHA-256 writes 32 bytes.
            Hasher::Sha256 => unsafe {
                helpers::httpblk_sha256(data.as_ptr(), data.len(), out.as_mut_ptr())
            },
            Hasher::Md5(tfm) => {
                // SAFETY: Live transform (invariant); MD5 writes 16 bytes into `out`.
                kernel::error::to_result(unsafe {
                    helpers::httpblk_md5_digest(
                        tfm.as_ptr(),
                        data.as_ptr(),
                        data.len() as u32,
                        out.as_mut_ptr(),
                    )
                })?
            }
        }
        Ok(out)
    }
}

/// SHA-256 of `data`.
pub(crate) fn sha256(data: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    // SAFETY: `data` and `out` are valid for their lengths.
    unsafe { helpers::httpblk_sha256(data.as_ptr(), data.len(), out.as_mut_ptr()) };
    out
}

impl Drop for Hasher {
    fn drop(&mut self) {
        if let Hasher::Md5(tfm) = self {
            // SAFETY: By the invariant.
            unsafe { helpers::httpblk_md5_free(tfm.as_ptr()) };
        }
    }
}
