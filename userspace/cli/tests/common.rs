//! Shared helpers for the CLI tests.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

/// The binary, with none of the caller's proxy, CA or netrc settings: each test sets what
/// it means to test.
pub fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_httpblk"));
    for v in [
        "http_proxy",
        "HTTP_PROXY",
        "https_proxy",
        "HTTPS_PROXY",
        "all_proxy",
        "ALL_PROXY",
        "no_proxy",
        "NO_PROXY",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "NETRC",
        "HTTPBLK_LOG",
    ] {
        c.env_remove(v);
    }
    c
}

/// A tool from PATH or /usr/sbin, if installed.
pub fn tool(name: &str) -> Option<PathBuf> {
    std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .chain(["/usr/bin", "/usr/sbin"])
        .map(|d| Path::new(d).join(name))
        .find(|p| p.exists())
}

/// Runs `httpblk create SRC STORE ARGS...`; returns the index sha256.
pub fn create(src: &Path, store: &Path, args: &[&str]) -> String {
    let out = run_ok(
        bin()
            .args(["create", src.to_str().unwrap(), store.to_str().unwrap()])
            .args(args),
    );
    out.lines()
        .find(|l| l.starts_with("index sha256"))
        .and_then(|l| l.split_whitespace().last())
        .unwrap()
        .to_string()
}

/// stderr of a finished command, as text.
pub fn stderr_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run httpblk");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

pub fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("run httpblk")
}

/// Deterministic test data: random, zero and repeated 4 KiB runs, `size` bytes.
pub fn image(dir: &Path, name: &str, size: usize, seed: u64) -> PathBuf {
    let mut x = seed | 1;
    let mut data = Vec::with_capacity(size);
    let mut page = 0u64;
    while data.len() < size {
        let n = (size - data.len()).min(4096);
        match page % 7 {
            2 | 5 => data.extend(std::iter::repeat_n(0u8, n)),
            4 => data.extend((0..n).map(|i| (i % 251) as u8)),
            _ => data.extend((0..n).map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8 % 16 // compressible but not trivial
            })),
        }
        page += 1;
    }
    let p = dir.join(name);
    std::fs::write(&p, &data).unwrap();
    p
}

pub fn sha256(p: &Path) -> String {
    httpblk_core_sha(&std::fs::read(p).unwrap())
}

pub fn httpblk_core_sha(b: &[u8]) -> String {
    // Independent of the crate under test: the sha256sum tool.
    let mut c = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    c.stdin.take().unwrap().write_all(b).unwrap();
    let out = c.wait_with_output().unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `httpblk serve DIR` on a free loopback port; killed on drop.
pub struct Server {
    pub child: Child,
    pub port: u16,
}

impl Server {
    pub fn start(dir: &Path) -> Server {
        let port = free_port();
        let child = bin()
            .args([
                "serve",
                dir.to_str().unwrap(),
                "--listen",
                &format!("127.0.0.1:{port}"),
            ])
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_port(port);
        Server { child, port }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}/{path}", self.port)
    }
}

pub fn wait_port(port: u16) {
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("nothing listens on port {port}");
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reports a skipped test on stderr (cargo shows it with --nocapture; the reason is logged).
pub fn skip(why: &str) {
    eprintln!("SKIP: {why}");
}
