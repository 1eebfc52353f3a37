//! `httpblk detach DEV`: remove a device; its helper exits.

use anyhow::{anyhow, Result};
use httpblk_core::ring::Control;

/// Remove /dev/httpblkN (pending reads fail with EIO).
#[derive(clap::Args)]
pub struct Args {
    /// /dev/httpblkN, httpblkN or N.
    device: String,
}

pub fn parse_dev(s: &str) -> Result<u32> {
    let n = s.trim_start_matches("/dev/").trim_start_matches("httpblk");
    // The parse error ("invalid digit found in string") says nothing a user can act on.
    n.parse().map_err(|_| {
        anyhow!("'{s}' is not an httpblk device: give /dev/httpblkN, httpblkN or the number N (httpblk status lists them)")
    })
}

pub fn run(a: Args) -> Result<i32> {
    let id = parse_dev(&a.device)?;
    Control::open()?.remove(id)?;
    outln!("/dev/httpblk{id} detached")?;
    Ok(0)
}
