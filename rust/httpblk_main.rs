// SPDX-License-Identifier: GPL-2.0
//! httpblk: block devices backed by disk images that any static HTTP server hosts.
//!
//! A read that misses the in-kernel cache becomes a fetch request on a ring shared with the
//! `httpblk` helper, which does only HTTP; the kernel checks every block against the digest in
//! the image's index before any byte reaches a reader. See Documentation/design.md.

// `try_pin_init!` of `Device`, a struct with many fields, nests deeply.
#![recursion_limit = "256"]

mod blk;
mod cache;
mod chardev;
mod clock;
mod codec;
mod control;
mod device;
mod digest;
mod ffi;
mod index;
mod param;
mod params;
mod pending;
mod shmem;
// Shared with userspace, where its items are public API.
#[allow(unreachable_pub, dead_code)]
mod uapi;

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
    _control: chardev::Registration<control::ControlFile>,
}

impl kernel::Module for HttpBlk {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let shared = Arc::new(
            device::Shared {
                cache: cache::Cache::new()?,
                pending: pending::Pending::new()?,
                codecs: codec::Pool::new()?,
                wq: blk::Workqueue::new(c_str!("httpblk"))?,
            },
            GFP_KERNEL,
        )?;
        let control = chardev::Registration::new(control::Control::new(shared)?)?;
        pr_info!("loaded: /dev/{} ready\n", uapi::CONTROL_NAME);
        Ok(HttpBlk { _control: control })
    }
}
