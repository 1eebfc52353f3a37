//! Property tests: the index and block parsers never panic and never accept inconsistent input,
//! whatever bytes they get (random, truncated or mutated valid files).

use httpblk_core::block;
use httpblk_core::codec::Codec;
use httpblk_core::digest::{BlockDigest, HashAlg};
use httpblk_core::index::{Entry, Index};
use proptest::prelude::*;

fn valid_index(blocks: usize, shift: u8, hash: HashAlg, tail: u64) -> Index {
    let bs = 1u64 << shift;
    let image_size = (blocks as u64 - 1) * bs + tail.clamp(1, bs / 512) * 512;
    let entries = (0..blocks)
        .map(|i| {
            if i % 3 == 1 {
                Entry {
                    digest: BlockDigest::from_slice(&vec![0; hash.digest_len()]),
                    stored_len: 0,
                }
            } else {
                Entry {
                    digest: hash.digest(&i.to_le_bytes()),
                    stored_len: 17 + i as u32,
                }
            }
        })
        .collect();
    Index {
        image_size,
        block_shift: shift,
        hash,
        entries,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = Index::parse(&data);
        let mut out = vec![0u8; 4096];
        let _ = block::decode_into(&data, &mut out);
    }

    #[test]
    fn valid_indexes_round_trip(blocks in 1usize..40, shift in 12u8..=22, md5 in any::<bool>(), tail in 1u64..64) {
        let hash = if md5 { HashAlg::Md5 } else { HashAlg::Sha256 };
        let idx = valid_index(blocks, shift, hash, tail);
        prop_assert_eq!(Index::parse(&idx.to_bytes()).unwrap(), idx);
    }

    #[test]
    fn mutated_indexes_parse_consistently(
        blocks in 1usize..20,
        pos in any::<prop::sample::Index>(),
        byte in any::<u8>(),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let mut b = valid_index(blocks, 16, HashAlg::Sha256, 7).to_bytes();
        if truncate {
            b.truncate(cut.index(b.len()));
        } else {
            let i = pos.index(b.len());
            b[i] = byte;
        }
        // Whatever parses must be self-consistent: it re-serializes to the same bytes.
        if let Ok(idx) = Index::parse(&b) {
            prop_assert_eq!(idx.to_bytes(), b);
            prop_assert!(idx.image_size > 0 && idx.image_size % 512 == 0);
            for e in &idx.entries {
                prop_assert!(e.stored_len == 0 || e.stored_len as u64 <= 16 + idx.block_size());
            }
        }
    }

    #[test]
    fn mutated_block_files_never_decode_wrong(
        codec in prop::sample::select(Codec::ALL.to_vec()),
        seed in any::<u64>(),
        pos in any::<prop::sample::Index>(),
        byte in any::<u8>(),
    ) {
        let mut x = seed | 1;
        let raw: Vec<u8> = (0..8192).map(|i| if i % 64 < 40 { (i / 64) as u8 } else {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17; x as u8
        }).collect();
        let mut file = block::encode(codec, &raw).unwrap();
        let i = pos.index(file.len());
        file[i] = byte;
        let mut out = vec![0u8; raw.len()];
        // A mutated file may fail or may still decode; a reader then checks the digest.
        // It must never panic or write past the output.
        let _ = block::decode_into(&file, &mut out);
    }
}
