//! One request being answered, and its line in the access log (`-v`).

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http::{Request, StatusCode};
use hyper::body::{Frame, Incoming, SizeHint};

use super::conn::{Conn, Server};
use super::respond::Body;

/// One request being answered: activity on its connection until its response body is done
/// (or dropped), then a line of the access log.
pub(super) struct Exchange {
    pub(super) conn: Arc<Conn>,
    pub(super) server: Arc<Server>,
    pub(super) peer: SocketAddr,
    pub(super) request: String,
    pub(super) status: StatusCode,
    pub(super) bytes: u64,
    pub(super) start: Instant,
}

impl Exchange {
    pub(super) fn new(
        server: Arc<Server>,
        conn: Arc<Conn>,
        peer: SocketAddr,
        req: &Request<Incoming>,
    ) -> Exchange {
        conn.active.fetch_add(1, Ordering::Relaxed);
        let target = req.uri().path_and_query().map_or("/", |p| p.as_str());
        Exchange {
            conn,
            server,
            peer,
            request: format!("{} {target} {:?}", req.method(), req.version()),
            status: StatusCode::OK,
            bytes: 0,
            start: Instant::now(),
        }
    }
}

impl Drop for Exchange {
    fn drop(&mut self) {
        self.conn
            .idle_since
            .store(self.server.now_ms(), Ordering::Relaxed);
        self.conn.active.fetch_sub(1, Ordering::Relaxed);
        tracing::debug!(
            "{} \"{}\" {} {} bytes {:.1?}",
            self.peer,
            self.request,
            self.status.as_u16(),
            self.bytes,
            self.start.elapsed()
        );
    }
}

/// A response body that counts what it yields for its `Exchange`.
pub(super) struct Logged {
    pub(super) body: Body,
    pub(super) exchange: Exchange,
}

impl hyper::body::Body for Logged {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        let r = Pin::new(&mut self.body).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &r {
            if let Some(data) = frame.data_ref() {
                self.exchange.bytes += data.len() as u64;
            }
        }
        r
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
