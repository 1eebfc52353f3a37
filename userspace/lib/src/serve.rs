//! A static HTTP/1.1 file server for a store directory: keep-alive, GET and HEAD, single byte
//! ranges, 404 for a missing file. Enough to try httpblk with nothing else installed; nginx, a
//! CDN or a bucket serving the same directory work the same.
//!
//! A connection that sends no complete request head within `HEADER_TIMEOUT` (a new one, or an
//! idle keep-alive one) is closed, and running out of file descriptors pauses accepting
//! instead of ending the server.

use std::convert::Infallible;
use std::io::SeekFrom;
use std::os::unix::fs::FileExt;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use http::header::{
    ACCEPT_RANGES, ALLOW, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, RANGE,
};
use http::{Method, Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::net::TcpListener;

type Body = BoxBody<Bytes, std::io::Error>;

/// Bodies up to this size are read in one go; larger ones are streamed in chunks of it.
const CHUNK: u64 = 1 << 20;

/// How long a connection may take to send a request head, and stay idle between requests.
pub const HEADER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
/// How long accepting pauses when the process is out of file descriptors (or memory).
const ACCEPT_PAUSE: std::time::Duration = std::time::Duration::from_millis(100);

/// Serves `root` on `listener` until the task is dropped.
pub async fn serve(root: PathBuf, listener: TcpListener) -> std::io::Result<()> {
    serve_with(root, listener, HEADER_TIMEOUT).await
}

/// `serve`, closing connections without a request head for `header_timeout`.
pub async fn serve_with(
    root: PathBuf,
    listener: TcpListener,
    header_timeout: std::time::Duration,
) -> std::io::Result<()> {
    let root = Arc::new(root);
    let mut paused_at: Option<std::time::Instant> = None;
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) if is_transient(&e) => {
                // Out of descriptors: connections in progress finish and free some.
                if paused_at.is_none_or(|t| t.elapsed() > std::time::Duration::from_secs(10)) {
                    tracing::warn!("accept: {e}; pausing new connections");
                    paused_at = Some(std::time::Instant::now());
                }
                tokio::time::sleep(ACCEPT_PAUSE).await;
                continue;
            }
            Err(e) => return Err(e),
        };
        let _ = stream.set_nodelay(true);
        let root = root.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req| handle(root.clone(), req));
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout)
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), svc);
            if let Err(e) = conn.await {
                tracing::debug!("connection: {e}");
            }
        });
    }
}

/// Accept errors that say "not now" (descriptors, memory, an aborted handshake), not "never".
fn is_transient(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    ) || matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionAborted | std::io::ErrorKind::ConnectionReset
    )
}

fn empty() -> Body {
    Empty::new().map_err(|never| match never {}).boxed()
}

fn status(code: StatusCode) -> Response<Body> {
    let mut r = Response::new(empty());
    *r.status_mut() = code;
    r
}

/// Maps a request path to a file under `root`, refusing anything that could leave it.
pub fn resolve(root: &Path, uri_path: &str) -> Option<PathBuf> {
    let decoded = percent_decode(uri_path)?;
    let rel = Path::new(decoded.trim_start_matches('/'));
    if rel.as_os_str().is_empty() {
        return None;
    }
    let mut out = root.to_path_buf();
    for c in rel.components() {
        match c {
            Component::Normal(s) => out.push(s),
            _ => return None,
        }
    }
    Some(out)
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    let s = String::from_utf8(out).ok()?;
    (!s.contains('\0')).then_some(s)
}

/// Parses a single `bytes=` range against a file of `len` bytes. `Ok(None)`: serve it whole.
/// `Err(())`: unsatisfiable (416).
fn parse_range(value: &str, len: u64) -> Result<Option<(u64, u64)>, ()> {
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

async fn handle(root: Arc<PathBuf>, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    Ok(match respond(&root, &req).await {
        Ok(r) => r,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => status(StatusCode::NOT_FOUND),
        Err(e) => {
            tracing::warn!("{}: {e}", req.uri().path());
            status(StatusCode::INTERNAL_SERVER_ERROR)
        }
    })
}

async fn respond(root: &Path, req: &Request<Incoming>) -> std::io::Result<Response<Body>> {
    let head = match *req.method() {
        Method::GET => false,
        Method::HEAD => true,
        _ => {
            let mut r = status(StatusCode::METHOD_NOT_ALLOWED);
            r.headers_mut().insert(ALLOW, "GET, HEAD".parse().unwrap());
            return Ok(r);
        }
    };
    let Some(path) = resolve(root, req.uri().path()) else {
        return Ok(status(StatusCode::NOT_FOUND));
    };
    let (file, len) = tokio::task::spawn_blocking(move || -> std::io::Result<_> {
        let file = std::fs::File::open(&path)?;
        let meta = file.metadata()?;
        if !meta.is_file() {
            return Err(std::io::ErrorKind::NotFound.into());
        }
        Ok((file, meta.len()))
    })
    .await
    .expect("open task panicked")?;
    let range = match req.headers().get(RANGE).and_then(|v| v.to_str().ok()) {
        Some(v) => parse_range(v, len),
        None => Ok(None),
    };
    // Block files are named by their content and never change: any cache (a browser's, a
    // Squid between clients and servers, a CDN) may keep them. An index may be re-created.
    let cache_control = if req.uri().path().contains("/blocks/") {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let mut builder = Response::builder()
        .header(ACCEPT_RANGES, "bytes")
        .header(CACHE_CONTROL, cache_control)
        .header(CONTENT_TYPE, "application/octet-stream");
    let (start, count) = match range {
        Err(()) => {
            let mut r = status(StatusCode::RANGE_NOT_SATISFIABLE);
            r.headers_mut()
                .insert(CONTENT_RANGE, format!("bytes */{len}").parse().unwrap());
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
    if head {
        return Ok(builder.body(empty()).unwrap());
    }
    let body = if count <= CHUNK {
        // A block file: one trip to the blocking pool reads it whole.
        let buf = tokio::task::spawn_blocking(move || -> std::io::Result<Vec<u8>> {
            let mut buf = vec![0; count as usize];
            file.read_exact_at(&mut buf, start)?;
            Ok(buf)
        })
        .await
        .expect("read task panicked")?;
        Full::new(Bytes::from(buf))
            .map_err(|never| match never {})
            .boxed()
    } else {
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
        StreamBody::new(chunks).boxed()
    };
    Ok(builder.body(body).unwrap())
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

    #[test]
    fn paths_stay_inside_the_root() {
        let root = Path::new("/srv");
        assert_eq!(
            resolve(root, "/a/b.hbi"),
            Some(PathBuf::from("/srv/a/b.hbi"))
        );
        assert_eq!(resolve(root, "/a/%2e%2e/%2e%2e/etc/passwd"), None);
        assert_eq!(resolve(root, "/../etc/passwd"), None);
        assert_eq!(resolve(root, "/"), None);
        assert_eq!(resolve(root, "/a%00b"), None);
    }
}
