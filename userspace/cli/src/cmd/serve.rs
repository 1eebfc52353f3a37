//! `httpblk serve DIR --listen ADDR`: a static HTTP server for a store.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};

/// Serve a store directory over HTTP/1.1 (GET, HEAD, Range, keep-alive, ETag and
/// Last-Modified); -v logs each request.
#[derive(clap::Args)]
pub struct Args {
    /// The store: the directory `httpblk create` wrote (indexes and blocks/).
    dir: PathBuf,
    /// Address to listen on, e.g. 127.0.0.1:8080 or [::1]:8080.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: String,
    /// Close a connection that sends no complete request head for this long (a new one, or
    /// one idle between requests).
    #[arg(long, default_value_t = 30_000, value_parser = clap::value_parser!(u64).range(100..=3_600_000))]
    header_timeout_ms: u64,
    /// Close a connection whose client reads nothing of a response for this long.
    #[arg(long, default_value_t = 30_000, value_parser = clap::value_parser!(u64).range(100..=3_600_000))]
    send_timeout_ms: u64,
    /// Serve at most this many connections at once, fewer if the descriptor limit (ulimit -n)
    /// cannot hold them. At the limit a new client closes the connection idle the longest, or
    /// waits for one to end.
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    max_connections: u32,
}

pub fn run(a: Args) -> Result<i32> {
    anyhow::ensure!(a.dir.is_dir(), "{}: not a directory", a.dir.display());
    let opts = httpblk_core::serve::Options {
        header_timeout: Duration::from_millis(a.header_timeout_ms),
        send_timeout: Duration::from_millis(a.send_timeout_ms),
        max_connections: usize::try_from(a.max_connections)?,
    };
    super::runtime().block_on(async {
        let listener = tokio::net::TcpListener::bind(&a.listen)
            .await
            .with_context(|| format!("listen on {}", a.listen))?;
        tracing::info!(
            "serving {} on http://{}",
            a.dir.display(),
            listener.local_addr()?
        );
        tokio::select! {
            r = httpblk_core::serve::serve_with(a.dir, listener, opts) => r?,
            _ = tokio::signal::ctrl_c() => {}
        }
        Ok(0)
    })
}
