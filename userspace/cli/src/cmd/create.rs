//! `httpblk create SOURCE OUTDIR`: make an image (or add one to an existing store).

use std::path::PathBuf;

use anyhow::Result;
use httpblk_core::create::{self, Created, Options};

use super::image_args::{CodecArg, HashArg};

use crate::progress;

/// Cut a file or block device into compressed, content-named blocks plus an index.
#[derive(clap::Args)]
pub struct Args {
    /// The image: a regular file or a block device (size a multiple of 512).
    source: PathBuf,
    /// The store directory; may already hold other images' blocks.
    outdir: PathBuf,
    /// Block size in bytes: a power of two from 4096 to 4194304.
    #[arg(long, default_value_t = 256 * 1024)]
    block_size: u64,
    #[arg(long, value_enum, default_value_t = CodecArg::Lz4)]
    codec: CodecArg,
    #[arg(long, value_enum, default_value_t = HashArg::Sha256)]
    hash: HashArg,
    /// Index name (OUTDIR/NAME.hbi; a trailing .hbi is the suffix); defaults to the
    /// source's file name.
    #[arg(long)]
    name: Option<String>,
    /// Replace OUTDIR/NAME.hbi when it indexes another image.
    #[arg(long)]
    force: bool,
}

pub fn run(a: Args) -> Result<i32> {
    let block_shift = Options::block_shift_of(a.block_size)?;
    // The source before its name: a directory's name makes a poor index name.
    let size = create::source_size(&a.source)?;
    let name = match a.name {
        Some(n) => create::index_name(&n).to_string(),
        None => a
            .source
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "image".into()),
    };
    create::check_name(&name)?;
    let opts = Options {
        block_shift,
        codec: a.codec.into(),
        hash: a.hash.into(),
        name,
        force: a.force,
    };
    let pb = progress::bar(size, "create");
    let started = std::time::Instant::now();
    let c = create::create(&a.source, &a.outdir, &opts, &|n| pb.set_position(n))?;
    pb.finish_and_clear();
    print_report(&c, started.elapsed())?;
    Ok(0)
}

pub fn print_report(c: &Created, took: std::time::Duration) -> std::io::Result<()> {
    let s = &c.stats;
    outln!("index          {}", c.index_path.display())?;
    outln!("index sha256   {}", c.index_sha256)?;
    outln!(
        "image size     {} bytes, block size {}",
        c.index.image_size,
        c.index.block_size()
    )?;
    outln!(
        "blocks         {} total, {} unique, {} zero, {} already stored",
        s.blocks,
        s.unique,
        s.zero,
        s.already_stored
    )?;
    if s.repaired > 0 {
        outln!(
            "repaired       {} damaged block files in the store",
            s.repaired
        )?;
    }
    outln!(
        "bytes          {} in, {} stored, {} written now",
        s.bytes_in,
        s.unique_stored_bytes,
        s.bytes_written
    )?;
    outln!("dedupe ratio   {:.3}", s.dedupe_ratio())?;
    outln!("compression    {:.3}", s.compression_ratio())?;
    outln!(
        "took           {:.2} s ({:.1} MB/s)",
        took.as_secs_f64(),
        s.bytes_in as f64 / 1e6 / took.as_secs_f64()
    )
}
