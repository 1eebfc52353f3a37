// SPDX-License-Identifier: GPL-2.0
//! The in-kernel block cache, shared by every device and keyed by content, so that equal
//! blocks of different images (or of one image fed by several servers) are held once.
//!
//! A key names the hash, the digest and the decoded length of a block; for MD5, whose
//! collisions can be made at will, it also names the image (the SHA-256 of its index), so an
//! MD5 block is never shared across images. A hit whose length is not the length the reader
//! needs is treated as a miss by the callers as well: a hostile index cannot make a reader
//! slice past a cached block.
//!
//! Bounded in bytes by `cache_mb` (a change applies at once) and shrinkable by memory
//! pressure (`Shrink`). Eviction is an approximate LRU: the least recently used of a few
//! entries sampled at a random point of the tree.
//!
//! Context: any process context, including reclaim. The lock is a spinlock that is never held
//! while allocating or freeing a block, so the shrinker can always take it.
#![forbid(unsafe_code)]

use core::sync::atomic::{AtomicU64, Ordering};

use kernel::new_spinlock;
use kernel::prelude::*;
use kernel::rbtree::{RBTree, RBTreeNode};
use kernel::sync::{Arc, SpinLock};

use crate::blk::Shrink;
use crate::params;
use crate::sys::compat::TreeCursor;
use crate::sys::helpers::random_u64;
use crate::sys::module_param::Published;
use crate::uapi::HASH_MD5;

const DIGEST_MAX: usize = 32;
const KEY_LEN: usize = 1 + 4 + DIGEST_MAX + 32;

/// Hash id, decoded length, digest (zero-padded) and, for MD5, the image's index SHA-256.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Key([u8; KEY_LEN]);

impl Key {
    /// The key of a block of `raw_len` bytes with `digest` (at most 32 bytes) under hash
    /// `hash_id`, in the image whose index hashes to `image`.
    pub(crate) fn new(hash_id: u8, raw_len: u32, digest: &[u8], image: &[u8; 32]) -> Self {
        let mut k = [0u8; KEY_LEN];
        k[0] = hash_id;
        k[1..5].copy_from_slice(&raw_len.to_le_bytes());
        let n = digest.len().min(DIGEST_MAX);
        k[5..5 + n].copy_from_slice(&digest[..n]);
        if hash_id == HASH_MD5 {
            k[5 + DIGEST_MAX..].copy_from_slice(image);
        }
        Key(k)
    }
}

/// A verified, uncompressed block.
pub(crate) struct Block {
    pub(crate) data: KVVec<u8>,
}

struct Entry {
    block: Arc<Block>,
    last_use: u64,
}

struct Inner {
    map: RBTree<Key, Entry>,
    bytes: usize,
    blocks: usize,
    tick: u64,
}

/// Entries compared per eviction.
const EVICTION_SAMPLES: usize = 8;
/// Blocks taken out per lock hold when shrinking; they are freed after the lock is dropped.
const EVICTION_BATCH: usize = 16;

#[pin_data]
pub(crate) struct Cache {
    #[pin]
    inner: SpinLock<Inner>,
    pub(crate) evictions: AtomicU64,
}

/// The cache that a change of `cache_mb` trims, published by module init.
pub(crate) static LIVE: Published<Cache> = Published::new();

/// Hook of the `cache_mb` parameter: the new bound applies at once.
pub(crate) fn cache_mb_changed() {
    LIVE.with(|c| {
        c.shrink_to(c.limit(), usize::MAX);
    });
}

impl Cache {
    /// An empty cache, bounded by the `cache_mb` parameter.
    pub(crate) fn new() -> Result<Arc<Self>> {
        Arc::pin_init(
            pin_init!(Cache {
                inner <- new_spinlock!(Inner { map: RBTree::new(), bytes: 0, blocks: 0, tick: 0 }, "httpblk:cache"),
                evictions: AtomicU64::new(0),
            }),
            GFP_KERNEL,
        )
    }

    /// The bound in bytes.
    pub(crate) fn limit(&self) -> usize {
        (u64::from(params::CACHE_MB.get()) << 20)
            .try_into()
            .unwrap_or(usize::MAX)
    }

    /// Blocks held now.
    pub(crate) fn len(&self) -> usize {
        self.inner.lock().blocks
    }

    /// Bytes held now.
    pub(crate) fn bytes(&self) -> usize {
        self.inner.lock().bytes
    }

    /// Whether `k` is cached, without refreshing it.
    pub(crate) fn contains(&self, k: &Key) -> bool {
        self.inner.lock().map.get(k).is_some()
    }

    /// The block cached under `k`, refreshed as most recently used.
    pub(crate) fn get(&self, k: &Key) -> Option<Arc<Block>> {
        let mut g = self.inner.lock();
        g.tick += 1;
        let tick = g.tick;
        g.map.get_mut(k).map(|e| {
            e.last_use = tick;
            e.block.clone()
        })
    }

    /// Adds a block, evicting others to stay within the limit. A block larger than the whole
    /// cache is not kept.
    ///
    /// # Errors
    /// `ENOMEM` when the tree node cannot be allocated.
    pub(crate) fn insert(&self, k: Key, block: Arc<Block>) -> Result {
        let size = block.data.len();
        let limit = self.limit();
        if size > limit {
            return Ok(());
        }
        self.shrink_to(limit - size, usize::MAX);
        let node = RBTreeNode::new(k, Entry { block, last_use: 0 }, GFP_KERNEL)?;
        let replaced = {
            let mut g = self.inner.lock();
            g.tick += 1;
            let tick = g.tick;
            let old = g.map.insert(node).map(|old| old.to_key_value().1.block);
            if let Some(old) = &old {
                g.bytes -= old.data.len();
                g.blocks -= 1;
            }
            if let Some(e) = g.map.get_mut(&k) {
                e.last_use = tick;
            }
            g.bytes += size;
            g.blocks += 1;
            old
        };
        // Freed outside the lock.
        drop(replaced);
        Ok(())
    }

    /// Evicts blocks until at most `target` bytes are held or `max_blocks` were evicted;
    /// returns how many were evicted. Allocates nothing; frees outside the lock.
    fn shrink_to(&self, target: usize, max_blocks: usize) -> usize {
        let mut evicted = 0;
        while evicted < max_blocks {
            let mut batch: [Option<Arc<Block>>; EVICTION_BATCH] = Default::default();
            let mut taken = 0;
            {
                let mut g = self.inner.lock();
                while taken < EVICTION_BATCH && evicted + taken < max_blocks && g.bytes > target {
                    match Self::evict_one(&mut g) {
                        Some(b) => {
                            batch[taken] = Some(b);
                            taken += 1;
                        }
                        None => break,
                    }
                }
            }
            self.evictions.fetch_add(taken as u64, Ordering::Relaxed);
            evicted += taken;
            drop(batch);
            if taken < EVICTION_BATCH {
                break;
            }
        }
        evicted
    }

    fn evict_one(g: &mut Inner) -> Option<Arc<Block>> {
        let mut probe = [0u8; KEY_LEN];
        probe[..8].copy_from_slice(&random_u64().to_le_bytes());
        probe[0] %= 3; // hash ids are small: land among real keys
        let victim = {
            let mut cursor = match g.map.lower_bound_mut(&Key(probe)) {
                Some(c) => c,
                None => g.map.front_mut()?,
            };
            let (mut best_key, mut best_use) = {
                let (k, e) = cursor.current();
                (*k, e.last_use)
            };
            for _ in 1..EVICTION_SAMPLES {
                cursor = match cursor.move_next() {
                    Some(c) => c,
                    None => break,
                };
                let (k, e) = cursor.current();
                if e.last_use < best_use {
                    best_key = *k;
                    best_use = e.last_use;
                }
            }
            best_key
        };
        let e = g.map.remove(&victim)?;
        g.bytes -= e.block.data.len();
        g.blocks -= 1;
        Some(e.block)
    }
}

impl Shrink for Cache {
    fn count(&self) -> usize {
        self.len()
    }

    fn scan(&self, nr: usize) -> Option<usize> {
        Some(self.shrink_to(0, nr))
    }
}
