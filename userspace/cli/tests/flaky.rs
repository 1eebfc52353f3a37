//! One flaky server and nothing else: `cat` and `verify` still succeed (connection errors,
//! 5xx and bodies cut short are retried with backoff), `Retry-After` is obeyed, `--retries 0`
//! gives up at once with the server's answer, and credentials (a bearer token in a header,
//! user:password in the URL or a netrc file, a signed query) go with every request and never
//! into a message.

mod common;
#[path = "support/flaky.rs"]
mod flaky;

use std::time::{Duration, Instant};

use common::*;
use flaky::{Behaviour, Flaky};

fn store(t: &std::path::Path, seed: u64) -> (std::path::PathBuf, std::path::PathBuf, String) {
    let src = image(t, "img", 2 << 20, seed);
    let st = t.join("st");
    let digest = create(&src, &st, &["--block-size", "16384"]);
    (src, st, digest)
}

#[test]
fn a_flaky_single_server_is_retried() {
    let t = tempfile::tempdir().unwrap();
    let (src, st, digest) = store(t.path(), 51);
    let b = Behaviour {
        fail_500: 100,
        close: 50,
        ..Behaviour::default()
    };
    let srv = Flaky::start(st, b, 7);
    let out = t.path().join("out");
    // 15% of tries fail: with 9 tries a request fails with odds of 4e-8, so no run of this
    // test does (with the default 5 tries, 8e-5 per request).
    let retries = ["--retries", "8"];
    for _ in 0..2 {
        let r = run(bin()
            .args(["cat", &srv.url("img.hbi"), "-o", out.to_str().unwrap()])
            .args(["--index-digest", &digest, "--jobs", "16"])
            .args(retries));
        assert!(
            r.status.success(),
            "{} requests, {} answered 500, {} closed: {}",
            srv.count(|c| &c.requests),
            srv.count(|c| &c.failed_500),
            srv.count(|c| &c.closed),
            stderr_of(&r)
        );
        assert_eq!(sha256(&out), sha256(&src));
    }
    let r = run(bin().args(["verify", &srv.url("img.hbi")]).args(retries));
    assert!(r.status.success(), "{}", stderr_of(&r));
    let (failed, closed) = (srv.count(|c| &c.failed_500), srv.count(|c| &c.closed));
    eprintln!(
        "{} requests, {failed} answered 500, {closed} connections closed",
        srv.count(|c| &c.requests)
    );
    assert!(
        failed > 10 && closed > 5,
        "the server was not flaky enough to prove anything"
    );
}

#[test]
fn retry_after_is_obeyed_and_retries_are_bounded() {
    let t = tempfile::tempdir().unwrap();
    let (src, st, _) = store(t.path(), 52);
    let b = Behaviour {
        unavailable_first: 1,
        retry_after_s: 1,
        ..Behaviour::default()
    };
    let srv = Flaky::start(st.clone(), b, 8);
    let out = t.path().join("out");
    let t0 = Instant::now();
    let r = run(bin().args(["cat", &srv.url("img.hbi"), "-o", out.to_str().unwrap()]));
    assert!(r.status.success(), "{}", stderr_of(&r));
    assert_eq!(sha256(&out), sha256(&src));
    assert!(
        t0.elapsed() >= Duration::from_secs(1),
        "Retry-After: 1 was not waited for"
    );
    assert_eq!(srv.count(|c| &c.unavailable), 1);

    // A server that always fails: --retries 0 is one request, and the error names the cause.
    let always = Flaky::start(
        st,
        Behaviour {
            fail_500: 1000,
            ..Behaviour::default()
        },
        9,
    );
    let r = run(bin().args([
        "cat",
        &always.url("img.hbi"),
        "-o",
        "/dev/null",
        "--retries",
        "0",
    ]));
    assert!(!r.status.success());
    assert!(
        stderr_of(&r).contains("HTTP 500 Internal Server Error"),
        "{}",
        stderr_of(&r)
    );
    assert_eq!(always.count(|c| &c.requests), 1);
    let r = run(bin().args([
        "cat",
        &always.url("img.hbi"),
        "-o",
        "/dev/null",
        "--retries",
        "3",
    ]));
    assert!(!r.status.success());
    assert_eq!(always.count(|c| &c.requests), 1 + 4);
}

#[test]
fn stalled_bodies_are_retried_and_requests_say_who_asks() {
    let t = tempfile::tempdir().unwrap();
    let (src, st, _) = store(t.path(), 54);
    let b = Behaviour {
        stall_first: 4,
        ..Behaviour::default()
    };
    let srv = Flaky::start(st, b, 4);
    let out = t.path().join("out");
    let t0 = Instant::now();
    let r = run(bin()
        .args(["cat", &srv.url("img.hbi"), "-o", out.to_str().unwrap()])
        .args(["--request-timeout-ms", "500"]));
    assert!(r.status.success(), "{}", stderr_of(&r));
    assert_eq!(sha256(&out), sha256(&src));
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "stalls of 10 s were waited out: {:?}",
        t0.elapsed()
    );
    assert!(
        stderr_of(&r).contains("timed out after 500ms"),
        "{}",
        stderr_of(&r)
    );
    // A server whose blocks never arrive: verify says unreachable, not corrupt (exit 3).
    let stuck = Flaky::start(
        t.path().join("st"),
        Behaviour {
            stall_first: 1 << 20,
            ..Behaviour::default()
        },
        5,
    );
    let r = run(bin()
        .args(["verify", &stuck.url("img.hbi"), "--retries", "0"])
        .args(["--request-timeout-ms", "200"]));
    assert_eq!(r.status.code(), Some(3), "{}", stderr_of(&r));
    let text = String::from_utf8_lossy(&r.stdout);
    assert!(text.contains("unreachable: blocks"), "{text}");
    assert!(!text.contains("corrupt"), "{text}");
    let agents = srv.agents.lock().unwrap().clone();
    assert!(
        !agents.is_empty() && agents.iter().all(|a| a.starts_with("httpblk/")),
        "{agents:?}"
    );
}

#[test]
fn credentials_go_with_every_request_and_never_into_messages() {
    let t = tempfile::tempdir().unwrap();
    let (src, st, _) = store(t.path(), 53);
    let out = t.path().join("out");
    let cat_ok = |srv: &Flaky, url: &str, extra: &[&str]| {
        let r = run(bin()
            .args(["-vv", "cat", url, "-o", out.to_str().unwrap()])
            .args(extra));
        assert!(r.status.success(), "{}", stderr_of(&r));
        assert_eq!(sha256(&out), sha256(&src));
        assert_eq!(srv.count(|c| &c.unauthorized), 0);
        stderr_of(&r)
    };

    // A bearer token in a header.
    let bearer = Flaky::start(
        st.clone(),
        Behaviour {
            authorization: Some("Bearer t0ps3cret".into()),
            ..Behaviour::default()
        },
        1,
    );
    let log = cat_ok(
        &bearer,
        &bearer.url("img.hbi"),
        &["--header", "Authorization: Bearer t0ps3cret"],
    );
    assert!(!log.contains("t0ps3cret"), "the token was logged");
    let r = run(bin().args(["cat", &bearer.url("img.hbi"), "-o", "/dev/null"]));
    assert!(stderr_of(&r).contains("HTTP 401"), "{}", stderr_of(&r));

    // user:password in the URL, then from a netrc file. "alice:pw" in Basic is YWxpY2U6cHc=.
    let basic = Flaky::start(
        st.clone(),
        Behaviour {
            authorization: Some("Basic YWxpY2U6cHc=".into()),
            ..Behaviour::default()
        },
        2,
    );
    let with_user = format!("http://alice:pw@127.0.0.1:{}/img.hbi", basic.port);
    let log = cat_ok(&basic, &with_user, &[]);
    assert!(!log.contains("alice:pw"), "credentials were logged");
    let netrc = t.path().join("netrc");
    std::fs::write(&netrc, "machine 127.0.0.1 login alice password pw\n").unwrap();
    cat_ok(
        &basic,
        &basic.url("img.hbi"),
        &["--netrc-file", netrc.to_str().unwrap()],
    );

    // A signed URL: the query goes on every block URL, and stays out of messages.
    let signed = Flaky::start(
        st,
        Behaviour {
            query: Some("sig=abc123".into()),
            ..Behaviour::default()
        },
        3,
    );
    let log = cat_ok(&signed, &signed.url("img.hbi?sig=abc123"), &[]);
    assert!(!log.contains("abc123"), "the signature was logged");
    let seen = signed.seen.lock().unwrap().clone();
    assert!(seen.iter().filter(|l| l.contains("/blocks/")).count() > 10);
    assert!(seen.iter().all(|l| l.ends_with("?sig=abc123")), "{seen:?}");
}
