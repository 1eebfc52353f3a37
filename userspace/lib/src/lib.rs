//! The httpblk image format and everything userspace does with it: codecs, the block store,
//! creating images, fetching them over HTTP, serving them, and reading them back.
//!
//! The binary, the tests and the benchmarks share this crate; the kernel shares only the ring
//! ABI (`uapi`), which lives in the module's tree so that there is one source of truth.

pub mod block;
pub mod cloop;
pub mod codec;
pub mod create;
pub mod digest;
pub mod error;
pub mod helper;
pub mod http;
pub mod index;
pub mod location;
pub mod mirrors;
pub mod reader;
pub mod resolve;
pub mod ring;
pub mod serve;
pub mod store;

#[path = "../../../rust/uapi.rs"]
pub mod uapi;

pub use error::{Error, Result};
