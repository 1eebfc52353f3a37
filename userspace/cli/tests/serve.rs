//! `httpblk serve` facing bad clients and odd stores, over raw sockets: clients that never
//! read, more connections than allowed or than descriptors, symlinks out of the store and
//! files that are not regular, requests without Host; and the access log and revalidation.

mod common;
use common::*;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// `httpblk serve DIR ARGS...` on a free loopback port, its stderr as given.
fn start_with(dir: &Path, args: &[&str], stderr: Stdio) -> Server {
    let port = free_port();
    let child = bin()
        .args(["serve", dir.to_str().unwrap()])
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(args)
        .stderr(stderr)
        .spawn()
        .unwrap();
    wait_port(port);
    Server { child, port }
}

fn start(dir: &Path, args: &[&str]) -> Server {
    start_with(dir, args, Stdio::null())
}

/// An answer read up to the server's close; status 0 if none came within 5 s.
struct Answer {
    status: u16,
    head: String,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// Sends `request` as it is on a new connection and reads until the server closes it.
fn raw(port: u16, request: &str) -> Answer {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got); // a timeout leaves what came
    let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Answer {
            status: 0,
            head: String::from_utf8_lossy(&got).into_owned(),
            body: Vec::new(),
        };
    };
    let head = String::from_utf8_lossy(&got[..end]).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Answer {
        status,
        head,
        body: got[end + 4..].to_vec(),
    }
}

/// GET `path` over HTTP/1.1 with `headers` (lines ending in \r\n), on a connection of its own.
fn get(port: u16, path: &str, headers: &str) -> Answer {
    raw(
        port,
        &format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n{headers}\r\n"),
    )
}

/// Connections that request `path` and never read the answer.
fn stuck_clients(port: u16, path: &str, n: usize) -> Vec<TcpStream> {
    (0..n)
        .map(|_| {
            let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
            let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
            s.write_all(req.as_bytes()).unwrap();
            s
        })
        .collect()
}

/// A 64 MiB file of zeros (sparse: nothing written), more than any socket buffers hold.
fn big_file(dir: &Path) {
    std::fs::File::create(dir.join("big"))
        .unwrap()
        .set_len(64 << 20)
        .unwrap();
}

/// How a connection ends once read, and how many bytes it gave: "eof" or "reset" if the
/// server had closed it, "open" if it was still waiting for more.
fn drain(s: &mut TcpStream) -> (&'static str, usize) {
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let t0 = Instant::now();
    let mut buf = vec![0; 1 << 20];
    let mut n = 0;
    while t0.elapsed() < Duration::from_secs(5) {
        match s.read(&mut buf) {
            Ok(0) => return ("eof", n),
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return ("open", n),
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => return ("open", n),
            Err(_) => return ("reset", n),
        }
    }
    ("open", n)
}

#[test]
fn clients_that_do_not_read_are_dropped_after_the_send_timeout() {
    let t = tempfile::tempdir().unwrap();
    big_file(t.path());
    std::fs::write(t.path().join("f"), b"0123456789").unwrap();
    let srv = start(t.path(), &["--send-timeout-ms", "300"]);
    let mut stuck = stuck_clients(srv.port, "/big", 4);
    // Their buffers fill at once; 300 ms later the server gives up on them. Reading any
    // earlier would be progress, and keep them.
    std::thread::sleep(Duration::from_secs(2));
    for s in &mut stuck {
        let (end, n) = drain(s);
        assert!(end != "open" && n < 64 << 20, "{end} after {n} bytes");
    }
    assert_eq!(get(srv.port, "/f", "").body, b"0123456789");
}

#[test]
fn idle_clients_at_the_limit_make_room_for_real_ones() {
    let t = tempfile::tempdir().unwrap();
    std::fs::write(t.path().join("f"), b"0123456789").unwrap();
    let srv = start(t.path(), &["--max-connections", "8"]);
    // Idle for the 30 s header timeout, unless the server closes them to make room.
    let mut idle: Vec<_> = (0..20)
        .map(|_| TcpStream::connect(("127.0.0.1", srv.port)).unwrap())
        .collect();
    let t0 = Instant::now();
    let a = get(srv.port, "/f", "");
    assert_eq!((a.status, a.body.as_slice()), (200, &b"0123456789"[..]));
    assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
    // The oldest were closed; the newest still wait.
    assert_eq!(drain(&mut idle[0]).0, "eof");
    idle[19]
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let still = idle[19].read(&mut [0; 16]);
    assert!(still.is_err(), "{still:?}");
}

#[test]
fn clients_that_hold_every_slot_give_way_within_the_send_timeout() {
    let t = tempfile::tempdir().unwrap();
    big_file(t.path());
    std::fs::write(t.path().join("f"), b"0123456789").unwrap();
    let srv = start(
        t.path(),
        &["--max-connections", "4", "--send-timeout-ms", "500"],
    );
    let _stuck = stuck_clients(srv.port, "/big", 4);
    std::thread::sleep(Duration::from_millis(200));
    // None is idle: the new client waits for a stuck one to time out.
    let t0 = Instant::now();
    let a = get(srv.port, "/f", "");
    assert_eq!((a.status, a.body.as_slice()), (200, &b"0123456789"[..]));
    assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
}

#[test]
fn the_connection_limit_fits_the_descriptor_limit() {
    let t = tempfile::tempdir().unwrap();
    std::fs::write(t.path().join("f"), b"0123456789").unwrap();
    let port = free_port();
    let child = std::process::Command::new("bash")
        .args([
            "-c",
            &format!(
                "ulimit -n 40; exec {} serve {} --listen 127.0.0.1:{port}",
                env!("CARGO_BIN_EXE_httpblk"),
                t.path().display()
            ),
        ])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_port(port);
    let srv = Server { child, port };
    // More idle clients than descriptors: without a limit that fits them, accepting stops
    // (EMFILE) until the header timeout frees some, 30 s.
    let _idle: Vec<_> = (0..60)
        .filter_map(|_| TcpStream::connect(("127.0.0.1", srv.port)).ok())
        .collect();
    let t0 = Instant::now();
    let a = get(srv.port, "/f", "");
    assert_eq!((a.status, a.body.as_slice()), (200, &b"0123456789"[..]));
    assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
}

#[test]
fn only_regular_files_inside_the_store_are_served() {
    let t = tempfile::tempdir().unwrap();
    let store = t.path().join("store");
    std::fs::create_dir_all(store.join("blocks")).unwrap();
    std::fs::write(store.join("f"), b"0123456789").unwrap();
    std::fs::write(t.path().join("secret"), b"not yours").unwrap();
    let link = |target: &str, name: &str| {
        std::os::unix::fs::symlink(target, store.join(name)).unwrap();
    };
    link("/etc", "etclink");
    link("/etc/passwd", "passwd");
    link("..", "up");
    link("f", "inside");
    let _sock = std::os::unix::net::UnixListener::bind(store.join("sock")).unwrap();
    let mkfifo = run(std::process::Command::new("mkfifo").arg(store.join("fifo")));
    assert!(mkfifo.status.success());
    let srv = start(&store, &[]);
    for path in [
        "/etclink/passwd",
        "/passwd",
        "/up/secret",
        "/fifo",
        "/sock",
        "/blocks",
    ] {
        let t0 = Instant::now();
        let a = get(srv.port, path, "");
        assert_eq!(a.status, 404, "{path}: {}", a.head);
        assert!(t0.elapsed() < Duration::from_secs(2), "{path}");
    }
    // A relative symlink that stays inside is followed.
    assert_eq!(get(srv.port, "/inside", "").body, b"0123456789");
}

#[test]
fn http_1_1_requests_need_one_host() {
    let t = tempfile::tempdir().unwrap();
    std::fs::write(t.path().join("f"), b"0123456789").unwrap();
    let srv = start(t.path(), &[]);
    let a = raw(srv.port, "GET /f HTTP/1.1\r\nConnection: close\r\n\r\n");
    assert_eq!(a.status, 400, "{}", a.head);
    let a = raw(
        srv.port,
        "GET /f HTTP/1.1\r\nHost: a\r\nHost: b\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(a.status, 400, "{}", a.head);
    // HTTP/1.0 had no Host; 1.1 with it is served.
    let a = raw(srv.port, "GET /f HTTP/1.0\r\n\r\n");
    assert_eq!((a.status, a.body.as_slice()), (200, &b"0123456789"[..]));
    assert_eq!(get(srv.port, "/f", "").status, 200);
}

#[test]
fn verbose_serve_logs_each_request() {
    let t = tempfile::tempdir().unwrap();
    std::fs::write(t.path().join("f"), b"0123456789").unwrap();
    let mut srv = start_with(t.path(), &["-v"], Stdio::piped());
    assert_eq!(get(srv.port, "/f", "").status, 200);
    assert_eq!(get(srv.port, "/missing", "").status, 404);
    // Both answers were read to the server's close: their lines are written.
    let _ = srv.child.kill();
    let _ = srv.child.wait();
    let mut log = String::new();
    let _ = srv.child.stderr.take().unwrap().read_to_string(&mut log);
    let line = |request: &str| log.lines().find(|l| l.contains(request)).unwrap_or("");
    let ok = line("\"GET /f HTTP/1.1\"");
    assert!(
        ok.contains("DEBUG") && ok.contains("127.0.0.1:") && ok.contains(" 200 10 bytes "),
        "{log}"
    );
    assert!(
        line("\"GET /missing HTTP/1.1\"").contains(" 404 0 bytes "),
        "{log}"
    );
}

#[test]
fn an_unchanged_file_is_revalidated_not_refetched() {
    let t = tempfile::tempdir().unwrap();
    let f = t.path().join("img.hbi");
    std::fs::write(&f, b"first version").unwrap();
    let srv = start(t.path(), &[]);
    let a = get(srv.port, "/img.hbi", "");
    assert_eq!(a.status, 200);
    let etag = a.header("etag").unwrap().to_string();
    let date = a.header("last-modified").unwrap().to_string();
    assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");
    assert!(date.ends_with(" GMT"), "{date}");
    for h in [
        format!("If-None-Match: {etag}\r\n"),
        format!("If-None-Match: \"other\", W/{etag}\r\n"),
        format!("If-Modified-Since: {date}\r\n"),
    ] {
        let a = get(srv.port, "/img.hbi", &h);
        assert_eq!(a.status, 304, "{h}: {}", a.head);
        assert!(a.body.is_empty());
        assert_eq!(a.header("etag"), Some(etag.as_str()));
    }
    // A range of another version is not sent: the whole file is.
    let range = |if_range: &str| {
        let h = format!("Range: bytes=0-4\r\nIf-Range: {if_range}\r\n");
        get(srv.port, "/img.hbi", &h).status
    };
    assert_eq!(range(&etag), 206);
    assert_eq!(range("\"other\""), 200);
    // Changed: the old validators no longer match.
    std::fs::write(&f, b"second, longer version").unwrap();
    let later = std::time::SystemTime::now() + Duration::from_secs(5);
    std::fs::File::options()
        .write(true)
        .open(&f)
        .unwrap()
        .set_modified(later)
        .unwrap();
    let a = get(srv.port, "/img.hbi", &format!("If-None-Match: {etag}\r\n"));
    assert_eq!(
        (a.status, a.body.as_slice()),
        (200, &b"second, longer version"[..])
    );
    assert_ne!(a.header("etag"), Some(etag.as_str()));
    let a = get(
        srv.port,
        "/img.hbi",
        &format!("If-Modified-Since: {date}\r\n"),
    );
    assert_eq!(a.status, 200);
}
