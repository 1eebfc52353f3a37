// SPDX-License-Identifier: GPL-2.0
//! httpblk: block devices backed by disk images that any static HTTP server hosts.
//!
//! A read that misses the in-kernel cache becomes a fetch request on a ring shared with the
//! `httpblk` helper, which does only HTTP; the kernel checks every block against the digest in
//! the image's index before any byte reaches a reader. See Documentation/design.md.

// `try_pin_init!` of `Device`, a struct with many fields, nests deeply.
#![recursion_limit = "256"]

mod attrs;
mod blk;
mod cache;
mod control;
mod device;
mod fetch;
mod index;
mod params;
mod pending;
mod read;
mod ring;
mod stats;
mod sys;
// Shared with userspace, where its items are public API.
#[allow(unreachable_pub, dead_code)]
mod uapi;
mod verify;

use kernel::c_str;
use kernel::prelude::*;
use kernel::sync::Arc;

#[cfg(not(httpblk_module_authors))]
module! {
    type: HttpBlk,
    name: "httpblk",
    author: "httpblk developers",
    description: "Block devices backed by disk images served over plain HTTP",
    license: "GPL v2",
}

#[cfg(httpblk_module_authors)]
module! {
    type: HttpBlk,
    name: "httpblk",
    authors: ["httpblk developers"],
    description: "Block devices backed by disk images served over plain HTTP",
    license: "GPL v2",
}

struct HttpBlk {
    // Dropped in declaration order: no device exists when the module unloads (devices and
    // open control files pin it), so the tick stops first, then the control device goes,
    // then the cache.
    _tick: sys::workqueue::Tick<control::Control>,
    _control: sys::miscdevice::Registration<control::ControlFile>,
    _shrinker: blk::Shrinker<cache::Cache>,
}

impl kernel::Module for HttpBlk {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let cache = cache::Cache::new()?;
        let shrinker = blk::Shrinker::new(c_str!("httpblk-cache"), cache.clone())?;
        let shared = Arc::new(
            device::Shared {
                cache: cache.clone(),
                pending: pending::Pending::new()?,
                codecs: sys::decompress::Pool::new()?,
            },
            GFP_KERNEL,
        )?;
        let control = control::Control::new(shared)?;
        let tick = sys::workqueue::Tick::start(control.clone())?;
        let control = sys::miscdevice::Registration::new(control)?;
        cache::LIVE.publish(cache);
        pr_info!("loaded: /dev/{} ready\n", uapi::CONTROL_NAME);
        Ok(HttpBlk {
            _tick: tick,
            _control: control,
            _shrinker: shrinker,
        })
    }
}

impl Drop for HttpBlk {
    fn drop(&mut self) {
        cache::LIVE.withdraw();
    }
}
