//! `httpblk`: make, serve, check and read httpblk images, and attach them as block devices.

mod cmd;
mod progress;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "httpblk",
    version,
    about = "Disk images over plain HTTP, lazily fetched"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Create(cmd::create::Args),
    Serve(cmd::serve::Args),
    Verify(cmd::verify::Args),
    Cat(cmd::cat::Args),
    ImportCloop(cmd::import_cloop::Args),
    Attach(cmd::attach::Args),
    Detach(cmd::detach::Args),
    Recover(cmd::recover::Args),
    Status(cmd::status::Args),
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("HTTPBLK_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Create(a) => cmd::create::run(a),
        Command::Serve(a) => cmd::serve::run(a),
        Command::Verify(a) => cmd::verify::run(a),
        Command::Cat(a) => cmd::cat::run(a),
        Command::ImportCloop(a) => cmd::import_cloop::run(a),
        Command::Attach(a) => cmd::attach::run(a),
        Command::Detach(a) => cmd::detach::run(a),
        Command::Recover(a) => cmd::recover::run(a),
        Command::Status(a) => cmd::status::run(a),
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("httpblk: {e:#}");
            std::process::exit(1);
        }
    }
}
