//! The helper's job for one attached device: take fetch submissions off the ring, fetch each
//! block file over HTTP (many at once, pooled keep-alive connections) straight into its data
//! slot, and post the completion. An optional on-disk cache of block files is the second cache
//! level, surviving reboots. The kernel checks every block; the helper checks only lengths.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::index::Index;
use crate::location::{Location, Store};
use crate::ring::Ring;
use crate::store::{block_rel_path, write_new_file};
use crate::uapi::{Cqe, Sqe};
use crate::Result;

/// HTTP attempts per submission before the helper reports failure to the kernel.
const FETCH_ATTEMPTS: u32 = 3;

pub struct Helper {
    pub ring: Ring,
    pub index: Index,
    pub location: Location,
    pub cache_dir: Option<PathBuf>,
    /// Blocks last served from the disk cache: a repeat request means the kernel rejected the
    /// cached copy, so it is dropped and fetched again.
    from_disk: Mutex<HashSet<u64>>,
}

impl Helper {
    pub fn new(
        ring: Ring,
        index: Index,
        location: Location,
        cache_dir: Option<PathBuf>,
    ) -> Arc<Helper> {
        Arc::new(Helper {
            ring,
            index,
            location,
            cache_dir,
            from_disk: Mutex::new(HashSet::new()),
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
        tracing::debug!(
            "fetch block {} into slot {} (seq {})",
            sqe.block,
            sqe.slot,
            sqe.seq
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
        let mut last = None;
        for attempt in 0..FETCH_ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
            }
            match self.get_into(&rel, slot).await {
                Ok(n) if n == len => {
                    self.write_disk_cache(&rel, slot);
                    return Ok(len as u32);
                }
                Ok(n) => last = Some(bad(format!("server sent {n} bytes, the index says {len}"))),
                Err(e) => last = Some(e),
            }
            if self.ring.is_dead() {
                break;
            }
        }
        Err(last.unwrap())
    }

    async fn get_into(&self, rel: &str, slot: &mut [u8]) -> Result<usize> {
        match &self.location.store {
            Store::Http { base, client } => client.get_into(&format!("{base}{rel}"), slot).await,
            Store::Dir(_) => {
                let data = self.location.get(rel, slot.len()).await?;
                slot[..data.len()].copy_from_slice(&data);
                Ok(data.len())
            }
        }
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
