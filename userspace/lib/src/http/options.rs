//! What a user can say about HTTP (the `--ca-cert`, `--proxy`, `--header`, `--netrc`,
//! `--retries`, `--retry-max-time`, `--request-timeout-ms`, `--connect-timeout`,
//! `--speed-limit`, `--speed-time`, `--dns-server` and `--http1` options of `cat`, `verify`
//! and `attach`), and the checked configuration every client is built from.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use super::proxy::ProxyRules;
use crate::{Error, Result};

/// Default bound of one request, from connecting to the last byte of its body: the
/// module's default I/O timeout, after which a device's read fails anyway.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default bound of connecting (TCP, and the TLS handshake).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default time within which a failed request is tried again (curl's `--retry-max-time`):
/// the module's default I/O timeout.
pub const DEFAULT_RETRY_BUDGET: Duration = Duration::from_secs(30);

/// curl's `--speed-limit`/`--speed-time`: a body that brings fewer than `bytes_per_s` a
/// second, averaged over `time`, fails (and is retried).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpeedLimit {
    pub bytes_per_s: u64,
    pub time: Duration,
}

#[derive(Clone, Debug)]
pub struct Options {
    /// Bounds one request, from connecting to the last byte of its body.
    pub timeout: Duration,
    pub connect_timeout: Duration,
    pub speed_limit: Option<SpeedLimit>,
    /// A failed request is tried again (on other mirrors, then after a pause on all) only
    /// this long after its first try started ...
    pub retry_budget: Duration,
    /// ... and, if set, at most this many times.
    pub retries: Option<u32>,
    /// More trusted CA certificates (PEM).
    pub ca_cert: Option<PathBuf>,
    /// A proxy for every URL (else the environment's, by curl's rules).
    pub proxy: Option<String>,
    /// `NAME: VALUE` headers sent with every request.
    pub headers: Vec<String>,
    /// Credentials for hosts whose URL has none, from this netrc file.
    pub netrc: Option<PathBuf>,
    /// Resolve mirror names with this DNS server, not the system's.
    pub dns_server: Option<SocketAddr>,
    /// Never negotiate HTTP/2.
    pub http1_only: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            timeout: DEFAULT_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            speed_limit: None,
            retry_budget: DEFAULT_RETRY_BUDGET,
            retries: None,
            ca_cert: None,
            proxy: None,
            headers: Vec::new(),
            netrc: None,
            dns_server: None,
            http1_only: false,
        }
    }
}

/// `Options`, checked and loaded: shared by every client of a command.
pub struct Config {
    pub timeout: Duration,
    pub connect_timeout: Duration,
    pub speed_limit: Option<SpeedLimit>,
    pub retry_budget: Duration,
    pub retries: Option<u32>,
    pub tls: rustls::ClientConfig,
    pub proxy: Arc<ProxyRules>,
    pub headers: HeaderMap,
    pub netrc: Option<netrc::Netrc>,
    pub dns_server: Option<SocketAddr>,
    pub http1_only: bool,
}

/// Parses `NAME: VALUE`.
pub fn parse_header(h: &str) -> Result<(HeaderName, HeaderValue)> {
    let bad = |why: &str| {
        // The value may be a secret: name the header only.
        let name = h.split_once(':').map_or("…", |(n, _)| n.trim());
        Error::Invalid(format!("--header '{name}: …': {why}"))
    };
    let (name, value) = h.split_once(':').ok_or_else(|| bad("not NAME: VALUE"))?;
    let name = HeaderName::from_bytes(name.trim().as_bytes())
        .map_err(|_| bad("not a valid header name"))?;
    let mut value =
        HeaderValue::from_str(value.trim()).map_err(|_| bad("not a valid header value"))?;
    value.set_sensitive(true);
    Ok((name, value))
}

impl Options {
    pub fn config(&self) -> Result<Config> {
        let mut headers = HeaderMap::new();
        for h in &self.headers {
            let (n, v) = parse_header(h)?;
            headers.append(n, v);
        }
        let netrc = match &self.netrc {
            Some(path) => Some(
                netrc::Netrc::from_file(path)
                    .map_err(|e| Error::Invalid(format!("netrc {}: {e}", path.display())))?,
            ),
            None => None,
        };
        Ok(Config {
            timeout: self.timeout,
            connect_timeout: self.connect_timeout.min(self.timeout),
            speed_limit: self.speed_limit,
            retry_budget: self.retry_budget,
            retries: self.retries,
            tls: super::tls::client_config(self.ca_cert.as_deref())?,
            proxy: Arc::new(ProxyRules::from_env(self.proxy.as_deref())?),
            headers,
            netrc,
            dns_server: self.dns_server,
            http1_only: self.http1_only,
        })
    }
}

impl Config {
    /// Credentials for `host` from the netrc file: its `machine` entry, else `default`.
    pub fn netrc_credentials(&self, host: &str) -> Option<(String, String)> {
        let n = self.netrc.as_ref()?;
        let a = n.hosts.get(host).or_else(|| n.hosts.get("default"))?;
        Some((a.login.clone(), a.password.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_parse_and_hide_their_values() {
        let (n, v) = parse_header("Authorization: Bearer abc").unwrap();
        assert_eq!(n.as_str(), "authorization");
        assert_eq!(v.to_str().unwrap(), "Bearer abc");
        assert!(v.is_sensitive());
        let e = parse_header("X-Token secret").err().unwrap().to_string();
        assert!(!e.contains("secret"), "{e}");
        assert!(parse_header("Bad Name: x").is_err());
    }

    #[test]
    fn netrc_machine_then_default() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("netrc");
        std::fs::write(
            &p,
            "machine a.example login alice password pa\ndefault login anon password pd\n",
        )
        .unwrap();
        let c = Options {
            netrc: Some(p),
            ..Options::default()
        }
        .config()
        .unwrap();
        assert_eq!(
            c.netrc_credentials("a.example"),
            Some(("alice".into(), "pa".into()))
        );
        assert_eq!(
            c.netrc_credentials("b.example"),
            Some(("anon".into(), "pd".into()))
        );
    }
}
