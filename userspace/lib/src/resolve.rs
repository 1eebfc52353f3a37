//! Host names to addresses: every A and AAAA record of a name, with the time the answer
//! expires (its TTL), so that mirrors re-resolve when it does. No resolver cache of our own
//! beyond that expiry: a changed answer is seen at the next resolution.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use hickory_resolver::config::{LookupIpStrategy, NameServerConfigGroup, ResolverConfig};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::proto::ProtoErrorKind;
use hickory_resolver::TokioResolver;

use crate::{Error, Result};

/// Answers are used at least this long, however small their TTL, to bound the query rate.
const MIN_TTL: Duration = Duration::from_secs(1);

pub struct Resolver {
    inner: TokioResolver,
    /// The system's resolver: /etc/hosts first, as getaddrinfo does.
    hosts_file: bool,
    /// Who is asked, for messages.
    servers: String,
}

/// Where the system lists its static host names.
const HOSTS: &str = "/etc/hosts";
/// How long an answer from the hosts file holds before it is read again.
const HOSTS_TTL: Duration = Duration::from_secs(5);

/// One resolution: the addresses and until when they hold.
pub struct Answer {
    pub addrs: Vec<IpAddr>,
    pub valid_until: Instant,
}

impl Resolver {
    /// A resolver asking `server` (ADDR:PORT), or the system's name servers (/etc/resolv.conf).
    pub fn new(server: Option<SocketAddr>) -> Result<Resolver> {
        let provider = TokioConnectionProvider::default();
        let hosts_file = server.is_none();
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
        // Ours to read: hickory's adds ::1 to a localhost the file lists only as 127.0.0.1.
        opts.use_hosts_file = hickory_resolver::config::ResolveHosts::Never;
        opts.timeout = Duration::from_secs(2);
        opts.attempts = 2;
        Ok(Resolver {
            inner: builder.build(),
            hosts_file,
            servers: server.map_or_else(
                || "the name servers of /etc/resolv.conf".into(),
                |s| format!("--dns-server {s}"),
            ),
        })
    }

    /// Every address of `host`.
    pub async fn lookup(&self, host: &str) -> Result<Answer> {
        if self.hosts_file {
            let listed = std::fs::read_to_string(HOSTS)
                .map(|text| hosts_lookup(&text, host))
                .unwrap_or_default();
            if !listed.is_empty() {
                return Ok(Answer {
                    addrs: listed,
                    valid_until: Instant::now() + HOSTS_TTL,
                });
            }
        }
        let found = self.inner.lookup_ip(host).await.map_err(|e| Error::Dns {
            host: host.to_string(),
            reason: if e.is_nx_domain() {
                "no such name (NXDOMAIN)".into()
            } else if e
                .proto()
                .is_some_and(|p| matches!(p.kind(), ProtoErrorKind::Timeout))
            {
                format!("no answer from {}", self.servers)
            } else if e.is_no_records_found() {
                "no A or AAAA record".into()
            } else {
                e.to_string()
            },
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

/// Every address hosts-file `text` gives `host` (names compare without case or a final dot).
fn hosts_lookup(text: &str, host: &str) -> Vec<IpAddr> {
    let want = host.trim_end_matches('.');
    let mut addrs = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("");
        let mut fields = line.split_whitespace();
        let Some(Ok(ip)) = fields.next().map(str::parse::<IpAddr>) else {
            continue;
        };
        if fields.any(|n| n.trim_end_matches('.').eq_ignore_ascii_case(want))
            && !addrs.contains(&ip)
        {
            addrs.push(ip);
        }
    }
    addrs
}

#[cfg(test)]
mod tests {
    use super::hosts_lookup;

    #[test]
    fn hosts_file_answers_as_getaddrinfo_does() {
        let text = "# comment\n127.0.0.1 localhost vm\n::1 ip6-localhost\n\
                    10.0.0.7\tMirror.Example. mirror # pinned\nbogus line\n10.0.0.8 mirror.example\n";
        let ips = |h| {
            hosts_lookup(text, h)
                .iter()
                .map(|a| a.to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(ips("localhost"), ["127.0.0.1"]);
        assert_eq!(ips("mirror.example."), ["10.0.0.7", "10.0.0.8"]);
        assert_eq!(ips("MIRROR"), ["10.0.0.7"]);
        assert!(ips("comment").is_empty());
        assert!(ips("other").is_empty());
    }
}
