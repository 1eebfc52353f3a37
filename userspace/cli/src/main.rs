//! `httpblk`: make, serve, check and read httpblk images, and attach them as block devices.

#[macro_use]
mod out;
mod cmd;
mod progress;

use std::io::IsTerminal;

use clap::{ArgAction, CommandFactory, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "httpblk",
    version,
    about = "Disk images over plain HTTP, lazily fetched"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// More log detail: -v debug from httpblk, -vv debug from everything, -vvv trace
    /// (HTTPBLK_LOG, a tracing filter such as "info,httpblk_core=debug", overrides).
    #[arg(short, long, global = true, action = ArgAction::Count)]
    verbose: u8,
    /// Less: -q errors only, -qq nothing (the final error message is still printed).
    #[arg(short, long, global = true, action = ArgAction::Count, conflicts_with = "verbose")]
    quiet: u8,
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
    Completions(cmd::completions::Args),
    Man(cmd::man::Args),
}

/// The log filter for -v/-q, unless HTTPBLK_LOG gives one.
fn log_filter(verbose: u8, quiet: u8) -> tracing_subscriber::EnvFilter {
    if let Ok(f) = tracing_subscriber::EnvFilter::try_from_env("HTTPBLK_LOG") {
        return f;
    }
    let spec = match (verbose, quiet) {
        (0, 0) => "info",
        (0, 1) => "error",
        (0, _) => "off",
        (1, _) => "info,httpblk=debug,httpblk_core=debug",
        (2, _) => "debug",
        _ => "trace",
    };
    tracing_subscriber::EnvFilter::new(spec)
}

/// An error and its causes, leaving out a cause whose text the message before it already
/// contains (library messages carry their cause).
fn report(e: &anyhow::Error) -> String {
    let mut out = String::new();
    let mut prev = String::new();
    for cause in e.chain() {
        let s = cause.to_string();
        if !prev.contains(&s) {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&s);
        }
        prev = s;
    }
    out
}

fn main() {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(log_filter(cli.verbose, cli.quiet))
        .with_writer(std::io::stderr)
        // Colours only on a terminal: a log file gets plain text.
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .init();
    if cli.quiet > 0 {
        progress::hide();
    }
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
        Command::Completions(a) => cmd::completions::run(a, Cli::command()),
        Command::Man(a) => cmd::man::run(a, Cli::command()),
    };
    match result {
        Ok(code) => std::process::exit(code),
        // `| head`: ended quietly, as coreutils end.
        Err(e) if out::is_pipe_closed(&e) => out::die_of_sigpipe(),
        Err(e) => {
            eprintln!("httpblk: {}", report(&e));
            std::process::exit(1);
        }
    }
}
