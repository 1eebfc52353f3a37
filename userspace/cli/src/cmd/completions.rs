//! `httpblk completions SHELL`: a completion script, generated from the clap definitions.

use std::io::Write;

use anyhow::Result;
use clap_complete::Shell;

/// Print a shell completion script (bash, zsh, fish, elvish, powershell).
#[derive(clap::Args)]
pub struct Args {
    shell: Shell,
}

pub fn run(a: Args, mut cmd: clap::Command) -> Result<i32> {
    // Generated whole, then written: clap_complete panics on a failed write (a closed pipe).
    let mut script = Vec::new();
    clap_complete::generate(a.shell, &mut cmd, "httpblk", &mut script);
    crate::out::stdout().write_all(&script)?;
    Ok(0)
}
