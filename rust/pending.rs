// SPDX-License-Identifier: GPL-2.0
//! Blocks being fetched anywhere in the module, by cache key. A device that misses a block
//! another device (or another block of its own image with the same content) is already
//! fetching waits for that fetch instead of starting one, so two images sharing blocks, or
//! one image attached twice through different servers, fetch each shared block once.
//!
//! A fetch claims its key when it starts and releases it when it ends, after a good block
//! has entered the cache: a waiter that sees the claim gone finds the block cached, or (the
//! fetch failed, its device died, the cache declined the block) fetches it itself.
//!
//! Locks: a device's state mutex may be held while taking this table's mutex, never the
//! reverse; the cache's mutex may be taken under this one.

use kernel::prelude::*;
use kernel::rbtree::{RBTree, RBTreeNode};
use kernel::sync::{Arc, CondVar, CondVarTimeoutResult, Mutex};
use kernel::{new_condvar, new_mutex};

use crate::cache::Key;
use crate::clock;

#[pin_data]
pub(crate) struct Pending {
    #[pin]
    keys: Mutex<RBTree<Key, ()>>,
    /// Signalled whenever a claim is released.
    #[pin]
    released: CondVar,
}

impl Pending {
    pub(crate) fn new() -> Result<Arc<Self>> {
        Arc::pin_init(
            pin_init!(Pending {
                keys <- new_mutex!(RBTree::new(), "httpblk:pending"),
                released <- new_condvar!("httpblk:released"),
            }),
            GFP_KERNEL,
        )
    }

    /// Claims `k` for a fetch about to start. `false` when some fetch already holds it (the
    /// caller may still fetch; it just must not release a claim it does not hold).
    ///
    /// # Errors
    /// `ENOMEM`.
    pub(crate) fn claim(&self, k: &Key) -> Result<bool> {
        let node = RBTreeNode::new(*k, (), GFP_KERNEL)?;
        let mut g = self.keys.lock();
        if g.get(k).is_some() {
            return Ok(false);
        }
        g.insert(node);
        Ok(true)
    }

    /// Ends the claim on `k` and wakes the waiters. Only the claim's holder calls this.
    pub(crate) fn release(&self, k: &Key) {
        let node = self.keys.lock().remove_node(k);
        drop(node); // freed outside the lock
        self.released.notify_all();
    }

    /// Whether some fetch holds `k`.
    pub(crate) fn contains(&self, k: &Key) -> bool {
        self.keys.lock().get(k).is_some()
    }

    /// Sleeps until no fetch holds `k` or jiffies reach `until`.
    pub(crate) fn wait(&self, k: &Key, until: u64) {
        let mut g = self.keys.lock();
        while g.get(k).is_some() {
            let now = clock::jiffies();
            if now >= until {
                return;
            }
            match self.released.wait_interruptible_timeout(&mut g, (until - now) as _) {
                CondVarTimeoutResult::Woken { .. } => {}
                // Time is up, or a signal (work items get none): the caller decides what next.
                _ => return,
            }
        }
    }
}
