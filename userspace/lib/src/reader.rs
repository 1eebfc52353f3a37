//! Userspace reader: fetch, check and decode blocks. `cat` rebuilds an image, `verify` checks a
//! store. It is also the oracle the kernel tests compare against.

use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;

use futures::stream::{self, StreamExt};

use crate::block;
use crate::digest::BlockDigest;
use crate::index::Index;
use crate::location::Location;
use crate::store::block_rel_path;
use crate::{Error, Result};

/// An opened image.
pub struct Reader {
    pub location: Location,
    pub index: Index,
    /// SHA-256 of the index file.
    pub index_sha256: String,
}

/// A problem `verify` found with one stored block.
#[derive(Debug)]
pub struct Problem {
    /// Every block index of the image that references the file.
    pub blocks: Vec<u64>,
    pub name: String,
    pub missing: bool,
    pub reason: String,
}

impl Reader {
    pub async fn open(location: Location, pin: Option<&str>) -> Result<Arc<Reader>> {
        let (index, index_sha256, _) = location.open(pin).await?;
        Ok(Arc::new(Reader {
            location,
            index,
            index_sha256,
        }))
    }

    /// Fetches block file `digest` and checks it decodes to `raw_len` bytes with that digest.
    pub async fn fetch_checked(
        self: &Arc<Self>,
        i: u64,
        digest: BlockDigest,
        stored_len: u32,
    ) -> Result<Vec<u8>> {
        let rel = block_rel_path(&digest);
        let bad = |reason: String| Error::BadBlock {
            index: i,
            name: rel.clone(),
            reason,
        };
        let file = self
            .location
            .get(&rel, stored_len as usize)
            .await
            .map_err(|e| match e {
                e @ Error::NotFound { .. } => e,
                e => bad(e.to_string()),
            })?;
        if file.len() != stored_len as usize {
            return Err(bad(format!(
                "{} bytes, the index says {stored_len}",
                file.len()
            )));
        }
        let raw_len = self.index.raw_len(i);
        let hash = self.index.hash;
        let decoded = tokio::task::spawn_blocking(move || -> Result<Vec<u8>> {
            let mut out = vec![0u8; raw_len];
            block::decode_into(&file, &mut out)?;
            let got = hash.digest(&out);
            if got != digest {
                return Err(Error::BadBlockFile(format!(
                    "content digest {} does not match its name",
                    got.hex()
                )));
            }
            Ok(out)
        })
        .await
        .expect("decode task panicked");
        decoded.map_err(|e| bad(e.to_string()))
    }

    /// The uncompressed bytes of block `i`.
    pub async fn read_block(self: &Arc<Self>, i: u64) -> Result<Vec<u8>> {
        let e = self.index.entries[i as usize];
        if e.is_zero() {
            return Ok(vec![0; self.index.raw_len(i)]);
        }
        self.fetch_checked(i, e.digest, e.stored_len).await
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
            .map(|i| self.read_block(i))
            .buffered(jobs.max(1));
        let mut done = 0u64;
        while let Some(b) = blocks.next().await {
            let b = b?;
            out.write_all(&b).map_err(|e| Error::Io {
                path: "output".into(),
                source: e,
            })?;
            done += b.len() as u64;
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
            .map(|(digest, (first, len, blocks))| async move {
                let r = self.fetch_checked(first, digest, len).await;
                r.err().map(|e| Problem {
                    missing: matches!(e, Error::NotFound { .. }),
                    name: block_rel_path(&digest),
                    reason: e.to_string(),
                    blocks,
                })
            })
            .buffer_unordered(jobs.max(1))
            .filter_map(|p| async move { p })
            .collect()
            .await;
        problems.sort_by_key(|p| p.blocks[0]);
        problems
    }
}
