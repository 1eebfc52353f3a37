//! Content digests: a block is named by the hash of its uncompressed bytes.

use md5::Md5;
use sha2::{Digest as _, Sha256};

use crate::{Error, Result};

/// Longest digest any algorithm produces.
pub const MAX_DIGEST_LEN: usize = 32;

/// The hash algorithm of an image, recorded in its index.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HashAlg {
    Sha256,
    Md5,
}

impl HashAlg {
    /// Wire value in the index header (also `uapi::HASH_*`).
    pub fn id(self) -> u8 {
        match self {
            HashAlg::Sha256 => crate::uapi::HASH_SHA256,
            HashAlg::Md5 => crate::uapi::HASH_MD5,
        }
    }

    pub fn from_id(id: u8) -> Result<Self> {
        match id {
            crate::uapi::HASH_SHA256 => Ok(HashAlg::Sha256),
            crate::uapi::HASH_MD5 => Ok(HashAlg::Md5),
            _ => Err(Error::BadIndex(format!("unknown hash algorithm {id}"))),
        }
    }

    pub fn digest_len(self) -> usize {
        match self {
            HashAlg::Sha256 => 32,
            HashAlg::Md5 => 16,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            HashAlg::Sha256 => "sha256",
            HashAlg::Md5 => "md5",
        }
    }

    pub fn from_name(name: &str) -> Result<Self> {
        match name {
            "sha256" => Ok(HashAlg::Sha256),
            "md5" => Ok(HashAlg::Md5),
            _ => Err(Error::Invalid(format!(
                "unknown hash '{name}' (sha256, md5)"
            ))),
        }
    }

    /// Hashes `data`.
    pub fn digest(self, data: &[u8]) -> BlockDigest {
        let mut d = BlockDigest {
            bytes: [0; MAX_DIGEST_LEN],
            len: self.digest_len() as u8,
        };
        match self {
            HashAlg::Sha256 => d.bytes.copy_from_slice(&Sha256::digest(data)),
            HashAlg::Md5 => d.bytes[..16].copy_from_slice(&Md5::digest(data)),
        }
        d
    }
}

/// A block's content digest; its hex form is the block's file name.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct BlockDigest {
    bytes: [u8; MAX_DIGEST_LEN],
    len: u8,
}

impl BlockDigest {
    /// Wraps digest bytes read from an index.
    pub fn from_slice(b: &[u8]) -> Self {
        assert!(b.len() <= MAX_DIGEST_LEN);
        let mut d = BlockDigest {
            bytes: [0; MAX_DIGEST_LEN],
            len: b.len() as u8,
        };
        d.bytes[..b.len()].copy_from_slice(b);
        d
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }

    pub fn hex(&self) -> String {
        hex::encode(self.as_bytes())
    }
}

impl std::fmt::Debug for BlockDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.hex())
    }
}

/// SHA-256 of a whole file's bytes, in hex: the identity of an index.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}
