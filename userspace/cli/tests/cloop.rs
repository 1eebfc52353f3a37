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
