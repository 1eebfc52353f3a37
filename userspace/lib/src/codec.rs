//! Block codecs. Each one emits exactly what the Linux 6.12 kernel decodes:
//! lzo = lzo1x for `lzo1x_decompress_safe`, lz4 = the LZ4 block format of crypto "lz4",
//! zstd = a zstd frame, zlib = a zlib stream for lib/zlib_inflate.

use std::io::{Read, Write};

use crate::uapi::{CODEC_LZ4, CODEC_LZO, CODEC_NONE, CODEC_ZLIB, CODEC_ZSTD};
use crate::{Error, Result};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Codec {
    None,
    Lzo,
    Lz4,
    Zstd,
    Zlib,
}

impl Codec {
    pub const ALL: [Codec; 5] = [
        Codec::None,
        Codec::Lzo,
        Codec::Lz4,
        Codec::Zstd,
        Codec::Zlib,
    ];

    pub fn id(self) -> u8 {
        match self {
            Codec::None => CODEC_NONE,
            Codec::Lzo => CODEC_LZO,
            Codec::Lz4 => CODEC_LZ4,
            Codec::Zstd => CODEC_ZSTD,
            Codec::Zlib => CODEC_ZLIB,
        }
    }

    pub fn from_id(id: u8) -> Result<Self> {
        Codec::ALL
            .into_iter()
            .find(|c| c.id() == id)
            .ok_or_else(|| Error::BadBlockFile(format!("unknown codec {id}")))
    }

    pub fn name(self) -> &'static str {
        match self {
            Codec::None => "none",
            Codec::Lzo => "lzo",
            Codec::Lz4 => "lz4",
            Codec::Zstd => "zstd",
            Codec::Zlib => "zlib",
        }
    }

    pub fn from_name(name: &str) -> Result<Self> {
        Codec::ALL
            .into_iter()
            .find(|c| c.name() == name)
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "unknown codec '{name}' (none, lzo, lz4, zstd, zlib)"
                ))
            })
    }

    fn err(self, reason: impl ToString) -> Error {
        Error::Codec {
            codec: self.name(),
            reason: reason.to_string(),
        }
    }

    /// Compresses `raw` (never empty: an empty block is never encoded).
    pub fn compress(self, raw: &[u8]) -> Result<Vec<u8>> {
        assert!(!raw.is_empty(), "empty blocks are never encoded");
        match self {
            Codec::None => Ok(raw.to_vec()),
            Codec::Lzo => Ok(lzo1x::compress(raw, lzo1x::CompressLevel::default())),
            Codec::Lz4 => Ok(lz4_flex::block::compress(raw)),
            Codec::Zstd => zstd::bulk::compress(raw, 3).map_err(|e| self.err(e)),
            Codec::Zlib => {
                let mut enc =
                    flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::new(6));
                enc.write_all(raw).map_err(|e| self.err(e))?;
                enc.finish().map_err(|e| self.err(e))
            }
        }
    }

    /// Decompresses `payload` into `out`, which must come out exactly `out.len()` bytes long.
    ///
    /// # Errors
    /// `Codec` when the payload is corrupt or decodes to another length.
    pub fn decompress_into(self, payload: &[u8], out: &mut [u8]) -> Result<()> {
        let want = out.len();
        let got = match self {
            Codec::None => {
                if payload.len() != want {
                    return Err(self.err(format!(
                        "raw payload is {} bytes, expected {want}",
                        payload.len()
                    )));
                }
                out.copy_from_slice(payload);
                want
            }
            Codec::Lzo => {
                // lzo1x::decompress demands the exact output length, as the kernel's does.
                lzo1x::decompress(payload, out).map_err(|e| self.err(e))?;
                want
            }
            Codec::Lz4 => {
                lz4_flex::block::decompress_into(payload, out).map_err(|e| self.err(e))?
            }
            Codec::Zstd => {
                let mut d = zstd::bulk::Decompressor::new().map_err(|e| self.err(e))?;
                d.decompress_to_buffer(payload, out)
                    .map_err(|e| self.err(e))?
            }
            Codec::Zlib => {
                let mut dec = flate2::read::ZlibDecoder::new(payload);
                let mut n = 0;
                while n < want {
                    match dec.read(&mut out[n..]).map_err(|e| self.err(e))? {
                        0 => break,
                        k => n += k,
                    }
                }
                let mut extra = [0u8; 1];
                if n == want && dec.read(&mut extra).map_err(|e| self.err(e))? != 0 {
                    return Err(self.err("decodes to more than the block length"));
                }
                n
            }
        };
        if got != want {
            return Err(self.err(format!("decoded {got} bytes, expected {want}")));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(n: usize) -> Vec<u8> {
        (0..n).map(|i| ((i * 7) ^ (i >> 5)) as u8 % 13).collect()
    }

    #[test]
    fn every_codec_round_trips() {
        for codec in Codec::ALL {
            for n in [1, 100, 4096, 65536 + 3] {
                let raw = sample(n);
                let enc = codec.compress(&raw).unwrap();
                let mut out = vec![0; n];
                codec.decompress_into(&enc, &mut out).unwrap();
                assert_eq!(out, raw, "{codec:?} n={n}");
            }
        }
    }

    #[test]
    fn wrong_length_is_an_error() {
        for codec in Codec::ALL {
            let raw = sample(4096);
            let enc = codec.compress(&raw).unwrap();
            let mut short = vec![0; 4095];
            let mut long = vec![0; 4097];
            assert!(
                codec.decompress_into(&enc, &mut short).is_err(),
                "{codec:?} short"
            );
            assert!(
                codec.decompress_into(&enc, &mut long).is_err(),
                "{codec:?} long"
            );
        }
    }
}
