//! Mirrors against real servers on loopback: load spreading, a server dying and coming back,
//! a server with a wrong image, short bodies, a copy the kernel rejected, and hedging around a
//! server that stalls.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use httpblk_core::codec::Codec;
use httpblk_core::create::{create_from, Options};
use httpblk_core::digest::HashAlg;
use httpblk_core::http::Options as HttpOptions;
use httpblk_core::index::Index;
use httpblk_core::mirrors::{Endpoint, Mirrors};
use httpblk_core::store::block_rel_path;

/// A server on its own runtime: stopping it drops every connection, as a dead process would.
struct Server {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    fn start(root: &Path, addr: SocketAddr) -> Server {
        let std_listener = std::net::TcpListener::bind(addr).expect("bind");
        let addr = std_listener.local_addr().unwrap();
        std_listener.set_nonblocking(true).unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let root = root.to_path_buf();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let l = tokio::net::TcpListener::from_std(std_listener).unwrap();
                tokio::select! {
                    _ = httpblk_core::serve::serve(root, l) => {}
                    _ = rx => {}
                }
            });
            // Dropping the runtime ends the connection tasks too.
        });
        Server {
            addr,
            stop: Some(tx),
            thread: Some(thread),
        }
    }

    fn url(&self) -> String {
        format!("http://{}/img.hbi", self.addr)
    }

    fn stop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
            self.thread.take().unwrap().join().unwrap();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

fn data(size: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..size)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// A store holding `img.hbi` of `bytes`, in a new directory.
fn store(root: &Path, name: &str, bytes: &[u8]) -> (PathBuf, Index) {
    let dir = root.join(name);
    let opts = Options {
        block_shift: 16,
        codec: Codec::None,
        hash: HashAlg::Sha256,
        name: "img".into(),
        force: false,
    };
    let c = create_from(
        Box::new(std::io::Cursor::new(bytes.to_vec())),
        "test",
        bytes.len() as u64,
        &dir,
        &opts,
        &|_| {},
    )
    .unwrap();
    (dir, c.index)
}

async fn fetch(
    m: &Mirrors,
    index: &Index,
    b: usize,
    avoid: Option<Arc<Endpoint>>,
) -> (Vec<u8>, Arc<Endpoint>) {
    let e = index.entries[b];
    let mut buf = vec![0u8; e.stored_len as usize];
    let ep = m
        .fetch_into(&block_rel_path(&e.digest), &mut buf, avoid)
        .await
        .unwrap();
    (buf, ep)
}

fn expected(dir: &Path, index: &Index, b: usize) -> Vec<u8> {
    std::fs::read(dir.join(block_rel_path(&index.entries[b].digest))).unwrap()
}

/// Fetches blocks 0..n all at once, checks each against the store; returns who served each.
async fn fetch_all_and_compare(
    m: &Arc<Mirrors>,
    index: &Index,
    dir: &Path,
    n: usize,
) -> Vec<Arc<Endpoint>> {
    let reads = (0..n).map(|b| async move {
        let (got, ep) = fetch(m, index, b, None).await;
        assert!(got == expected(dir, index, b), "block {b} differs");
        ep
    });
    futures::future::join_all(reads).await
}

/// HTTP options with a request timeout of `secs`.
fn opts(secs: u64) -> HttpOptions {
    HttpOptions {
        timeout: Duration::from_secs(secs),
        ..HttpOptions::default()
    }
}

fn any_port() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

fn state_of(m: &Mirrors, addr: SocketAddr) -> &'static str {
    m.report()
        .iter()
        .find(|r| r.address == addr.to_string())
        .map(|r| r.state)
        .unwrap_or("gone")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn spreads_load_and_survives_a_server_dying() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, index) = store(tmp.path(), "st", &data(64 << 16, 3));
    let mut servers: Vec<Server> = (0..3).map(|_| Server::start(&dir, any_port())).collect();
    let urls: Vec<String> = servers.iter().map(Server::url).collect();
    let (m, _, _, _) = Mirrors::open(&urls, None, &opts(5)).await.unwrap();
    fetch_all_and_compare(&m, &index, &dir, 64).await;
    let used = m.report().iter().filter(|r| r.requests > 0).count();
    assert!(
        used >= 2,
        "concurrent requests all went to one server: {:?}",
        m.report()
    );

    // One server dies: every block still comes, from the others; concurrent requests find it
    // dead and take it down.
    let dead = servers[1].addr;
    servers[1].stop();
    for ep in fetch_all_and_compare(&m, &index, &dir, 64).await {
        assert_ne!(ep.addr, Some(dead));
    }
    assert_eq!(state_of(&m, dead), "down", "{:?}", m.report());
    servers[1] = Server::start(&dir, dead);
    let t0 = Instant::now();
    while state_of(&m, dead) != "up" {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "server did not come back: {:?}",
            m.report()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_a_mirror_with_another_image() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, _) = store(tmp.path(), "a", &data(4 << 16, 1));
    let (b, _) = store(tmp.path(), "b", &data(4 << 16, 2));
    let (sa, sb) = (Server::start(&a, any_port()), Server::start(&b, any_port()));
    let err = Mirrors::open(&[sa.url(), sb.url()], None, &opts(5))
        .await
        .err()
        .unwrap();
    assert!(err.to_string().contains("serves another image"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_short_bodies_and_rejected_copies_elsewhere() {
    let tmp = tempfile::tempdir().unwrap();
    let bytes = data(8 << 16, 5);
    let (good, index) = store(tmp.path(), "good", &bytes);
    let (bad, _) = store(tmp.path(), "bad", &bytes);
    // The bad server: block 0 cut short, block 1 the right length but wrong bytes.
    let p0 = bad.join(block_rel_path(&index.entries[0].digest));
    let len0 = std::fs::metadata(&p0).unwrap().len();
    std::fs::write(&p0, vec![7u8; len0 as usize / 2]).unwrap();
    let p1 = bad.join(block_rel_path(&index.entries[1].digest));
    let mut corrupt = std::fs::read(&p1).unwrap();
    let n = corrupt.len();
    corrupt[n - 1] ^= 0xff;
    std::fs::write(&p1, corrupt).unwrap();
    let (sg, sb) = (
        Server::start(&good, any_port()),
        Server::start(&bad, any_port()),
    );
    let (m, _, _, _) = Mirrors::open(&[sb.url(), sg.url()], None, &opts(5))
        .await
        .unwrap();

    for _ in 0..4 {
        let (got, ep) = fetch(&m, &index, 0, None).await;
        let want = expected(&good, &index, 0);
        let first_diff = got.iter().zip(&want).position(|(a, b)| a != b);
        assert!(
            got == want,
            "block 0 from {}: {} bytes, want {}, first difference at {first_diff:?}",
            ep.label(),
            got.len(),
            want.len()
        );
        assert_eq!(ep.addr, Some(sg.addr), "a short body was accepted");
    }
    // The kernel rejected the bad server's copy of block 1: the retry goes elsewhere.
    let bad_ep = m.endpoint(sb.addr).unwrap();
    for _ in 0..4 {
        let (got, ep) = fetch(&m, &index, 1, Some(bad_ep.clone())).await;
        assert!(got == expected(&good, &index, 1), "block 1 differs");
        assert_eq!(ep.addr, Some(sg.addr));
    }
    let rejected: u64 = m.report().iter().map(|r| r.rejected).sum();
    assert_eq!(rejected, 4);
}

/// A minimal HTTP/1.1 server for `root`; once `slow` is set, it answers block requests only
/// after `delay` (the index at once): a server that has become slow.
async fn slow_server(root: PathBuf, slow: Arc<AtomicBool>, delay: Duration) -> SocketAddr {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let l = tokio::net::TcpListener::bind(any_port()).await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (s, _) = l.accept().await.unwrap();
            let (root, slow) = (root.clone(), slow.clone());
            tokio::spawn(async move {
                let (r, mut w) = s.into_split();
                let mut lines = BufReader::new(r).lines();
                let mut path = String::new();
                while let Ok(Some(line)) = lines.next_line().await {
                    if let Some(p) = line.strip_prefix("GET ") {
                        path = p
                            .split(' ')
                            .next()
                            .unwrap_or("")
                            .trim_start_matches('/')
                            .to_string();
                    } else if line.is_empty() {
                        if path.starts_with("blocks/") && slow.load(Ordering::Relaxed) {
                            tokio::time::sleep(delay).await;
                        }
                        let body = std::fs::read(root.join(&path)).unwrap_or_default();
                        let head =
                            format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len());
                        if w.write_all(head.as_bytes()).await.is_err()
                            || w.write_all(&body).await.is_err()
                        {
                            return;
                        }
                    }
                }
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hedges_requests_stuck_on_a_slow_server() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, index) = store(tmp.path(), "st", &data(32 << 16, 9));
    let good = Server::start(&dir, any_port());
    let slowed = Arc::new(AtomicBool::new(false));
    let slow = slow_server(dir.clone(), slowed.clone(), Duration::from_secs(4)).await;
    let urls = [good.url(), format!("http://{slow}/img.hbi")];
    let (m, _, _, _) = Mirrors::open(&urls, None, &opts(30)).await.unwrap();
    // Enough answers from both to know what slow means; then one server stalls.
    for b in 0..40 {
        fetch(&m, &index, b % 32, None).await;
    }
    slowed.store(true, Ordering::Relaxed);
    // Concurrent requests spread over both servers; those stuck on the slow one get hedged.
    let t0 = Instant::now();
    fetch_all_and_compare(&m, &index, &dir, 32).await;
    let took = t0.elapsed();
    let report = m.report();
    let hedges: u64 = report.iter().map(|r| r.hedges_won).sum();
    assert!(hedges > 0, "nothing was hedged: {report:?}");
    assert!(
        took < Duration::from_secs(3),
        "hedged reads took {took:?} (the slow server takes 4 s)"
    );
}
