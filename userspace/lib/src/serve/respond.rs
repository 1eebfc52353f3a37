//! The answer to one request: checks, then the file (whole, a range, or 304).

use std::convert::Infallible;
use std::fs::File;
use std::io::SeekFrom;
use std::net::SocketAddr;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{
    ACCEPT_RANGES, ALLOW, CACHE_CONTROL, CONNECTION, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE,
    ETAG, HOST, LAST_MODIFIED, RANGE,
};
use http::{Method, Request, Response, StatusCode, Version};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::access_log::{Exchange, Logged};
use super::conn::{Conn, Server};
use super::files::{open_file, refusal, resolve};
use super::validators::Validators;

pub(super) type Body = BoxBody<Bytes, std::io::Error>;

/// Bodies up to this size are read in one go; larger ones are streamed in chunks of it.
pub(super) const CHUNK: u64 = 1 << 20;

pub(super) fn empty() -> Body {
    Empty::new().map_err(|never| match never {}).boxed()
}

pub(super) fn status(code: StatusCode) -> Response<Body> {
    let mut r = Response::new(empty());
    *r.status_mut() = code;
    r
}

/// Parses a single `bytes=` range against a file of `len` bytes. `Ok(None)`: serve it whole.
/// `Err(())`: unsatisfiable (416).
pub(super) fn parse_range(value: &str, len: u64) -> Result<Option<(u64, u64)>, ()> {
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None); // multiple ranges: a full response is allowed
    }
    let (a, b) = spec.split_once('-').ok_or(())?;
    let (start, end) = match (a.trim(), b.trim()) {
        ("", suffix) => {
            let n: u64 = suffix.parse().map_err(|_| ())?;
            if n == 0 {
                return Err(());
            }
            (len.saturating_sub(n), len.saturating_sub(1))
        }
        (s, "") => (s.parse().map_err(|_| ())?, len.saturating_sub(1)),
        (s, e) => {
            let (s, e): (u64, u64) = (s.parse().map_err(|_| ())?, e.parse().map_err(|_| ())?);
            if e < s {
                return Err(());
            }
            (s, e.min(len.saturating_sub(1)))
        }
    };
    if len == 0 || start >= len {
        return Err(());
    }
    Ok(Some((start, end)))
}

/// RFC 9112 3.2: an HTTP/1.1 request must carry exactly one Host; HTTP/1.0 may have none.
pub(super) fn host_ok(req: &Request<Incoming>) -> bool {
    match req.headers().get_all(HOST).iter().count() {
        0 => req.version() < Version::HTTP_11,
        n => n == 1,
    }
}

pub(super) async fn handle(
    server: Arc<Server>,
    conn: Arc<Conn>,
    peer: SocketAddr,
    req: Request<Incoming>,
) -> Result<Response<Logged>, Infallible> {
    let mut exchange = Exchange::new(server.clone(), conn, peer, &req);
    let response = match respond(&server.root, &req).await {
        Ok(r) => r,
        Err(e) => match refusal(&e) {
            Some(code) => status(code),
            None => {
                tracing::warn!("{}: {e}", req.uri().path());
                status(StatusCode::INTERNAL_SERVER_ERROR)
            }
        },
    };
    exchange.status = response.status();
    Ok(response.map(|body| Logged { body, exchange }))
}

pub(super) async fn respond(
    root: &Path,
    req: &Request<Incoming>,
) -> std::io::Result<Response<Body>> {
    if !host_ok(req) {
        let mut r = status(StatusCode::BAD_REQUEST);
        r.headers_mut()
            .insert(CONNECTION, http::HeaderValue::from_static("close"));
        return Ok(r);
    }
    let head = match *req.method() {
        Method::GET => false,
        Method::HEAD => true,
        _ => {
            let mut r = status(StatusCode::METHOD_NOT_ALLOWED);
            r.headers_mut()
                .insert(ALLOW, http::HeaderValue::from_static("GET, HEAD"));
            return Ok(r);
        }
    };
    let Some(rel) = resolve(req.uri().path()) else {
        return Ok(status(StatusCode::NOT_FOUND));
    };
    let root = root.to_path_buf();
    let (file, meta) = tokio::task::spawn_blocking(move || open_file(&root, &rel))
        .await
        .map_err(std::io::Error::other)??;
    let len = meta.len();
    let validators = Validators::of(&meta);
    // Block files are named by their content and never change: any cache (a browser's, a
    // Squid between clients and servers, a CDN) may keep them. An index may be re-created:
    // caches revalidate it, and get a 304 while it is the same.
    let cache_control = if req.uri().path().contains("/blocks/") {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let mut builder = Response::builder()
        .header(CACHE_CONTROL, cache_control)
        .header(ETAG, &validators.etag);
    if let Some(date) = &validators.last_modified {
        builder = builder.header(LAST_MODIFIED, date);
    }
    if validators.not_modified(req.headers()) {
        return builder
            .status(StatusCode::NOT_MODIFIED)
            .body(empty())
            .map_err(std::io::Error::other);
    }
    let range = match req.headers().get(RANGE).and_then(|v| v.to_str().ok()) {
        Some(v) if validators.range_applies(req.headers()) => parse_range(v, len),
        _ => Ok(None),
    };
    builder = builder
        .header(ACCEPT_RANGES, "bytes")
        .header(CONTENT_TYPE, "application/octet-stream");
    let (start, count) = match range {
        Err(()) => {
            let mut r = status(StatusCode::RANGE_NOT_SATISFIABLE);
            if let Ok(v) = http::HeaderValue::try_from(format!("bytes */{len}")) {
                r.headers_mut().insert(CONTENT_RANGE, v);
            }
            return Ok(r);
        }
        Ok(None) => (0, len),
        Ok(Some((s, e))) => {
            builder = builder
                .status(StatusCode::PARTIAL_CONTENT)
                .header(CONTENT_RANGE, format!("bytes {s}-{e}/{len}"));
            (s, e - s + 1)
        }
    };
    builder = builder.header(CONTENT_LENGTH, count);
    let body = if head {
        empty()
    } else {
        file_body(file, start, count).await?
    };
    builder.body(body).map_err(std::io::Error::other)
}

/// `count` bytes of `file` from `start`.
pub(super) async fn file_body(file: File, start: u64, count: u64) -> std::io::Result<Body> {
    if count <= CHUNK {
        // A block file: one trip to the blocking pool reads it whole.
        let buf = tokio::task::spawn_blocking(move || -> std::io::Result<Vec<u8>> {
            let mut buf = vec![0; count as usize];
            file.read_exact_at(&mut buf, start)?;
            Ok(buf)
        })
        .await
        .map_err(std::io::Error::other)??;
        return Ok(Full::new(Bytes::from(buf))
            .map_err(|never| match never {})
            .boxed());
    }
    let mut file = tokio::fs::File::from_std(file);
    if start > 0 {
        file.seek(SeekFrom::Start(start)).await?;
    }
    let chunks = futures::stream::unfold((file, count), |(mut file, left)| async move {
        if left == 0 {
            return None;
        }
        let mut buf = vec![0; left.min(CHUNK) as usize];
        let r = file
            .read_exact(&mut buf)
            .await
            .map(|_| Frame::data(Bytes::from(buf)));
        let left = if r.is_ok() { left - left.min(CHUNK) } else { 0 };
        Some((r, (file, left)))
    });
    Ok(StreamBody::new(chunks).boxed())
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-9", 100), Ok(Some((0, 9))));
        assert_eq!(parse_range("bytes=90-", 100), Ok(Some((90, 99))));
        assert_eq!(parse_range("bytes=-10", 100), Ok(Some((90, 99))));
        assert_eq!(parse_range("bytes=50-500", 100), Ok(Some((50, 99))));
        assert_eq!(parse_range("bytes=100-", 100), Err(()));
        assert_eq!(parse_range("bytes=9-1", 100), Err(()));
        assert_eq!(parse_range("bytes=0-1,5-6", 100), Ok(None));
        assert_eq!(parse_range("items=0-1", 100), Ok(None));
    }
}
