// SPDX-License-Identifier: GPL-2.0
//! Blocks being fetched anywhere in the module, by cache key. A device that misses a block
//! another device (or another block of its own image with the same content) is already
//! fetching joins that fetch instead of starting one, so two images sharing blocks, or one
//! image attached twice through different servers, fetch each shared block once.
//!
//! A fetch claims its key when it starts and releases it when it ends, after a good block
//! has entered the cache. Releasing hands back the joiners; the releasing device tells each
//! of them (with no lock held), and a joiner finds the block cached or, when the fetch failed,
//! its device died or the cache declined the block, fetches it itself. A joiner also stops
//! waiting on its own after half its I/O timeout (see `read`).
//!
//! Locks: a device's state mutex may be held while taking this table's mutex, never the
//! reverse; nothing else is taken under it.
#![forbid(unsafe_code)]

use kernel::new_mutex;
use kernel::prelude::*;
use kernel::rbtree::{RBTree, RBTreeNode};
use kernel::sync::{Arc, Mutex};

use crate::cache::Key;

/// The claims, each with the joiners `J` to tell when it ends (the table does not look at
/// them: `fetch` says what a joiner is).
#[pin_data]
pub(crate) struct Pending<J> {
    #[pin]
    claims: Mutex<RBTree<Key, KVec<J>>>,
}

impl<J> Pending<J> {
    pub(crate) fn new() -> Result<Arc<Self>> {
        Arc::pin_init(
            pin_init!(Pending { claims <- new_mutex!(RBTree::new(), "httpblk:pending") }),
            GFP_KERNEL,
        )
    }

    /// Claims `k` for a fetch about to start. `false` when some fetch already holds it (the
    /// caller may still fetch; it just must not release a claim it does not hold).
    ///
    /// # Errors
    /// `ENOMEM`.
    pub(crate) fn claim(&self, k: &Key) -> Result<bool> {
        let node = RBTreeNode::new(*k, KVec::new(), GFP_KERNEL)?;
        let mut g = self.claims.lock();
        if g.get(k).is_some() {
            return Ok(false);
        }
        g.insert(node);
        Ok(true)
    }

    /// Ends the claim on `k` and returns its joiners, for the caller to tell once it holds no
    /// lock. Only the claim's holder calls this.
    #[must_use = "joiners must be told"]
    pub(crate) fn release(&self, k: &Key) -> KVec<J> {
        let node = self.claims.lock().remove_node(k);
        // The node is freed outside the lock.
        node.map(|n| n.to_key_value().1).unwrap_or_default()
    }

    /// Whether some fetch holds `k`.
    pub(crate) fn contains(&self, k: &Key) -> bool {
        self.claims.lock().get(k).is_some()
    }

    /// Registers `joiner` to be told when the claim on `k` ends. `false` when there is no
    /// claim (any more): the fetch ended, so the block is cached or must be fetched.
    ///
    /// # Errors
    /// `ENOMEM`.
    pub(crate) fn join(&self, k: &Key, joiner: J) -> Result<bool> {
        let mut g = self.claims.lock();
        match g.get_mut(k) {
            None => Ok(false),
            Some(joiners) => {
                joiners.push(joiner, GFP_KERNEL)?;
                Ok(true)
            }
        }
    }
}
