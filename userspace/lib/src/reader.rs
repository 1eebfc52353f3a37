//! Userspace reader: fetch, check and decode blocks. `cat` rebuilds an image, `verify` checks a
//! store. It is also the oracle the kernel tests compare against.

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex};

use futures::stream::{self, StreamExt};

use crate::block;
use crate::digest::BlockDigest;
use crate::error::joined;
use crate::http::Options;
use crate::index::Index;
use crate::location::{Location, Store};
use crate::store::block_rel_path;
use crate::{Error, Result};

/// An opened image.
pub struct Reader {
    pub location: Location,
    pub store: Store,
    pub index: Index,
    /// SHA-256 of the index file.
    pub index_sha256: String,
    buffers: Buffers,
}

/// What is wrong with a block file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProblemKind {
    /// Not in the store (404, 410, no such file).
    Missing,
    /// There, but wrong: length, header, decoding or digest.
    Corrupt,
    /// Could not be read (connection, TLS, timeout, 5xx after every retry): unknown.
    Unreachable,
}

impl ProblemKind {
    pub fn of(e: &Error) -> ProblemKind {
        match e {
            e if e.is_missing() => ProblemKind::Missing,
            Error::Fetch { kind, .. } if kind.is_content() => ProblemKind::Corrupt,
            Error::Fetch { .. } | Error::Dns { .. } | Error::Io { .. } => ProblemKind::Unreachable,
            _ => ProblemKind::Corrupt,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ProblemKind::Missing => "missing",
            ProblemKind::Corrupt => "corrupt",
            ProblemKind::Unreachable => "unreachable",
        }
    }
}

/// A problem `verify` found with one stored block.
#[derive(Debug)]
pub struct Problem {
    /// Every block index of the image that references the file.
    pub blocks: Vec<u64>,
    pub name: String,
    pub kind: ProblemKind,
    pub reason: String,
}

/// Block buffers reused from block to block: a fresh 256 KiB buffer per block costs page
/// faults and zeroing, which took a fifth of `cat`'s CPU time.
#[derive(Default)]
struct Buffers(Mutex<Vec<Vec<u8>>>);

/// More spare buffers than blocks in flight are never needed.
const MAX_SPARE_BUFFERS: usize = 256;

impl Buffers {
    /// A buffer of `len` bytes with unspecified contents.
    fn take(&self, len: usize) -> Vec<u8> {
        let mut b = self.0.lock().unwrap().pop().unwrap_or_default();
        b.resize(len, 0);
        b
    }

    fn give(&self, b: Vec<u8>) {
        let mut spare = self.0.lock().unwrap();
        if spare.len() < MAX_SPARE_BUFFERS {
            spare.push(b);
        }
    }
}

impl Reader {
    pub async fn open(
        location: Location,
        pin: Option<&str>,
        opts: &Options,
    ) -> Result<Arc<Reader>> {
        let opened = location.open(pin, opts).await?;
        Ok(Arc::new(Reader {
            location,
            store: opened.store,
            index: opened.index,
            index_sha256: opened.index_sha256,
            buffers: Buffers::default(),
        }))
    }

    /// Fetches block file `digest` and checks it decodes into `out` (block `i`'s raw length)
    /// with that digest. Decoding and hashing run on the calling task: callers spawn one task
    /// per block so they spread over the runtime's threads.
    pub async fn fetch_checked(
        &self,
        i: u64,
        digest: BlockDigest,
        stored_len: u32,
        out: &mut [u8],
    ) -> Result<()> {
        let rel = block_rel_path(&digest);
        let bad = |reason: String| Error::BadBlock {
            index: i,
            name: rel.clone(),
            reason,
        };
        let mut file = self.buffers.take(stored_len as usize);
        // A copy that does not decode to its digest is asked of another mirror, if any.
        let mut avoid = None;
        let mut tries = self.store.sources().min(3);
        let checked = loop {
            let served = match self.store.fetch_into(&rel, &mut file, avoid.take()).await {
                Ok(served) => served,
                Err(e) => {
                    self.buffers.give(file);
                    // A failed read keeps its type (and its URL or path, which names the
                    // file): `verify` tells missing, corrupt and unreachable apart.
                    return Err(e);
                }
            };
            let checked = block::decode_into(&file, out).and_then(|()| {
                let got = self.index.hash.digest(out);
                if got != digest {
                    return Err(Error::BadBlockFile(format!(
                        "content digest {} does not match its name",
                        got.hex()
                    )));
                }
                Ok(())
            });
            tries -= 1;
            match (checked, served) {
                (Err(e), Some(ep)) if tries > 0 => {
                    tracing::warn!("{rel} from {}: {e}; asking another mirror", ep.label());
                    avoid = Some(ep);
                }
                (r, _) => break r,
            }
        };
        self.buffers.give(file);
        checked.map_err(|e| bad(e.to_string()))
    }

    /// The uncompressed bytes of block `i`.
    pub async fn read_block(&self, i: u64) -> Result<Vec<u8>> {
        let e = self.index.entries[i as usize];
        let mut out = self.buffers.take(self.index.raw_len(i));
        if e.is_zero() {
            out.fill(0);
        } else {
            self.fetch_checked(i, e.digest, e.stored_len, &mut out)
                .await?;
        }
        Ok(out)
    }

    /// Writes the whole image to `out` in order, `jobs` blocks in flight.
    pub async fn cat(
        self: &Arc<Self>,
        out: &mut impl Write,
        jobs: usize,
        progress: &dyn Fn(u64),
    ) -> Result<()> {
        let n = self.index.entries.len() as u64;
        let mut blocks = stream::iter(0..n)
            .map(|i| {
                let r = self.clone();
                tokio::spawn(async move { r.read_block(i).await })
            })
            .buffered(jobs.max(1));
        let mut done = 0u64;
        while let Some(b) = blocks.next().await {
            let b = joined(b)??;
            out.write_all(&b).map_err(|e| Error::Io {
                path: "output".into(),
                source: e,
            })?;
            done += b.len() as u64;
            self.buffers.give(b);
            progress(done);
        }
        out.flush().map_err(|e| Error::Io {
            path: "output".into(),
            source: e,
        })
    }

    /// Checks every distinct block file the index references; returns the problems found.
    pub async fn verify(self: &Arc<Self>, jobs: usize) -> Vec<Problem> {
        let mut users: HashMap<BlockDigest, (u64, u32, Vec<u64>)> = HashMap::new();
        for (i, e) in self.index.entries.iter().enumerate() {
            if !e.is_zero() {
                users
                    .entry(e.digest)
                    .or_insert((i as u64, e.stored_len, Vec::new()))
                    .2
                    .push(i as u64);
            }
        }
        let mut problems: Vec<Problem> = stream::iter(users)
            .map(|(digest, (first, len, blocks))| {
                let r = self.clone();
                tokio::spawn(async move {
                    let mut out = r.buffers.take(r.index.raw_len(first));
                    let checked = r.fetch_checked(first, digest, len, &mut out).await;
                    r.buffers.give(out);
                    checked.err().map(|e| Problem {
                        kind: ProblemKind::of(&e),
                        name: block_rel_path(&digest),
                        reason: e.to_string(),
                        blocks,
                    })
                })
            })
            .buffer_unordered(jobs.max(1))
            // Only a panic (resumed) or a shutdown (nothing left to report to) ends a task
            // without its answer.
            .filter_map(|p| async move { joined(p).ok().flatten() })
            .collect()
            .await;
        problems.sort_by_key(|p| p.blocks[0]);
        problems
    }
}
