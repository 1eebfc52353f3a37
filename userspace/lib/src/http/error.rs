//! What went wrong with one HTTP request, as a type: retry decisions match on it, never on
//! message text. Each variant carries the whole cause chain of the underlying error, with
//! consecutive repeats dropped (hyper and reqwest often say the same thing twice).

use std::time::Duration;

/// Why a request failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FetchError {
    /// No connection: refused, unreachable, name not resolved, proxy refused the tunnel.
    #[error("connecting: {0}")]
    Connect(String),

    /// The TLS handshake failed: certificate untrusted, expired, for another host.
    #[error("TLS: {0}")]
    Tls(String),

    /// The connection closed before any answer: a keep-alive connection the server had
    /// closed, or a server that drops requests.
    #[error("connection closed before an answer: {0}")]
    Closed(String),

    /// Connecting took longer than the connect timeout, or the whole request longer than
    /// the request timeout.
    #[error("{what} timed out after {after:?}")]
    Timeout { what: &'static str, after: Duration },

    /// The body arrived slower than the speed limit over its whole window.
    #[error("{bytes} bytes in {time:?}, slower than --speed-limit {limit} bytes/s")]
    TooSlow {
        bytes: u64,
        limit: u64,
        time: Duration,
    },

    /// The server answered with a status other than 200.
    #[error("HTTP {status}{}", reason_of(*status))]
    Status {
        status: u16,
        /// What a `Retry-After` header asked for (429, 503).
        retry_after: Option<Duration>,
    },

    /// Too many redirects, a redirect loop, or a redirect to somewhere we do not go.
    #[error("redirect: {0}")]
    Redirect(String),

    /// The body ended before the length the index gives.
    #[error("short body: {got} bytes, expected {want}")]
    ShortBody { got: u64, want: u64 },

    /// The body is longer than the index (or the size limit) allows.
    #[error("body longer than the expected {limit} bytes")]
    TooLong { limit: u64 },

    /// The body is not the file asked for (its first bytes say so).
    #[error("{0}")]
    BadContent(String),

    /// The connection failed while the body was arriving.
    #[error("reading the body: {0}")]
    Body(String),

    /// Anything else reqwest reports (a bad header value, a request it could not build).
    #[error("{0}")]
    Other(String),
}

fn reason_of(status: u16) -> String {
    http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .map(|r| format!(" {r}"))
        .unwrap_or_default()
}

impl FetchError {
    /// Worth asking again (the same server after a pause, or another): the server or the
    /// network failed, not the request.
    pub fn is_retryable(&self) -> bool {
        match self {
            FetchError::Connect(_)
            | FetchError::Closed(_)
            | FetchError::Timeout { .. }
            | FetchError::TooSlow { .. }
            | FetchError::ShortBody { .. }
            | FetchError::Body(_) => true,
            FetchError::Status { status, .. } => *status >= 500 || *status == 429 || *status == 408,
            FetchError::Tls(_)
            | FetchError::Redirect(_)
            | FetchError::TooLong { .. }
            | FetchError::BadContent(_)
            | FetchError::Other(_) => false,
        }
    }

    /// The server is up but its copy is wrong or absent: another mirror may have it right.
    pub fn is_content(&self) -> bool {
        matches!(
            self,
            FetchError::ShortBody { .. }
                | FetchError::TooLong { .. }
                | FetchError::BadContent(_)
                | FetchError::Status {
                    status: 400..=499,
                    ..
                }
        )
    }

    /// How much the failure says about the file, for picking the one to report among
    /// several addresses and mirrors: a server's answer beats a broken transfer, which beats
    /// no connection at all.
    pub fn telling(&self) -> u8 {
        match self {
            FetchError::Connect(_) => 0,
            FetchError::Closed(_) | FetchError::Timeout { .. } | FetchError::TooSlow { .. } => 1,
            FetchError::ShortBody { .. } | FetchError::Body(_) | FetchError::Other(_) => 2,
            FetchError::Status { status, .. } if *status >= 500 => 3,
            FetchError::Status { .. }
            | FetchError::Tls(_)
            | FetchError::Redirect(_)
            | FetchError::BadContent(_)
            | FetchError::TooLong { .. } => 4,
        }
    }

    pub fn is_missing(&self) -> bool {
        matches!(
            self,
            FetchError::Status {
                status: 404 | 410,
                ..
            }
        )
    }

    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            FetchError::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// Classifies a reqwest error, keeping its whole cause chain.
    pub fn from_reqwest(
        e: reqwest::Error,
        timeout: Duration,
        connect_timeout: Duration,
    ) -> FetchError {
        let e = e.without_url();
        if let Some(tls) = find_cause::<rustls::Error>(&e) {
            return FetchError::Tls(describe_tls(tls));
        }
        if let Some(redirect) = find_cause::<super::client::RedirectError>(&e) {
            return FetchError::Redirect(redirect.to_string());
        }
        if e.is_timeout() {
            return if e.is_connect() {
                FetchError::Timeout {
                    what: "connecting",
                    after: connect_timeout,
                }
            } else {
                FetchError::Timeout {
                    what: "the request",
                    after: timeout,
                }
            };
        }
        let text = chain(&e);
        let closed_early =
            find_cause::<hyper::Error>(&e).is_some_and(hyper::Error::is_incomplete_message);
        if closed_early && !e.is_body() {
            return FetchError::Closed(text);
        }
        if e.is_redirect() {
            FetchError::Redirect(text)
        } else if e.is_connect() {
            FetchError::Connect(text)
        } else if e.is_body() || e.is_decode() {
            FetchError::Body(text)
        } else if e.is_request() {
            // A request that failed on an established connection (reset, closed early).
            FetchError::Connect(text)
        } else {
            FetchError::Other(text)
        }
    }
}

/// The first error of type `T` in `e`'s source chain.
fn find_cause<'a, T: std::error::Error + 'static>(
    e: &'a (dyn std::error::Error + 'static),
) -> Option<&'a T> {
    let mut cur = Some(e);
    while let Some(c) = cur {
        if let Some(t) = c.downcast_ref::<T>() {
            return Some(t);
        }
        cur = next_cause(c);
    }
    None
}

/// The cause of `e`. An io::Error's `source` is its inner error's source, skipping the inner
/// error itself (io errors wrap io errors wrapping rustls errors): step into it instead.
fn next_cause<'a>(
    e: &'a (dyn std::error::Error + 'static),
) -> Option<&'a (dyn std::error::Error + 'static)> {
    match e
        .downcast_ref::<std::io::Error>()
        .and_then(|io| io.get_ref())
    {
        Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
        None => e.source(),
    }
}

/// `e` and every cause, joined by ": ", leaving out a cause whose text the previous one
/// already contains.
pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut prev = out.clone();
    let mut cur = next_cause(e);
    while let Some(c) = cur {
        let s = c.to_string();
        if !prev.contains(&s) {
            out.push_str(": ");
            out.push_str(&s);
        }
        prev = s;
        cur = next_cause(c);
    }
    out
}

/// A TLS failure in words that say what to do.
fn describe_tls(e: &rustls::Error) -> String {
    use rustls::CertificateError as C;
    match e {
        rustls::Error::InvalidCertificate(c) => match c {
            C::UnknownIssuer => "the server's certificate is not signed by a trusted CA \
                 (add the CA with --ca-cert FILE or SSL_CERT_FILE)"
                .into(),
            C::Expired | C::ExpiredContext { .. } => {
                format!("the server's certificate has expired ({c})")
            }
            C::NotValidYet | C::NotValidYetContext { .. } => {
                format!("the server's certificate is not valid yet ({c})")
            }
            C::NotValidForName | C::NotValidForNameContext { .. } => {
                format!("the server's certificate is for another host name ({c})")
            }
            C::Revoked => "the server's certificate was revoked".into(),
            // webpki never takes a CA certificate as a server's own: a self-signed one
            // made with CA:TRUE (openssl's default req -x509) is refused however trusted.
            other if format!("{other:?}").contains("CaUsedAsEndEntity") => {
                "the server's certificate is a CA certificate (CA:TRUE), which TLS clients \
                 other than curl refuse as a server's own: give the server a certificate \
                 signed by that CA, or make the self-signed one with basicConstraints CA:FALSE"
                    .into()
            }
            other => format!("the server's certificate is invalid: {other}"),
        },
        rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType) => {
            "the server does not speak TLS on this port (plain HTTP? try http://)".into()
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_decisions() {
        let st = |status| FetchError::Status {
            status,
            retry_after: None,
        };
        assert!(st(500).is_retryable() && st(503).is_retryable() && st(429).is_retryable());
        assert!(!st(404).is_retryable() && !st(403).is_retryable());
        assert!(st(404).is_missing() && st(404).is_content());
        assert!(FetchError::ShortBody { got: 1, want: 2 }.is_retryable());
        assert!(!FetchError::Tls("x".into()).is_retryable());
        assert_eq!(st(503).to_string(), "HTTP 503 Service Unavailable");
    }

    #[test]
    fn chains_drop_repeats() {
        #[derive(Debug)]
        struct E(&'static str, Option<Box<E>>);
        impl std::fmt::Display for E {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.0)
            }
        }
        impl std::error::Error for E {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                self.1.as_deref().map(|e| e as _)
            }
        }
        let e = E(
            "client error (Connect)",
            Some(Box::new(E(
                "tcp connect error",
                Some(Box::new(E("tcp connect error", None))),
            ))),
        );
        assert_eq!(chain(&e), "client error (Connect): tcp connect error");
    }
}
