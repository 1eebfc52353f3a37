//! `httpblk detach DEV`: remove a device; its helper exits.

use anyhow::{Context, Result};
use httpblk_core::ring::Control;

/// Remove /dev/httpblkN (pending reads fail with EIO).
#[derive(clap::Args)]
pub struct Args {
    /// /dev/httpblkN, httpblkN or N.
    device: String,
}

pub fn parse_dev(s: &str) -> Result<u32> {
    let n = s.trim_start_matches("/dev/").trim_start_matches("httpblk");
    n.parse()
        .with_context(|| format!("'{s}' is not /dev/httpblkN"))
}

pub fn run(a: Args) -> Result<i32> {
    let id = parse_dev(&a.device)?;
    Control::open()?.remove(id)?;
    outln!("/dev/httpblk{id} detached")?;
    Ok(0)
}
