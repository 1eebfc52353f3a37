//! One image on several HTTP servers. Each mirror URL names a host; a host name resolves to
//! all its A and AAAA records, and every address is an endpoint: a candidate for each request.
//!
//! - Requests go to the live endpoint with the lowest expected time (recent time per request,
//!   times the requests it already has in flight), so faster servers take more of the load.
//! - A request that fails (connection, timeout, 5xx, wrong length) is retried on another
//!   endpoint, and once every endpoint was tried, on all of them again after a pause that
//!   doubles (or what `Retry-After` asks), for as long as the retry budget lasts
//!   (`--retry-max-time`, and at most `--retries` times if given): a single flaky server
//!   costs time, not a failed read. A request slower than the recent 95th percentile is hedged: the same block
//!   is asked of a second endpoint and the first complete answer wins.
//! - Behind a proxy (curl's rules, `http::proxy`), a mirror is one endpoint: the proxy
//!   resolves its name.
//! - A failed endpoint is marked down and probed in the background (its index must still have
//!   the image's digest) until it answers again, as DNS-Balance's heartbeat did.
//! - Names are re-resolved when their answer's TTL expires and when one of their endpoints
//!   fails: new addresses are verified and used, vanished ones dropped.
//!
//! The kernel verifies every block; `fetch_into`'s `avoid` lets the caller steer a retry away
//! from an endpoint whose copy the kernel rejected.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::digest::sha256_hex;
use crate::http::{Client, Config, FetchError, ImageUrl, Options};
use crate::index::Index;
use crate::resolve::Resolver;
use crate::uapi::{INDEX_HEADER_LEN, MAX_INDEX_LEN};
use crate::{Error, Result};

/// The first pause between rounds of retries, doubled each round up to the second.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_millis(3200);
/// Latency samples kept for the hedging percentile, and the fewest that enable hedging.
const LATENCY_SAMPLES: usize = 256;
const MIN_SAMPLES_TO_HEDGE: usize = 16;
/// Hedge no sooner than this, however fast recent requests were.
const MIN_HEDGE_DELAY: Duration = Duration::from_millis(5);
/// Assumed time per request of an endpoint not measured yet.
const UNMEASURED_US: f64 = 1000.0;
/// Background work: how often down endpoints and expired names are looked at.
const TICK: Duration = Duration::from_millis(250);
/// Probing a down endpoint backs off from one tick up to this.
const MAX_PROBE_BACKOFF: Duration = Duration::from_secs(4);
/// A name whose endpoint failed is re-resolved, at most this often.
const MIN_RERESOLVE: Duration = Duration::from_secs(1);
/// Consecutive content failures (404, wrong length, rejected by the kernel) that take an
/// endpoint down; a connection or timeout failure does at once.
const CONTENT_FAILURES_DOWN: u32 = 3;

/// How an endpoint stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Health {
    /// Answering; takes requests.
    Up,
    /// Failed; probed in the background.
    Down,
    /// Newly found (attach, DNS); used once a probe confirms it serves this image.
    Unverified,
    /// Serves another image (its index digest differs): never used.
    WrongImage,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Up => "up",
            Health::Down => "down",
            Health::Unverified => "unverified",
            Health::WrongImage => "wrong-image",
        }
    }
}

struct EndpointState {
    health: Health,
    /// Smoothed microseconds per successful request; 0 until measured.
    ewma_us: f64,
    inflight: u32,
    requests: u64,
    bytes: u64,
    failures: u64,
    rejected: u64,
    hedges_won: u64,
    consecutive_failures: u32,
    probe_backoff: Duration,
    next_probe: Instant,
    last_error: String,
}

/// One address of one mirror (or the mirror itself, behind a proxy).
pub struct Endpoint {
    mirror: usize,
    /// The address requests go to; `None` behind a proxy, which resolves the name itself.
    pub addr: Option<SocketAddr>,
    /// Its own connection pool, with the mirror's host name pinned to `addr`.
    client: Client,
    state: Mutex<EndpointState>,
}

/// One mirror URL, as given.
struct Mirror {
    url: ImageUrl,
    /// The URL as status and logs show it: no credentials, no query.
    shown: String,
    /// The host is a name we resolve (not an address literal, not behind a proxy).
    named: bool,
    /// Requests go through a proxy.
    proxied: bool,
    credentials: Option<(String, String)>,
    endpoints: Mutex<Vec<Arc<Endpoint>>>,
    dns: Mutex<DnsState>,
}

struct DnsState {
    valid_until: Instant,
    last_try: Instant,
    /// An endpoint failed: resolve again soon.
    stale: bool,
}

/// What `status` shows for one endpoint.
#[derive(Clone, Debug)]
pub struct EndpointReport {
    pub mirror: String,
    pub address: String,
    pub state: &'static str,
    pub latency_ms: f64,
    pub inflight: u32,
    pub requests: u64,
    pub bytes: u64,
    pub failures: u64,
    pub rejected: u64,
    pub hedges_won: u64,
    pub last_error: String,
}

pub struct Mirrors {
    mirrors: Vec<Mirror>,
    config: Arc<Config>,
    resolver: Option<Arc<Resolver>>,
    index_sha256: String,
    /// Recent request times (µs), for the hedging threshold.
    recent: Mutex<VecDeque<u32>>,
}

impl Endpoint {
    /// An endpoint of mirror `mirror` at `ip` (`None`: the mirror's proxy).
    fn new(
        mirror: usize,
        m: &Mirror,
        ip: Option<IpAddr>,
        health: Health,
        config: &Config,
        resolver: Option<Arc<Resolver>>,
    ) -> Result<Arc<Endpoint>> {
        let addr = ip.map(|ip| SocketAddr::new(ip, m.url.port()));
        let pin = addr.filter(|_| m.named).map(|a| (m.url.bare_host(), a));
        let client = Client::new(config, pin, m.credentials.clone(), resolver)?;
        Ok(Arc::new(Endpoint {
            mirror,
            addr,
            client,
            state: Mutex::new(EndpointState {
                health,
                ewma_us: 0.0,
                inflight: 0,
                requests: 0,
                bytes: 0,
                failures: 0,
                rejected: 0,
                hedges_won: 0,
                consecutive_failures: 0,
                probe_backoff: TICK,
                next_probe: Instant::now(),
                last_error: String::new(),
            }),
        }))
    }

    /// The address, or "proxy" behind one.
    pub fn label(&self) -> String {
        self.addr
            .map(|a| a.to_string())
            .unwrap_or_else(|| "proxy".into())
    }

    pub fn health(&self) -> Health {
        self.state.lock().unwrap().health
    }

    /// Expected microseconds for one more request (unmeasured endpoints are assumed fast, so
    /// they get tried), times the requests it is already serving.
    fn score(&self) -> f64 {
        let s = self.state.lock().unwrap();
        let us = if s.ewma_us > 0.0 {
            s.ewma_us
        } else {
            UNMEASURED_US
        };
        us * f64::from(s.inflight + 1)
    }

    fn succeeded(&self, took: Duration, bytes: usize) {
        let mut s = self.state.lock().unwrap();
        let us = took.as_micros() as f64;
        s.ewma_us = if s.ewma_us == 0.0 {
            us
        } else {
            0.8 * s.ewma_us + 0.2 * us
        };
        s.requests += 1;
        s.bytes += bytes as u64;
        s.consecutive_failures = 0;
        if s.health == Health::Down {
            s.health = Health::Up;
        }
    }

    /// Counts a failure; returns whether it took the endpoint down.
    fn failed(&self, e: &Error, content: bool) -> bool {
        let mut s = self.state.lock().unwrap();
        s.requests += 1;
        s.failures += 1;
        s.last_error = e.to_string();
        Self::one_more_failure(&mut s, content)
    }

    /// Counts a copy that passed our checks but that the kernel rejected.
    fn rejected(&self) {
        let mut s = self.state.lock().unwrap();
        s.rejected += 1;
        s.last_error = "served a block copy the kernel rejected".into();
        Self::one_more_failure(&mut s, true);
    }

    /// A connection-level failure takes the endpoint down at once; bad content only after
    /// CONTENT_FAILURES_DOWN in a row (one corrupt file should not lose a whole mirror).
    fn one_more_failure(s: &mut EndpointState, content: bool) -> bool {
        s.consecutive_failures += 1;
        let down = !content || s.consecutive_failures >= CONTENT_FAILURES_DOWN;
        if down && s.health == Health::Up {
            s.health = Health::Down;
            s.probe_backoff = TICK;
            s.next_probe = Instant::now() + TICK;
            return true;
        }
        false
    }
}

/// Decrements an endpoint's in-flight count however the request ends (a lost hedge is
/// dropped mid-flight).
struct InFlight<'a>(&'a Endpoint);

impl<'a> InFlight<'a> {
    fn new(ep: &'a Endpoint) -> Self {
        ep.state.lock().unwrap().inflight += 1;
        InFlight(ep)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.state.lock().unwrap().inflight -= 1;
    }
}

impl Mirrors {
    /// Resolves every mirror, fetches the index from each, and checks that all reachable ones
    /// serve the same image (and, with `pin`, the pinned one). Returns the set, the index,
    /// its SHA-256 (hex) and its bytes. Unreachable mirrors are kept and probed later.
    pub async fn open(
        urls: &[String],
        pin: Option<&str>,
        opts: &Options,
    ) -> Result<(Arc<Mirrors>, Index, String, Bytes)> {
        Self::open_with(urls, pin, Arc::new(opts.config()?)).await
    }

    /// `open`, with a configuration already loaded.
    pub async fn open_with(
        urls: &[String],
        pin: Option<&str>,
        config: Arc<Config>,
    ) -> Result<(Arc<Mirrors>, Index, String, Bytes)> {
        if urls.is_empty() {
            return Err(Error::Invalid("no mirror URL".into()));
        }
        let mut mirrors = Vec::new();
        for url in urls {
            let url = ImageUrl::parse(url)?;
            let proxied = config.proxy.for_url(url.base()).is_some();
            let named = !proxied && url.bare_host().parse::<IpAddr>().is_err();
            let credentials = url
                .credentials
                .clone()
                .or_else(|| config.netrc_credentials(url.bare_host()));
            mirrors.push(Mirror {
                shown: url.redacted(),
                url,
                named,
                proxied,
                credentials,
                endpoints: Mutex::new(Vec::new()),
                dns: Mutex::new(DnsState {
                    valid_until: Instant::now(),
                    last_try: Instant::now(),
                    stale: false,
                }),
            });
        }
        let resolver = if mirrors.iter().any(|m| m.named) || config.dns_server.is_some() {
            Some(Arc::new(Resolver::new(config.dns_server)?))
        } else {
            None
        };
        let mut set = Mirrors {
            mirrors,
            config,
            resolver,
            index_sha256: String::new(),
            recent: Mutex::new(VecDeque::new()),
        };
        // The most telling failure over every mirror and address is what the user sees.
        let mut worst: Option<Error> = None;
        for i in 0..set.mirrors.len() {
            if let Err(e) = set.resolve(i).await {
                tracing::warn!("mirror {}: {e}", set.mirrors[i].shown);
                Error::keep_telling(&mut worst, e);
            }
        }
        // The index from every mirror: all that answer must agree, and with the one pinned.
        // Rounds of retries with backoff while none has answered and one may yet (a flaky
        // single server); an address whose answer no retry changes (404, TLS) is not asked
        // again, and one that serves another index than the pinned one is skipped.
        let mut agreed: Option<(String, Bytes, Index, String)> = None;
        let mut hopeless: Vec<Arc<Endpoint>> = Vec::new();
        let mut retry = Retry::new(&set.config);
        let mut round = 0;
        loop {
            let mut retryable = None;
            // Whether every retryable failure of this round was a connection not made.
            let mut unanswered_only = true;
            for m in &set.mirrors {
                let endpoints = m.endpoints.lock().unwrap().clone();
                for ep in endpoints {
                    if ep.health() != Health::Unverified
                        || hopeless.iter().any(|h| Arc::ptr_eq(h, &ep))
                    {
                        continue;
                    }
                    let (raw, index) = match set.get_index(&ep).await {
                        Ok(got) => got,
                        Err(e) => {
                            tracing::warn!("mirror {} at {}: {e}", m.shown, ep.label());
                            ep.state.lock().unwrap().last_error = e.to_string();
                            if e.is_retryable() {
                                retryable = e.retry_after().or(retryable).or(Some(Duration::ZERO));
                                unanswered_only &= matches!(
                                    &e,
                                    Error::Fetch {
                                        kind: FetchError::Connect(_),
                                        ..
                                    }
                                );
                            } else {
                                hopeless.push(ep.clone());
                            }
                            Error::keep_telling(&mut worst, e);
                            continue;
                        }
                    };
                    let sha = sha256_hex(&raw);
                    if let Some(p) = pin.filter(|p| !p.eq_ignore_ascii_case(&sha)) {
                        let e = Error::IndexDigestMismatch {
                            at: m.shown.clone(),
                            expected: p.to_lowercase(),
                            actual: sha,
                        };
                        tracing::warn!("mirror at {}: skipped: {e}", ep.label());
                        let mut st = ep.state.lock().unwrap();
                        st.health = Health::WrongImage;
                        st.last_error = e.to_string();
                        drop(st);
                        Error::keep_telling(&mut worst, e);
                        continue;
                    }
                    if let Some((want, _, _, from)) = &agreed {
                        if *want != sha {
                            return Err(Error::Invalid(format!(
                                "mirror {} serves another image than {from}: index sha256 {sha}, not {want} (pin one with --index-digest)",
                                m.shown
                            )));
                        }
                    } else {
                        agreed = Some((sha, raw, index, m.shown.clone()));
                    }
                    ep.state.lock().unwrap().health = Health::Up;
                    break;
                }
            }
            let Some(retry_after) = retryable else { break };
            // A server's own answer (404, 403, a TLS error), beside connections refused, is
            // what retrying those would only delay: it is reported now. A 503 or a timeout
            // elsewhere may yet turn into the index.
            if agreed.is_some() || (!hopeless.is_empty() && unanswered_only) {
                break;
            }
            round += 1;
            let pause = backoff(round, Some(retry_after).filter(|d| !d.is_zero()));
            if !retry.another(pause) {
                break;
            }
            tokio::time::sleep(pause).await;
        }
        let Some((sha, raw, index, _)) = agreed else {
            return Err(
                worst.unwrap_or_else(|| Error::Invalid("no mirror could be resolved".into()))
            );
        };
        set.index_sha256 = sha.clone();
        let set = Arc::new(set);
        tokio::spawn(Self::background(Arc::downgrade(&set)));
        Ok((set, index, sha, raw))
    }

    fn fetch_error(url: &url::Url, kind: FetchError) -> Error {
        Error::Fetch {
            url: crate::http::image_url::redact(url),
            kind,
        }
    }

    /// The index file at `ep`, read no further than its header allows.
    async fn get_raw_index(&self, ep: &Endpoint) -> Result<Bytes> {
        let url = self.mirrors[ep.mirror].url.index()?;
        ep.client
            .get_sized(&url, MAX_INDEX_LEN as usize, INDEX_HEADER_LEN, |head| {
                Index::expected_len(head).map_err(|e| e.to_string())
            })
            .await
            .map_err(|k| Self::fetch_error(&url, k))
    }

    /// The index at `ep`, parsed; a bad one is named by its URL.
    async fn get_index(&self, ep: &Endpoint) -> Result<(Bytes, Index)> {
        let raw = self.get_raw_index(ep).await?;
        let url = self.mirrors[ep.mirror].url.index()?;
        let index =
            Index::parse(&raw).map_err(|e| e.in_file(&crate::http::image_url::redact(&url)))?;
        Ok((raw, index))
    }

    /// (Re)computes mirror `i`'s endpoints: its address, or every address of its name (one
    /// endpoint behind a proxy). Kept endpoints keep their state; new ones start unverified;
    /// vanished ones are dropped.
    async fn resolve(&self, i: usize) -> Result<()> {
        let m = &self.mirrors[i];
        let (addrs, valid_until) = match (&self.resolver, m.named) {
            (Some(r), true) => {
                m.dns.lock().unwrap().last_try = Instant::now();
                let a = r.lookup(m.url.bare_host()).await?;
                (a.addrs.into_iter().map(Some).collect(), a.valid_until)
            }
            // An address literal never changes; a proxy resolves the name itself.
            _ => (
                vec![m
                    .url
                    .bare_host()
                    .parse::<IpAddr>()
                    .ok()
                    .filter(|_| !m.proxied)],
                Instant::now() + Duration::from_secs(86400 * 365),
            ),
        };
        let ip_of = |e: &Endpoint| e.addr.map(|a| a.ip());
        let mut new = Vec::new();
        {
            let eps = m.endpoints.lock().unwrap();
            for ip in &addrs {
                if !eps.iter().any(|e| ip_of(e) == *ip) {
                    new.push(*ip);
                }
            }
        }
        let mut made = Vec::new();
        for ip in new {
            made.push(Endpoint::new(
                i,
                m,
                ip,
                Health::Unverified,
                &self.config,
                self.resolver.clone(),
            )?);
        }
        let mut eps = m.endpoints.lock().unwrap();
        let first = eps.is_empty();
        let before: Vec<String> = eps.iter().map(|e| e.label()).collect();
        eps.retain(|e| addrs.contains(&ip_of(e)));
        eps.extend(made);
        let after: Vec<String> = eps.iter().map(|e| e.label()).collect();
        if !first && before != after {
            tracing::info!(
                "mirror {}: addresses now {after:?} (were {before:?})",
                m.shown
            );
        }
        drop(eps);
        let mut d = m.dns.lock().unwrap();
        d.valid_until = valid_until;
        d.stale = false;
        Ok(())
    }

    fn all_endpoints(&self) -> Vec<Arc<Endpoint>> {
        self.mirrors
            .iter()
            .flat_map(|m| m.endpoints.lock().unwrap().clone())
            .collect()
    }

    /// How many endpoints (addresses of mirrors) there are now.
    pub fn endpoint_count(&self) -> usize {
        self.mirrors
            .iter()
            .map(|m| m.endpoints.lock().unwrap().len())
            .sum()
    }

    /// The endpoint at `addr`, if some mirror has it.
    pub fn endpoint(&self, addr: SocketAddr) -> Option<Arc<Endpoint>> {
        self.all_endpoints()
            .into_iter()
            .find(|e| e.addr == Some(addr))
    }

    /// The best endpoint not in `exclude`: the live one with the lowest score, else (with
    /// `any`) the down one probed longest ago, which may be back.
    fn pick(&self, exclude: &[Arc<Endpoint>], any: bool) -> Option<Arc<Endpoint>> {
        let candidates: Vec<Arc<Endpoint>> = self
            .all_endpoints()
            .into_iter()
            .filter(|e| !exclude.iter().any(|x| Arc::ptr_eq(x, e)))
            .collect();
        let up = candidates
            .iter()
            .filter(|e| e.health() == Health::Up)
            .min_by(|a, b| a.score().total_cmp(&b.score()));
        if let Some(e) = up {
            return Some(e.clone());
        }
        if !any {
            return None;
        }
        candidates
            .into_iter()
            .filter(|e| e.health() == Health::Down)
            .min_by_key(|e| e.state.lock().unwrap().next_probe)
    }

    /// How long to wait before hedging: the 95th percentile of recent request times.
    fn hedge_delay(&self) -> Option<Duration> {
        let recent = self.recent.lock().unwrap();
        if recent.len() < MIN_SAMPLES_TO_HEDGE {
            return None;
        }
        let mut v: Vec<u32> = recent.iter().copied().collect();
        let k = v.len() * 95 / 100;
        let (_, p95, _) = v.select_nth_unstable(k);
        Some(Duration::from_micros(u64::from(*p95)).max(MIN_HEDGE_DELAY))
    }

    /// GETs `rel` from `ep` into `buf`, which it must fill exactly; keeps the figures.
    async fn get_from(&self, ep: &Endpoint, rel: &str, buf: &mut [u8]) -> Result<()> {
        let _busy = InFlight::new(ep);
        let t0 = Instant::now();
        let url = self.mirrors[ep.mirror].url.file(rel)?;
        let r = ep
            .client
            .get_exact(&url, buf)
            .await
            .map_err(|k| Self::fetch_error(&url, k));
        match &r {
            Ok(()) => {
                let took = t0.elapsed();
                ep.succeeded(took, buf.len());
                let mut recent = self.recent.lock().unwrap();
                if recent.len() == LATENCY_SAMPLES {
                    recent.pop_front();
                }
                recent.push_back(took.as_micros().min(u32::MAX as u128) as u32);
            }
            Err(e) => {
                let content = matches!(e, Error::Fetch { kind, .. } if kind.is_content());
                if ep.failed(e, content) {
                    tracing::warn!(
                        "{} ({}) is down: {e}",
                        self.mirrors[ep.mirror].shown,
                        ep.label()
                    );
                    self.mirrors[ep.mirror].dns.lock().unwrap().stale = true;
                }
            }
        }
        r
    }

    /// One try at `ep`, hedged on another live endpoint (not in `exclude`) when it is slow.
    /// Returns the endpoint whose bytes are in `slot`.
    async fn attempt(
        &self,
        ep: &Arc<Endpoint>,
        exclude: &[Arc<Endpoint>],
        rel: &str,
        slot: &mut [u8],
    ) -> Result<Arc<Endpoint>> {
        let len = slot.len();
        let mut spare = Vec::new();
        let hedge_won = {
            let primary = self.get_from(ep, rel, slot);
            tokio::pin!(primary);
            let Some(delay) = self.hedge_delay() else {
                return primary.await.map(|()| ep.clone());
            };
            tokio::select! {
                r = &mut primary => return r.map(|()| ep.clone()),
                _ = tokio::time::sleep(delay) => {}
            }
            let mut busy = exclude.to_vec();
            busy.push(ep.clone());
            let Some(alt) = self.pick(&busy, false) else {
                return primary.await.map(|()| ep.clone());
            };
            tracing::debug!("hedging {rel} on {} after {delay:?}", alt.label());
            spare.resize(len, 0);
            let hedge = self.get_from(&alt, rel, &mut spare);
            tokio::pin!(hedge);
            // The first success wins; when one fails, the other may still succeed.
            tokio::select! {
                r = &mut primary => match r {
                    Ok(()) => return Ok(ep.clone()),
                    Err(_) => hedge.await.map(|()| alt.clone())?,
                },
                r = &mut hedge => match r {
                    Ok(()) => alt.clone(),
                    Err(_) => return primary.await.map(|()| ep.clone()),
                },
            }
        };
        // The primary request is dropped: the slot is ours again.
        slot.copy_from_slice(&spare);
        hedge_won.state.lock().unwrap().hedges_won += 1;
        Ok(hedge_won)
    }

    /// Fetches block file `rel` into `slot` (exactly its length) from the best endpoint,
    /// retrying others, then all again after a pause, up to the configured retries;
    /// `avoid` is an endpoint whose copy the kernel just rejected (used again only if nothing
    /// else is left). Returns the endpoint that served it.
    pub async fn fetch_into(
        &self,
        rel: &str,
        slot: &mut [u8],
        avoid: Option<Arc<Endpoint>>,
    ) -> Result<Arc<Endpoint>> {
        if let Some(a) = &avoid {
            a.rejected();
        }
        // Endpoints tried in this round, and those whose answer no retry will change (404,
        // 403, a certificate error).
        let mut tried: Vec<Arc<Endpoint>> = avoid.iter().cloned().collect();
        let mut hopeless: Vec<Arc<Endpoint>> = Vec::new();
        // Reported: the most telling failure; `pause`: set once something failed.
        let mut worst: Option<Error> = None;
        let mut pause: Option<Option<Duration>> = None;
        let mut retry = Retry::new(&self.config);
        let mut round = 0;
        loop {
            let (ep, wait) = match self.pick(&tried, true) {
                Some(ep) => (ep, Duration::ZERO),
                None => {
                    // Everything was tried: another round, after a pause if something failed.
                    tried = hopeless.clone();
                    let Some(ep) = self.pick(&tried, true) else {
                        break;
                    };
                    let wait = match pause {
                        Some(retry_after) => {
                            round += 1;
                            backoff(round, retry_after)
                        }
                        None => Duration::ZERO,
                    };
                    (ep, wait)
                }
            };
            if worst.is_some() && !retry.another(wait) {
                break;
            }
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
            let exclude = tried.clone();
            tried.push(ep.clone());
            // A retry ends with the budget, so that a fetch never outlives it by more than
            // one request timeout: the helper's slot is freed soon after the read failed.
            let attempt = self.attempt(&ep, &exclude, rel, slot);
            let r = match worst.is_some().then(|| retry.rest()) {
                Some(rest) => match tokio::time::timeout(rest, attempt).await {
                    Ok(r) => r,
                    Err(_) => Err(Self::fetch_error(
                        &self.mirrors[ep.mirror].url.file(rel)?,
                        FetchError::Timeout {
                            what: "the last try, at the end of the retry budget,",
                            after: rest,
                        },
                    )),
                },
                None => attempt.await,
            };
            match r {
                Ok(served) => return Ok(served),
                Err(e) => {
                    if !e.is_retryable() {
                        hopeless.push(ep);
                    }
                    // The pause obeys the latest answer's Retry-After.
                    pause = Some(e.retry_after());
                    Error::keep_telling(&mut worst, e);
                }
            }
        }
        Err(worst.unwrap_or_else(|| Error::Invalid(format!("{rel}: no live mirror"))))
    }

    /// Probes down and unverified endpoints and re-resolves names whose answer expired or
    /// whose endpoint failed, until the set is dropped.
    async fn background(me: Weak<Mirrors>) {
        loop {
            tokio::time::sleep(TICK).await;
            let Some(me) = me.upgrade() else { return };
            let now = Instant::now();
            for i in 0..me.mirrors.len() {
                let m = &me.mirrors[i];
                if !m.named {
                    continue;
                }
                let due = {
                    let d = m.dns.lock().unwrap();
                    now >= d.valid_until || (d.stale && now >= d.last_try + MIN_RERESOLVE)
                };
                if due {
                    if let Err(e) = me.resolve(i).await {
                        tracing::warn!("mirror {}: {e}", m.shown);
                    }
                }
            }
            let probes = me.all_endpoints().into_iter().filter(|e| {
                let s = e.state.lock().unwrap();
                matches!(s.health, Health::Down | Health::Unverified) && now >= s.next_probe
            });
            let probes: Vec<_> = probes.map(|e| me.probe(e)).collect();
            futures::future::join_all(probes).await;
        }
    }

    /// Asks `ep` for the index: up again if it serves this image.
    async fn probe(&self, ep: Arc<Endpoint>) {
        let r = tokio::time::timeout(MAX_PROBE_BACKOFF, self.get_raw_index(&ep)).await;
        let mut s = ep.state.lock().unwrap();
        match r {
            Ok(Ok(raw)) if sha256_hex(&raw) == self.index_sha256 => {
                if s.health == Health::Down {
                    tracing::info!("{} ({}) is back", self.mirrors[ep.mirror].shown, ep.label());
                }
                s.health = Health::Up;
                s.consecutive_failures = 0;
            }
            Ok(Ok(raw)) => {
                s.health = Health::WrongImage;
                s.last_error = format!("serves index sha256 {}", sha256_hex(&raw));
                tracing::error!(
                    "{} ({}): {}: not used",
                    self.mirrors[ep.mirror].shown,
                    ep.label(),
                    s.last_error
                );
            }
            Ok(Err(e)) => {
                s.last_error = e.to_string();
                s.probe_backoff = (s.probe_backoff * 2).min(MAX_PROBE_BACKOFF);
                s.next_probe = Instant::now() + s.probe_backoff;
            }
            Err(_) => {
                s.last_error = "probe timed out".into();
                s.probe_backoff = MAX_PROBE_BACKOFF;
                s.next_probe = Instant::now() + s.probe_backoff;
            }
        }
    }

    /// Every endpoint's state and figures.
    pub fn report(&self) -> Vec<EndpointReport> {
        self.all_endpoints()
            .iter()
            .map(|e| {
                let s = e.state.lock().unwrap();
                EndpointReport {
                    mirror: self.mirrors[e.mirror].shown.clone(),
                    address: e.label(),
                    state: s.health.as_str(),
                    latency_ms: s.ewma_us / 1000.0,
                    inflight: s.inflight,
                    requests: s.requests,
                    bytes: s.bytes,
                    failures: s.failures,
                    rejected: s.rejected,
                    hedges_won: s.hedges_won,
                    last_error: s.last_error.clone(),
                }
            })
            .collect()
    }
}

/// Whether a failed request may be tried again: only within its time budget from the first
/// try (curl's `--retry-max-time`), and at most `--retries` times if that was given.
struct Retry {
    deadline: Instant,
    left: Option<u32>,
}

impl Retry {
    fn new(config: &Config) -> Retry {
        Retry {
            deadline: Instant::now() + config.retry_budget,
            left: config.retries,
        }
    }

    /// What is left of the budget.
    fn rest(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    /// Takes one retry that would start after `pause`, if the budget allows it.
    fn another(&mut self, pause: Duration) -> bool {
        if self.left == Some(0) || Instant::now() + pause >= self.deadline {
            return false;
        }
        if let Some(n) = &mut self.left {
            *n -= 1;
        }
        true
    }
}

/// The pause before retry round `round` (1, 2, ...): doubling from `FIRST_BACKOFF` up to
/// `MAX_BACKOFF`, give or take a quarter so that many requests do not retry in step, and at
/// least what a `Retry-After` asked.
pub fn backoff(round: u32, retry_after: Option<Duration>) -> Duration {
    let base = FIRST_BACKOFF
        .saturating_mul(1 << round.saturating_sub(1).min(16))
        .min(MAX_BACKOFF);
    let nanos = Instant::now().elapsed().subsec_nanos() ^ std::process::id();
    let jitter = 0.75 + f64::from(nanos % 1000) / 2000.0;
    base.mul_f64(jitter).max(retry_after.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_end_with_their_budget_or_their_count() {
        let config = |budget_ms, retries| {
            let o = Options {
                retry_budget: Duration::from_millis(budget_ms),
                retries,
                ..Options::default()
            };
            o.config().unwrap()
        };
        let mut r = Retry::new(&config(60_000, None));
        assert!((0..1000).all(|_| r.another(Duration::from_millis(10))));
        // A pause that would end past the budget is not taken.
        assert!(!r.another(Duration::from_secs(61)));
        let mut r = Retry::new(&config(60_000, Some(2)));
        assert!(r.another(Duration::ZERO) && r.another(Duration::ZERO));
        assert!(!r.another(Duration::ZERO));
        let mut r = Retry::new(&config(50, None));
        std::thread::sleep(Duration::from_millis(60));
        assert!(!r.another(Duration::ZERO));
    }

    #[test]
    fn backoff_doubles_to_a_bound_and_obeys_retry_after() {
        let within = |d: Duration, base: u64| {
            let ms = d.as_millis() as u64;
            ms >= base * 3 / 4 && ms <= base * 5 / 4
        };
        assert!(within(backoff(1, None), 100));
        assert!(within(backoff(2, None), 200));
        assert!(within(backoff(4, None), 800));
        assert!(within(backoff(30, None), 3200));
        assert_eq!(
            backoff(1, Some(Duration::from_secs(7))),
            Duration::from_secs(7)
        );
    }
}
