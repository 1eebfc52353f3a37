//! The helper's job for one attached device: take fetch submissions off the ring, fetch each
//! block file over HTTP (many at once, pooled keep-alive connections) straight into its data
//! slot, and post the completion. An optional on-disk cache of block files is the second cache
//! level, surviving reboots. The kernel checks every block; the helper checks only lengths.
//! Over HTTP the blocks come from `Mirrors` (one or more servers, retried and hedged); a
//! submission marked as a retry means the kernel rejected the copy the helper delivered, so it
//! is asked of another server.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::index::Index;
pub use crate::location::Store as Source;
use crate::mirrors::Endpoint;
use crate::ring::Ring;
use crate::store::{block_rel_path, write_new_file};
use crate::uapi::{Cqe, Sqe};
use crate::Result;

/// Reads of a local store per submission before the helper reports failure to the kernel.
const DIR_ATTEMPTS: u32 = 3;
/// The kernel resubmits a rejected block at once: who served a block is remembered this long
/// (pruned once more than `SERVED_MEMORY` blocks are remembered).
const SERVED_WINDOW: Duration = Duration::from_secs(30);
const SERVED_MEMORY: usize = 4096;

pub struct Helper {
    pub ring: Ring,
    pub index: Index,
    pub source: Source,
    pub cache_dir: Option<PathBuf>,
    /// Blocks last served from the disk cache: a repeat request means the kernel rejected the
    /// cached copy, so it is dropped and fetched again.
    from_disk: Mutex<HashSet<u64>>,
    /// Which endpoint served each recent block, and when.
    served: Mutex<HashMap<u64, (Arc<Endpoint>, Instant)>>,
}

impl Helper {
    pub fn new(
        ring: Ring,
        index: Index,
        source: Source,
        cache_dir: Option<PathBuf>,
    ) -> Arc<Helper> {
        Arc::new(Helper {
            ring,
            index,
            source,
            cache_dir,
            from_disk: Mutex::new(HashSet::new()),
            served: Mutex::new(HashMap::new()),
        })
    }

    /// Serves submissions until the device goes away. Blocks: run it on its own thread.
    pub fn run(self: &Arc<Self>, rt: tokio::runtime::Handle) -> Result<()> {
        let mut seen = 0u32;
        while let Some(tail) = self.ring.wait(seen)? {
            while seen != tail {
                let sqe = self.ring.sqe(seen);
                let me = self.clone();
                rt.spawn(async move { me.serve(sqe).await });
                seen = seen.wrapping_add(1);
            }
        }
        Ok(())
    }

    async fn serve(&self, sqe: Sqe) {
        // Every submission starts at once: the kernel bounds the readahead it posts
        // (`readahead_inflight`), and holding readahead back here would hold back the reads
        // that join it later (Documentation/ring.md, `SQE_DEMAND`).
        tracing::debug!(
            "fetch block {} into slot {} (seq {}{})",
            sqe.block,
            sqe.slot,
            sqe.seq,
            if sqe.flags & crate::uapi::SQE_DEMAND != 0 {
                ", demand"
            } else {
                ", readahead"
            }
        );
        let status = match self.fetch(&sqe).await {
            Ok(len) => return self.post(sqe, 0, len),
            Err(e) => {
                tracing::warn!("block {}: {e}", sqe.block);
                -libc::EIO
            }
        };
        self.post(sqe, status, 0);
    }

    fn post(&self, sqe: Sqe, status: i32, len: u32) {
        let cqe = Cqe {
            slot: sqe.slot,
            seq: sqe.seq,
            status,
            len,
        };
        if let Err(e) = self.ring.complete(cqe) {
            tracing::error!("posting completion: {e}");
        }
    }

    /// Fills the slot with block file `sqe.block`; returns its length.
    async fn fetch(&self, sqe: &Sqe) -> Result<u32> {
        let bad = |m: String| crate::Error::Invalid(format!("kernel submission {sqe:?}: {m}"));
        let entry = *self
            .index
            .entries
            .get(sqe.block as usize)
            .ok_or_else(|| bad("block out of range".into()))?;
        if sqe.stored_len != entry.stored_len || entry.stored_len == 0 {
            return Err(bad(format!(
                "stored length differs from the index ({})",
                entry.stored_len
            )));
        }
        let (ptr, cap) = self.ring.slot_ptr(sqe.slot);
        let len = entry.stored_len as usize;
        if len > cap {
            return Err(bad("block larger than a slot".into()));
        }
        // SAFETY: the kernel gives a slot to one submission at a time, and only this task
        // serves it until the completion is posted.
        let slot = unsafe { std::slice::from_raw_parts_mut(ptr, len) };
        let rel = block_rel_path(&entry.digest);
        if self.read_disk_cache(sqe.block, &rel, slot).await {
            return Ok(len as u32);
        }
        match &self.source {
            Source::Mirrors(m) => {
                let rejected = (sqe.retry > 0)
                    .then(|| self.rejected_endpoint(sqe.block))
                    .flatten();
                let ep = m.fetch_into(&rel, slot, rejected).await?;
                self.remember_served(sqe.block, ep);
            }
            Source::Dir(_) => Self::read_dir(&self.source, &rel, slot)
                .await
                .map_err(|e| bad(e.to_string()))?,
        }
        self.write_disk_cache(&rel, slot);
        Ok(len as u32)
    }

    async fn read_dir(loc: &Source, rel: &str, slot: &mut [u8]) -> Result<()> {
        let mut last = None;
        for attempt in 0..DIR_ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
            }
            match loc.get_into(rel, slot).await {
                Ok(n) if n == slot.len() => return Ok(()),
                Ok(n) => {
                    last = Some(crate::Error::BadBlockFile(format!(
                        "{}: {n} bytes, the index says {}",
                        loc.describe(rel),
                        slot.len()
                    )))
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap())
    }

    /// The endpoint whose copy of `block` the kernel rejected.
    fn rejected_endpoint(&self, block: u64) -> Option<Arc<Endpoint>> {
        let (ep, _) = self.served.lock().unwrap().remove(&block)?;
        tracing::warn!(
            "block {block}: the kernel rejected the copy from {}",
            ep.label()
        );
        Some(ep)
    }

    fn remember_served(&self, block: u64, ep: Arc<Endpoint>) {
        let mut served = self.served.lock().unwrap();
        if served.len() >= SERVED_MEMORY {
            served.retain(|_, (_, at)| at.elapsed() < SERVED_WINDOW);
        }
        served.insert(block, (ep, Instant::now()));
    }

    async fn read_disk_cache(&self, block: u64, rel: &str, slot: &mut [u8]) -> bool {
        let Some(dir) = &self.cache_dir else {
            return false;
        };
        let path = dir.join(rel);
        if !self.from_disk.lock().unwrap().insert(block) {
            // Asked again: the kernel rejected the cached copy.
            self.from_disk.lock().unwrap().remove(&block);
            let _ = std::fs::remove_file(&path);
            return false;
        }
        match tokio::fs::read(&path).await {
            Ok(data) if data.len() == slot.len() => {
                slot.copy_from_slice(&data);
                true
            }
            _ => {
                self.from_disk.lock().unwrap().remove(&block);
                false
            }
        }
    }

    fn write_disk_cache(&self, rel: &str, data: &[u8]) {
        if let Some(dir) = &self.cache_dir {
            if let Err(e) = write_new_file(&dir.join(rel), data) {
                tracing::warn!("disk cache: {e}");
            }
        }
    }
}
