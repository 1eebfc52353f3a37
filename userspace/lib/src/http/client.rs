//! One HTTP client (reqwest over hyper and rustls) per mirror address: its own pool of
//! keep-alive connections (HTTP/2 when the server offers it by ALPN, many requests on one
//! connection; HTTP/1.1 otherwise), the mirror's host name pinned to that address, proxies by
//! curl's rules, redirects followed up to a bound, credentials and extra headers on every
//! request, and bodies bounded by what the index says (a lying server cannot make us
//! allocate). The request timeout bounds a whole request, from connecting to its body's last
//! byte; the connect timeout bounds connecting; a try that receives nothing for a third of
//! the request timeout fails (a frozen server); a speed limit (curl's) fails a body that
//! crawls. A request whose connection closed before any answer (a keep-alive connection the
//! server had just closed) is sent again at once, once, before it counts as failed.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use reqwest::header::{CONTENT_LENGTH, LOCATION, RETRY_AFTER};
use reqwest::redirect;
use url::Url;

use super::error::FetchError;
use super::image_url::redact;
use super::options::{Config, SpeedLimit};
use super::proxy::ProxyRules;
use crate::resolve::Resolver;

/// Redirects followed per request, as curl's default `--max-redirs` is generous but finite.
pub const MAX_REDIRECTS: usize = 10;
/// Longest `Retry-After` obeyed; a server asking for more gets this.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);
/// A try that receives nothing for a third of the request timeout (10 s by default) fails:
/// a frozen server is left for another while there is time, and a deep queue on a slow link
/// (a long request timeout) is not taken for one. Never shorter than the connect timeout,
/// which reqwest's read timeout would otherwise cut short (it also times the wait for the
/// head, connecting included).
fn stall_bound(config: &Config) -> Duration {
    (config.timeout / 3)
        .max(config.connect_timeout)
        .min(config.timeout)
}
/// HTTP/2 flow-control windows: a whole 4 MiB block per stream without waiting for window
/// updates, and many blocks in flight per connection.
const H2_STREAM_WINDOW: u32 = 4 << 20;
const H2_CONNECTION_WINDOW: u32 = 32 << 20;

/// Why a redirect was not followed.
#[derive(Debug, thiserror::Error)]
pub enum RedirectError {
    #[error("more than {MAX_REDIRECTS} redirects")]
    TooMany,
    #[error("redirect loop back to {0}")]
    Loop(String),
    #[error("HTTP {0} to {1} not followed: only http:// and https:// are")]
    Scheme(u16, String),
}

impl From<RedirectError> for FetchError {
    fn from(e: RedirectError) -> FetchError {
        FetchError::Redirect(e.to_string())
    }
}

fn redirect_policy() -> redirect::Policy {
    redirect::Policy::custom(|attempt| {
        if attempt.previous().iter().any(|u| u == attempt.url()) {
            let url = redact(attempt.url());
            return attempt.error(RedirectError::Loop(url));
        }
        if !matches!(attempt.url().scheme(), "http" | "https") {
            let (status, url) = (attempt.status().as_u16(), redact(attempt.url()));
            return attempt.error(RedirectError::Scheme(status, url));
        }
        if attempt.previous().len() > MAX_REDIRECTS {
            return attempt.error(RedirectError::TooMany);
        }
        tracing::debug!("{} redirect to {}", attempt.status(), redact(attempt.url()));
        attempt.follow()
    })
}

/// Names that are not pinned (redirect targets, proxies) resolve through our resolver, so
/// `--dns-server` holds for them too.
struct Dns(Arc<Resolver>);

impl reqwest::dns::Resolve for Dns {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let r = self.0.clone();
        let host = name.as_str().to_string();
        Box::pin(async move {
            let a = r.lookup(&host).await?;
            let addrs: reqwest::dns::Addrs =
                Box::new(a.addrs.into_iter().map(|ip| SocketAddr::new(ip, 0)));
            Ok(addrs)
        })
    }
}

/// A client for one address of one mirror.
#[derive(Clone)]
pub struct Client {
    inner: reqwest::Client,
    /// The same, keeping no idle connection: a request sent again because its pooled
    /// connection had closed goes out on a new one.
    unpooled: reqwest::Client,
    credentials: Option<(String, String)>,
    timeout: Duration,
    connect_timeout: Duration,
    stall: Duration,
    speed_limit: Option<SpeedLimit>,
    proxy: Arc<ProxyRules>,
}

impl Client {
    /// A client whose requests to `pin.0` go to address `pin.1` (other hosts, reached by a
    /// redirect, resolve normally). `credentials` go as Basic authorization (and are dropped
    /// on a redirect to another host).
    pub fn new(
        config: &Config,
        pin: Option<(&str, SocketAddr)>,
        credentials: Option<(String, String)>,
        resolver: Option<Arc<Resolver>>,
    ) -> crate::Result<Client> {
        let build = |idle| Self::build(config, pin, resolver.clone(), idle);
        Ok(Client {
            inner: build(256)?,
            unpooled: build(0)?,
            credentials,
            timeout: config.timeout,
            connect_timeout: config.connect_timeout,
            stall: stall_bound(config),
            speed_limit: config.speed_limit,
            proxy: config.proxy.clone(),
        })
    }

    /// A reqwest client keeping up to `max_idle` idle connections per address.
    fn build(
        config: &Config,
        pin: Option<(&str, SocketAddr)>,
        resolver: Option<Arc<Resolver>>,
        max_idle: usize,
    ) -> crate::Result<reqwest::Client> {
        let rules = config.proxy.clone();
        let mut tls = config.tls.clone();
        if config.http1_only {
            tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        }
        let mut b = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .user_agent(concat!("httpblk/", env!("CARGO_PKG_VERSION")))
            .default_headers(config.headers.clone())
            .redirect(redirect_policy())
            .no_proxy()
            .proxy(reqwest::Proxy::custom(move |u| rules.for_url(u).cloned()))
            .connect_timeout(config.connect_timeout)
            .read_timeout(stall_bound(config))
            .timeout(config.timeout)
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(max_idle)
            .tcp_nodelay(true)
            .tcp_keepalive(Duration::from_secs(30))
            .http2_initial_stream_window_size(H2_STREAM_WINDOW)
            .http2_initial_connection_window_size(H2_CONNECTION_WINDOW)
            .referer(false);
        if config.http1_only {
            b = b.http1_only();
        }
        if let Some((host, addr)) = pin {
            b = b.resolve(host, addr);
        }
        if let Some(r) = resolver {
            b = b.dns_resolver(Arc::new(Dns(r)));
        }
        b.build()
            .map_err(|e| crate::Error::Invalid(format!("HTTP client: {}", super::error::chain(&e))))
    }

    /// Classifies `e`, a failure of a try that began at `started`: a timeout before the
    /// request timeout was a stall.
    fn err(&self, e: reqwest::Error, started: Instant) -> FetchError {
        match FetchError::from_reqwest(e, self.timeout, self.connect_timeout) {
            FetchError::Timeout {
                what: "the request",
                ..
            } if started.elapsed() + Duration::from_millis(50) < self.timeout => {
                FetchError::Timeout {
                    what: "waiting for data",
                    after: self.stall,
                }
            }
            e => e,
        }
    }

    /// A connection failure behind a proxy is the proxy's: name it (its address, as the
    /// user gave it, without credentials).
    fn through_proxy(&self, url: &Url, e: FetchError) -> FetchError {
        let Some(proxy) = self.proxy.for_url(url) else {
            return e;
        };
        match e {
            FetchError::Connect(why) => {
                FetchError::Connect(format!("proxy {}: {why}", redact(proxy)))
            }
            FetchError::Timeout {
                what: "connecting",
                after,
            } => FetchError::Connect(format!(
                "proxy {}: connecting timed out after {after:?}",
                redact(proxy)
            )),
            e => e,
        }
    }

    /// GETs `url`; anything but 200 is an error. A connection that closed before any answer
    /// is most likely a pooled one the server closed meanwhile: sent again at once, on a new
    /// connection.
    async fn send(&self, url: &Url) -> Result<reqwest::Response, FetchError> {
        match self.send_on(&self.inner, url).await {
            Err(FetchError::Closed(why)) => {
                tracing::debug!("{}: {why}: sent again on a new connection", redact(url));
                self.send_on(&self.unpooled, url).await
            }
            r => r,
        }
    }

    async fn send_on(
        &self,
        client: &reqwest::Client,
        url: &Url,
    ) -> Result<reqwest::Response, FetchError> {
        let started = Instant::now();
        let mut req = client.get(url.clone());
        if let Some((user, pass)) = &self.credentials {
            req = req.basic_auth(user, Some(pass));
        }
        let resp = req
            .send()
            .await
            .map_err(|e| self.through_proxy(url, self.err(e, started)))?;
        let status = resp.status();
        // reqwest follows http and https redirects; one left here goes somewhere we never
        // go (file://, ftp://): say where, not just "302".
        if status.is_redirection() {
            let elsewhere = resp
                .headers()
                .get(LOCATION)
                .and_then(|v| resp.url().join(&String::from_utf8_lossy(v.as_bytes())).ok())
                .filter(|u| !matches!(u.scheme(), "http" | "https"));
            if let Some(to) = elsewhere {
                return Err(RedirectError::Scheme(status.as_u16(), redact(&to)).into());
            }
        }
        if status != reqwest::StatusCode::OK {
            let retry_after = resp
                .headers()
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(|s| Duration::from_secs(s).min(MAX_RETRY_AFTER));
            return Err(FetchError::Status {
                status: status.as_u16(),
                retry_after,
            });
        }
        Ok(resp)
    }

    fn declared_len(resp: &reqwest::Response) -> Option<u64> {
        resp.headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|s| s.parse().ok())
    }

    /// The body's next chunk, checked against the speed limit.
    async fn chunk(
        &self,
        resp: &mut reqwest::Response,
        speed: &mut Speed,
    ) -> Result<Option<Bytes>, FetchError> {
        let Some(limit) = speed.limit else {
            return resp.chunk().await.map_err(|e| self.err(e, speed.started));
        };
        loop {
            let window_end = speed.window_start + limit.time;
            match tokio::time::timeout_at(window_end.into(), resp.chunk()).await {
                Ok(chunk) => {
                    let chunk = chunk.map_err(|e| self.err(e, speed.started))?;
                    speed.add(chunk.as_ref().map_or(0, |c| c.len()))?;
                    return Ok(chunk);
                }
                // Nothing within the window: slow unless the window already had enough.
                Err(_) => speed.add(0)?,
            }
        }
    }

    /// Fetches `url` into `buf`, which it must fill exactly.
    pub async fn get_exact(&self, url: &Url, buf: &mut [u8]) -> Result<(), FetchError> {
        let want = buf.len() as u64;
        let started = Instant::now();
        let mut resp = self.send(url).await?;
        match Self::declared_len(&resp) {
            Some(n) if n > want => return Err(FetchError::TooLong { limit: want }),
            Some(n) if n < want => return Err(FetchError::ShortBody { got: n, want }),
            _ => {}
        }
        let mut n = 0usize;
        let mut speed = Speed::new(self.speed_limit, started);
        while let Some(chunk) = self.chunk(&mut resp, &mut speed).await? {
            if chunk.len() > buf.len() - n {
                return Err(FetchError::TooLong { limit: want });
            }
            buf[n..n + chunk.len()].copy_from_slice(&chunk);
            n += chunk.len();
        }
        if n != buf.len() {
            return Err(FetchError::ShortBody {
                got: n as u64,
                want,
            });
        }
        Ok(())
    }

    /// The length the first bytes `head` of a file give (`len_of`), checked against what the
    /// server declared, `max_len`, and what already arrived.
    fn sized_by_head(
        head: &[u8],
        declared: Option<u64>,
        max_len: usize,
        len_of: impl Fn(&[u8]) -> Result<usize, String>,
    ) -> Result<usize, FetchError> {
        // The first bytes speak first: garbage is called that, not too long.
        let n = len_of(head).map_err(FetchError::BadContent)?;
        if n > max_len || declared.is_some_and(|d| d > max_len as u64) {
            return Err(FetchError::TooLong {
                limit: max_len as u64,
            });
        }
        if declared.is_some_and(|d| d != n as u64) {
            return Err(FetchError::BadContent(format!(
                "{} bytes declared, {n} expected from its first bytes",
                declared.unwrap_or(0)
            )));
        }
        if head.len() > n {
            return Err(FetchError::TooLong { limit: n as u64 });
        }
        Ok(n)
    }

    /// Fetches `url` whole, a file whose first `head_len` bytes tell its length: `len_of`
    /// checks them and gives the length (or why the file is not what was asked for), so that
    /// neither a declared length nor a body over `max_len` or off that length is read further.
    pub async fn get_sized(
        &self,
        url: &Url,
        max_len: usize,
        head_len: usize,
        len_of: impl Fn(&[u8]) -> Result<usize, String>,
    ) -> Result<Bytes, FetchError> {
        let started = Instant::now();
        let mut resp = self.send(url).await?;
        // A declared length over `max_len` is refused once the first bytes had their say
        // (a garbage file is called that, not too long).
        let declared = Self::declared_len(&resp);
        let mut limit = max_len;
        let mut want = None;
        let mut out = Vec::with_capacity(declared.unwrap_or(0).min(head_len as u64) as usize);
        let mut speed = Speed::new(self.speed_limit, started);
        loop {
            let chunk = self.chunk(&mut resp, &mut speed).await?;
            if let Some(c) = &chunk {
                // `out` never holds more than `limit` (checked below once the length is
                // known), so this cannot wrap.
                if c.len() > limit.saturating_sub(out.len()) {
                    return Err(FetchError::TooLong {
                        limit: limit as u64,
                    });
                }
                out.extend_from_slice(c);
            }
            let ended = chunk.is_none();
            if want.is_none() && (out.len() >= head_len || ended) {
                let n = Self::sized_by_head(&out, declared, max_len, &len_of)?;
                limit = n;
                out.reserve_exact(limit.saturating_sub(out.len()));
                want = Some(n);
            }
            if ended {
                break;
            }
        }
        match want {
            Some(n) if n != out.len() => Err(FetchError::ShortBody {
                got: out.len() as u64,
                want: n as u64,
            }),
            _ => Ok(out.into()),
        }
    }
}

/// Bytes of a body over the current speed-limit window (curl's `--speed-limit`): when the
/// window ends with fewer than the limit asks, the transfer fails; else a new window starts.
struct Speed {
    limit: Option<SpeedLimit>,
    /// When the try began (for telling a stall from the request timeout).
    started: Instant,
    window_start: Instant,
    bytes: u64,
}

impl Speed {
    fn new(limit: Option<SpeedLimit>, started: Instant) -> Speed {
        Speed {
            limit,
            started,
            window_start: Instant::now(),
            bytes: 0,
        }
    }

    fn add(&mut self, n: usize) -> Result<(), FetchError> {
        let Some(limit) = self.limit else {
            return Ok(());
        };
        self.bytes += n as u64;
        let now = Instant::now();
        if now < self.window_start + limit.time {
            return Ok(());
        }
        if (self.bytes as f64) < limit.bytes_per_s as f64 * limit.time.as_secs_f64() {
            return Err(FetchError::TooSlow {
                bytes: self.bytes,
                limit: limit.bytes_per_s,
                time: limit.time,
            });
        }
        self.window_start = now;
        self.bytes = 0;
        Ok(())
    }
}
