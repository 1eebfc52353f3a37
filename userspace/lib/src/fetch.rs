//! HTTP/1.1 client for block and index files: pooled keep-alive connections, many requests in
//! flight, and bodies bounded by what the index says (a lying server cannot make us allocate).
//! The timeout bounds connecting, waiting for the response head, and each stall of a block
//! body.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::{Request, StatusCode, Uri};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::{Error, Result};

/// A cloneable HTTP client sharing one connection pool.
#[derive(Clone)]
pub struct HttpClient {
    client: Client<HttpConnector, Empty<Bytes>>,
    timeout: Duration,
}

impl HttpClient {
    pub fn new(timeout: Duration) -> Self {
        let mut conn = HttpConnector::new();
        conn.set_nodelay(true);
        conn.set_keepalive(Some(Duration::from_secs(30)));
        conn.set_connect_timeout(Some(timeout));
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(256)
            .build(conn);
        HttpClient { client, timeout }
    }

    fn err(url: &str, reason: impl ToString) -> Error {
        Error::Http {
            url: url.to_string(),
            reason: reason.to_string(),
        }
    }

    /// GET `url`; `host` overrides the Host header (a URL naming one address of a host).
    async fn send(&self, url: &str, host: Option<&str>) -> Result<hyper::Response<Incoming>> {
        let uri: Uri = url.parse().map_err(|e| Self::err(url, e))?;
        if uri.scheme_str() != Some("http") {
            return Err(Self::err(url, "only http:// URLs are supported"));
        }
        let mut req = Request::get(uri);
        if let Some(h) = host {
            req = req.header(hyper::header::HOST, h);
        }
        let req = req.body(Empty::new()).map_err(|e| Self::err(url, e))?;
        let resp = tokio::time::timeout(self.timeout, self.client.request(req))
            .await
            .map_err(|_| Self::err(url, format!("no response within {:?}", self.timeout)))?
            .map_err(|e| Self::err(url, e))?;
        match resp.status() {
            StatusCode::OK => Ok(resp),
            StatusCode::NOT_FOUND => Err(Error::NotFound {
                url: url.to_string(),
            }),
            s => Err(Self::err(url, format!("HTTP {s}"))),
        }
    }

    /// Fetches `url` into `buf`, returning the body length. A body longer than `buf` is an error.
    pub async fn get_into(&self, url: &str, buf: &mut [u8]) -> Result<usize> {
        self.get_into_at(url, None, buf).await
    }

    /// `get_into`, with `host` as the Host header.
    pub async fn get_into_at(
        &self,
        url: &str,
        host: Option<&str>,
        buf: &mut [u8],
    ) -> Result<usize> {
        let resp = self.send(url, host).await?;
        let mut body = resp.into_body();
        let mut n = 0;
        // The timeout bounds each wait for more of the body, not the whole body: a transfer
        // that keeps moving on a saturated link is not abandoned.
        loop {
            let frame = tokio::time::timeout(self.timeout, body.frame())
                .await
                .map_err(|_| Self::err(url, format!("body stalled for {:?}", self.timeout)))?;
            let Some(frame) = frame else { return Ok(n) };
            let frame = frame.map_err(|e| Self::err(url, e))?;
            if let Some(data) = frame.data_ref() {
                if data.len() > buf.len() - n {
                    return Err(Self::err(
                        url,
                        format!("body longer than the expected {} bytes", buf.len()),
                    ));
                }
                buf[n..n + data.len()].copy_from_slice(data);
                n += data.len();
            }
        }
    }

    /// Fetches `url` whole, refusing bodies over `max_len` bytes.
    pub async fn get(&self, url: &str, max_len: usize) -> Result<Bytes> {
        self.get_at(url, None, max_len).await
    }

    /// `get`, with `host` as the Host header.
    pub async fn get_at(&self, url: &str, host: Option<&str>, max_len: usize) -> Result<Bytes> {
        let resp = self.send(url, host).await?;
        if let Some(len) = resp.headers().get(hyper::header::CONTENT_LENGTH) {
            let len: u64 = len
                .to_str()
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(u64::MAX);
            if len > max_len as u64 {
                return Err(Self::err(
                    url,
                    format!("body of {len} bytes exceeds the limit of {max_len}"),
                ));
            }
        }
        let body = http_body_util::Limited::new(resp.into_body(), max_len);
        let collected = tokio::time::timeout(self.timeout, body.collect())
            .await
            .map_err(|_| Self::err(url, format!("body not complete within {:?}", self.timeout)))?
            .map_err(|e| Self::err(url, e))?;
        Ok(collected.to_bytes())
    }
}
