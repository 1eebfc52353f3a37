//! A small HTTP/1.1 server for a store, written for failure tests: it fails a share of
//! requests with 500, closes connections at random (sometimes halfway through a body, or
//! before any answer), closes a keep-alive connection as its next request arrives, answers
//! 503 with `Retry-After`, sends block files a byte at a time, and can demand credentials or
//! a query string. Its choices
//! come from a seeded generator, so a run is reproducible. One thread per connection; the
//! server stops (and its threads end) when dropped.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Clone, Default)]
pub struct Behaviour {
    /// Per mille of requests answered 500.
    pub fail_500: u32,
    /// Per mille of requests whose connection is closed (half of them mid-body).
    pub close: u32,
    /// The first this many requests get 503 with `Retry-After: retry_after_s`.
    pub unavailable_first: u64,
    pub retry_after_s: u64,
    /// Requests must carry this exact header line value for `Authorization`.
    pub authorization: Option<String>,
    /// Requests must carry this query string.
    pub query: Option<String>,
    /// The first this many block requests send half their body, then stall for 10 s.
    pub stall_first: u64,
    /// Per mille of requests whose connection is closed without an answer.
    pub drop_request: u32,
    /// Each connection answers one request; the next is read and left unanswered, the
    /// connection closed (what a keep-alive timeout racing a request looks like).
    pub one_per_connection: bool,
    /// Block files are sent a byte at a time, this far apart.
    pub trickle_blocks: Option<Duration>,
}

#[derive(Default)]
pub struct Counts {
    pub requests: AtomicU64,
    pub failed_500: AtomicU64,
    pub closed: AtomicU64,
    pub unavailable: AtomicU64,
    pub unauthorized: AtomicU64,
    pub stalled: AtomicU64,
    pub dropped: AtomicU64,
    pub ok: AtomicU64,
}

pub struct Flaky {
    pub port: u16,
    pub counts: Arc<Counts>,
    /// Every request line seen ("GET /path?query").
    pub seen: Arc<Mutex<Vec<String>>>,
    /// Every User-Agent seen.
    pub agents: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
}

struct Shared {
    root: PathBuf,
    b: Behaviour,
    counts: Arc<Counts>,
    seen: Arc<Mutex<Vec<String>>>,
    agents: Arc<Mutex<Vec<String>>>,
    rng: Mutex<u64>,
    stop: Arc<AtomicBool>,
}

impl Shared {
    fn roll(&self) -> u32 {
        let mut x = self.rng.lock().unwrap();
        *x ^= *x << 13;
        *x ^= *x >> 7;
        *x ^= *x << 17;
        (*x % 1000) as u32
    }
}

impl Flaky {
    pub fn start(root: PathBuf, b: Behaviour, seed: u64) -> Flaky {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let counts = Arc::new(Counts::default());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let agents = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let shared = Arc::new(Shared {
            root,
            b,
            counts: counts.clone(),
            seen: seen.clone(),
            agents: agents.clone(),
            rng: Mutex::new(seed | 1),
            stop: stop.clone(),
        });
        std::thread::spawn(move || {
            for s in l.incoming() {
                if shared.stop.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(s) = s else { continue };
                let shared = shared.clone();
                std::thread::spawn(move || {
                    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
                    let _ = connection(&shared, s);
                });
            }
        });
        Flaky {
            port,
            counts,
            seen,
            agents,
            stop,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}/{path}", self.port)
    }

    pub fn count(&self, c: fn(&Counts) -> &AtomicU64) -> u64 {
        c(&self.counts).load(Ordering::Relaxed)
    }
}

impl Drop for Flaky {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn connection(sh: &Shared, s: TcpStream) -> std::io::Result<()> {
    let mut w = s.try_clone()?;
    let mut r = BufReader::new(s);
    let mut answered = 0;
    loop {
        let mut line = String::new();
        if r.read_line(&mut line)? == 0 || sh.stop.load(Ordering::Relaxed) {
            return Ok(());
        }
        let target = line.split_whitespace().nth(1).unwrap_or("/").to_string();
        let mut auth = None;
        loop {
            let mut h = String::new();
            if r.read_line(&mut h)? == 0 {
                return Ok(());
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((n, v)) = h.split_once(':') {
                if n.eq_ignore_ascii_case("authorization") {
                    auth = Some(v.trim().to_string());
                }
                if n.eq_ignore_ascii_case("user-agent") {
                    sh.agents.lock().unwrap().push(v.trim().to_string());
                }
            }
        }
        sh.seen.lock().unwrap().push(format!("GET {target}"));
        let n = sh.counts.requests.fetch_add(1, Ordering::Relaxed);
        let (path, query) = match target.split_once('?') {
            Some((p, q)) => (p.to_string(), Some(q.to_string())),
            None => (target.clone(), None),
        };
        let reply = |w: &mut TcpStream, status: &str, extra: &str, body: &[u8]| {
            let head = format!(
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\n{extra}\r\n",
                body.len()
            );
            w.write_all(head.as_bytes())?;
            w.write_all(body)
        };
        if sh.b.authorization.is_some() && auth != sh.b.authorization {
            sh.counts.unauthorized.fetch_add(1, Ordering::Relaxed);
            reply(
                &mut w,
                "401 Unauthorized",
                "WWW-Authenticate: Basic realm=\"t\"\r\n",
                b"",
            )?;
            continue;
        }
        if sh.b.query.is_some() && query != sh.b.query {
            sh.counts.unauthorized.fetch_add(1, Ordering::Relaxed);
            reply(&mut w, "403 Forbidden", "", b"")?;
            continue;
        }
        if n < sh.b.unavailable_first {
            sh.counts.unavailable.fetch_add(1, Ordering::Relaxed);
            let extra = format!("Retry-After: {}\r\n", sh.b.retry_after_s);
            reply(&mut w, "503 Service Unavailable", &extra, b"")?;
            continue;
        }
        let roll = sh.roll();
        if (sh.b.one_per_connection && answered > 0)
            || (sh.b.drop_request > 0 && sh.roll() < sh.b.drop_request)
        {
            sh.counts.dropped.fetch_add(1, Ordering::Relaxed);
            let _ = w.shutdown(std::net::Shutdown::Both);
            return Ok(());
        }
        answered += 1;
        if roll < sh.b.fail_500 {
            sh.counts.failed_500.fetch_add(1, Ordering::Relaxed);
            reply(&mut w, "500 Internal Server Error", "", b"")?;
            continue;
        }
        let file = std::fs::read(sh.root.join(path.trim_start_matches('/')));
        let Ok(body) = file else {
            reply(&mut w, "404 Not Found", "", b"")?;
            continue;
        };
        if path.contains("/blocks/")
            && sh.counts.stalled.fetch_add(1, Ordering::Relaxed) < sh.b.stall_first
        {
            let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len());
            w.write_all(head.as_bytes())?;
            w.write_all(&body[..body.len() / 2])?;
            w.flush()?;
            for _ in 0..100 {
                if sh.stop.load(Ordering::Relaxed) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            return Ok(());
        }
        if roll < sh.b.fail_500 + sh.b.close {
            sh.counts.closed.fetch_add(1, Ordering::Relaxed);
            if roll.is_multiple_of(2) {
                // Halfway through the body.
                let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len());
                w.write_all(head.as_bytes())?;
                w.write_all(&body[..body.len() / 2])?;
            }
            let _ = w.shutdown(std::net::Shutdown::Both);
            return Ok(());
        }
        if let Some(gap) = sh.b.trickle_blocks.filter(|_| path.contains("/blocks/")) {
            let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len());
            w.write_all(head.as_bytes())?;
            for b in &body {
                if sh.stop.load(Ordering::Relaxed) {
                    return Ok(());
                }
                w.write_all(std::slice::from_ref(b))?;
                std::thread::sleep(gap);
            }
            continue;
        }
        sh.counts.ok.fetch_add(1, Ordering::Relaxed);
        reply(&mut w, "200 OK", "", &body)?;
        let _ = r.get_mut().read(&mut []);
    }
}
