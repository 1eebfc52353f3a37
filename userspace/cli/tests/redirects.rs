//! Redirects from nginx: 301, 302, 303, 307 and 308 to another location, 302 to another
//! server (with a signed query kept on every block URL), each followed per block file and per
//! index; a redirect loop is a clear error.

mod common;
#[path = "support/servers.rs"]
mod servers;

use common::*;
use servers::Nginx;

#[test]
fn redirects_are_followed_per_file_and_loops_refused() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("www");
    std::fs::create_dir_all(&root).unwrap();
    let src = image(t.path(), "img", 1 << 20, 31);
    let digest = create(&src, &root.join("st"), &["--block-size", "65536"]);
    let (pa, pb) = (free_port(), free_port());
    let r = root.display();
    let each: String = ["301", "302", "303", "307", "308"]
        .iter()
        .map(|c| format!("location ~ ^/r{c}/(.*)$ {{ return {c} /st/$1$is_args$args; }} "))
        .collect();
    let servers = format!(
        "server {{ listen 127.0.0.1:{pa}; root {r}; {each} \
           location ~ ^/other/(.*)$ {{ return 302 http://127.0.0.1:{pb}/st/$1$is_args$args; }} \
           location ~ ^/loop/(.*)$ {{ return 302 /loop2/$1; }} \
           location ~ ^/loop2/(.*)$ {{ return 302 /loop/$1; }} \
           location ~ ^/file/ {{ return 302 file:///etc/passwd; }} \
           location ~ ^/gopher/ {{ return 302 gopher://127.0.0.1/x; }} }} \
         server {{ listen 127.0.0.1:{pb}; root {r}; }}"
    );
    let Some(nginx) = Nginx::start(&t.path().join("nginx"), &servers, &[pa, pb]) else {
        return;
    };
    let want = sha256(&src);
    let out = t.path().join("out");
    let cat = |url: &str| {
        run(bin()
            .args(["cat", url, "-o", out.to_str().unwrap()])
            .args(["--index-digest", &digest]))
    };
    for code in ["301", "302", "303", "307", "308"] {
        let r = cat(&format!("http://127.0.0.1:{pa}/r{code}/img.hbi"));
        assert!(r.status.success(), "{code}: {}", stderr_of(&r));
        assert_eq!(sha256(&out), want, "{code}");
        // Every block file was redirected on its own, not just the index.
        let redirected = nginx
            .log()
            .iter()
            .filter(|l| {
                l.starts_with(&format!("/r{code}/blocks/")) && l.contains(&format!(" {code} "))
            })
            .count();
        assert!(redirected >= 10, "{code}: {redirected} block redirects");
    }

    // To another server, with a signed query that every block URL keeps.
    let before = nginx.log().len();
    let r = cat(&format!(
        "http://127.0.0.1:{pa}/other/img.hbi?token=s3cr3t&exp=1"
    ));
    assert!(r.status.success(), "{}", stderr_of(&r));
    assert_eq!(sha256(&out), want);
    let signed: Vec<String> = nginx.log()[before..]
        .iter()
        .filter(|l| l.starts_with("/st/blocks/"))
        .cloned()
        .collect();
    assert!(signed.len() >= 10, "{signed:?}");
    let unsigned: Vec<&String> = signed
        .iter()
        .filter(|l| !l.contains("?token=s3cr3t&exp=1 200"))
        .collect();
    assert!(unsigned.is_empty(), "{unsigned:?}");
    assert!(!stderr_of(&r).contains("s3cr3t"));

    let t0 = std::time::Instant::now();
    let r = cat(&format!("http://127.0.0.1:{pa}/loop/img.hbi"));
    assert!(!r.status.success());
    let err = stderr_of(&r);
    assert!(err.contains("redirect loop"), "{err}");
    assert!(t0.elapsed() < std::time::Duration::from_secs(5), "{err}");

    // To a scheme never followed: the message says where it led, at once.
    let t0 = std::time::Instant::now();
    let r = cat(&format!("http://127.0.0.1:{pa}/file/img.hbi"));
    assert!(!r.status.success());
    let err = stderr_of(&r);
    assert!(
        err.contains("HTTP 302 to file:///etc/passwd not followed"),
        "{err}"
    );
    assert!(t0.elapsed() < std::time::Duration::from_secs(5), "{err}");
    // reqwest refuses other schemes itself ("URL scheme is not allowed"): the same message.
    let r = cat(&format!("http://127.0.0.1:{pa}/gopher/img.hbi"));
    assert!(!r.status.success());
    let err = stderr_of(&r);
    assert!(
        err.contains("HTTP 302 to gopher://127.0.0.1/x not followed"),
        "{err}"
    );
}
