// SPDX-License-Identifier: GPL-2.0
//! Stand-ins for kernel abstractions that the `kernel` crate of 6.12 or 7.2 lacks, or lacks in
//! the shape this driver needs. Each file is named after the upstream abstraction (or C API)
//! it replaces; with `blk/`, this is where the module's `unsafe` lives. Nothing here names a
//! driver function: the driver hands its hooks in.
//!
//! `compat` holds what differs between the kernels the module builds against, selected by the
//! `--cfg` flags that Kbuild derives from the tree.

pub(crate) mod compat;
pub(crate) mod decompress;
pub(crate) mod helpers;
pub(crate) mod miscdevice;
pub(crate) mod module_param;
pub(crate) mod shash;
pub(crate) mod time;
mod transmute;
pub(crate) mod vmalloc;
pub(crate) mod workqueue;
