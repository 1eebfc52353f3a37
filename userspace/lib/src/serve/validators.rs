//! ETag and Last-Modified, and the 304 answer to a client whose copy is current.

use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::header::{IF_MODIFIED_SINCE, IF_NONE_MATCH, IF_RANGE};
use http::HeaderMap;

/// A file's validators: an ETag from its inode, size and mtime (a rewrite or a replacing
/// rename changes it), and its mtime as an HTTP date.
pub(super) struct Validators {
    pub(super) etag: String,
    pub(super) last_modified: Option<String>,
    /// mtime in whole seconds since the epoch, what an HTTP date can say.
    pub(super) mtime: Option<u64>,
}

impl Validators {
    pub(super) fn of(meta: &Metadata) -> Validators {
        let etag = format!(
            "\"{:x}-{:x}-{:x}.{:x}\"",
            meta.ino(),
            meta.len(),
            meta.mtime(),
            meta.mtime_nsec()
        );
        let mtime = meta.modified().ok().and_then(http_date_secs);
        Validators {
            etag,
            last_modified: mtime
                .map(|s| httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(s))),
            mtime,
        }
    }

    /// Whether the request's If-None-Match (or, without one, If-Modified-Since) says the
    /// client's copy is current: the answer is 304 (RFC 9110 13.2.2).
    pub(super) fn not_modified(&self, headers: &HeaderMap) -> bool {
        if let Some(v) = headers.get(IF_NONE_MATCH) {
            return v.to_str().is_ok_and(|v| none_match(v, &self.etag));
        }
        let since = headers
            .get(IF_MODIFIED_SINCE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| httpdate::parse_http_date(v).ok())
            .and_then(http_date_secs);
        matches!((self.mtime, since), (Some(m), Some(s)) if m <= s)
    }

    /// Whether a Range applies: without If-Range, or with one naming this version (a strong
    /// ETag, or the exact Last-Modified); else the whole file is sent.
    pub(super) fn range_applies(&self, headers: &HeaderMap) -> bool {
        let Some(v) = headers.get(IF_RANGE) else {
            return true;
        };
        let v = v.to_str().unwrap_or_default().trim();
        v == self.etag || self.last_modified.as_deref() == Some(v)
    }
}

/// Seconds since the epoch of a time an HTTP date can carry (years 1970 to 9999).
pub(super) fn http_date_secs(t: SystemTime) -> Option<u64> {
    let s = t.duration_since(UNIX_EPOCH).ok()?.as_secs();
    (s < 253_402_300_800).then_some(s)
}

/// An If-None-Match value lists `etag` (weak comparison, as RFC 9110 says) or is `*`.
pub(super) fn none_match(value: &str, etag: &str) -> bool {
    value
        .split(',')
        .map(str::trim)
        .any(|t| t == "*" || t.strip_prefix("W/").unwrap_or(t) == etag)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::File;
    #[test]
    fn revalidation() {
        let t = tempfile::tempdir().unwrap();
        let f = t.path().join("f");
        std::fs::write(&f, b"1").unwrap();
        let mtime = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        File::options()
            .write(true)
            .open(&f)
            .unwrap()
            .set_modified(mtime)
            .unwrap();
        let v = Validators::of(&std::fs::metadata(&f).unwrap());
        assert_eq!(
            v.last_modified.as_deref(),
            Some("Tue, 14 Nov 2023 22:13:20 GMT")
        );
        let asks = |name: http::HeaderName, value: &str| {
            let mut h = HeaderMap::new();
            h.insert(name, value.parse().unwrap());
            v.not_modified(&h)
        };
        assert!(asks(IF_NONE_MATCH, &v.etag));
        assert!(asks(IF_NONE_MATCH, &format!("\"x\", W/{}", v.etag)));
        assert!(asks(IF_NONE_MATCH, "*"));
        assert!(!asks(IF_NONE_MATCH, "\"x\""));
        assert!(asks(IF_MODIFIED_SINCE, "Tue, 14 Nov 2023 22:13:20 GMT"));
        assert!(asks(IF_MODIFIED_SINCE, "Wed, 15 Nov 2023 00:00:00 GMT"));
        assert!(!asks(IF_MODIFIED_SINCE, "Tue, 14 Nov 2023 22:13:19 GMT"));
        assert!(!asks(IF_MODIFIED_SINCE, "yesterday"));
        // No Last-Modified for a time an HTTP date cannot carry (httpdate would panic).
        assert_eq!(http_date_secs(UNIX_EPOCH - Duration::from_secs(1)), None);
        assert_eq!(
            http_date_secs(UNIX_EPOCH + Duration::from_secs(253_402_300_800)),
            None
        );
    }
}
