//! The checked-in golden vectors (tests/golden/, made by `examples/golden.rs`) decode to their
//! inputs byte for byte. The VM suite decodes the same files with the kernel's codecs.

use httpblk_core::codec::Codec;

#[test]
fn golden_vectors_decode() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/golden");
    let mut checked = 0;
    for e in std::fs::read_dir(&dir).expect("tests/golden is checked in") {
        let p = e.unwrap().path();
        if p.extension().and_then(|x| x.to_str()) != Some("raw") {
            continue;
        }
        let raw = std::fs::read(&p).unwrap();
        for codec in Codec::ALL.into_iter().filter(|c| *c != Codec::None) {
            let packed = std::fs::read(p.with_extension(codec.name())).unwrap();
            let mut out = vec![0u8; raw.len()];
            codec
                .decompress_into(&packed, &mut out)
                .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            assert_eq!(out, raw, "{} {}", p.display(), codec.name());
            checked += 1;
        }
    }
    assert_eq!(checked, 6 * 4, "every input has a vector for every codec");
}
