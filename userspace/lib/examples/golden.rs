//! Writes the golden codec vectors to tests/golden/ (run from the repository root):
//! for each input NAME.raw, one compressed stream NAME.CODEC per codec. They are checked in;
//! `cargo test` decodes them, and so will the kernel's in-kernel codecs.

use httpblk_core::codec::Codec;

fn main() {
    let dir = std::path::Path::new(
        &std::env::args()
            .nth(1)
            .unwrap_or_else(|| "tests/golden".into()),
    )
    .to_path_buf();
    std::fs::create_dir_all(&dir).unwrap();
    let mut x = 0x1234_5678_9abc_def1u64;
    let mut rnd = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let text: Vec<u8> =
        b"httpblk golden vector: the quick brown fox jumps over the lazy dog. ".repeat(64);
    let inputs: Vec<(&str, Vec<u8>)> = vec![
        ("one-byte", vec![0x5a]),
        ("text-4k", text[..4096].to_vec()),
        (
            "pattern-64k",
            (0..65536u32).map(|i| ((i / 7) % 251) as u8).collect(),
        ),
        (
            "mixed-256k",
            (0..262144u32)
                .map(|i| {
                    if (i / 4096) % 2 == 0 {
                        (i % 13) as u8
                    } else {
                        rnd() as u8
                    }
                })
                .collect(),
        ),
        ("random-4k", (0..4096).map(|_| rnd() as u8).collect()),
        // The smallest possible image: one sector (one-byte cannot be an image block).
        ("sector-512", text[..512].iter().rev().copied().collect()),
    ];
    for (name, raw) in inputs {
        std::fs::write(dir.join(format!("{name}.raw")), &raw).unwrap();
        for codec in Codec::ALL.into_iter().filter(|c| *c != Codec::None) {
            std::fs::write(
                dir.join(format!("{name}.{}", codec.name())),
                codec.compress(&raw).unwrap(),
            )
            .unwrap();
        }
    }
}
