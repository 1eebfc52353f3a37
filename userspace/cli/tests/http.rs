//! The built-in server and the HTTP reader, and the same store behind nginx.

mod common;
use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;

fn raw_request(port: u16, req: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(req.as_bytes()).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn serve_and_cat_over_http() {
    let t = tempfile::tempdir().unwrap();
    let src = image(t.path(), "img", 2 << 20, 5);
    let store = t.path().join("st");
    run_ok(bin().args([
        "create",
        src.to_str().unwrap(),
        store.to_str().unwrap(),
        "--codec",
        "zstd",
        // Small blocks: hundreds of them, zero ones among them, so cat's reused buffers are
        // handed from data blocks to zero blocks and back.
        "--block-size",
        "4096",
    ]));
    let srv = Server::start(&store);
    let dst = t.path().join("out");
    let cat = |dst: &std::path::Path| {
        run(bin().args([
            "cat",
            &srv.url("img.hbi"),
            "-o",
            dst.to_str().unwrap(),
            "--jobs",
            "16",
        ]))
    };
    assert!(cat(&dst).status.success());
    assert_eq!(sha256(&dst), sha256(&src));
    run_ok(bin().args(["verify", &srv.url("img.hbi")]));

    // A block file changed on the server: cat stops with an error naming it.
    let victim = std::fs::read_dir(store.join("blocks"))
        .unwrap()
        .flat_map(|d| std::fs::read_dir(d.unwrap().path()).unwrap())
        .map(|f| f.unwrap().path())
        .next()
        .unwrap();
    let mut data = std::fs::read(&victim).unwrap();
    let last = data.len() - 1;
    data[last] ^= 1;
    std::fs::write(&victim, data).unwrap();
    let out = cat(&t.path().join("bad"));
    assert!(!out.status.success());
    let name = victim.file_name().unwrap().to_string_lossy().into_owned();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&name), "{err}");
}

#[test]
fn server_speaks_http() {
    let t = tempfile::tempdir().unwrap();
    std::fs::write(t.path().join("f"), b"0123456789").unwrap();
    let srv = Server::start(t.path());
    let p = srv.port;
    let r = raw_request(
        p,
        "GET /f HTTP/1.1\r\nHost: x\r\nRange: bytes=2-4\r\nConnection: close\r\n\r\n",
    );
    assert!(r.starts_with("HTTP/1.1 206"), "{r}");
    assert!(r.contains("content-range: bytes 2-4/10"), "{r}");
    assert!(r.ends_with("234"), "{r}");
    let r = raw_request(
        p,
        "HEAD /f HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(
        r.starts_with("HTTP/1.1 200") && r.contains("content-length: 10"),
        "{r}"
    );
    let r = raw_request(
        p,
        "GET /missing HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(r.starts_with("HTTP/1.1 404"), "{r}");
    let r = raw_request(
        p,
        "GET /f HTTP/1.1\r\nHost: x\r\nRange: bytes=20-\r\nConnection: close\r\n\r\n",
    );
    assert!(r.starts_with("HTTP/1.1 416"), "{r}");
    let r = raw_request(
        p,
        "GET /../../etc/passwd HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(r.starts_with("HTTP/1.1 404"), "{r}");
    let r = raw_request(
        p,
        "DELETE /f HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(r.starts_with("HTTP/1.1 405"), "{r}");
    // Keep-alive: two requests on one connection.
    let r = raw_request(
        p,
        "GET /f HTTP/1.1\r\nHost: x\r\n\r\nGET /f HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.matches("HTTP/1.1 200").count(), 2, "{r}");
}

#[test]
fn many_concurrent_connections() {
    let t = tempfile::tempdir().unwrap();
    std::fs::write(t.path().join("f"), vec![7u8; 300_000]).unwrap();
    let srv = Server::start(t.path());
    let port = srv.port;
    let threads: Vec<_> = (0..64)
        .map(|_| {
            std::thread::spawn(move || {
                let r = raw_request(
                    port,
                    "GET /f HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                );
                assert!(r.starts_with("HTTP/1.1 200"));
                assert!(r.len() > 300_000);
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

#[test]
fn nginx_serves_the_same_store() {
    let nginx = std::path::Path::new("/usr/sbin/nginx");
    if !nginx.exists() {
        return skip("nginx is not installed (tests/setup.sh installs it)");
    }
    let t = tempfile::tempdir().unwrap();
    let src = image(t.path(), "img", 1 << 20, 6);
    let store = t.path().join("st");
    run_ok(bin().args([
        "create",
        src.to_str().unwrap(),
        store.to_str().unwrap(),
        "--codec",
        "lzo",
    ]));
    let port = free_port();
    let d = t.path().display();
    let conf = t.path().join("nginx.conf");
    std::fs::write(
        &conf,
        format!(
            "daemon off; master_process off; pid {d}/nginx.pid; error_log {d}/error.log; events {{}} http {{ access_log off; \
             client_body_temp_path {d}; proxy_temp_path {d}; fastcgi_temp_path {d}; uwsgi_temp_path {d}; \
             scgi_temp_path {d}; server {{ listen 127.0.0.1:{port}; root {}; }} }}",
            store.display()
        ),
    )
    .unwrap();
    let mut child = std::process::Command::new(nginx)
        .args(["-c", conf.to_str().unwrap()])
        .spawn()
        .unwrap();
    wait_port(port);
    let dst = t.path().join("out");
    let r = run(bin().args([
        "cat",
        &format!("http://127.0.0.1:{port}/img.hbi"),
        "-o",
        dst.to_str().unwrap(),
    ]));
    let _ = child.kill();
    let _ = child.wait();
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    assert_eq!(sha256(&dst), sha256(&src));
}
