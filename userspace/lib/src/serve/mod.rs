//! A static HTTP/1.1 file server for a store directory: keep-alive, GET and HEAD, single byte
//! ranges, ETag and Last-Modified with 304 answers to revalidation, 404 for a missing file.
//! Enough to try httpblk with nothing else installed; nginx, a CDN or a bucket serving the same
//! directory work the same.
//!
//! Hardened to face any client:
//! - a connection that sends no complete request head within the header timeout (a new one, or
//!   an idle keep-alive one) is closed, and so is one whose client reads nothing of a response
//!   for the send timeout;
//! - at most `max_connections` are served, fewer if RLIMIT_NOFILE cannot hold them: a new
//!   client at the limit closes the connection idle the longest, or waits for one to end if
//!   none is idle; running out of file descriptors anyway pauses accepting instead of ending
//!   the server;
//! - files are opened beneath the store (openat2 RESOLVE_BENEATH): `..` and symlinks that leave
//!   it, absolute symlinks and /proc magic links answer 404, relative symlinks that stay inside
//!   are followed; only regular files are served, opened non-blocking so a FIFO cannot hang;
//! - an HTTP/1.1 request without exactly one Host header gets 400, as RFC 9112 requires;
//! - every answered request logs one debug line, the access log: client, request, status,
//!   body bytes, time.
//!
//! Files: the accept loop and its limits here; `conn` serves one connection, `send_timeout`
//! bounds its writes, `respond` answers a request, `files` opens what it names beneath the
//! store, `validators` answers revalidation, `access_log` writes a line per request.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

mod access_log;
mod conn;
mod files;
mod respond;
mod send_timeout;
mod validators;

use conn::{connection, Server};

/// How long a connection may take to send a request head, and stay idle between requests.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a response may wait for its client to read (nginx's `send_timeout`, 60 s there).
pub const SEND_TIMEOUT: Duration = Duration::from_secs(30);
/// Connections served at once, unless RLIMIT_NOFILE allows fewer.
pub const MAX_CONNECTIONS: usize = 256;
/// How long accepting pauses when the process is out of file descriptors (or memory).
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);
/// Descriptors kept for all but connections: stdio, the listener, the runtime's epoll and
/// waker, a connection accepted while it waits for a slot, and spare.
const RESERVED_FDS: u64 = 16;
/// Descriptors one connection may hold: its socket, and the store and the file it opens.
const FDS_PER_CONNECTION: u64 = 3;

/// What `serve_with` enforces.
#[derive(Clone, Debug)]
pub struct Options {
    /// Close a connection that sends no complete request head for this long.
    pub header_timeout: Duration,
    /// Close a connection whose client reads nothing of a response for this long.
    pub send_timeout: Duration,
    /// Serve at most this many connections at once (lowered to fit RLIMIT_NOFILE).
    pub max_connections: usize,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            header_timeout: HEADER_TIMEOUT,
            send_timeout: SEND_TIMEOUT,
            max_connections: MAX_CONNECTIONS,
        }
    }
}

/// Serves `root` on `listener` until the task is dropped.
pub async fn serve(root: PathBuf, listener: TcpListener) -> std::io::Result<()> {
    serve_with(root, listener, Options::default()).await
}

/// `serve`, with other timeouts and connection limit.
pub async fn serve_with(
    root: PathBuf,
    listener: TcpListener,
    opts: Options,
) -> std::io::Result<()> {
    let limit = connection_limit(opts.max_connections);
    let slots = Arc::new(Semaphore::new(limit));
    let server = Arc::new(Server {
        root,
        opts,
        conns: Mutex::new(HashMap::new()),
        epoch: Instant::now(),
    });
    let mut next_id = 0;
    let mut out_of_fds = Every::new();
    let mut at_limit = Every::new();
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) if is_transient(&e) => {
                // Out of descriptors: connections in progress finish and free some.
                if out_of_fds.due() {
                    tracing::warn!("accept: {e}; pausing new connections");
                }
                tokio::time::sleep(ACCEPT_PAUSE).await;
                continue;
            }
            Err(e) => return Err(e),
        };
        let slot = match slots.clone().try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => make_room(&server, &slots, limit, &mut at_limit).await?,
        };
        let _ = stream.set_nodelay(true);
        next_id += 1;
        let conn = server.register(next_id);
        tokio::spawn(connection(server.clone(), conn, stream, peer, slot));
    }
}

/// At the limit with a new client waiting: closes the connection idle the longest, again
/// every ACCEPT_PAUSE while no slot is free. With none idle (all are answering requests), the
/// new client waits until one ends: a stuck one ends within the send timeout.
async fn make_room(
    server: &Server,
    slots: &Arc<Semaphore>,
    limit: usize,
    at_limit: &mut Every,
) -> std::io::Result<OwnedSemaphorePermit> {
    loop {
        if !server.close_idlest() && at_limit.due() {
            tracing::warn!("all {limit} connections busy: new clients wait");
        }
        let wait = tokio::time::timeout(ACCEPT_PAUSE, slots.clone().acquire_owned());
        if let Ok(slot) = wait.await {
            return slot.map_err(std::io::Error::other);
        }
    }
}

/// `requested`, or fewer if the descriptor limit (`ulimit -n`) cannot hold that many.
fn connection_limit(requested: usize) -> usize {
    let nofile = rustix::process::getrlimit(rustix::process::Resource::Nofile).current;
    let Some(nofile) = nofile else {
        return requested; // unlimited
    };
    let fit = (nofile.saturating_sub(RESERVED_FDS) / FDS_PER_CONNECTION).max(1);
    let fit = usize::try_from(fit).unwrap_or(usize::MAX);
    if fit < requested {
        tracing::warn!(
            "serving at most {fit} connections, not {requested}: the descriptor limit \
             (ulimit -n) is {nofile}"
        );
    }
    requested.min(fit)
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

/// True at most once every 10 s: keeps a repeated warning from flooding the log.
struct Every(Option<Instant>);

impl Every {
    fn new() -> Every {
        Every(None)
    }

    fn due(&mut self) -> bool {
        let due = self.0.is_none_or(|t| t.elapsed() > Duration::from_secs(10));
        if due {
            self.0 = Some(Instant::now());
        }
        due
    }
}
