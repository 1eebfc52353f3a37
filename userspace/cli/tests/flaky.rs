//! One flaky server and nothing else: `cat` and `verify` still succeed (connection errors,
//! 5xx and bodies cut short are retried with backoff within a time budget), a keep-alive
//! connection closed under a request costs no retry, `Retry-After` is obeyed, `--retries 0`
//! gives up at once with the server's answer, `--retry-max-time` bounds the retrying, the
//! deadlines (`--max-time`, `--request-timeout-ms`, `--speed-limit`, `--connect-timeout`)
//! hold against a server that sends a byte at a time, and credentials (a bearer token in a header,
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
fn a_flaky_single_server_costs_time_not_a_failed_read() {
    // 12% of requests answered 500, 8% closed without an answer, 4% closed halfway through
    // the body; a 16 MiB image of 256 blocks, the default retry budget. Before the budget
    // (five tries within about 1.5 s) 3 in 10 runs failed.
    let t = tempfile::tempdir().unwrap();
    let src = image(t.path(), "img", 16 << 20, 51);
    let st = t.path().join("st");
    let digest = create(&src, &st, &["--block-size", "65536", "--codec", "none"]);
    let b = Behaviour {
        fail_500: 120,
        close: 40,
        drop_request: 80,
        ..Behaviour::default()
    };
    let srv = Flaky::start(st, b, 7);
    let out = t.path().join("out");
    let want = sha256(&src);
    for i in 0..20 {
        let r = run(bin()
            .args(["cat", &srv.url("img.hbi"), "-o", out.to_str().unwrap()])
            .args(["--index-digest", &digest]));
        assert!(
            r.status.success(),
            "run {i}: {} requests, {} answered 500, {} dropped: {}",
            srv.count(|c| &c.requests),
            srv.count(|c| &c.failed_500),
            srv.count(|c| &c.dropped),
            stderr_of(&r)
        );
        assert_eq!(sha256(&out), want, "run {i}");
    }
    for i in 0..3 {
        let r = run(bin().args(["verify", &srv.url("img.hbi")]));
        assert!(r.status.success(), "verify run {i}: {}", stderr_of(&r));
    }
    let (failed, dropped) = (srv.count(|c| &c.failed_500), srv.count(|c| &c.dropped));
    eprintln!(
        "{} requests, {failed} answered 500, {dropped} dropped unanswered",
        srv.count(|c| &c.requests)
    );
    assert!(
        failed > 300 && dropped > 200,
        "the server was not flaky enough to prove anything"
    );
}

#[test]
fn a_keep_alive_connection_closed_under_a_request_costs_no_retry() {
    let t = tempfile::tempdir().unwrap();
    let (src, st, _) = store(t.path(), 55);
    let b = Behaviour {
        one_per_connection: true,
        ..Behaviour::default()
    };
    let srv = Flaky::start(st, b, 10);
    let out = t.path().join("out");
    // One request at a time, so every request after the first meets a pooled connection
    // that the server closes as the request arrives: with no retry allowed, only sending
    // it again at once on a new connection succeeds.
    let r = run(bin()
        .args(["cat", &srv.url("img.hbi"), "-o", out.to_str().unwrap()])
        .args(["--jobs", "1", "--retries", "0"]));
    assert!(r.status.success(), "{}", stderr_of(&r));
    assert_eq!(sha256(&out), sha256(&src));
    assert!(
        srv.count(|c| &c.dropped) > 10,
        "no keep-alive race happened"
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
    // Without --retries, the budget bounds the retrying: tries go on for about a second,
    // then the server's answer is the error.
    let before = always.count(|c| &c.requests);
    let t0 = Instant::now();
    let r = run(bin().args([
        "cat",
        &always.url("img.hbi"),
        "-o",
        "/dev/null",
        "--retry-max-time",
        "1",
    ]));
    let took = t0.elapsed();
    assert!(!r.status.success());
    assert!(stderr_of(&r).contains("HTTP 500"), "{}", stderr_of(&r));
    assert!(
        took >= Duration::from_millis(500) && took < Duration::from_secs(5),
        "{took:?}"
    );
    assert!(always.count(|c| &c.requests) - before >= 4);
}

#[test]
fn deadlines_hold_against_a_server_that_sends_a_byte_at_a_time() {
    let t = tempfile::tempdir().unwrap();
    let (_, st, _) = store(t.path(), 56);
    let b = Behaviour {
        trickle_blocks: Some(Duration::from_millis(500)),
        ..Behaviour::default()
    };
    let srv = Flaky::start(st, b, 11);
    let url = srv.url("img.hbi");
    let quick = |args: &[&str], within: Duration| {
        let t0 = Instant::now();
        let r = run(bin().args(["cat", &url]).args(args));
        let took = t0.elapsed();
        assert!(!r.status.success());
        assert!(took < within, "{args:?} took {took:?}: {}", stderr_of(&r));
        r
    };
    // The whole command.
    let out = t.path().join("out");
    let r = quick(
        &["-o", out.to_str().unwrap(), "--max-time", "2"],
        Duration::from_secs(6),
    );
    assert_eq!(r.status.code(), Some(28), "{}", stderr_of(&r));
    assert!(
        stderr_of(&r).contains("--max-time 2s reached") && stderr_of(&r).contains("not written"),
        "{}",
        stderr_of(&r)
    );
    let left: Vec<_> = std::fs::read_dir(t.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("out"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    let r = run(bin().args(["verify", &url, "--max-time", "1"]));
    assert_eq!(r.status.code(), Some(28), "{}", stderr_of(&r));
    // One request, however steadily its body trickles in.
    let r = quick(
        &[
            "-o",
            "/dev/null",
            "--request-timeout-ms",
            "1500",
            "--retries",
            "0",
        ],
        Duration::from_secs(6),
    );
    assert!(
        stderr_of(&r).contains("the request timed out after 1.5s"),
        "{}",
        stderr_of(&r)
    );
    // A body slower than the limit.
    let r = quick(
        &[
            "-o",
            "/dev/null",
            "--speed-limit",
            "100",
            "--speed-time",
            "1",
            "--retries",
            "0",
        ],
        Duration::from_secs(6),
    );
    assert!(
        stderr_of(&r).contains("slower than --speed-limit 100 bytes/s"),
        "{}",
        stderr_of(&r)
    );
    // Connecting: a listener that never answers the TLS handshake.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let tls_url = format!("https://{}/img.hbi", l.local_addr().unwrap());
    let t0 = Instant::now();
    let r = run(bin().args([
        "cat",
        &tls_url,
        "-o",
        "/dev/null",
        "--connect-timeout",
        "0.5",
        "--retries",
        "0",
    ]));
    assert!(!r.status.success());
    assert!(t0.elapsed() < Duration::from_secs(4), "{:?}", t0.elapsed());
    assert!(
        stderr_of(&r).contains("connecting timed out after 500ms"),
        "{}",
        stderr_of(&r)
    );
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

#[test]
fn a_stalled_server_is_left_long_before_the_request_timeout() {
    // A server that sends half a block and stops: the try fails once nothing came for the
    // stall bound (a third of the request timeout: 10 s), not at the request timeout, so that a helper still
    // has time to ask another mirror.
    let t = tempfile::tempdir().unwrap();
    let (_, st, _) = store(t.path(), 57);
    let b = Behaviour {
        stall_first: 1 << 20,
        ..Behaviour::default()
    };
    let srv = Flaky::start(st, b, 12);
    let t0 = Instant::now();
    let r = run(bin()
        .args(["cat", &srv.url("img.hbi"), "-o", "/dev/null"])
        .args(["--request-timeout-ms", "30000", "--retries", "0"]));
    let took = t0.elapsed();
    assert!(!r.status.success());
    assert!(
        stderr_of(&r).contains("waiting for data timed out after 10s"),
        "{}",
        stderr_of(&r)
    );
    assert!(
        took >= Duration::from_secs(9) && took < Duration::from_secs(20),
        "{took:?}"
    );
}
