//! Where an image lives, and the one way every command reads it: a local store directory, or
//! one or more HTTP(S) URLs of its index (mirrors, fetched through `mirrors` and `http` with
//! their retries, hedging, proxies and TLS). Both read the same files by the same relative
//! paths.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;

use crate::digest::sha256_hex;
use crate::error::{joined, IoContext};
use crate::http::image_url::{is_url, redact_text};
use crate::http::Options;
use crate::index::Index;
use crate::mirrors::{Endpoint, Mirrors};
use crate::store::{list_indexes, INDEX_SUFFIX};
use crate::uapi::INDEX_HEADER_LEN;
use crate::{Error, Result};

/// An image, as named on the command line.
#[derive(Clone, Debug)]
pub enum Location {
    /// `DIR/INDEX_NAME` on local disk.
    Dir { dir: PathBuf, index_name: String },
    /// Index URLs of mirrors that serve the same image.
    Http { urls: Vec<String> },
}

/// Where block files come from once the image is open.
pub enum Store {
    Dir(PathBuf),
    Mirrors(Arc<Mirrors>),
}

/// An opened image: its store and its checked index.
pub struct Opened {
    pub store: Store,
    pub index: Index,
    /// SHA-256 of the index file (hex).
    pub index_sha256: String,
    pub raw: Bytes,
}

/// Opens a local file of a store, refusing anything but a regular file (a pipe is opened
/// without waiting for a writer, then refused).
fn read_bounded_open(path: &Path) -> Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    let f = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
    {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::NotFound {
                url: path.display().to_string(),
            })
        }
        r => r.at(path)?,
    };
    if !f.metadata().at(path)?.is_file() {
        return Err(Error::Invalid(format!(
            "{}: not a regular file",
            path.display()
        )));
    }
    Ok(f)
}

/// Reads a local index file: its header first, so that a file that is no index, or one whose
/// length is not the one its header gives, is refused before the rest is read. Errors name
/// the file.
pub fn read_index(path: &Path) -> Result<Vec<u8>> {
    let name = path.display().to_string();
    let mut f = read_bounded_open(path)?;
    let mut head = Vec::with_capacity(INDEX_HEADER_LEN);
    (&mut f)
        .take(INDEX_HEADER_LEN as u64)
        .read_to_end(&mut head)
        .at(path)?;
    let want = Index::expected_len(&head).map_err(|e| e.in_file(&name))?;
    let len = f.metadata().at(path)?.len();
    if len != want as u64 {
        return Err(Error::BadIndex(format!(
            "{name}: {len} bytes, its header says {want}"
        )));
    }
    let mut raw = head;
    raw.reserve_exact(want - raw.len());
    // The file may grow meanwhile: never read past its length.
    f.take((want - raw.len()) as u64)
        .read_to_end(&mut raw)
        .at(path)?;
    if raw.len() != want {
        return Err(Error::BadIndex(format!(
            "{name}: shrank to {} bytes while read",
            raw.len()
        )));
    }
    Ok(raw)
}

/// Reads a local file of at most `max_len` bytes, refusing anything else (a device, a pipe,
/// a larger file) before reading it.
pub fn read_bounded(path: &Path, max_len: usize) -> Result<Vec<u8>> {
    let f = read_bounded_open(path)?;
    let meta = f.metadata().at(path)?;
    if meta.len() > max_len as u64 {
        return Err(Error::BadBlockFile(format!(
            "{}: {} bytes, expected at most {max_len}",
            path.display(),
            meta.len()
        )));
    }
    let mut data = Vec::with_capacity(meta.len() as usize);
    // The file may grow meanwhile: never read past the limit.
    f.take(max_len as u64 + 1).read_to_end(&mut data).at(path)?;
    if data.len() > max_len {
        return Err(Error::BadBlockFile(format!(
            "{}: more than {max_len} bytes",
            path.display()
        )));
    }
    Ok(data)
}

/// The local path `arg` names: a path as given, or a `file://` URL's path. Another URL
/// scheme (ftp://, s3://) is refused rather than looked for as a file of that name.
pub fn local_path(arg: &str) -> Result<PathBuf> {
    let scheme = match arg.split_once("://") {
        Some((s, _))
            if s.starts_with(|c: char| c.is_ascii_alphabetic())
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)) =>
        {
            s
        }
        _ => return Ok(arg.into()),
    };
    if !scheme.eq_ignore_ascii_case("file") {
        return Err(Error::Invalid(format!(
            "{scheme}:// is not supported: give http:// or https:// URLs, or a local path"
        )));
    }
    url::Url::parse(arg)
        .ok()
        .and_then(|u| u.to_file_path().ok())
        .ok_or_else(|| {
            Error::Invalid(format!(
                "{}: not a local file URL (file:///PATH, no host)",
                redact_text(arg)
            ))
        })
}

fn index_name_of(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

impl Location {
    /// Parses the image arguments: one or more http(s):// index URLs (mirrors), an index
    /// file, or a store directory. A directory with several indexes needs `pin` (the index
    /// digest) to choose one.
    pub fn parse(args: &[String], pin: Option<&str>) -> Result<Location> {
        let Some(first) = args.first() else {
            return Err(Error::Invalid("no image given".into()));
        };
        if args.iter().any(|a| is_url(a)) {
            if !args.iter().all(|a| is_url(a)) {
                return Err(Error::Invalid(
                    "mirrors must all be http:// or https:// URLs".into(),
                ));
            }
            return Ok(Location::Http {
                urls: args.to_vec(),
            });
        }
        if args.len() > 1 {
            return Err(Error::Invalid(
                "several images given: only URLs can be mirrors of one image".into(),
            ));
        }
        let mut all = Self::parse_all(first)?;
        if all.len() == 1 {
            return Ok(all.remove(0));
        }
        let names: Vec<String> = all.iter().map(|l| l.describe()).collect();
        let Some(pin) = pin else {
            return Err(Error::Invalid(format!(
                "{first} holds {} indexes ({}): name one, or choose by --index-digest",
                all.len(),
                names.join(", ")
            )));
        };
        for l in all {
            if let Location::Dir { dir, index_name } = &l {
                let raw = read_index(&dir.join(index_name))?;
                if sha256_hex(&raw).eq_ignore_ascii_case(pin) {
                    return Ok(l);
                }
            }
        }
        Err(Error::Invalid(format!(
            "{first}: none of its indexes ({}) has digest {pin}",
            names.join(", ")
        )))
    }

    /// Like `parse` for one argument, but a directory yields every index it holds.
    pub fn parse_all(arg: &str) -> Result<Vec<Location>> {
        if is_url(arg) {
            return Ok(vec![Location::Http {
                urls: vec![arg.to_string()],
            }]);
        }
        let path = &local_path(arg)?;
        if path.is_dir() {
            let found = list_indexes(path)?;
            if found.is_empty() {
                return Err(Error::Invalid(format!(
                    "{arg}: no *{INDEX_SUFFIX} index in this directory"
                )));
            }
            return Ok(found
                .into_iter()
                .map(|p| Location::Dir {
                    dir: path.to_path_buf(),
                    index_name: index_name_of(&p),
                })
                .collect());
        }
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        if path.file_name().is_none() {
            return Err(Error::Invalid(format!("{arg}: not a file")));
        }
        Ok(vec![Location::Dir {
            dir: dir.to_path_buf(),
            index_name: index_name_of(path),
        }])
    }

    /// The index as it may be shown (URLs without credentials or query).
    pub fn describe(&self) -> String {
        match self {
            Location::Dir { dir, index_name } => dir.join(index_name).display().to_string(),
            Location::Http { urls } => urls
                .iter()
                .map(|u| match crate::http::ImageUrl::parse(u) {
                    Ok(u) => u.redacted(),
                    Err(_) => "(bad URL)".into(),
                })
                .collect::<Vec<_>>()
                .join(" "),
        }
    }

    /// Reads and checks the index (with `pin`, refuses one whose SHA-256 differs); over HTTP,
    /// from every mirror, which must agree.
    pub async fn open(&self, pin: Option<&str>, opts: &Options) -> Result<Opened> {
        match self {
            Location::Dir { dir, index_name } => {
                let path = dir.join(index_name);
                let raw = read_index(&path)?;
                let actual = sha256_hex(&raw);
                if let Some(expected) = pin {
                    if !expected.eq_ignore_ascii_case(&actual) {
                        return Err(Error::IndexDigestMismatch {
                            at: path.display().to_string(),
                            expected: expected.to_lowercase(),
                            actual,
                        });
                    }
                }
                Ok(Opened {
                    store: Store::Dir(dir.clone()),
                    index: Index::parse(&raw)
                        .map_err(|e| e.in_file(&path.display().to_string()))?,
                    index_sha256: actual,
                    raw: raw.into(),
                })
            }
            Location::Http { urls } => {
                let (m, index, sha, raw) = Mirrors::open(urls, pin, opts).await?;
                Ok(Opened {
                    store: Store::Mirrors(m),
                    index,
                    index_sha256: sha,
                    raw,
                })
            }
        }
    }
}

impl Store {
    /// Human-readable name of a file of this store.
    pub fn describe(&self, rel: &str) -> String {
        match self {
            Store::Dir(d) => d.join(rel).display().to_string(),
            Store::Mirrors(_) => rel.to_string(),
        }
    }

    /// Reads a file of the store into `buf`, returning its length; a file longer than `buf` is
    /// an error.
    pub async fn get_into(&self, rel: &str, buf: &mut [u8]) -> Result<usize> {
        match self {
            Store::Dir(d) => {
                let path = d.join(rel);
                let max = buf.len();
                let data =
                    joined(tokio::task::spawn_blocking(move || read_bounded(&path, max)).await)??;
                buf[..data.len()].copy_from_slice(&data);
                Ok(data.len())
            }
            Store::Mirrors(m) => {
                m.fetch_into(rel, buf, None).await?;
                Ok(buf.len())
            }
        }
    }

    /// Fills `buf` with block file `rel`, which must be exactly that long. Over HTTP,
    /// `avoid` is a mirror whose copy turned out bad; returns the mirror that served it.
    pub async fn fetch_into(
        &self,
        rel: &str,
        buf: &mut [u8],
        avoid: Option<Arc<Endpoint>>,
    ) -> Result<Option<Arc<Endpoint>>> {
        match self {
            Store::Dir(_) => {
                let n = self.get_into(rel, buf).await?;
                if n != buf.len() {
                    return Err(Error::BadBlockFile(format!(
                        "{}: {n} bytes, the index says {}",
                        self.describe(rel),
                        buf.len()
                    )));
                }
                Ok(None)
            }
            Store::Mirrors(m) => m.fetch_into(rel, buf, avoid).await.map(Some),
        }
    }

    /// How many sources a bad copy can be asked again of.
    pub fn sources(&self) -> usize {
        match self {
            Store::Dir(_) => 1,
            Store::Mirrors(m) => m.endpoint_count(),
        }
    }
}
