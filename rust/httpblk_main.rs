// SPDX-License-Identifier: GPL-2.0
//! httpblk: block devices backed by disk images that any static HTTP server hosts.
//!
//! A read that misses the in-kernel cache becomes a fetch request on a ring shared with the
//! `httpblk` helper, which does only HTTP; the kernel checks every block against the digest in
//! the image's index before any byte reaches a reader. See Documentation/design.md.

// `try_pin_init!` of `Device`, a struct with many fields, nests deeply.
#![recursion_limit = "256"]

mod abi;
mod blk;
mod cache;
mod chardev;
mod clock;
mod codec;
mod control;
mod device;
mod digest;
mod fetch;
mod ffi;
mod index;
mod param;
mod params;
mod pending;
mod read;
mod ring;
mod shmem;
mod stats;
mod tick;
// Shared with userspace, where its items are public API.
#[allow(unreachable_pub, dead_code)]
mod uapi;
mod verify;

use kernel::c_str;
use kernel::prelude::*;
use kernel::sync::Arc;

module! {
    type: HttpBlk,
    name: "httpblk",
    author: "httpblk developers",
    description: "Block devices backed by disk images served over plain HTTP",
    license: "GPL v2",
}

struct HttpBlk {
    // Dropped in declaration order: no device exists when the module unloads (devices and
    // open control files pin it), so the tick stops first, then the control device goes,
    // then the cache.
    _tick: tick::Tick<control::Control>,
    _control: chardev::Registration<control::ControlFile>,
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
                codecs: codec::Pool::new()?,
            },
            GFP_KERNEL,
        )?;
        let control = control::Control::new(shared)?;
        let tick = tick::Tick::start(control.clone())?;
        let control = chardev::Registration::new(control)?;
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
