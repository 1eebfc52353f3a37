//! The image options `create` and `import-cloop` share: codec and hash as the values `--help`
//! lists, checked by clap; and the `--index-digest` every reader takes.

use httpblk_core::codec::Codec;
use httpblk_core::digest::HashAlg;

/// Block codec (each is what the 6.12 kernel decodes in place).
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum CodecArg {
    /// Stored as is.
    None,
    /// LZO1X-1.
    Lzo,
    /// LZ4 block format.
    Lz4,
    /// One zstd frame.
    Zstd,
    /// A zlib stream.
    Zlib,
}

impl From<CodecArg> for Codec {
    fn from(c: CodecArg) -> Codec {
        match c {
            CodecArg::None => Codec::None,
            CodecArg::Lzo => Codec::Lzo,
            CodecArg::Lz4 => Codec::Lz4,
            CodecArg::Zstd => Codec::Zstd,
            CodecArg::Zlib => Codec::Zlib,
        }
    }
}

/// Block digest, which names each block file.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum HashArg {
    Sha256,
    /// As HTTP-FUSE CLOOP did; blocks are never shared across images in the kernel's cache.
    Md5,
}

impl From<HashArg> for HashAlg {
    fn from(h: HashArg) -> HashAlg {
        match h {
            HashArg::Sha256 => HashAlg::Sha256,
            HashArg::Md5 => HashAlg::Md5,
        }
    }
}

/// Parses `--index-digest`: an index's SHA-256 as `create` prints it, 64 hex digits.
pub fn index_digest(s: &str) -> Result<String, String> {
    match hex::decode(s) {
        Ok(b) if b.len() == 32 => Ok(s.to_ascii_lowercase()),
        _ => Err(format!(
            "{} is not an index SHA-256: 64 hex digits, as `httpblk create` prints after \"index sha256\"",
            if s.len() > 80 { "this" } else { s }
        )),
    }
}
