//! HTTPS against nginx with a throw-away CA: HTTP/2 negotiated by ALPN (many block requests on
//! one connection), HTTP/1.1 keep-alive otherwise, and a clear error for each bad certificate.

mod common;
#[path = "support/servers.rs"]
mod servers;

use common::*;
use servers::{Nginx, TestCa};

#[test]
fn https_http2_and_certificate_errors() {
    let t = tempfile::tempdir().unwrap();
    let Some(ca) = TestCa::new(&t.path().join("ca")) else {
        return;
    };
    let (good, good_key) = ca.issue("good", "DNS:localhost,IP:127.0.0.1", None);
    let (old, old_key) = ca.issue(
        "expired",
        "DNS:localhost,IP:127.0.0.1",
        Some(("200101000000Z", "200102000000Z")),
    );
    let (other, other_key) = ca.issue("other", "DNS:other.example", None);
    let src = image(t.path(), "img", 4 << 20, 21);
    let store = t.path().join("st");
    let digest = create(&src, &store, &["--block-size", "65536"]);
    let [p2, p1, pold, pother, pself] = [(); 5].map(|()| free_port());
    let tls = |port: u16, h2: &str, cert: &std::path::Path, key: &std::path::Path| {
        format!(
            "server {{ listen 127.0.0.1:{port} ssl {h2}; ssl_certificate {}; \
             ssl_certificate_key {}; root {}; }}",
            cert.display(),
            key.display(),
            store.display()
        )
    };
    let servers = [
        tls(p2, "http2", &good, &good_key),
        tls(p1, "", &good, &good_key),
        tls(pold, "", &old, &old_key),
        tls(pother, "", &other, &other_key),
        // The CA's own certificate (self-signed, CA:TRUE) as a server's.
        tls(pself, "", &ca.ca, &ca.dir.join("ca.key")),
    ]
    .join(" ");
    let Some(nginx) = Nginx::start(
        &t.path().join("nginx"),
        &servers,
        &[p2, p1, pold, pother, pself],
    ) else {
        return;
    };
    let url = |port: u16| format!("https://127.0.0.1:{port}/img.hbi");
    let ca_arg = ca.ca.to_str().unwrap();
    let want = sha256(&src);
    let out = t.path().join("out");
    let cat = |port: u16, extra: &[&str]| {
        let _ = std::fs::remove_file(&out);
        run(bin()
            .args(["cat", &url(port), "-o", out.to_str().unwrap()])
            .args(["--index-digest", &digest])
            .args(extra))
    };

    // HTTP/2: every block on one connection.
    let r = cat(p2, &["--ca-cert", ca_arg]);
    assert!(r.status.success(), "{}", stderr_of(&r));
    assert_eq!(sha256(&out), want);
    let blocks: Vec<String> = nginx
        .log()
        .into_iter()
        .filter(|l| l.starts_with("/blocks/"))
        .collect();
    assert!(blocks.len() >= 50, "{blocks:?}");
    assert!(
        blocks.iter().all(|l| l.contains(" HTTP/2.0 ")),
        "{blocks:?}"
    );
    let mut conns: Vec<&str> = blocks.iter().filter_map(|l| l.split(' ').nth(3)).collect();
    conns.sort();
    conns.dedup();
    assert_eq!(conns.len(), 1, "HTTP/2 used {} connections", conns.len());

    // The same CA through SSL_CERT_FILE, and verify over HTTPS.
    let r = run(bin()
        .env("SSL_CERT_FILE", ca_arg)
        .args(["verify", &url(p2)]));
    assert!(r.status.success(), "{}", stderr_of(&r));

    // A server without HTTP/2, and --http1 against one with it: HTTP/1.1 keep-alive.
    let before = nginx.log().len();
    let r = cat(p1, &["--ca-cert", ca_arg]);
    assert!(r.status.success(), "{}", stderr_of(&r));
    assert_eq!(sha256(&out), want);
    let r = cat(p2, &["--ca-cert", ca_arg, "--http1"]);
    assert!(r.status.success(), "{}", stderr_of(&r));
    let h1: Vec<String> = nginx.log()[before..].to_vec();
    assert!(
        h1.iter().all(|l| l.contains(" HTTP/1.1 ")),
        "{:?}",
        &h1[..4.min(h1.len())]
    );

    // Bad certificates: clear errors, no retries worth waiting for.
    for (port, args, says) in [
        (p2, vec![], "not signed by a trusted CA"),
        (pold, vec!["--ca-cert", ca_arg], "expired"),
        (pother, vec!["--ca-cert", ca_arg], "another host name"),
        (
            pself,
            vec!["--ca-cert", ca_arg],
            "is a CA certificate (CA:TRUE)",
        ),
    ] {
        let t0 = std::time::Instant::now();
        let r = cat(port, &args);
        let err = stderr_of(&r);
        assert!(!r.status.success());
        assert!(err.contains(says), "port {port}: {err}");
        assert!(err.contains("TLS"), "{err}");
        assert!(
            t0.elapsed() < std::time::Duration::from_secs(5),
            "a certificate error was retried: {err}"
        );
    }
    // https:// to a plain-HTTP port names the likely mistake.
    let plain = Server::start(&store);
    let r = run(bin().args(["cat", &plain.url("img.hbi").replace("http://", "https://")]));
    assert!(!r.status.success());
    assert!(
        stderr_of(&r).contains("does not speak TLS on this port (plain HTTP? try http://)"),
        "{}",
        stderr_of(&r)
    );
    let r = cat(p2, &["--ca-cert", "/nonexistent/ca.pem"]);
    assert!(
        stderr_of(&r).contains("--ca-cert /nonexistent/ca.pem"),
        "{}",
        stderr_of(&r)
    );
}
