//! Makes one-block images whose block files carry the checked-in golden vectors verbatim
//! (tests/golden/NAME.CODEC, not recompressed), so that the VM suite proves the kernel's
//! decoders read exactly what userspace wrote:
//!   golden_store GOLDEN_DIR OUT_DIR  ->  OUT_DIR/CODEC/NAME.hbi + blocks, one store per codec
//! (a store per codec because equal content gets one file name whatever its codec).
//! Inputs whose length is not a whole number of sectors cannot be an image and are skipped.

use std::path::Path;

use httpblk_core::codec::Codec;
use httpblk_core::digest::HashAlg;
use httpblk_core::index::{Entry, Index};
use httpblk_core::store::{block_rel_path, replace_file};
use httpblk_core::uapi::{BLOCK_MAGIC, BLOCK_VERSION};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (golden, out) = (Path::new(&args[1]), Path::new(&args[2]));
    let mut made = 0;
    for e in std::fs::read_dir(golden).expect("golden dir") {
        let p = e.unwrap().path();
        if p.extension().and_then(|x| x.to_str()) != Some("raw") {
            continue;
        }
        let raw = std::fs::read(&p).unwrap();
        if raw.len() % 512 != 0 {
            continue;
        }
        let name = p.file_stem().unwrap().to_str().unwrap();
        for codec in Codec::ALL.into_iter().filter(|c| *c != Codec::None) {
            let stream = std::fs::read(p.with_extension(codec.name())).unwrap();
            let mut file = BLOCK_MAGIC.to_vec();
            file.extend_from_slice(&[BLOCK_VERSION, codec.id(), 0, 0]);
            file.extend_from_slice(&(raw.len() as u32).to_le_bytes());
            file.extend_from_slice(&(stream.len() as u32).to_le_bytes());
            file.extend_from_slice(&stream);
            // One block, shorter than the block size, with room for a stream that grew.
            let shift = (raw.len() * 2)
                .next_power_of_two()
                .max(4096)
                .trailing_zeros() as u8;
            let digest = HashAlg::Sha256.digest(&raw);
            let store = out.join(codec.name());
            let block_path = store.join(block_rel_path(&digest));
            std::fs::create_dir_all(block_path.parent().unwrap()).unwrap();
            replace_file(&block_path, &file).unwrap();
            let index = Index {
                image_size: raw.len() as u64,
                block_shift: shift,
                hash: HashAlg::Sha256,
                entries: vec![Entry {
                    digest,
                    stored_len: file.len() as u32,
                }],
            };
            replace_file(&store.join(format!("{name}.hbi")), &index.to_bytes()).unwrap();
            made += 1;
        }
    }
    println!("{made} golden images");
}
