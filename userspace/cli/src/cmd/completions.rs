//! `httpblk completions SHELL`: a completion script, generated from the clap definitions.

use anyhow::Result;
use clap_complete::Shell;

/// Print a shell completion script (bash, zsh, fish, elvish, powershell).
#[derive(clap::Args)]
pub struct Args {
    shell: Shell,
}

pub fn run(a: Args, mut cmd: clap::Command) -> Result<i32> {
    clap_complete::generate(a.shell, &mut cmd, "httpblk", &mut std::io::stdout());
    Ok(0)
}
