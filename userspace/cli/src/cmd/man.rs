//! `httpblk man DIR`: man pages, generated from the clap definitions.

use std::path::PathBuf;

use anyhow::{Context, Result};

/// Write the man pages (httpblk.1 and httpblk-COMMAND.1) into a directory.
#[derive(clap::Args)]
pub struct Args {
    dir: PathBuf,
}

pub fn run(a: Args, cmd: clap::Command) -> Result<i32> {
    std::fs::create_dir_all(&a.dir).with_context(|| format!("create {}", a.dir.display()))?;
    clap_mangen::generate_to(cmd, &a.dir)
        .with_context(|| format!("write man pages into {}", a.dir.display()))?;
    Ok(0)
}
