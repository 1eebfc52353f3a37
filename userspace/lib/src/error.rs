//! The library's error type: each variant says what went wrong in words a user can act on.
//!
//! Every message carries its whole cause (`{path}: {source}`), so a log line or a status field
//! made with `to_string()` says why; the binary's edge prints a chain without repeating what a
//! message already says.

use std::path::PathBuf;
use std::time::Duration;

use crate::http::FetchError;

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

    /// `at` is the file or URL (without credentials or query) that served the index.
    #[error("{at}: index digest mismatch: expected {expected}, got {actual}")]
    IndexDigestMismatch {
        at: String,
        expected: String,
        actual: String,
    },

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

    /// An HTTP request failed; `url` has no credentials and no query string.
    #[error("{url}: {kind}")]
    Fetch { url: String, kind: FetchError },

    /// A file of a local store is missing.
    #[error("{url}: not found")]
    NotFound { url: String },

    #[error("DNS: {host}: {reason}")]
    Dns { host: String, reason: String },

    #[error("bad cloop image: {0}")]
    BadCloop(String),

    #[error("invalid argument: {0}")]
    Invalid(String),

    /// A task stopped because the command is ending (its runtime shut down): nobody waits
    /// for its result.
    #[error("cancelled")]
    Cancelled,
}

/// The result of a spawned task: a panic in it goes on unwinding in the caller (a bug, not
/// an error to report), a task cancelled at shutdown is `Error::Cancelled`.
pub fn joined<T>(r: std::result::Result<T, tokio::task::JoinError>) -> Result<T> {
    match r {
        Ok(v) => Ok(v),
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => Err(Error::Cancelled),
    }
}

impl Error {
    /// The file is absent (a local store's missing file, or HTTP 404/410).
    pub fn is_missing(&self) -> bool {
        match self {
            Error::NotFound { .. } => true,
            Error::Fetch { kind, .. } => kind.is_missing(),
            _ => false,
        }
    }
}

impl Error {
    /// Worth trying again: the network or a server failed, not the request or the data.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Fetch { kind, .. } => kind.is_retryable(),
            Error::Dns { .. } => true,
            _ => false,
        }
    }

    /// See `FetchError::telling`: a name that did not resolve says more than a refused
    /// connection, bad content (wrong digest, bad index) most.
    pub fn telling(&self) -> u8 {
        match self {
            Error::Fetch { kind, .. } => kind.telling(),
            Error::Dns { .. } => 1,
            _ => 5,
        }
    }

    /// A bad index's error naming the file or URL it came from; other errors unchanged.
    pub fn in_file(self, name: &str) -> Error {
        match self {
            Error::BadIndex(r) => Error::BadIndex(format!("{name}: {r}")),
            e => e,
        }
    }

    /// Keeps in `worst` the more telling of it and `e` (the newer on a tie).
    pub fn keep_telling(worst: &mut Option<Error>, e: Error) {
        if worst.as_ref().is_none_or(|w| e.telling() >= w.telling()) {
            *worst = Some(e);
        }
    }

    /// What a server's `Retry-After` asked for.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::Fetch { kind, .. } => kind.retry_after(),
            _ => None,
        }
    }
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
