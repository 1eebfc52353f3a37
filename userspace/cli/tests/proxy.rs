//! Squid as a shared forward cache between clients and the server, as HTTP-FUSE CLOOP had:
//! a second client's block fetches are Squid hits (read from Squid's access log); proxies
//! from the environment by curl's rules and from --proxy; no_proxy bypasses; HTTPS through
//! the proxy's CONNECT tunnel.

mod common;
#[path = "support/servers.rs"]
mod servers;

use common::*;
use servers::{Nginx, Squid, TestCa};

/// Squid access log lines for block files (`... RESULT/STATUS BYTES METHOD URL ...`).
fn block_lines(lines: &[String]) -> Vec<&String> {
    lines.iter().filter(|l| l.contains("/blocks/")).collect()
}

#[test]
fn squid_caches_blocks_for_the_next_client() {
    let t = tempfile::tempdir().unwrap();
    let Some(squid) = Squid::start(&t.path().join("squid")) else {
        return;
    };
    let src = image(t.path(), "img", 2 << 20, 41);
    let store = t.path().join("st");
    let digest = create(&src, &store, &["--block-size", "65536"]);
    let srv = Server::start(&store);
    let url = srv.url("img.hbi");
    let want = sha256(&src);
    let out = t.path().join("out");
    let cat = |cmd: &mut std::process::Command, extra: &[&str]| {
        let r = run(cmd
            .args(["cat", &url, "-o", out.to_str().unwrap()])
            .args(["--index-digest", &digest])
            .args(extra));
        assert!(r.status.success(), "{}", stderr_of(&r));
        assert_eq!(sha256(&out), want);
    };

    // First client, through http_proxy: every block is a miss, fetched from the server.
    cat(bin().env("http_proxy", squid.url()), &[]);
    let first = squid.wait_log(17);
    let misses = block_lines(&first);
    assert!(misses.len() >= 16, "{first:?}");
    assert!(misses.iter().all(|l| l.contains("MISS")), "{misses:?}");

    // Second client, through --proxy: every block comes from Squid's cache.
    cat(&mut bin(), &["--proxy", &squid.url()]);
    let all = squid.wait_log(first.len() + 17);
    let second = block_lines(&all[first.len()..]);
    assert_eq!(second.len(), misses.len(), "{all:?}");
    assert!(
        second
            .iter()
            .all(|l| l.contains("TCP_HIT") || l.contains("TCP_MEM_HIT")),
        "{second:?}"
    );

    // no_proxy: straight to the server, Squid sees nothing.
    let seen = squid.log().len();
    cat(
        bin()
            .env("http_proxy", squid.url())
            .env("no_proxy", "localhost,127.0.0.0/8"),
        &[],
    );
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(squid.log().len(), seen, "no_proxy was not honoured");

    // A dead proxy: the real cause, retried, then a clear error.
    let r = run(bin()
        .args(["cat", &url, "-o", out.to_str().unwrap(), "--retries", "1"])
        .args(["--proxy", &format!("http://127.0.0.1:{}", free_port())]));
    assert!(!r.status.success());
    assert!(
        stderr_of(&r).contains("Connection refused"),
        "{}",
        stderr_of(&r)
    );
}

#[test]
fn https_through_the_proxy_tunnel() {
    let t = tempfile::tempdir().unwrap();
    let Some(ca) = TestCa::new(&t.path().join("ca")) else {
        return;
    };
    let Some(squid) = Squid::start(&t.path().join("squid")) else {
        return;
    };
    let (cert, key) = ca.issue("srv", "DNS:localhost,IP:127.0.0.1", None);
    let src = image(t.path(), "img", 1 << 20, 42);
    let store = t.path().join("st");
    create(&src, &store, &["--block-size", "65536"]);
    let port = free_port();
    let conf = format!(
        "server {{ listen 127.0.0.1:{port} ssl http2; ssl_certificate {}; \
         ssl_certificate_key {}; root {}; }}",
        cert.display(),
        key.display(),
        store.display()
    );
    let Some(nginx) = Nginx::start(&t.path().join("nginx"), &conf, &[port]) else {
        return;
    };
    let out = t.path().join("out");
    let r = run(bin()
        .env("https_proxy", squid.url())
        .env("http_proxy", "http://127.0.0.1:1")
        .args(["cat", &format!("https://127.0.0.1:{port}/img.hbi")])
        .args([
            "--ca-cert",
            ca.ca.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ]));
    assert!(r.status.success(), "{}", stderr_of(&r));
    assert_eq!(sha256(&out), sha256(&src));
    let log = squid.wait_log(1);
    assert!(
        log.iter().any(|l| l.contains("CONNECT 127.0.0.1:")),
        "no CONNECT through Squid: {log:?}"
    );
    assert!(nginx.log().iter().any(|l| l.starts_with("/blocks/")));
}
