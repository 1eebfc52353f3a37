//! `httpblk status`.

use anyhow::Result;

/// (Kernel driver: see Documentation/operations.md.)
#[derive(clap::Args)]
pub struct Args {}

pub fn run(_a: Args) -> Result<i32> {
    anyhow::bail!("status: not built yet")
}
