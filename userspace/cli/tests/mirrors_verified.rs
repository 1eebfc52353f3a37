//! The cause, not the last attempt (issue 23): over several addresses and mirrors the most
//! telling failure is reported, /etc/hosts is honoured as getaddrinfo honours it, `verify`
//! checks every mirror's copy with exit codes that tell corrupt from unreachable, and a
//! mirror serving another index than the pinned one is skipped and named.

mod common;
use common::*;

use std::path::Path;

/// An image in a store of its own; returns the store and the index digest.
fn store(dir: &Path, seed: u64) -> (std::path::PathBuf, String) {
    let st = dir.join(format!("st{seed}"));
    let src = image(dir, &format!("img{seed}"), 8 * 4096, seed);
    let sha = create(&src, &st, &["--name", "disk", "--block-size", "4096"]);
    (st, sha)
}

/// A port nothing listens on.
fn dead_url() -> String {
    format!("http://127.0.0.1:{}/disk.hbi", free_port())
}

#[test]
fn a_404_beats_a_refused_connection() {
    let t = tempfile::tempdir().unwrap();
    let (st, _) = store(t.path(), 1);
    let s = Server::start(&st);
    // The dead mirror last: its refusal is the last failure seen.
    let r = run(bin().args(["cat", &s.url("typo.hbi"), &dead_url(), "--retries", "2"]));
    assert!(!r.status.success());
    let err = stderr_of(&r);
    let last = err.lines().last().unwrap_or("");
    assert!(last.contains("404"), "{err}");
    // With the default retry budget too, the server's answer comes at once: retrying the
    // dead mirror would only delay it.
    let t0 = std::time::Instant::now();
    let r = run(bin().args(["cat", &dead_url(), &s.url("typo.hbi")]));
    assert!(!r.status.success());
    assert!(stderr_of(&r).contains("HTTP 404"), "{}", stderr_of(&r));
    assert!(
        t0.elapsed() < std::time::Duration::from_secs(5),
        "{:?}",
        t0.elapsed()
    );
    // A mirror serving another index than the pinned one is named in the final message.
    let pin = "0".repeat(64);
    let r = run(bin().args(["cat", &s.url("disk.hbi"), "--index-digest", &pin]));
    let e = stderr_of(&r);
    assert!(
        e.lines()
            .last()
            .is_some_and(|l| l.contains(&s.url("disk.hbi")) && l.contains("index digest mismatch")),
        "{e}"
    );
}

#[test]
fn localhost_is_what_etc_hosts_says() {
    let hosts = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
    let v6 = hosts.lines().any(|l| {
        l.split('#')
            .next()
            .unwrap()
            .split_whitespace()
            .skip(1)
            .any(|n| n == "localhost")
            && l.contains(':')
    });
    if v6 || !hosts.contains("localhost") {
        skip("/etc/hosts does not list localhost as IPv4 only");
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let (st, _) = store(t.path(), 2);
    let s = Server::start(&st);
    let url = format!("http://localhost:{}/typo.hbi", s.port);
    let r = run(bin().args(["cat", &url]));
    let err = stderr_of(&r);
    assert!(err.contains("404"), "{err}");
    assert!(
        !err.contains("::1"),
        "asked an address /etc/hosts does not give: {err}"
    );
}

#[test]
fn verify_checks_each_mirror() {
    let t = tempfile::tempdir().unwrap();
    let (good, _) = store(t.path(), 3);
    let bad = t.path().join("bad");
    run_ok(std::process::Command::new("cp").args([
        "-a",
        good.to_str().unwrap(),
        bad.to_str().unwrap(),
    ]));
    // Corrupt every block file of the second copy but keep their lengths.
    let mut n = 0;
    for f in walk(&bad)
        .into_iter()
        .filter(|f| f.extension().is_none_or(|e| e != "hbi"))
    {
        let mut b = std::fs::read(&f).unwrap();
        let last = b.len() - 1;
        b[last] ^= 0x55;
        std::fs::write(&f, b).unwrap();
        n += 1;
    }
    assert!(n > 1);
    let (g, b) = (Server::start(&good), Server::start(&bad));
    let r = run(bin().args(["verify", &b.url("disk.hbi"), &g.url("disk.hbi")]));
    let out = String::from_utf8_lossy(&r.stdout).into_owned();
    assert_eq!(r.status.code(), Some(2), "{out}{}", stderr_of(&r));
    assert!(
        out.contains(&format!("{}: {n} bad block files", b.url("disk.hbi"))),
        "{out}"
    );
    assert!(out.contains(&format!("{}: ok", g.url("disk.hbi"))), "{out}");

    // A dead mirror beside a good one: not corrupt, but not everything checked.
    let r = run(bin().args(["verify", &g.url("disk.hbi"), &dead_url(), "--retries", "0"]));
    let out = String::from_utf8_lossy(&r.stdout).into_owned();
    assert_eq!(r.status.code(), Some(3), "{out}{}", stderr_of(&r));
    assert!(out.contains("unreachable"), "{out}");
}

#[test]
fn a_mirror_serving_another_index_than_the_pin_is_skipped() {
    let t = tempfile::tempdir().unwrap();
    let (old, _) = store(t.path(), 8);
    let (new, pin) = store(t.path(), 10);
    let (o, n) = (Server::start(&old), Server::start(&new));
    let r = run(bin().args([
        "cat",
        &o.url("disk.hbi"),
        &n.url("disk.hbi"),
        "--index-digest",
        &pin,
    ]));
    assert!(r.status.success(), "{}", stderr_of(&r));
    assert_eq!(r.stdout, std::fs::read(t.path().join("img10")).unwrap());
    assert!(
        stderr_of(&r).contains(&o.url("disk.hbi")),
        "{}",
        stderr_of(&r)
    );
    // verify names it and fails.
    let r = run(bin().args([
        "verify",
        &o.url("disk.hbi"),
        &n.url("disk.hbi"),
        "--index-digest",
        &pin,
    ]));
    let out = String::from_utf8_lossy(&r.stdout).into_owned();
    assert_eq!(r.status.code(), Some(2), "{out}");
    assert!(out.contains("serves another image"), "{out}");
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
