//! Host names to addresses: every A and AAAA record of a name, with the time the answer
//! expires (its TTL), so that mirrors re-resolve when it does. No resolver cache of our own
//! beyond that expiry: a changed answer is seen at the next resolution.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use hickory_resolver::config::{LookupIpStrategy, NameServerConfigGroup, ResolverConfig};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::TokioResolver;

use crate::{Error, Result};

/// Answers are used at least this long, however small their TTL, to bound the query rate.
const MIN_TTL: Duration = Duration::from_secs(1);

pub struct Resolver {
    inner: TokioResolver,
}

/// One resolution: the addresses and until when they hold.
pub struct Answer {
    pub addrs: Vec<IpAddr>,
    pub valid_until: Instant,
}

impl Resolver {
    /// A resolver asking `server` (ADDR:PORT), or the system's name servers (/etc/resolv.conf).
    pub fn new(server: Option<SocketAddr>) -> Result<Resolver> {
        let provider = TokioConnectionProvider::default();
        let mut builder = match server {
            Some(s) => {
                let group = NameServerConfigGroup::from_ips_clear(&[s.ip()], s.port(), true);
                TokioResolver::builder_with_config(
                    ResolverConfig::from_parts(None, vec![], group),
                    provider,
                )
            }
            None => TokioResolver::builder(provider)
                .map_err(|e| Error::Invalid(format!("system DNS configuration: {e}")))?,
        };
        let opts = builder.options_mut();
        opts.ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
        // Expiry is ours to track; a cache here would hide a changed answer.
        opts.cache_size = 0;
        opts.timeout = Duration::from_secs(2);
        opts.attempts = 2;
        Ok(Resolver {
            inner: builder.build(),
        })
    }

    /// Every address of `host`.
    pub async fn lookup(&self, host: &str) -> Result<Answer> {
        let found = self.inner.lookup_ip(host).await.map_err(|e| Error::Dns {
            host: host.to_string(),
            reason: e.to_string(),
        })?;
        let mut addrs: Vec<IpAddr> = found.iter().collect();
        addrs.sort();
        addrs.dedup();
        if addrs.is_empty() {
            return Err(Error::Dns {
                host: host.to_string(),
                reason: "no A or AAAA record".into(),
            });
        }
        let valid_until = found.valid_until().max(Instant::now() + MIN_TTL);
        Ok(Answer { addrs, valid_until })
    }
}
