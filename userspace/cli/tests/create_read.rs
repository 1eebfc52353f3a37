//! create → verify → cat round trips, dedupe, store rules and bad sources.

mod common;
use common::*;

#[test]
fn round_trip_every_codec_hash_and_block_size() {
    let t = tempfile::tempdir().unwrap();
    let src = image(t.path(), "img", 3 * 65536 + 4096 + 512, 1);
    let want = sha256(&src);
    for codec in ["none", "lzo", "lz4", "zstd", "zlib"] {
        for (hash, bs) in [("sha256", "65536"), ("md5", "4096"), ("sha256", "4194304")] {
            let store = t.path().join(format!("st-{codec}-{hash}-{bs}"));
            let out = run_ok(
                bin()
                    .args(["create", src.to_str().unwrap(), store.to_str().unwrap()])
                    .args(["--codec", codec, "--hash", hash, "--block-size", bs]),
            );
            assert!(out.contains("index sha256"), "{out}");
            run_ok(bin().args(["verify", store.to_str().unwrap()]));
            let dst = t.path().join("out");
            run_ok(bin().args([
                "cat",
                store.join("img.hbi").to_str().unwrap(),
                "--output",
                dst.to_str().unwrap(),
            ]));
            assert_eq!(sha256(&dst), want, "{codec} {hash} {bs}");
        }
    }
}

#[test]
fn stores_dedupe_and_never_rewrite_blocks() {
    let t = tempfile::tempdir().unwrap();
    let a = image(t.path(), "a", 1 << 20, 2);
    let mut bdata = std::fs::read(&a).unwrap();
    bdata[100_000] ^= 0xff; // one block differs
    let b = t.path().join("b");
    std::fs::write(&b, &bdata).unwrap();
    let store = t.path().join("st");
    run_ok(bin().args([
        "create",
        a.to_str().unwrap(),
        store.to_str().unwrap(),
        "--block-size",
        "65536",
    ]));
    let mtimes = |dir: &std::path::Path| {
        let mut v: Vec<(String, std::time::SystemTime)> = walk(dir)
            .into_iter()
            .map(|p| {
                (
                    p.display().to_string(),
                    std::fs::metadata(&p).unwrap().modified().unwrap(),
                )
            })
            .collect();
        v.sort();
        v
    };
    let before = mtimes(&store.join("blocks"));
    std::thread::sleep(std::time::Duration::from_millis(20));
    let out = run_ok(bin().args([
        "create",
        b.to_str().unwrap(),
        store.to_str().unwrap(),
        "--block-size",
        "65536",
    ]));
    let after = mtimes(&store.join("blocks"));
    // Every block file of image a is untouched; b added exactly one.
    for f in &before {
        assert!(after.contains(f), "{} was rewritten", f.0);
    }
    assert_eq!(after.len(), before.len() + 1, "{out}");
    assert!(out.contains("already stored"), "{out}");
    run_ok(bin().args(["verify", store.to_str().unwrap()]));
}

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
    out
}

#[test]
fn zero_blocks_are_not_stored() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("zeros");
    std::fs::write(&src, vec![0u8; 1 << 20]).unwrap();
    let store = t.path().join("st");
    let out = run_ok(bin().args(["create", src.to_str().unwrap(), store.to_str().unwrap()]));
    assert!(out.contains("4 zero"), "{out}");
    assert!(!store.join("blocks").exists() || walk(&store.join("blocks")).is_empty());
    let dst = t.path().join("out");
    run_ok(bin().args(["cat", store.to_str().unwrap(), "-o", dst.to_str().unwrap()]));
    assert_eq!(std::fs::read(&dst).unwrap(), vec![0u8; 1 << 20]);
}

#[test]
fn bad_sources_are_clear_errors() {
    let t = tempfile::tempdir().unwrap();
    let empty = t.path().join("empty");
    std::fs::write(&empty, b"").unwrap();
    let odd = t.path().join("odd");
    std::fs::write(&odd, vec![1u8; 1000]).unwrap();
    for (src, msg) in [
        (empty, "empty"),
        (odd, "not a multiple of 512"),
        (t.path().join("missing"), "No such file"),
    ] {
        let out = run(bin().args([
            "create",
            src.to_str().unwrap(),
            t.path().join("st").to_str().unwrap(),
        ]));
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(msg), "{err}");
    }
    let out = run(bin().args(["create", "/etc/hostname", "/tmp/x", "--block-size", "3000"]));
    assert!(String::from_utf8_lossy(&out.stderr).contains("power of two"));
}

#[test]
fn verify_reports_missing_and_corrupt_blocks() {
    let t = tempfile::tempdir().unwrap();
    let src = image(t.path(), "img", 8 * 4096, 3);
    let store = t.path().join("st");
    run_ok(bin().args([
        "create",
        src.to_str().unwrap(),
        store.to_str().unwrap(),
        "--block-size",
        "4096",
    ]));
    let files = walk(&store.join("blocks"));
    assert!(files.len() >= 3);
    std::fs::remove_file(&files[0]).unwrap();
    let mut data = std::fs::read(&files[1]).unwrap();
    let last = data.len() - 1;
    data[last] ^= 1;
    std::fs::write(&files[1], data).unwrap();
    let out = run(bin().args(["verify", store.to_str().unwrap()]));
    assert_eq!(out.status.code(), Some(2));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("missing: blocks"), "{text}");
    assert!(text.contains("corrupt: blocks"), "{text}");
    // cat refuses to produce corrupt output.
    let out = run(bin().args([
        "cat",
        store.to_str().unwrap(),
        "-o",
        t.path().join("o").to_str().unwrap(),
    ]));
    assert!(!out.status.success());
}

#[test]
fn index_digest_is_enforced() {
    let t = tempfile::tempdir().unwrap();
    let src = image(t.path(), "img", 64 * 1024, 4);
    let store = t.path().join("st");
    let out = run_ok(bin().args(["create", src.to_str().unwrap(), store.to_str().unwrap()]));
    let digest = out
        .lines()
        .find(|l| l.starts_with("index sha256"))
        .unwrap()
        .split_whitespace()
        .last()
        .unwrap();
    assert_eq!(digest, sha256(&store.join("img.hbi")));
    run_ok(bin().args([
        "cat",
        store.to_str().unwrap(),
        "--index-digest",
        digest,
        "-o",
        "/dev/null",
    ]));
    let wrong = format!("{}0", &digest[..63]);
    let out = run(bin().args([
        "cat",
        store.to_str().unwrap(),
        "--index-digest",
        &wrong,
        "-o",
        "/dev/null",
    ]));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("index digest mismatch"));
}
