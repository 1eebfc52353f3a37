//! Bad input found in the userspace tools, one test each: damaged block files in a store,
//! index names that leave the output directory, local files that are not what they claim,
//! a server out of descriptors or held by idle clients, an ambiguous store, partial output,
//! doubled error causes, colours in logs; and the CLI conventions (-v/-q, enum values,
//! completions, man pages).

mod common;
use common::*;

use std::io::Read;
use std::process::Command;
use std::time::{Duration, Instant};

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out.sort();
    out
}

#[test]
fn create_rewrites_damaged_block_files() {
    let t = tempfile::tempdir().unwrap();
    let src = image(t.path(), "img", 1 << 20, 61);
    let store = t.path().join("st");
    create(&src, &store, &["--block-size", "65536"]);
    let files = walk(&store.join("blocks"));
    assert!(files.len() >= 4);
    // A crash after the rename but before the data: an empty file; and a truncated one.
    std::fs::write(&files[0], b"").unwrap();
    let half = std::fs::read(&files[1]).unwrap();
    std::fs::write(&files[1], &half[..half.len() / 2]).unwrap();
    // A file with a valid header for another length.
    let mut other = std::fs::read(&files[2]).unwrap();
    other[8] ^= 1;
    std::fs::write(&files[2], &other).unwrap();
    let out = run_ok(
        bin()
            .args(["create", src.to_str().unwrap(), store.to_str().unwrap()])
            .args(["--block-size", "65536"]),
    );
    assert!(out.contains("repaired       3"), "{out}");
    run_ok(bin().args(["verify", store.to_str().unwrap()]));
    let dst = t.path().join("out");
    run_ok(bin().args(["cat", store.to_str().unwrap(), "-o", dst.to_str().unwrap()]));
    assert_eq!(sha256(&dst), sha256(&src));
    // No temporary file is left behind.
    assert!(walk(&store)
        .iter()
        .all(|p| !p.to_string_lossy().contains(".tmp-")));
}

#[test]
fn index_names_stay_inside_the_output_directory() {
    let t = tempfile::tempdir().unwrap();
    let src = image(t.path(), "img", 64 << 10, 62);
    let out_dir = t.path().join("out").join("st");
    for name in ["../x", "..", ".hidden", "a/b", ""] {
        let r = run(bin()
            .args(["create", src.to_str().unwrap(), out_dir.to_str().unwrap()])
            .args(["--name", name]));
        assert!(!r.status.success(), "create --name {name:?} was accepted");
        assert!(stderr_of(&r).contains("index name"), "{}", stderr_of(&r));
        // import-cloop applies the same check, before reading its input.
        let r = run(bin()
            .args([
                "import-cloop",
                src.to_str().unwrap(),
                out_dir.to_str().unwrap(),
            ])
            .args(["--name", name]));
        assert!(
            !r.status.success(),
            "import-cloop --name {name:?} was accepted"
        );
        assert!(stderr_of(&r).contains("index name"), "{}", stderr_of(&r));
    }
    assert!(!t.path().join("out").join("x.hbi").exists());
}

#[test]
fn local_files_are_checked_before_they_are_read() {
    let t = tempfile::tempdir().unwrap();
    // /dev/zero never ends: refused at once, not read until memory runs out.
    let t0 = Instant::now();
    let r = run(bin().args(["verify", "/dev/zero"]));
    assert!(!r.status.success());
    assert!(
        stderr_of(&r).contains("not a regular file"),
        "{}",
        stderr_of(&r)
    );
    // A 1 TiB file of zeros (sparse: nothing is written) is refused by its header, and a
    // real index grown to 1 TiB by the length its header gives; neither is read through.
    let big = t.path().join("big.hbi");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(1 << 40)
        .unwrap();
    let r = run(bin().args(["cat", big.to_str().unwrap(), "-o", "/dev/null"]));
    assert!(!r.status.success());
    let e = stderr_of(&r);
    assert!(e.contains("big.hbi") && e.contains("bad magic"), "{e}");
    let src = image(t.path(), "img", 64 << 10, 65);
    let store = t.path().join("st");
    create(&src, &store, &[]);
    let index = store.join("img.hbi");
    let len = std::fs::metadata(&index).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&index)
        .unwrap()
        .set_len(1 << 40)
        .unwrap();
    let r = run(bin().args(["cat", index.to_str().unwrap(), "-o", "/dev/null"]));
    assert!(!r.status.success());
    let e = stderr_of(&r);
    assert!(
        e.contains("img.hbi") && e.contains(&format!("its header says {len}")),
        "{e}"
    );
    assert!(t0.elapsed() < Duration::from_secs(5));
}

#[test]
fn a_store_with_two_images_needs_a_choice() {
    let t = tempfile::tempdir().unwrap();
    let a = image(t.path(), "a", 64 << 10, 63);
    let b = image(t.path(), "b", 128 << 10, 64);
    let store = t.path().join("st");
    create(&a, &store, &[]);
    let db = create(&b, &store, &[]);
    let dst = t.path().join("out");
    let r = run(bin().args(["cat", store.to_str().unwrap(), "-o", dst.to_str().unwrap()]));
    assert!(!r.status.success());
    let err = stderr_of(&r);
    assert!(
        err.contains("a.hbi") && err.contains("b.hbi") && err.contains("--index-digest"),
        "{err}"
    );
    assert!(!dst.exists());
    run_ok(
        bin()
            .args(["cat", store.to_str().unwrap(), "-o", dst.to_str().unwrap()])
            .args(["--index-digest", &db]),
    );
    assert_eq!(sha256(&dst), sha256(&b));
    // verify of the directory still checks both.
    let out = run_ok(bin().args(["verify", store.to_str().unwrap()]));
    assert_eq!(out.matches(": ok (").count(), 2, "{out}");
}

#[test]
fn a_failed_cat_leaves_no_partial_output() {
    let t = tempfile::tempdir().unwrap();
    let src = image(t.path(), "img", 1 << 20, 65);
    let store = t.path().join("st");
    create(&src, &store, &["--block-size", "65536"]);
    let files = walk(&store.join("blocks"));
    std::fs::remove_file(files.last().unwrap()).unwrap();
    let dst = t.path().join("out.img");
    std::fs::write(&dst, b"the previous contents").unwrap();
    let r = run(bin().args(["cat", store.to_str().unwrap(), "-o", dst.to_str().unwrap()]));
    assert!(!r.status.success());
    assert_eq!(std::fs::read(&dst).unwrap(), b"the previous contents");
    let left: Vec<_> = std::fs::read_dir(t.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("partial"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn messages_say_their_cause_once_and_logs_have_no_colours() {
    let r = run(bin().args(["cat", "/nonexistent/dir/x.hbi", "-o", "/dev/null"]));
    let err = stderr_of(&r);
    assert_eq!(
        err.matches("No such file").count() + err.matches("not found").count(),
        1,
        "{err}"
    );
    // A warning logged to a pipe (the retry of a refused connection): plain text.
    let port = free_port();
    let r = run(bin().args([
        "cat",
        &format!("http://127.0.0.1:{port}/x.hbi"),
        "--retries",
        "1",
    ]));
    let err = stderr_of(&r);
    assert!(err.contains("WARN"), "{err}");
    assert!(!err.contains('\x1b'), "colour codes in a log: {err:?}");
    assert_eq!(
        err.lines()
            .last()
            .unwrap()
            .matches("Connection refused")
            .count(),
        1,
        "{err}"
    );
    // -q keeps warnings out; -v adds debug lines.
    let r = run(bin().args([
        "-q",
        "cat",
        &format!("http://127.0.0.1:{port}/x.hbi"),
        "--retries",
        "1",
    ]));
    assert!(!stderr_of(&r).contains("WARN"), "{}", stderr_of(&r));
    let t = tempfile::tempdir().unwrap();
    let src = image(t.path(), "img", 64 << 10, 66);
    let store = t.path().join("st");
    create(&src, &store, &[]);
    let srv = Server::start(&store);
    let r = run(bin().args(["cat", &srv.url("img.hbi"), "-o", "/dev/null", "-v"]));
    assert!(stderr_of(&r).contains("DEBUG"), "{}", stderr_of(&r));
}

#[test]
fn serve_outlives_descriptor_exhaustion_and_idle_clients() {
    let t = tempfile::tempdir().unwrap();
    std::fs::write(t.path().join("f"), b"0123456789").unwrap();
    let port = free_port();
    let mut child = std::process::Command::new("bash")
        .args([
            "-c",
            &format!(
                "ulimit -n 40; exec {} serve {} --listen 127.0.0.1:{port} --header-timeout-ms 500",
                env!("CARGO_BIN_EXE_httpblk"),
                t.path().display()
            ),
        ])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_port(port);
    // More idle connections than descriptors: the server must not exit.
    let held: Vec<_> = (0..60)
        .filter_map(|_| std::net::TcpStream::connect(("127.0.0.1", port)).ok())
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        child.try_wait().unwrap().is_none(),
        "serve exited when out of descriptors"
    );
    // Idle connections are closed after the header timeout, which frees descriptors.
    let mut first = &held[0];
    let mut buf = [0u8; 16];
    let _ = first.set_read_timeout(Some(Duration::from_secs(5)));
    let t0 = Instant::now();
    let n = first.read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0, "an idle connection got data");
    assert!(
        t0.elapsed() < Duration::from_secs(4),
        "an idle connection was kept"
    );
    drop(held);
    // Served again (bounded wait: the accept loop pauses 100 ms when out of descriptors).
    let t0 = Instant::now();
    let answer = loop {
        let r = run(bin()
            .args(["cat"])
            .arg(format!("http://127.0.0.1:{port}/missing.hbi"))
            .args(["--retries", "0"]));
        let err = stderr_of(&r);
        if err.contains("404") || t0.elapsed() > Duration::from_secs(5) {
            break err;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let _ = child.kill();
    let _ = child.wait();
    assert!(answer.contains("HTTP 404"), "{answer}");
}

#[test]
fn cli_lists_values_and_generates_completions_and_man_pages() {
    let help = run_ok(bin().args(["create", "--help"]));
    for v in ["lzo", "lz4", "zstd", "zlib", "sha256", "md5"] {
        assert!(help.contains(v), "{help}");
    }
    let r = run(bin().args(["create", "/etc/hostname", "/tmp/x", "--codec", "gzip"]));
    assert!(
        stderr_of(&r).contains("possible values"),
        "{}",
        stderr_of(&r)
    );
    let bash = run_ok(bin().args(["completions", "bash"]));
    assert!(
        bash.contains("_httpblk") && bash.contains("--index-digest"),
        "{bash}"
    );
    let t = tempfile::tempdir().unwrap();
    run_ok(bin().args(["man", t.path().to_str().unwrap()]));
    let page = std::fs::read_to_string(t.path().join("httpblk-cat.1")).unwrap();
    assert!(
        page.contains("\\-\\-ca\\-cert") || page.contains("ca-cert"),
        "{page}"
    );
    assert!(t.path().join("httpblk.1").exists());
    // The sections clap knows nothing of, with what each command really does.
    for (page, says) in [
        ("httpblk.1", "HTTPBLK_LOG"),
        ("httpblk-verify.1", "Nothing bad found"),
        ("httpblk-cat.1", "130, 143"),
        ("httpblk-attach.1", "HTTPBLK_RUN_DIR"),
    ] {
        let text = std::fs::read_to_string(t.path().join(page)).unwrap();
        for section in ["EXIT STATUS", "ENVIRONMENT", "EXAMPLES", says] {
            assert!(text.contains(section), "{page} lacks {section}");
        }
    }
}

#[test]
fn install_sh_installs_a_stripped_binary_with_its_pages() {
    let t = tempfile::tempdir().unwrap();
    let built = env!("CARGO_BIN_EXE_httpblk");
    let r = run(Command::new("bash")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/../install.sh"))
        .env("HTTPBLK_BIN", built)
        .env("DESTDIR", t.path())
        .env("PREFIX", "/usr"));
    assert!(r.status.success(), "{}", stderr_of(&r));
    let installed = t.path().join("usr/bin/httpblk");
    // A stripped ELF has no symbol table section (.symtab).
    let has_symtab = |p: &std::path::Path| {
        let b = std::fs::read(p).unwrap();
        b.windows(8).any(|w| w == b".symtab\0")
    };
    assert!(
        has_symtab(std::path::Path::new(built)),
        "the build has no symbols to strip"
    );
    assert!(!has_symtab(&installed), "installed unstripped");
    run_ok(Command::new(&installed).arg("--version"));
    for f in [
        "share/man/man1/httpblk-cat.1.gz",
        "share/bash-completion/completions/httpblk",
    ] {
        assert!(t.path().join("usr").join(f).exists(), "{f}");
    }
}
