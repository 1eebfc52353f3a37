//! The command line tells the truth (issue 23): a closed pipe ends a command quietly, as it
//! ends coreutils, never with a panic; arguments that cannot work are refused with what would
//! (an index digest of the wrong form, a device that is none, a URL scheme that is not
//! HTTP); `-o -` is standard output; `create` reuses only block files that hold their block, and
//! replaces an index of another image only with `--force`.

mod common;
use common::*;

use std::io::Read;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Waits for `child` at most 60 s (then kills it and fails): every test here is bounded.
fn finish(mut child: Child) -> Output {
    let t0 = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if t0.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("{child:?} still running after 60 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// The command ended the way a closed pipe ends `cat` of coreutils: SIGPIPE, no message;
/// not a panic (exit 101, "panicked" on stderr).
fn assert_quiet_sigpipe(what: &str, out: &Output) {
    let err = stderr_of(out);
    assert!(
        !err.contains("panicked") && out.status.code() != Some(101),
        "{what}: {:?}: {err}",
        out.status
    );
    assert_eq!(
        out.status.signal(),
        Some(13),
        "{what}: {:?}: {err}",
        out.status
    );
    assert!(!err.contains("httpblk:"), "{what}: {err}");
}

/// `httpblk ARGS`, whose standard output is a pipe closed once `keep` bytes were read (with
/// 0: closed before the command starts, so that even a short output finds it closed).
fn with_closed_stdout(args: &[&str], keep: usize) -> Output {
    let mut cmd = bin();
    cmd.args(args).stdin(Stdio::null()).stderr(Stdio::piped());
    if keep == 0 {
        let mut fds = [0; 2];
        // SAFETY: pipe2 fills fds with two new descriptors, owned from here on.
        assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
        let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        drop(r);
        cmd.stdout(Stdio::from(w));
        return finish(cmd.spawn().unwrap());
    }
    let mut child = cmd.stdout(Stdio::piped()).spawn().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut buf = vec![0; keep];
    stdout.read_exact(&mut buf).unwrap();
    drop(stdout);
    finish(child)
}

#[test]
fn a_closed_pipe_ends_every_command_quietly() {
    let t = tempfile::tempdir().unwrap();
    // Larger than a pipe's buffer, in many blocks: the writes outrun the reader.
    let src = image(t.path(), "img", 8 << 20, 91);
    let store = t.path().join("st");
    create(&src, &store, &["--block-size", "65536"]);
    let st = store.to_str().unwrap();
    for keep in [0, 100] {
        let out = with_closed_stdout(&["cat", st], keep);
        assert_quiet_sigpipe(&format!("cat | head -c{keep}"), &out);
        let out = with_closed_stdout(&["cat", st, "-o", "-", "--jobs", "4"], keep);
        assert_quiet_sigpipe(&format!("cat -o - | head -c{keep}"), &out);
    }
    let out = with_closed_stdout(&["verify", st], 0);
    assert_quiet_sigpipe("verify", &out);
    let store2 = t.path().join("st2");
    let out = with_closed_stdout(
        &["create", src.to_str().unwrap(), store2.to_str().unwrap()],
        0,
    );
    assert_quiet_sigpipe("create", &out);
    for shell in ["bash", "zsh", "fish"] {
        let out = with_closed_stdout(&["completions", shell], 0);
        assert_quiet_sigpipe(&format!("completions {shell}"), &out);
    }
    // Over HTTP too.
    let srv = Server::start(&store);
    let out = with_closed_stdout(&["cat", &srv.url("img.hbi")], 100);
    assert_quiet_sigpipe("cat URL | head -c100", &out);
}

#[test]
fn a_failed_cat_of_a_local_store_does_not_panic() {
    let t = tempfile::tempdir().unwrap();
    let src = image(t.path(), "img", 4 << 20, 92);
    let store = t.path().join("st");
    create(&src, &store, &["--block-size", "4096"]);
    // A block file goes missing: the tasks still reading others are cancelled when the
    // command ends.
    let blocks = store.join("blocks");
    let mut files: Vec<_> = std::fs::read_dir(&blocks)
        .unwrap()
        .flat_map(|d| std::fs::read_dir(d.unwrap().path()).unwrap())
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    std::fs::remove_file(&files[files.len() / 2]).unwrap();
    // Many blocks in flight: many reads queued on the blocking pool when it shuts down.
    for jobs in ["1024", "256", "1024", "256", "1024"] {
        let r = run(bin()
            .args(["cat", store.to_str().unwrap(), "-o", "/dev/null"])
            .args(["--jobs", jobs]));
        let err = stderr_of(&r);
        assert_eq!(r.status.code(), Some(1), "{err}");
        assert!(!err.contains("panicked"), "{err}");
        assert!(err.contains("not found"), "{err}");
    }
}

#[test]
fn an_index_digest_is_64_hex_digits() {
    let t = tempfile::tempdir().unwrap();
    let src = image(t.path(), "img", 256 << 10, 93);
    let store = t.path().join("st");
    let digest = create(&src, &store, &[]);
    let st = store.to_str().unwrap();
    let short = &digest[..63];
    let not_hex = format!("{}g", &digest[..63]);
    for bad in ["abc", short, not_hex.as_str(), ""] {
        for cmd in ["cat", "verify", "attach"] {
            let r = run(bin().args([cmd, st, "--index-digest", bad]));
            let err = stderr_of(&r);
            assert_eq!(
                r.status.code(),
                Some(2),
                "{cmd} --index-digest {bad:?}: {err}"
            );
            assert!(err.contains("64 hex digits"), "{cmd}: {err}");
        }
    }
    // Upper case is the same digest.
    let dst = t.path().join("out");
    run_ok(
        bin()
            .args(["cat", st, "-o", dst.to_str().unwrap()])
            .args(["--index-digest", &digest.to_uppercase()]),
    );
    assert_eq!(sha256(&dst), sha256(&src));
}

#[test]
fn detach_says_what_a_device_is() {
    for bad in ["foo", "/dev/sda", "httpblkX", ""] {
        let r = run(bin().args(["detach", bad]));
        let err = stderr_of(&r);
        assert!(!r.status.success());
        assert!(!err.contains("invalid digit"), "{err}");
        assert!(
            err.contains("/dev/httpblkN") && err.contains("number N"),
            "{err}"
        );
    }
}

#[test]
fn output_dash_is_standard_output() {
    let t = tempfile::tempdir().unwrap();
    let src = image(t.path(), "img", 512 << 10, 94);
    let store = t.path().join("st");
    create(&src, &store, &["--block-size", "65536"]);
    let out = bin()
        .current_dir(t.path())
        .args(["cat", "st", "-o", "-"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(out.stdout, std::fs::read(&src).unwrap());
    assert!(!t.path().join("-").exists(), "-o - wrote a file named '-'");
    // ./- is a file of that name.
    run_ok(bin().current_dir(t.path()).args(["cat", "st", "-o", "./-"]));
    assert_eq!(sha256(&t.path().join("-")), sha256(&src));
}

#[test]
fn only_http_and_file_urls_are_images() {
    let t = tempfile::tempdir().unwrap();
    let src = image(t.path(), "img", 256 << 10, 95);
    let store = t.path().join("st");
    create(&src, &store, &["--block-size", "65536"]);
    for url in [
        "ftp://127.0.0.1/st/img.hbi",
        "s3://bucket/img.hbi",
        "FTP://h/x.hbi",
    ] {
        for cmd in ["cat", "verify"] {
            let r = run(bin().args([cmd, url]));
            let err = stderr_of(&r);
            assert!(!r.status.success());
            assert!(err.contains("is not supported"), "{cmd} {url}: {err}");
            assert!(!err.contains("not found"), "{cmd} {url}: {err}");
        }
    }
    // file:// names a local path, percent-encoding and all.
    let spaced = t.path().join("a store");
    std::fs::rename(&store, &spaced).unwrap();
    let url = format!(
        "file://{}/img.hbi",
        spaced.to_str().unwrap().replace(' ', "%20")
    );
    let out = bin().args(["cat", &url]).output().unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(out.stdout, std::fs::read(&src).unwrap());
    let dir_url = format!("file://{}/", spaced.to_str().unwrap().replace(' ', "%20"));
    let ok = run_ok(bin().args(["verify", &dir_url]));
    assert!(ok.contains(": ok ("), "{ok}");
    // A host in a file URL is not a local path.
    let r = run(bin().args(["cat", "file://otherhost/tmp/x.hbi"]));
    assert!(
        stderr_of(&r).contains("not a local file URL"),
        "{}",
        stderr_of(&r)
    );
}

fn block_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(block_files(&p));
        } else {
            out.push(p);
        }
    }
    out.sort();
    out
}

#[test]
fn create_repairs_a_tampered_block_file_of_the_right_length() {
    let t = tempfile::tempdir().unwrap();
    let src = image(t.path(), "img", 256 << 10, 41);
    let store = t.path().join("st");
    create(&src, &store, &["--block-size", "65536", "--codec", "none"]);
    let files = block_files(&store.join("blocks"));
    let victim = &files[0];
    let mut bytes = std::fs::read(victim).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(victim, &bytes).unwrap();
    let out = run_ok(bin().args([
        "create",
        src.to_str().unwrap(),
        store.to_str().unwrap(),
        "--block-size",
        "65536",
        "--codec",
        "none",
    ]));
    assert!(
        out.contains("repaired       1 damaged block files"),
        "{out}"
    );
    assert_ne!(
        std::fs::read(victim).unwrap(),
        bytes,
        "the tampered file is still there"
    );
    let copy = bin()
        .args(["cat", store.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(copy.status.success(), "{}", stderr_of(&copy));
    assert_eq!(copy.stdout, std::fs::read(&src).unwrap());
}

#[test]
fn create_keeps_an_index_of_another_image_without_force() {
    let t = tempfile::tempdir().unwrap();
    let a = image(t.path(), "a", 256 << 10, 42);
    let b = image(t.path(), "b", 256 << 10, 44); // not 43: image() takes seed | 1
    let store = t.path().join("st");
    let st = store.to_str().unwrap();
    // `--name disk.hbi` names disk.hbi, not disk.hbi.hbi.
    run_ok(bin().args(["create", a.to_str().unwrap(), st, "--name", "disk.hbi"]));
    assert!(store.join("disk.hbi").is_file());
    assert!(!store.join("disk.hbi.hbi").exists());
    let index_a = std::fs::read(store.join("disk.hbi")).unwrap();
    // The same image again: rewritten in place, no --force needed.
    run_ok(bin().args(["create", a.to_str().unwrap(), st, "--name", "disk"]));
    // Another image under that name: refused, the index left as it was.
    let r = run(bin().args(["create", b.to_str().unwrap(), st, "--name", "disk"]));
    assert!(!r.status.success());
    assert!(
        stderr_of(&r).contains("already indexes another image"),
        "{}",
        stderr_of(&r)
    );
    assert_eq!(std::fs::read(store.join("disk.hbi")).unwrap(), index_a);
    run_ok(bin().args([
        "create",
        b.to_str().unwrap(),
        st,
        "--name",
        "disk",
        "--force",
    ]));
    let copy = bin().args(["cat", st]).output().unwrap();
    assert!(copy.status.success(), "{}", stderr_of(&copy));
    assert_eq!(copy.stdout, std::fs::read(&b).unwrap());
}

#[test]
fn create_names_a_source_that_is_no_image() {
    let t = tempfile::tempdir().unwrap();
    let st = t.path().join("st");
    let r = run(bin().args(["create", t.path().to_str().unwrap(), st.to_str().unwrap()]));
    assert!(!r.status.success());
    assert!(stderr_of(&r).contains("a directory"), "{}", stderr_of(&r));
    assert!(
        !stderr_of(&r).contains("9223372036854775807"),
        "{}",
        stderr_of(&r)
    );
    let fifo = t.path().join("fifo");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let r = run(bin().args(["create", fifo.to_str().unwrap(), st.to_str().unwrap()]));
    assert!(!r.status.success());
    assert!(stderr_of(&r).contains("a pipe"), "{}", stderr_of(&r));
    assert!(!stderr_of(&r).contains("Illegal seek"), "{}", stderr_of(&r));
}

/// A server on loopback that answers one request with `head`, then `first` (one chunk of a
/// chunked body, or as it is), then bytes 0x5a up to 150 MiB or until the client goes;
/// returns its port and, when joined, how many body bytes it got out.
fn endless_answer(head: &str, first: Vec<u8>) -> (u16, std::thread::JoinHandle<usize>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let head = head.to_string();
    let server = std::thread::spawn(move || {
        use std::io::Write;
        let chunked = head.starts_with("Transfer-Encoding: chunked");
        let framed = |data: &[u8]| {
            if chunked {
                [format!("{:x}\r\n", data.len()).as_bytes(), data, b"\r\n"].concat()
            } else {
                data.to_vec()
            }
        };
        let (mut c, _) = listener.accept().unwrap();
        let mut req = [0; 4096];
        let _ = c.read(&mut req);
        let _ = c.write_all(format!("HTTP/1.1 200 OK\r\n{head}\r\n\r\n").as_bytes());
        let mut sent = 0usize;
        if !first.is_empty() && c.write_all(&framed(&first)).is_ok() {
            sent += first.len();
        }
        let chunk = framed(&[0x5a; 0x4000]);
        while sent < 150 << 20 && c.write_all(&chunk).is_ok() {
            sent += 0x4000;
        }
        sent
    });
    (port, server)
}

#[test]
fn a_bad_index_is_named_and_refused_by_its_header() {
    let t = tempfile::tempdir().unwrap();
    let src = image(t.path(), "img", 1 << 20, 93);
    let store = t.path().join("st");
    create(&src, &store, &["--block-size", "65536"]);
    let good = std::fs::read(store.join("img.hbi")).unwrap();
    // Garbage, a truncated index, a pipe: each refused with the file's name, none waited on.
    std::fs::write(store.join("junk.hbi"), vec![0x5a; 3 << 20]).unwrap();
    std::fs::write(store.join("short.hbi"), &good[..good.len() - 7]).unwrap();
    let fifo = store.join("pipe.hbi");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: c is a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    for (name, says) in [
        ("junk.hbi", "not an httpblk index (bad magic)"),
        ("short.hbi", "its header says"),
        ("pipe.hbi", "not a regular file"),
    ] {
        let path = store.join(name);
        let child = bin()
            .args(["cat", path.to_str().unwrap(), "-o", "/dev/null"])
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let out = finish(child);
        let err = stderr_of(&out);
        assert_eq!(out.status.code(), Some(1), "{name}: {err}");
        assert!(
            err.contains(&format!("{}: ", path.display())),
            "{name}: {err}"
        );
        assert!(err.contains(says), "{name}: {err}");
    }

    // Over HTTP, garbage is called that after its first bytes, and not read on: a chunked
    // body (no length to refuse it by), and one declaring more than the index size limit
    // (144 MiB).
    for head in [
        "Transfer-Encoding: chunked".to_string(),
        format!("Content-Length: {}", 150u64 << 20),
    ] {
        let (port, server) = endless_answer(&head, Vec::new());
        let url = format!("http://127.0.0.1:{port}/junk.hbi");
        let child = bin()
            .args(["cat", &url, "-o", "/dev/null", "--retries", "0"])
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let out = finish(child);
        let err = stderr_of(&out);
        assert!(!out.status.success(), "{err}");
        assert!(
            err.contains(&format!("{url}: bad index: not an httpblk index")),
            "{err}"
        );
        let sent = server.join().unwrap();
        assert!(sent < 32 << 20, "{sent} bytes of garbage were read: {err}");
    }
}

#[test]
fn without_the_module_attach_says_so_first_and_status_is_empty() {
    if Path::new("/dev/httpblk-control").exists() {
        skip("httpblk.ko is loaded here: this checks a machine without it");
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let run_dir = t.path().join("run");
    // Nothing listens there: an attach that fetched the index first would say "connecting".
    let r = run(bin()
        .env("HTTPBLK_RUN_DIR", &run_dir)
        .args(["attach", "http://127.0.0.1:1/img.hbi"]));
    let err = stderr_of(&r);
    assert_eq!(r.status.code(), Some(1), "{err}");
    assert!(
        err.contains("is httpblk.ko loaded? modprobe httpblk"),
        "{err}"
    );
    assert!(!err.contains("connecting"), "{err}");
    assert!(!run_dir.exists(), "attach left {run_dir:?}");

    let r = run(bin().args(["status", "--json"]));
    assert!(r.status.success(), "{}", stderr_of(&r));
    let v: serde_json::Value = serde_json::from_slice(&r.stdout).expect("status --json is JSON");
    assert_eq!(v, serde_json::json!([]));
    let r = run(bin().arg("status"));
    assert!(r.status.success(), "{}", stderr_of(&r));
    assert!(
        String::from_utf8_lossy(&r.stdout).contains("httpblk.ko is not loaded"),
        "{}",
        String::from_utf8_lossy(&r.stdout)
    );
}

/// A server that answers the index at once and never answers a block request: a `cat` from
/// it stays in progress until it is told to stop.
fn stalling_server(index: Vec<u8>) -> u16 {
    use std::io::Write;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for c in listener.incoming() {
            let Ok(mut c) = c else { return };
            let index = index.clone();
            std::thread::spawn(move || {
                let mut req = [0; 4096];
                let n = c.read(&mut req).unwrap_or(0);
                let line = String::from_utf8_lossy(&req[..n]).to_string();
                if line.split(' ').nth(1).is_some_and(|p| p.ends_with(".hbi")) {
                    let head =
                        format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", index.len());
                    let _ = c.write_all(head.as_bytes());
                    let _ = c.write_all(&index);
                }
                std::thread::sleep(Duration::from_secs(30));
            });
        }
    });
    port
}

#[test]
fn an_interrupted_cat_leaves_no_partial_file() {
    let t = tempfile::tempdir().unwrap();
    let src = image(t.path(), "img", 1 << 20, 94);
    let store = t.path().join("st");
    create(&src, &store, &["--block-size", "65536"]);
    let port = stalling_server(std::fs::read(store.join("img.hbi")).unwrap());
    let out_dir = t.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    let target = out_dir.join("disk.img");
    for (sig, code) in [(libc::SIGINT, 130), (libc::SIGTERM, 143)] {
        let child = bin()
            .args(["cat", &format!("http://127.0.0.1:{port}/img.hbi")])
            .args(["-o", target.to_str().unwrap()])
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let t0 = Instant::now();
        while std::fs::read_dir(&out_dir).unwrap().next().is_none() {
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "no output file appeared"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        // SAFETY: kill(2) on our own child's pid.
        assert_eq!(unsafe { libc::kill(child.id() as i32, sig) }, 0);
        let out = finish(child);
        let err = stderr_of(&out);
        assert_eq!(out.status.code(), Some(code), "signal {sig}: {err}");
        assert!(err.contains("interrupted"), "{err}");
        let left: Vec<_> = std::fs::read_dir(&out_dir).unwrap().collect();
        assert!(left.is_empty(), "signal {sig} left {left:?}");
    }
}

#[test]
fn quiet_draws_no_progress_bar() {
    let Some(script) = tool("script") else {
        skip("script (util-linux) is not installed: no terminal to draw on");
        return;
    };
    let t = tempfile::tempdir().unwrap();
    let src = image(t.path(), "img", 4 << 20, 95);
    let store = t.path().join("st");
    create(&src, &store, &["--block-size", "65536"]);
    let bin_path = env!("CARGO_BIN_EXE_httpblk");
    let on_terminal = |q: &str| {
        let cmd = format!(
            "{bin_path} cat {} -o {} {q}",
            store.join("img.hbi").display(),
            t.path().join("out").display()
        );
        let r = run(Command::new(&script).args(["-qec", &cmd, "/dev/null"]));
        assert!(r.status.success(), "{cmd}: {}", stderr_of(&r));
        String::from_utf8_lossy(&r.stdout).to_string()
    };
    // On a terminal a bar is drawn (so the check below can fail) ...
    assert!(on_terminal("").contains("cat ["), "no bar drawn at all");
    // ... and none with -q or -qq.
    for q in ["-q", "-qq"] {
        let shown = on_terminal(q);
        assert!(!shown.contains('['), "{q}: {shown:?}");
    }
}

/// A DNS server on loopback that answers every query NXDOMAIN; it stops with the test.
fn nxdomain_server() -> std::net::SocketAddr {
    let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = s.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 512];
        while let Ok((n, from)) = s.recv_from(&mut buf) {
            let q = &buf[..n];
            // The question: the name's labels up to the root, then type and class.
            let mut end = 12;
            while end < n && q[end] != 0 {
                end += 1 + q[end] as usize;
            }
            let end = end + 5;
            if n < 12 || end > n {
                continue;
            }
            let mut r = Vec::from(&q[..2]);
            r.extend_from_slice(&[0x81, 0x83, 0, 1, 0, 0, 0, 0, 0, 0]);
            r.extend_from_slice(&q[12..end]);
            let _ = s.send_to(&r, from);
        }
    });
    addr
}

#[test]
fn a_dead_proxy_and_a_missing_name_name_themselves_in_the_final_message() {
    // -qq hides every warning: the final message alone must say what failed.
    let dead = free_port();
    let r = finish(
        bin()
            .args(["-qq", "cat", "http://127.0.0.1:9/x.hbi", "-o", "/dev/null"])
            .args(["--proxy", &format!("http://user:secret@127.0.0.1:{dead}")])
            .args(["--retries", "0"])
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let e = stderr_of(&r);
    assert!(
        e.contains(&format!("proxy http://127.0.0.1:{dead}/")) && e.contains("refused"),
        "{e}"
    );
    assert!(!e.contains("secret"), "{e}");
    // A missing name, and a DNS server that never answers, are named.
    let resolving_with = |server: std::net::SocketAddr| {
        let r = finish(
            bin()
                .args(["-qq", "cat", "http://no-such-host.test/x.hbi"])
                .args(["-o", "/dev/null", "--retries", "0"])
                .args(["--dns-server", &server.to_string()])
                .stderr(Stdio::piped())
                .spawn()
                .unwrap(),
        );
        stderr_of(&r)
    };
    let e = resolving_with(nxdomain_server());
    assert!(
        e.contains("DNS: no-such-host.test: no such name (NXDOMAIN)"),
        "{e}"
    );
    let mute = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let at = mute.local_addr().unwrap();
    let e = resolving_with(at);
    let says = format!("DNS: no-such-host.test: no answer from --dns-server {at}");
    assert!(e.contains(&says), "{e}");
}

#[test]
fn an_index_followed_by_more_is_cut_off_at_its_length() {
    // A chunked answer (no length declared) whose first chunk holds a whole valid index and
    // more, then goes on: refused as too long, and not read on (the helper runs as root).
    let t = tempfile::tempdir().unwrap();
    let src = image(t.path(), "img", 64 << 10, 95);
    let store = t.path().join("st");
    create(&src, &store, &["--block-size", "65536"]);
    let index = std::fs::read(store.join("img.hbi")).unwrap();
    let want = index.len();
    let mut first = index;
    first.extend_from_slice(&[0x5a; 4096]);
    let (port, server) = endless_answer("Transfer-Encoding: chunked", first);
    let url = format!("http://127.0.0.1:{port}/img.hbi");
    let out = finish(
        bin()
            .args(["cat", &url, "-o", "/dev/null", "--retries", "0"])
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let err = stderr_of(&out);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains(&format!("body longer than the expected {want} bytes")),
        "{err}"
    );
    let sent = server.join().unwrap();
    assert!(sent < 32 << 20, "{sent} bytes were read: {err}");
}
