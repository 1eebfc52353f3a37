//! The library's error type: each variant says what went wrong in words a user can act on.

use std::path::PathBuf;

/// Errors of the httpblk library.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("bad index: {0}")]
    BadIndex(String),

    #[error("index digest mismatch: expected {expected}, got {actual}")]
    IndexDigestMismatch { expected: String, actual: String },

    #[error("block {index} ({name}): {reason}")]
    BadBlock {
        index: u64,
        name: String,
        reason: String,
    },

    #[error("bad block file: {0}")]
    BadBlockFile(String),

    #[error("codec {codec}: {reason}")]
    Codec { codec: &'static str, reason: String },

    #[error("bad source: {0}")]
    BadSource(String),

    #[error("{url}: {reason}")]
    Http { url: String, reason: String },

    #[error("{url}: not found (HTTP 404)")]
    NotFound { url: String },

    #[error("bad cloop image: {0}")]
    BadCloop(String),

    #[error("invalid argument: {0}")]
    Invalid(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Attaches a path to an I/O error.
pub trait IoContext<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|source| Error::Io {
            path: path.into(),
            source,
        })
    }
}
