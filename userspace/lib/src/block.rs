//! Block files: a 16-byte header (magic, version, codec, raw and payload lengths) and the
//! payload. Self-describing, so one store can mix codecs. Layout in Documentation/format.md.

use crate::codec::Codec;
use crate::uapi::{BLOCK_HEADER_LEN, BLOCK_MAGIC, BLOCK_VERSION};
use crate::{Error, Result};

/// Encodes a block: compressed with `codec`, or raw when that does not shrink it.
pub fn encode(codec: Codec, raw: &[u8]) -> Result<Vec<u8>> {
    let packed = codec.compress(raw)?;
    let (codec, payload) = if packed.len() < raw.len() {
        (codec, packed)
    } else {
        (Codec::None, raw.to_vec())
    };
    let mut out = Vec::with_capacity(BLOCK_HEADER_LEN + payload.len());
    out.extend_from_slice(&BLOCK_MAGIC);
    out.push(BLOCK_VERSION);
    out.push(codec.id());
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&(raw.len() as u32).to_le_bytes());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&payload);
    Ok(out)
}

/// The largest block file a block of `block_size` bytes can have (a block that does not
/// shrink is stored uncompressed).
pub fn max_file_len(block_size: usize) -> usize {
    BLOCK_HEADER_LEN + block_size
}

/// A parsed block header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub codec: Codec,
    pub raw_len: u32,
    pub payload_len: u32,
}

/// Parses and checks a block file's header against its length.
pub fn parse_header(file: &[u8]) -> Result<Header> {
    let bad = |m: String| Error::BadBlockFile(m);
    if file.len() < BLOCK_HEADER_LEN {
        return Err(bad(format!("truncated: {} bytes", file.len())));
    }
    if file[..4] != BLOCK_MAGIC {
        return Err(bad("bad magic".into()));
    }
    if file[4] != BLOCK_VERSION {
        return Err(bad(format!("unsupported version {}", file[4])));
    }
    let codec = Codec::from_id(file[5])?;
    if file[6] != 0 || file[7] != 0 {
        return Err(bad("reserved bytes are not zero".into()));
    }
    let raw_len = u32::from_le_bytes(file[8..12].try_into().unwrap());
    let payload_len = u32::from_le_bytes(file[12..16].try_into().unwrap());
    if payload_len as usize != file.len() - BLOCK_HEADER_LEN {
        return Err(bad(format!(
            "payload length {payload_len} but file has {}",
            file.len() - BLOCK_HEADER_LEN
        )));
    }
    Ok(Header {
        codec,
        raw_len,
        payload_len,
    })
}

/// Decodes a block file into `out`, whose length is the block's raw length from the index.
pub fn decode_into(file: &[u8], out: &mut [u8]) -> Result<()> {
    let h = parse_header(file)?;
    if h.raw_len as usize != out.len() {
        return Err(Error::BadBlockFile(format!(
            "raw length {} but the index says {}",
            h.raw_len,
            out.len()
        )));
    }
    h.codec.decompress_into(&file[BLOCK_HEADER_LEN..], out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incompressible_is_stored_raw() {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let raw: Vec<u8> = (0..4096)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 32) as u8
            })
            .collect();
        let f = encode(Codec::Lz4, &raw).unwrap();
        assert_eq!(parse_header(&f).unwrap().codec, Codec::None);
        let mut out = vec![0; raw.len()];
        decode_into(&f, &mut out).unwrap();
        assert_eq!(out, raw);
    }

    #[test]
    fn header_lies_are_rejected() {
        let raw = vec![7u8; 4096];
        let good = encode(Codec::Zstd, &raw).unwrap();
        let mut out = vec![0; 4096];
        // Magic, version, codec, reserved, raw length, payload length.
        for off in [0, 4, 5, 6, 9, 12] {
            let mut f = good.clone();
            f[off] ^= 0xff;
            assert!(decode_into(&f, &mut out).is_err(), "offset {off}");
        }
        assert!(decode_into(&good[..good.len() - 1], &mut out).is_err());
        assert!(decode_into(&good, &mut out[..4000]).is_err());
    }
}
