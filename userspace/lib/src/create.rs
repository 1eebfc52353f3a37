//! `create`: cut a source into blocks, hash, dedupe, compress on all cores, write the store.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use rayon::prelude::*;

use crate::block;
use crate::codec::Codec;
use crate::digest::{sha256_hex, BlockDigest, HashAlg};
use crate::error::IoContext;
use crate::index::{block_count, Entry, Index};
use crate::location::read_bounded;
use crate::store::{block_rel_path, commit, replace_file, stage, sync_fs, INDEX_SUFFIX};
use crate::uapi::{MAX_BLOCKS, MAX_BLOCK_SHIFT, MIN_BLOCK_SHIFT};
use crate::{Error, Result};

#[derive(Clone, Debug)]
pub struct Options {
    pub block_shift: u8,
    pub codec: Codec,
    pub hash: HashAlg,
    /// Index name: the index is written to `OUTDIR/NAME.hbi`.
    pub name: String,
    /// Replace `OUTDIR/NAME.hbi` when it indexes another image (the same image is always
    /// rewritten in place).
    pub force: bool,
}

/// The index name `arg` means: a trailing `.hbi` is the suffix, not part of the name
/// (`--name disk.hbi` writes `disk.hbi`, not `disk.hbi.hbi`).
pub fn index_name(arg: &str) -> &str {
    arg.strip_suffix(INDEX_SUFFIX)
        .filter(|n| !n.is_empty())
        .unwrap_or(arg)
}

/// Checks an index name: the index is written to `OUTDIR/NAME.hbi`, so a name must not leave
/// the directory or hide in it.
pub fn check_name(name: &str) -> Result<()> {
    if name.is_empty()
        || name == "."
        || name == ".."
        || name.starts_with('.')
        || name.contains(['/', '\\', '\0'])
    {
        return Err(Error::Invalid(format!(
            "index name '{}' must be a plain file name: not empty, no '/', not starting with '.'",
            name.escape_debug()
        )));
    }
    Ok(())
}

impl Options {
    /// Checks a block size in bytes and returns its shift.
    pub fn block_shift_of(size: u64) -> Result<u8> {
        if !size.is_power_of_two()
            || !(MIN_BLOCK_SHIFT..=MAX_BLOCK_SHIFT).contains(&(size.trailing_zeros() as u8))
        {
            return Err(Error::Invalid(format!(
                "block size {size} must be a power of two from 4 KiB to 4 MiB"
            )));
        }
        Ok(size.trailing_zeros() as u8)
    }
}

/// What `create` did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub blocks: u64,
    /// Distinct non-zero blocks in this image.
    pub unique: u64,
    pub zero: u64,
    /// Unique blocks that the store already held.
    pub already_stored: u64,
    /// Block files the store held damaged (wrong length or header) and that were rewritten.
    pub repaired: u64,
    pub bytes_in: u64,
    /// Raw bytes of the unique blocks.
    pub unique_raw_bytes: u64,
    /// Stored bytes of the unique blocks.
    pub unique_stored_bytes: u64,
    /// Bytes this run wrote to the store.
    pub bytes_written: u64,
}

impl Stats {
    /// Non-zero blocks per unique block.
    pub fn dedupe_ratio(&self) -> f64 {
        (self.blocks - self.zero) as f64 / self.unique.max(1) as f64
    }

    /// Raw bytes per stored byte, over the unique blocks.
    pub fn compression_ratio(&self) -> f64 {
        self.unique_raw_bytes as f64 / self.unique_stored_bytes.max(1) as f64
    }
}

/// The result of `create`.
pub struct Created {
    pub index: Index,
    pub index_path: PathBuf,
    /// SHA-256 of the index file: the image identity a client pins.
    pub index_sha256: String,
    pub stats: Stats,
}

/// What became of one unique block's file.
enum Outcome {
    /// The store had it, intact.
    Kept,
    New(crate::store::Staged),
    /// The store had it damaged; this replaces it.
    Repaired(crate::store::Staged),
}

/// The stored length of the block file at `path` if it is there and holds exactly `raw`
/// (length in range, header intact, and its content decoded and compared: a file of the
/// right length and header but other bytes, tampered with or damaged, is not reused);
/// `None` if absent; the reason if damaged.
fn existing_block(path: &Path, raw: &[u8], block_size: usize) -> Result<Option<u32>, String> {
    let max = block::max_file_len(block_size);
    let file = match read_bounded(path, max) {
        Ok(f) => f,
        Err(Error::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    let h = block::parse_header(&file).map_err(|e| e.to_string())?;
    if h.raw_len as usize != raw.len() {
        return Err(format!(
            "header says {} bytes, the block has {}",
            h.raw_len,
            raw.len()
        ));
    }
    let mut decoded = vec![0u8; raw.len()];
    block::decode_into(&file, &mut decoded).map_err(|e| e.to_string())?;
    if decoded != raw {
        return Err("its content is not the block its name says".into());
    }
    Ok(Some(file.len() as u32))
}

/// Fails when `path` holds an index other than `bytes` (of another image, or of this one
/// made with other settings): replacing it would silently repoint every client of that name.
/// The block files written meanwhile are harmless (named by content, shared by any index).
fn refuse_other_index(path: &Path, bytes: &[u8]) -> Result<()> {
    let old = match read_bounded(path, bytes.len() + 1) {
        Ok(old) => old,
        Err(Error::NotFound { .. }) => return Ok(()),
        // Larger than this index, or unreadable: not this image's index either way.
        Err(_) => Vec::new(),
    };
    if old == bytes {
        return Ok(());
    }
    Err(Error::Invalid(format!(
        "{} already indexes another image: give --force to replace it, or another --name \
         (this image's blocks are stored)",
        path.display()
    )))
}

/// Blocks read and processed together; bounds memory to two batches in flight.
const BATCH_BYTES: usize = 32 << 20;

/// Size of a source file or block device, checked.
pub fn source_size(path: &Path) -> Result<u64> {
    use std::os::unix::fs::FileTypeExt;
    let kind = std::fs::metadata(path).at(path)?.file_type();
    if !kind.is_file() && !kind.is_block_device() {
        let what = if kind.is_dir() {
            "a directory"
        } else if kind.is_fifo() {
            "a pipe"
        } else if kind.is_socket() {
            "a socket"
        } else {
            "not a regular file"
        };
        return Err(Error::BadSource(format!(
            "{}: {what}: give an image file or a block device (its size must be known)",
            path.display()
        )));
    }
    let mut f = File::open(path).at(path)?;
    let size = f.seek(SeekFrom::End(0)).at(path)?;
    if size == 0 {
        return Err(Error::BadSource(format!("{}: empty", path.display())));
    }
    if size % 512 != 0 {
        return Err(Error::BadSource(format!(
            "{}: size {size} is not a multiple of 512",
            path.display()
        )));
    }
    Ok(size)
}

/// Creates an image of the file or block device `source` in `outdir`.
/// `progress` is called with bytes processed.
pub fn create(
    source: &Path,
    outdir: &Path,
    opts: &Options,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Created> {
    let image_size = source_size(source)?;
    let f = File::open(source).at(source)?;
    create_from(
        Box::new(f),
        &source.display().to_string(),
        image_size,
        outdir,
        opts,
        progress,
    )
}

/// Creates an image from `image_size` bytes of `input` (named `what` in errors).
pub fn create_from(
    mut input: Box<dyn Read + Send>,
    what: &str,
    image_size: u64,
    outdir: &Path,
    opts: &Options,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Created> {
    check_name(&opts.name)?;
    let bs = 1usize << opts.block_shift;
    let count = block_count(image_size, opts.block_shift);
    if count > MAX_BLOCKS {
        return Err(Error::BadSource(format!(
            "{count} blocks exceed the limit of {MAX_BLOCKS}: use a larger block size"
        )));
    }
    std::fs::create_dir_all(outdir).at(outdir)?;
    let batch_blocks = (BATCH_BYTES / bs).max(1);

    // A reader thread keeps the next batch coming while this one is compressed.
    let (tx, rx) = mpsc::sync_channel::<Result<Vec<u8>>>(1);
    let src = PathBuf::from(what);
    let reader = std::thread::spawn(move || {
        let mut left = image_size;
        while left > 0 {
            let n = left.min((batch_blocks * bs) as u64) as usize;
            let mut buf = vec![0u8; n];
            let r = input.read_exact(&mut buf).at(&src).map(|_| buf);
            let failed = r.is_err();
            if tx.send(r).is_err() || failed {
                return;
            }
            left -= n as u64;
        }
    });

    let mut entries = Vec::with_capacity(count as usize);
    let mut stats = Stats {
        blocks: count,
        bytes_in: image_size,
        ..Default::default()
    };
    // Stored length of every distinct block of the image (0 while its write is pending).
    let mut known: HashMap<BlockDigest, u32> = HashMap::new();
    let zero_digest = BlockDigest::from_slice(&[0; 32][..opts.hash.digest_len()]);
    let mut done = 0u64;
    for batch in rx {
        let batch = batch?;
        let chunks: Vec<&[u8]> = batch.chunks(bs).collect();
        let digests: Vec<Option<BlockDigest>> = chunks
            .par_iter()
            .map(|c| {
                if c.iter().all(|&b| b == 0) {
                    None
                } else {
                    Some(opts.hash.digest(c))
                }
            })
            .collect();
        // Decide sequentially which blocks are new, so a duplicate is compressed once.
        let mut todo = Vec::new();
        for (i, d) in digests.iter().enumerate() {
            match d {
                None => stats.zero += 1,
                Some(d) if !known.contains_key(d) => {
                    known.insert(*d, 0);
                    stats.unique += 1;
                    stats.unique_raw_bytes += chunks[i].len() as u64;
                    todo.push(i);
                }
                Some(_) => {}
            }
        }
        // Existing block files are used only when they decode to this very block; a damaged
        // one (truncated, emptied by a crash, tampered with) is written again, atomically.
        let written: Vec<Result<(usize, u32, Outcome)>> = todo
            .par_iter()
            .map(|&i| {
                let d = digests[i].as_ref().unwrap();
                let path = outdir.join(block_rel_path(d));
                let repair = match existing_block(&path, chunks[i], bs) {
                    Ok(Some(len)) => return Ok((i, len, Outcome::Kept)),
                    Ok(None) => false,
                    Err(why) => {
                        tracing::warn!("{}: {why}: writing it again", path.display());
                        true
                    }
                };
                let file = block::encode(opts.codec, chunks[i])?;
                let staged = stage(&path, &file)?;
                let outcome = if repair {
                    Outcome::Repaired(staged)
                } else {
                    Outcome::New(staged)
                };
                Ok((i, file.len() as u32, outcome))
            })
            .collect();
        let mut staged = Vec::new();
        for w in written {
            let (i, len, outcome) = w?;
            known.insert(digests[i].unwrap(), len);
            stats.unique_stored_bytes += len as u64;
            match outcome {
                Outcome::Kept => stats.already_stored += 1,
                Outcome::New(s) => {
                    stats.bytes_written += len as u64;
                    staged.push(s);
                }
                Outcome::Repaired(s) => {
                    stats.bytes_written += len as u64;
                    stats.repaired += 1;
                    staged.push(s);
                }
            }
        }
        commit(outdir, staged)?;
        for d in &digests {
            entries.push(match d {
                None => Entry {
                    digest: zero_digest,
                    stored_len: 0,
                },
                Some(d) => Entry {
                    digest: *d,
                    stored_len: known[d],
                },
            });
        }
        done += batch.len() as u64;
        progress(done);
    }
    reader.join().expect("reader thread panicked");
    if entries.len() as u64 != count {
        return Err(Error::BadSource(format!("{what}: shrank while reading")));
    }

    let index = Index {
        image_size,
        block_shift: opts.block_shift,
        hash: opts.hash,
        entries,
    };
    let bytes = index.to_bytes();
    let index_path = outdir.join(format!("{}{INDEX_SUFFIX}", opts.name));
    if !opts.force {
        refuse_other_index(&index_path, &bytes)?;
    }
    replace_file(&index_path, &bytes)?;
    // The renames of this run's block files, durable with the index.
    sync_fs(outdir)?;
    Ok(Created {
        index_sha256: sha256_hex(&bytes),
        index,
        index_path,
        stats,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_names_are_plain_file_names() {
        for good in ["disk", "disk-2024.05", "a b", "x..y"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in ["", ".", "..", "../x", "a/b", ".hidden", "a\\b", "a\0b"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }
}
