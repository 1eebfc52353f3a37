//! Where an image lives: a local store directory or an HTTP URL of its index. Both read the
//! same files by the same relative paths.

use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;

use crate::digest::sha256_hex;
use crate::error::IoContext;
use crate::fetch::HttpClient;
use crate::index::Index;
use crate::store::{list_indexes, INDEX_SUFFIX};
use crate::uapi::MAX_INDEX_LEN;
use crate::{Error, Result};

/// The image's store: a directory or an HTTP base URL (ending in '/').
#[derive(Clone)]
pub enum Store {
    Dir(PathBuf),
    Http { base: String, client: HttpClient },
}

/// One image: its store and the index's path relative to it.
#[derive(Clone)]
pub struct Location {
    pub store: Store,
    pub index_name: String,
}

/// Default per-request timeout for userspace reads.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

impl Location {
    /// Parses `http://HOST/PATH/NAME.hbi`, an index file path, or a store directory that holds
    /// exactly one index.
    pub fn parse(arg: &str) -> Result<Location> {
        Ok(Self::parse_all(arg)?.remove(0))
    }

    /// Like `parse`, but a directory yields every index it holds.
    pub fn parse_all(arg: &str) -> Result<Vec<Location>> {
        if arg.starts_with("http://") || arg.starts_with("https://") {
            let (base, name) = arg.rsplit_once('/').unwrap();
            if !name.ends_with(INDEX_SUFFIX) {
                return Err(Error::Invalid(format!(
                    "{arg}: a URL must name the index file (…/NAME{INDEX_SUFFIX})"
                )));
            }
            let client = HttpClient::new(DEFAULT_TIMEOUT);
            let store = Store::Http {
                base: format!("{base}/"),
                client,
            };
            return Ok(vec![Location {
                store,
                index_name: name.to_string(),
            }]);
        }
        let path = Path::new(arg);
        if path.is_dir() {
            let found = list_indexes(path)?;
            if found.is_empty() {
                return Err(Error::Invalid(format!(
                    "{arg}: no *{INDEX_SUFFIX} index in this directory"
                )));
            }
            return Ok(found
                .into_iter()
                .map(|p| Location {
                    store: Store::Dir(path.to_path_buf()),
                    index_name: p.file_name().unwrap().to_string_lossy().into_owned(),
                })
                .collect());
        }
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let name = path
            .file_name()
            .ok_or_else(|| Error::Invalid(format!("{arg}: not a file")))?;
        Ok(vec![Location {
            store: Store::Dir(dir.to_path_buf()),
            index_name: name.to_string_lossy().into_owned(),
        }])
    }

    /// Human-readable name of a file of this store.
    pub fn describe(&self, rel: &str) -> String {
        match &self.store {
            Store::Dir(d) => d.join(rel).display().to_string(),
            Store::Http { base, .. } => format!("{base}{rel}"),
        }
    }

    /// Reads a file of the store, refusing more than `max_len` bytes.
    pub async fn get(&self, rel: &str, max_len: usize) -> Result<Bytes> {
        match &self.store {
            Store::Dir(d) => {
                let path = d.join(rel);
                let data = match tokio::fs::read(&path).await {
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        return Err(Error::NotFound {
                            url: path.display().to_string(),
                        })
                    }
                    r => r.at(&path)?,
                };
                if data.len() > max_len {
                    return Err(Error::BadBlockFile(format!(
                        "{}: {} bytes, expected at most {max_len}",
                        path.display(),
                        data.len()
                    )));
                }
                Ok(data.into())
            }
            Store::Http { base, client } => client.get(&format!("{base}{rel}"), max_len).await,
        }
    }

    /// Reads a file of the store into `buf`, returning its length; a file longer than `buf` is
    /// an error. Over HTTP the body goes straight into `buf`.
    pub async fn get_into(&self, rel: &str, buf: &mut [u8]) -> Result<usize> {
        match &self.store {
            Store::Dir(_) => {
                let data = self.get(rel, buf.len()).await?;
                buf[..data.len()].copy_from_slice(&data);
                Ok(data.len())
            }
            Store::Http { base, client } => client.get_into(&format!("{base}{rel}"), buf).await,
        }
    }

    /// Fetches and parses the index; with `pin`, refuses an index whose SHA-256 differs.
    /// Returns the index and its SHA-256 (hex).
    pub async fn open(&self, pin: Option<&str>) -> Result<(Index, String, Bytes)> {
        let raw = self.get(&self.index_name, MAX_INDEX_LEN as usize).await?;
        let actual = sha256_hex(&raw);
        if let Some(expected) = pin {
            if !expected.eq_ignore_ascii_case(&actual) {
                return Err(Error::IndexDigestMismatch {
                    expected: expected.to_lowercase(),
                    actual,
                });
            }
        }
        Ok((Index::parse(&raw)?, actual, raw))
    }
}
