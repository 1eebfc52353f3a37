//! One connection: served until it ends, times out, or is asked to close to make room.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpStream;
use tokio::sync::{Notify, OwnedSemaphorePermit};

use super::respond::handle;
use super::send_timeout::SendTimeout;
use super::Options;

/// The store and the connections being served.
pub(super) struct Server {
    pub(super) root: PathBuf,
    pub(super) opts: Options,
    pub(super) conns: Mutex<HashMap<u64, Arc<Conn>>>,
    /// What `Conn::idle_since` counts from.
    pub(super) epoch: Instant,
}

impl Server {
    pub(super) fn register(&self, id: u64) -> Arc<Conn> {
        let conn = Arc::new(Conn {
            id,
            active: AtomicUsize::new(0),
            writing: AtomicBool::new(false),
            idle_since: AtomicU64::new(self.now_ms()),
            closing: AtomicBool::new(false),
            close: Notify::new(),
        });
        self.lock_conns().insert(id, conn.clone());
        conn
    }

    pub(super) fn forget(&self, id: u64) {
        self.lock_conns().remove(&id);
    }

    pub(super) fn lock_conns(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Conn>>> {
        // The map stays consistent whatever panicked while holding it.
        self.conns.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Asks the connection idle the longest to close; false if none is idle.
    pub(super) fn close_idlest(&self) -> bool {
        let conns = self.lock_conns();
        let idlest = conns
            .values()
            .filter(|c| c.is_idle() && !c.closing.load(Ordering::Relaxed))
            // Ties (the same ms) go to the older connection.
            .min_by_key(|c| (c.idle_since.load(Ordering::Relaxed), c.id));
        let Some(c) = idlest else {
            return false;
        };
        c.closing.store(true, Ordering::Relaxed);
        c.close.notify_one();
        true
    }
}

/// What the accept loop needs to know of a connection to choose one to close.
pub(super) struct Conn {
    pub(super) id: u64,
    /// Requests being answered: from their head until their response body is done.
    pub(super) active: AtomicUsize,
    /// A write waits for the client to read.
    pub(super) writing: AtomicBool,
    /// When its last request ended (or it was accepted), in ms from `Server::epoch`.
    pub(super) idle_since: AtomicU64,
    /// Already asked to close.
    pub(super) closing: AtomicBool,
    pub(super) close: Notify,
}

impl Conn {
    /// Nothing to lose by closing it: no request being answered, nothing left to send. It
    /// may be waiting for a request, or have received part of one.
    pub(super) fn is_idle(&self) -> bool {
        self.active.load(Ordering::Relaxed) == 0 && !self.writing.load(Ordering::Relaxed)
    }
}

/// Serves one connection until it ends, times out, or is asked to close.
pub(super) async fn connection(
    server: Arc<Server>,
    conn: Arc<Conn>,
    stream: TcpStream,
    peer: SocketAddr,
    slot: OwnedSemaphorePermit,
) {
    let io = TokioIo::new(SendTimeout::new(
        stream,
        server.opts.send_timeout,
        conn.clone(),
    ));
    let svc = {
        let (server, conn) = (server.clone(), conn.clone());
        service_fn(move |req| handle(server.clone(), conn.clone(), peer, req))
    };
    let http = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(server.opts.header_timeout)
        .keep_alive(true)
        .serve_connection(io, svc);
    tokio::pin!(http);
    let r = tokio::select! {
        // The connection first: its state is settled when the request to close is looked at.
        biased;
        r = http.as_mut() => r,
        () = conn.close.notified() => {
            if conn.is_idle() {
                tracing::debug!("{peer}: closing an idle connection to make room");
                Ok(())
            } else {
                // It became busy: close it after this response.
                http.as_mut().graceful_shutdown();
                http.await
            }
        }
    };
    if let Err(e) = r {
        tracing::debug!("{peer}: connection: {e}");
    }
    server.forget(conn.id);
    drop(slot); // only now: a slot is a descriptor
}
