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
    // Dropped in declaration order: no device exists when the module unloads (open control
    // files pin it), so the cache can go after the control device.
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
        let control = chardev::Registration::new(control::Control::new(shared)?)?;
        cache::LIVE.publish(cache);
        pr_info!("loaded: /dev/{} ready\n", uapi::CONTROL_NAME);
        Ok(HttpBlk {
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
