//! An image's index URL, parsed once (the `url` crate) for every command: the store's base,
//! the index file name, the query string that every block URL keeps (a signed URL prefix, a
//! CDN token), and the user:password it carried, kept apart so that no message prints them.

use url::Url;

use crate::store::INDEX_SUFFIX;
use crate::{Error, Result};

#[derive(Clone)]
pub struct ImageUrl {
    /// `SCHEME://HOST[:PORT]/PATH/`: the store, without credentials or query.
    base: Url,
    pub index_name: String,
    /// The query string, appended to every block and index URL.
    query: Option<String>,
    /// user:password from the URL.
    pub credentials: Option<(String, String)>,
}

impl std::fmt::Debug for ImageUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// Whether `arg` names an HTTP(S) location rather than a local path.
pub fn is_url(arg: &str) -> bool {
    let lower = arg.get(..8).unwrap_or(arg).to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://")
}

/// `url` without user information and with its query replaced by `?...`: safe to print.
pub fn redact(url: &Url) -> String {
    let mut u = url.clone();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    let hidden = u.query().is_some();
    u.set_query(None);
    u.set_fragment(None);
    let mut s = u.to_string();
    if hidden {
        s.push_str("?...");
    }
    s
}

/// `arg` (not a valid URL) without what could be user information or a query.
pub(crate) fn redact_text(arg: &str) -> String {
    let no_query = arg.split(['?', '#']).next().unwrap_or("");
    match no_query.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            let host = authority.rsplit('@').next().unwrap_or("");
            format!("{scheme}://{host}{path}")
        }
        None => no_query.to_string(),
    }
}

fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = (b[i] == b'%')
            .then(|| b.get(i + 1..i + 3))
            .flatten()
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match hex {
            Some(v) => {
                out.push(v);
                i += 3;
            }
            None => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl ImageUrl {
    /// Parses `http[s]://[USER[:PASS]@]HOST[:PORT]/PATH/NAME.hbi[?QUERY]`.
    pub fn parse(arg: &str) -> Result<ImageUrl> {
        let mut url = Url::parse(arg)
            .map_err(|e| Error::Invalid(format!("{}: not a URL: {e}", redact_text(arg))))?;
        let shown = redact(&url);
        let bad = |why: &str| Error::Invalid(format!("{shown}: {why}"));
        if !matches!(url.scheme(), "http" | "https") {
            return Err(bad("only http:// and https:// URLs are supported"));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(bad("no host"));
        }
        let credentials = (!url.username().is_empty())
            .then(|| (decode(url.username()), decode(url.password().unwrap_or(""))));
        let _ = url.set_username("");
        let _ = url.set_password(None);
        let query = url.query().map(str::to_string);
        url.set_query(None);
        url.set_fragment(None);
        let path = url.path().to_string();
        let (dir, name) = path.rsplit_once('/').unwrap_or(("", &path));
        if !name.ends_with(INDEX_SUFFIX) || name.len() == INDEX_SUFFIX.len() {
            return Err(bad(&format!(
                "the URL must name the index file (…/NAME{INDEX_SUFFIX})"
            )));
        }
        let index_name = decode(name);
        url.set_path(&format!("{dir}/"));
        Ok(ImageUrl {
            base: url,
            index_name,
            query,
            credentials,
        })
    }

    /// The store's base URL (no credentials, no query).
    pub fn base(&self) -> &Url {
        &self.base
    }

    pub fn host(&self) -> &str {
        self.base.host_str().unwrap_or("")
    }

    /// The host without IPv6 brackets, as DNS and address parsing want it.
    pub fn bare_host(&self) -> &str {
        self.host().trim_start_matches('[').trim_end_matches(']')
    }

    pub fn port(&self) -> u16 {
        self.base.port_or_known_default().unwrap_or(80)
    }

    /// The URL of a file of the store (`rel` relative to the base), with the query string.
    pub fn file(&self, rel: &str) -> Result<Url> {
        let mut u = self
            .base
            .join(rel)
            .map_err(|e| Error::Invalid(format!("{}{rel}: {e}", self.redacted_base())))?;
        u.set_query(self.query.as_deref());
        Ok(u)
    }

    /// The index URL, with the query string.
    pub fn index(&self) -> Result<Url> {
        // The name is percent-encoded again by `join`.
        self.file(
            &self
                .index_name
                .replace('%', "%25")
                .replace('?', "%3F")
                .replace('#', "%23"),
        )
    }

    fn redacted_base(&self) -> String {
        redact(&self.base)
    }

    /// The index URL as it may be shown: no credentials, query hidden.
    pub fn redacted(&self) -> String {
        let mut s = format!("{}{}", self.base, self.index_name);
        if self.query.is_some() {
            s.push_str("?...");
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_query_on_every_file_and_hides_credentials() {
        let u = ImageUrl::parse("https://bob:s%3Acret@cdn.example:8443/a/b/disk.hbi?sig=XYZ&e=1")
            .unwrap();
        assert_eq!(u.index_name, "disk.hbi");
        assert_eq!(
            u.credentials,
            Some(("bob".to_string(), "s:cret".to_string()))
        );
        assert_eq!(u.port(), 8443);
        assert_eq!(
            u.file("blocks/ab/abcd").unwrap().as_str(),
            "https://cdn.example:8443/a/b/blocks/ab/abcd?sig=XYZ&e=1"
        );
        assert_eq!(
            u.index().unwrap().as_str(),
            "https://cdn.example:8443/a/b/disk.hbi?sig=XYZ&e=1"
        );
        let shown = u.redacted();
        assert!(!shown.contains("bob") && !shown.contains("cret") && !shown.contains("XYZ"));
        assert_eq!(shown, "https://cdn.example:8443/a/b/disk.hbi?...");
        assert!(!format!("{u:?}").contains("cret"));
    }

    #[test]
    fn refuses_what_is_not_an_index_url() {
        for bad in [
            "ftp://h/x.hbi",
            "http://h/x.img",
            "http://h/",
            "http:///x.hbi",
            "http://h/.hbi",
            "not a url",
        ] {
            assert!(ImageUrl::parse(bad).is_err(), "{bad}");
        }
        let err = ImageUrl::parse("ftp://u:secret@h/x.hbi")
            .err()
            .unwrap()
            .to_string();
        assert!(!err.contains("secret"), "{err}");
    }

    #[test]
    fn default_ports_and_ipv6() {
        assert_eq!(ImageUrl::parse("http://h/x.hbi").unwrap().port(), 80);
        assert_eq!(ImageUrl::parse("https://h/x.hbi").unwrap().port(), 443);
        let u = ImageUrl::parse("http://[::1]:8080/x.hbi").unwrap();
        assert_eq!(u.bare_host(), "::1");
        assert!(is_url("HTTPS://h/x.hbi") && !is_url("/tmp/x.hbi"));
    }
}
