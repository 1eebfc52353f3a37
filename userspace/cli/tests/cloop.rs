//! import-cloop against real cloop images made by cloop-utils' create_compressed_fs.

mod common;
use common::*;

#[test]
fn import_cloop_v2() {
    let Ok(tool) = which("create_compressed_fs") else {
        return skip(
            "create_compressed_fs (cloop-utils) is not installed; tests/setup.sh installs it",
        );
    };
    let t = tempfile::tempdir().unwrap();
    let src = image(t.path(), "img", 1 << 20, 7);
    for bs in ["65536", "131072"] {
        let cl = t.path().join(format!("img{bs}.cloop"));
        let ok = std::process::Command::new(&tool)
            .args(["-q", "-B", bs, src.to_str().unwrap(), cl.to_str().unwrap()])
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(ok.success());
        let store = t.path().join("st");
        run_ok(bin().args([
            "import-cloop",
            cl.to_str().unwrap(),
            store.to_str().unwrap(),
            "--name",
            &format!("c{bs}"),
        ]));
        let dst = t.path().join("out");
        run_ok(bin().args([
            "cat",
            store.join(format!("c{bs}.hbi")).to_str().unwrap(),
            "-o",
            dst.to_str().unwrap(),
        ]));
        assert_eq!(sha256(&dst), sha256(&src), "block size {bs}");
    }
}

#[test]
fn garbage_is_not_a_cloop_image() {
    let t = tempfile::tempdir().unwrap();
    let f = image(t.path(), "junk", 8192, 8);
    let out = run(bin().args([
        "import-cloop",
        f.to_str().unwrap(),
        t.path().join("st").to_str().unwrap(),
    ]));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad cloop image"));
}

fn which(name: &str) -> Result<std::path::PathBuf, ()> {
    for dir in std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .chain(["/usr/bin", "/usr/sbin"])
    {
        let p = std::path::Path::new(dir).join(name);
        if p.exists() {
            return Ok(p);
        }
    }
    Err(())
}

/// A cloop V2 image of `block_size` blocks, each the zlib stream of the given bytes.
fn cloop_v2(path: &std::path::Path, block_size: u32, blocks: &[Vec<u8>]) {
    use std::io::Write;
    let mut head = vec![0u8; 128];
    head[..11].copy_from_slice(b"#!/bin/sh\n#");
    head[0x0b..0x0f].copy_from_slice(b"V2.0");
    head.extend_from_slice(&block_size.to_be_bytes());
    head.extend_from_slice(&(blocks.len() as u32).to_be_bytes());
    let packed: Vec<Vec<u8>> = blocks
        .iter()
        .map(|b| {
            let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
            z.write_all(b).unwrap();
            z.finish().unwrap()
        })
        .collect();
    let mut at = (head.len() + (blocks.len() + 1) * 8) as u64;
    let mut out = head;
    for p in &packed {
        out.extend_from_slice(&at.to_be_bytes());
        at += p.len() as u64;
    }
    out.extend_from_slice(&at.to_be_bytes());
    for p in &packed {
        out.extend_from_slice(p);
    }
    std::fs::write(path, out).unwrap();
}

#[test]
fn a_block_that_inflates_to_another_size_is_refused() {
    let t = tempfile::tempdir().unwrap();
    let bs = 4096u32;
    let full: Vec<u8> = (0..bs).map(|i| (i * 7 % 251) as u8).collect();
    let import = |name: &str, blocks: &[Vec<u8>]| {
        let cl = t.path().join(format!("{name}.cloop"));
        cloop_v2(&cl, bs, blocks);
        let store = t.path().join(format!("st-{name}"));
        let r = run(bin().args([
            "import-cloop",
            cl.to_str().unwrap(),
            store.to_str().unwrap(),
        ]));
        (r, store)
    };
    // Past the block size: not cut short.
    let (r, store) = import("long", &[vec![1u8; 2 * bs as usize], full.clone()]);
    assert!(!r.status.success());
    assert!(
        stderr_of(&r).contains("block 0 inflates past the block size 4096"),
        "{}",
        stderr_of(&r)
    );
    assert!(!store.join("long.hbi").exists());
    // Short, but not the last block: not zero-padded.
    let (r, _) = import("short", &[full[..1000].to_vec(), full.clone()]);
    assert!(!r.status.success());
    assert!(
        stderr_of(&r).contains("block 0 decodes to 1000 bytes, not the block size 4096"),
        "{}",
        stderr_of(&r)
    );
    // Only the last block may be short, as cloop pads it.
    let (r, store) = import("ok", &[full.clone(), full[..1000].to_vec()]);
    assert!(r.status.success(), "{}", stderr_of(&r));
    let out = t.path().join("ok.img");
    run_ok(bin().args([
        "cat",
        store.join("ok.hbi").to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]));
    let mut want = full.clone();
    want.extend_from_slice(&full[..1000]);
    want.resize(2 * bs as usize, 0);
    assert_eq!(std::fs::read(&out).unwrap(), want);
}
