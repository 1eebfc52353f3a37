// SPDX-License-Identifier: GPL-2.0
//! The in-kernel block cache, shared by every device and keyed by content digest, so that
//! equal blocks of different images (or of one image fed by several servers) are held once.
//! Bounded in bytes; eviction is an approximate LRU: the least recently used of a few entries
//! sampled at a random point of the tree.
//!
//! Context: process context only (it takes a mutex).

use core::sync::atomic::{AtomicU64, Ordering};

use kernel::bindings;
use kernel::prelude::*;
use kernel::rbtree::{RBTree, RBTreeNode};
use kernel::sync::{Arc, Mutex};
use kernel::new_mutex;

use crate::digest::MAX_DIGEST_LEN;
use crate::params;

/// Hash id followed by the digest, zero-padded.
pub(crate) type Key = [u8; MAX_DIGEST_LEN + 1];

pub(crate) fn key(hash_id: u8, digest: &[u8]) -> Key {
    let mut k = [0u8; MAX_DIGEST_LEN + 1];
    k[0] = hash_id;
    k[1..1 + digest.len()].copy_from_slice(digest);
    k
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

#[pin_data]
pub(crate) struct Cache {
    #[pin]
    inner: Mutex<Inner>,
    pub(crate) evictions: AtomicU64,
}

impl Cache {
    /// An empty cache, bounded by the `cache_mb` parameter.
    pub(crate) fn new() -> Result<Arc<Self>> {
        Arc::pin_init(
            pin_init!(Cache {
                inner <- new_mutex!(Inner { map: RBTree::new(), bytes: 0, blocks: 0, tick: 0 }, "httpblk:cache"),
                evictions: AtomicU64::new(0),
            }),
            GFP_KERNEL,
        )
    }

    /// The bound in bytes; `cache_mb` is writable, so it is read at every insertion.
    fn limit(&self) -> u64 {
        u64::from(params::CACHE_MB.get()) << 20
    }

    /// Blocks held now.
    pub(crate) fn len(&self) -> usize {
        self.inner.lock().blocks
    }

    /// Bytes held now.
    pub(crate) fn bytes(&self) -> usize {
        self.inner.lock().bytes
    }

    /// Whether `k` is cached, without counting a hit or refreshing it.
    pub(crate) fn contains(&self, k: &Key) -> bool {
        self.inner.lock().map.get(k).is_some()
    }

    /// The block cached under `k`, refreshed as most recently used. Devices count their own
    /// hits and misses.
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
        if size as u64 > limit {
            return Ok(());
        }
        let node = RBTreeNode::new(k, Entry { block, last_use: 0 }, GFP_KERNEL)?;
        let mut evicted = KVec::new();
        {
            let mut g = self.inner.lock();
            while (g.bytes + size) as u64 > limit {
                match Self::evict_one(&mut g) {
                    Some(e) => {
                        self.evictions.fetch_add(1, Ordering::Relaxed);
                        // Dropped outside the lock: freeing may take a while.
                        let _ = evicted.push(e, GFP_KERNEL);
                    }
                    None => break,
                }
            }
            g.tick += 1;
            let tick = g.tick;
            if let Some(old) = g.map.insert(node) {
                let (_, old) = old.to_key_value();
                g.bytes -= old.block.data.len();
                g.blocks -= 1;
            }
            if let Some(e) = g.map.get_mut(&k) {
                e.last_use = tick;
            }
            g.bytes += size;
            g.blocks += 1;
        }
        drop(evicted);
        Ok(())
    }

    fn evict_one(g: &mut Inner) -> Option<Arc<Block>> {
        let mut probe = [0u8; MAX_DIGEST_LEN + 1];
        // SAFETY: FFI call without preconditions.
        let r = unsafe { bindings::get_random_u64() };
        probe[..8].copy_from_slice(&r.to_le_bytes());
        probe[0] = probe[0] % 3; // hash ids are small: land among real keys
        let victim = {
            let mut cursor = match g.map.cursor_lower_bound(&probe) {
                Some(c) => c,
                None => g.map.cursor_front()?,
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
