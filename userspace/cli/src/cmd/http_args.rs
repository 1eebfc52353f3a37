//! The HTTP options `cat`, `verify` and `attach` share (one fetch layer, one set of flags).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use httpblk_core::http::Options;

#[derive(clap::Args, Clone, Debug)]
#[command(next_help_heading = "HTTP")]
pub struct HttpArgs {
    /// Give up on one HTTP request after this long without progress (connecting, waiting for
    /// the answer, or a stalled body); it is retried.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(100..=600_000))]
    pub request_timeout_ms: u64,
    /// Retries of a failed request (connection error, 5xx, short body, stall), on other
    /// mirrors and then, after a pause that doubles, on all again.
    #[arg(long, default_value_t = httpblk_core::http::options::DEFAULT_RETRIES,
          value_parser = clap::value_parser!(u32).range(0..=100))]
    pub retries: u32,
    /// Also trust the CA certificates in this PEM file (the system's are always trusted;
    /// SSL_CERT_FILE and SSL_CERT_DIR replace them).
    #[arg(long, value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,
    /// Use this proxy for every URL (http://HOST:PORT, socks5h://HOST:PORT) instead of
    /// http_proxy, https_proxy and all_proxy; no_proxy still applies.
    #[arg(long, value_name = "URL")]
    pub proxy: Option<String>,
    /// Send this header with every request, e.g. 'Authorization: Bearer TOKEN'
    /// (repeatable; never logged).
    #[arg(long = "header", short = 'H', value_name = "NAME: VALUE")]
    pub headers: Vec<String>,
    /// Take credentials for hosts whose URL has none from $NETRC or ~/.netrc.
    #[arg(long)]
    pub netrc: bool,
    /// Take credentials from this netrc file.
    #[arg(long, value_name = "FILE", conflicts_with = "netrc")]
    pub netrc_file: Option<PathBuf>,
    /// Ask this DNS server (ADDR:PORT) instead of the system's (/etc/resolv.conf).
    #[arg(long)]
    pub dns_server: Option<SocketAddr>,
    /// Speak HTTP/1.1 only, even to servers that offer HTTP/2.
    #[arg(long)]
    pub http1: bool,
}

impl HttpArgs {
    pub fn options(&self) -> Result<Options> {
        let netrc = match (&self.netrc_file, self.netrc) {
            (Some(f), _) => Some(f.clone()),
            (None, true) => Some(
                std::env::var_os("NETRC")
                    .map(PathBuf::from)
                    .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".netrc")))
                    .context("--netrc: neither NETRC nor HOME is set")?,
            ),
            (None, false) => None,
        };
        Ok(Options {
            timeout: Duration::from_millis(self.request_timeout_ms),
            retries: self.retries,
            ca_cert: self.ca_cert.clone(),
            proxy: self.proxy.clone(),
            headers: self.headers.clone(),
            netrc,
            dns_server: self.dns_server,
            http1_only: self.http1,
        })
    }
}
