//! The HTTP options `cat`, `verify` and `attach` share (one fetch layer, one set of flags).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use httpblk_core::http::options::SpeedLimit;
use httpblk_core::http::Options;

#[derive(clap::Args, Clone, Debug)]
#[command(next_help_heading = "HTTP")]
pub struct HttpArgs {
    /// Give up on one try of an HTTP request after this long, from connecting to the last
    /// byte of its body (it may be retried) [default: 30000; attach: the device's I/O
    /// timeout].
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u64).range(100..=3_600_000))]
    pub request_timeout_ms: Option<u64>,
    /// Give up on connecting (TCP and TLS) after this many seconds, as curl's option
    /// [default: 10].
    #[arg(long, value_name = "SECONDS", value_parser = seconds)]
    pub connect_timeout: Option<Duration>,
    /// Fail a transfer slower than this many bytes a second over --speed-time (it may be
    /// retried), as curl's option [default: no limit].
    #[arg(long, value_name = "BYTES", value_parser = clap::value_parser!(u64).range(1..))]
    pub speed_limit: Option<u64>,
    /// The time --speed-limit is averaged over, in seconds, per request (curl's default, 30,
    /// is as long as a whole request may take here).
    #[arg(long, value_name = "SECONDS", value_parser = seconds, default_value = "10", requires = "speed_limit")]
    pub speed_time: Duration,
    /// Try a failed request again (connection error, timeout, 5xx, short body) for this many
    /// seconds after its first try: other mirrors first, then all again after a pause that
    /// doubles. curl's --retry-max-time [default: 30; attach: the device's I/O timeout].
    #[arg(long, value_name = "SECONDS", value_parser = seconds)]
    pub retry_max_time: Option<Duration>,
    /// Try a failed request again at most this many times (0: never) [default: as often as
    /// --retry-max-time allows].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(0..=1000))]
    pub retries: Option<u32>,
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

/// Seconds, as curl takes them: a decimal number, fractions allowed.
pub fn seconds(s: &str) -> Result<Duration, String> {
    let v: f64 = s
        .parse()
        .map_err(|_| format!("'{s}' is not a number of seconds"))?;
    if !(0.001..=86_400.0 * 365.0).contains(&v) {
        return Err(format!("{s} s: from 0.001 to a year"));
    }
    Ok(Duration::from_secs_f64(v))
}

impl HttpArgs {
    /// The options, for `cat` and `verify`; `attach` passes its device's I/O timeout as
    /// the default request timeout and retry budget (a read fails then anyway).
    pub fn options(&self) -> Result<Options> {
        self.options_for(None)
    }

    pub fn options_for(&self, io_timeout: Option<Duration>) -> Result<Options> {
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
        let defaults = Options::default();
        let timeout = self
            .request_timeout_ms
            .map(Duration::from_millis)
            .or(io_timeout)
            .unwrap_or(defaults.timeout);
        anyhow::ensure!(
            self.speed_limit.is_none() || self.speed_time < timeout,
            "--speed-time {:?} is not shorter than the request timeout ({timeout:?}): the speed \
             limit could never act",
            self.speed_time
        );
        Ok(Options {
            timeout,
            connect_timeout: self.connect_timeout.unwrap_or(defaults.connect_timeout),
            speed_limit: self.speed_limit.map(|bytes_per_s| SpeedLimit {
                bytes_per_s,
                time: self.speed_time,
            }),
            retry_budget: self
                .retry_max_time
                .or(io_timeout)
                .unwrap_or(defaults.retry_budget),
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

/// Exit status of a command stopped by `--max-time`, as curl's.
pub const EXIT_MAX_TIME: i32 = 28;

/// `--max-time` of `cat` and `verify`: a bound on the whole command.
#[derive(clap::Args, Clone, Debug)]
#[command(next_help_heading = "HTTP")]
pub struct MaxTime {
    /// Stop the whole command after this many seconds (exit status 28), as curl's option.
    #[arg(long, value_name = "SECONDS", value_parser = seconds)]
    pub max_time: Option<Duration>,
}

impl MaxTime {
    /// Runs `work` within the bound: `None` once it is reached (`work` is dropped, and with
    /// it whatever it would have left half done).
    pub async fn bound<T>(&self, work: impl std::future::Future<Output = T>) -> Option<T> {
        match self.max_time {
            Some(t) => tokio::time::timeout(t, work).await.ok(),
            None => Some(work.await),
        }
    }

    pub fn reached(&self, what: &str) -> i32 {
        let t = self.max_time.unwrap_or_default();
        eprintln!("httpblk: --max-time {t:?} reached{what}");
        EXIT_MAX_TIME
    }
}
