//! Which proxy a URL goes through, by curl's rules:
//!
//! - `http_proxy` for http:// URLs (lower case only: a CGI server sets `HTTP_PROXY` from a
//!   request header), `https_proxy` or `HTTPS_PROXY` for https://, and `all_proxy` or
//!   `ALL_PROXY` for either when the scheme's own variable is unset;
//! - `--proxy URL` replaces all of them;
//! - `no_proxy` or `NO_PROXY` (applied to `--proxy` too): `*` for every host, or a list
//!   separated by commas or spaces of host names (each matches itself and its subdomains; a
//!   leading dot is ignored), IP addresses and CIDR ranges. Ports are not compared.
//!
//! A proxy URL without a scheme is `http://`; `socks5://` and `socks5h://` work too.

use std::net::IpAddr;

use url::Url;

use crate::{Error, Result};

#[derive(Clone, Debug, Default)]
pub struct ProxyRules {
    http: Option<Url>,
    https: Option<Url>,
    no_proxy: NoProxy,
}

#[derive(Clone, Debug, Default)]
struct NoProxy {
    all: bool,
    names: Vec<String>,
    nets: Vec<(IpAddr, u8)>,
}

fn parse_proxy(value: &str, from: &str) -> Result<Option<Url>> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    let with_scheme = if value.contains("://") {
        value.to_string()
    } else {
        format!("http://{value}")
    };
    let url = Url::parse(&with_scheme)
        .map_err(|e| Error::Invalid(format!("{from}: bad proxy URL: {e}")))?;
    match url.scheme() {
        "http" | "socks5" | "socks5h" | "socks4" | "socks4a" => {}
        s => {
            return Err(Error::Invalid(format!(
                "{from}: proxy scheme {s}:// is not supported (http, socks5, socks5h)"
            )))
        }
    }
    if url.host_str().is_none() {
        return Err(Error::Invalid(format!("{from}: proxy URL has no host")));
    }
    Ok(Some(url))
}

impl NoProxy {
    fn parse(list: &str) -> NoProxy {
        let mut np = NoProxy::default();
        for item in list.split([',', ' ', '\t']).filter(|s| !s.is_empty()) {
            if item == "*" {
                np.all = true;
                continue;
            }
            let (addr, bits) = match item.split_once('/') {
                Some((a, b)) => (a, b.parse::<u8>().ok()),
                None => (item, None),
            };
            let bare = addr.trim_start_matches('[').trim_end_matches(']');
            if let Ok(ip) = bare.parse::<IpAddr>() {
                let max = if ip.is_ipv4() { 32 } else { 128 };
                np.nets.push((ip, bits.unwrap_or(max).min(max)));
            } else {
                np.names
                    .push(item.trim_start_matches('.').to_ascii_lowercase());
            }
        }
        np
    }

    fn matches(&self, host: &str) -> bool {
        if self.all {
            return true;
        }
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return self.nets.iter().any(|&(net, bits)| in_net(ip, net, bits));
        }
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.names.iter().any(|n| {
            host == *n
                || (host.len() > n.len() && host.ends_with(n.as_str()) && {
                    host.as_bytes()[host.len() - n.len() - 1] == b'.'
                })
        })
    }
}

fn in_net(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(b)) => {
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            u32::from(a) & mask == u32::from(b) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(b)) => {
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits)
            };
            u128::from(a) & mask == u128::from(b) & mask
        }
        _ => false,
    }
}

impl ProxyRules {
    /// The rules from the environment (`get` looks a variable up), or `explicit` for every
    /// scheme.
    pub fn new(explicit: Option<&str>, get: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let var = |names: &[&str]| -> Result<Option<Url>> {
            for n in names {
                if let Some(v) = get(n) {
                    if let Some(u) = parse_proxy(&v, n)? {
                        return Ok(Some(u));
                    }
                }
            }
            Ok(None)
        };
        let (http, https) = match explicit {
            Some(p) => {
                let u = parse_proxy(p, "--proxy")?;
                (u.clone(), u)
            }
            None => {
                let all = var(&["all_proxy", "ALL_PROXY"])?;
                (
                    var(&["http_proxy"])?.or_else(|| all.clone()),
                    var(&["https_proxy", "HTTPS_PROXY"])?.or(all),
                )
            }
        };
        let no_proxy = get("no_proxy")
            .or_else(|| get("NO_PROXY"))
            .map(|l| NoProxy::parse(&l))
            .unwrap_or_default();
        Ok(ProxyRules {
            http,
            https,
            no_proxy,
        })
    }

    /// The rules of this process's environment (and `--proxy`).
    pub fn from_env(explicit: Option<&str>) -> Result<Self> {
        Self::new(explicit, |n| std::env::var(n).ok())
    }

    /// The proxy `url` goes through, if any.
    pub fn for_url(&self, url: &Url) -> Option<&Url> {
        let proxy = match url.scheme() {
            "http" => self.http.as_ref(),
            "https" => self.https.as_ref(),
            _ => None,
        }?;
        if self.no_proxy.matches(url.host_str().unwrap_or("")) {
            return None;
        }
        Some(proxy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(explicit: Option<&str>, env: &[(&str, &str)]) -> ProxyRules {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        ProxyRules::new(explicit, move |n| {
            env.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone())
        })
        .unwrap()
    }

    fn via(r: &ProxyRules, url: &str) -> Option<String> {
        r.for_url(&Url::parse(url).unwrap()).map(|u| u.to_string())
    }

    #[test]
    fn scheme_variables_like_curl() {
        let r = rules(
            None,
            &[
                ("http_proxy", "proxy:3128"),
                ("HTTPS_PROXY", "http://sproxy:8080"),
            ],
        );
        assert_eq!(
            via(&r, "http://a/x.hbi").as_deref(),
            Some("http://proxy:3128/")
        );
        assert_eq!(
            via(&r, "https://a/x.hbi").as_deref(),
            Some("http://sproxy:8080/")
        );
        // Upper-case HTTP_PROXY is ignored, as curl does.
        let r = rules(None, &[("HTTP_PROXY", "proxy:3128")]);
        assert_eq!(via(&r, "http://a/x.hbi"), None);
        // all_proxy stands in for an unset scheme variable.
        let r = rules(
            None,
            &[("ALL_PROXY", "socks5h://s:1080"), ("http_proxy", "h:1")],
        );
        assert_eq!(via(&r, "http://a/").as_deref(), Some("http://h:1/"));
        assert_eq!(via(&r, "https://a/").as_deref(), Some("socks5h://s:1080"));
    }

    #[test]
    fn no_proxy_like_curl() {
        let r = rules(
            None,
            &[
                ("http_proxy", "p:1"),
                ("no_proxy", ".example.com, 10.0.0.0/8 ::1,localhost"),
            ],
        );
        assert_eq!(via(&r, "http://example.com/"), None);
        assert_eq!(via(&r, "http://www.example.com/"), None);
        assert!(via(&r, "http://notexample.com/").is_some());
        assert_eq!(via(&r, "http://10.1.2.3:8080/"), None);
        assert!(via(&r, "http://11.1.2.3/").is_some());
        assert_eq!(via(&r, "http://[::1]:80/"), None);
        assert_eq!(via(&r, "http://LOCALHOST/"), None);
        let r = rules(None, &[("http_proxy", "p:1"), ("NO_PROXY", "*")]);
        assert_eq!(via(&r, "http://a/"), None);
    }

    #[test]
    fn explicit_proxy_wins_and_no_proxy_still_applies() {
        let r = rules(
            Some("http://cli:3128"),
            &[("http_proxy", "env:1"), ("no_proxy", "skip.me")],
        );
        assert_eq!(via(&r, "http://a/").as_deref(), Some("http://cli:3128/"));
        assert_eq!(via(&r, "https://a/").as_deref(), Some("http://cli:3128/"));
        assert_eq!(via(&r, "http://skip.me/"), None);
    }

    #[test]
    fn bad_proxies_are_refused() {
        assert!(ProxyRules::new(Some("ftp://x:1"), |_| None).is_err());
        assert!(ProxyRules::new(None, |n| (n == "http_proxy").then(|| "http://".into())).is_err());
    }
}
