//! `httpblk import-cloop FILE OUTDIR`: convert a cloop image (V2 to V4).

use std::path::PathBuf;

use anyhow::Result;
use httpblk_core::cloop::Cloop;
use httpblk_core::create::{self, Options};

use super::image_args::{CodecArg, HashArg};

use crate::progress;

/// Convert a cloop image into an httpblk image in OUTDIR.
#[derive(clap::Args)]
pub struct Args {
    file: PathBuf,
    outdir: PathBuf,
    /// Block size of the new image (defaults to the cloop block size when it is a valid one).
    #[arg(long)]
    block_size: Option<u64>,
    #[arg(long, value_enum, default_value_t = CodecArg::Lz4)]
    codec: CodecArg,
    #[arg(long, value_enum, default_value_t = HashArg::Sha256)]
    hash: HashArg,
    /// Index name (a trailing .hbi is the suffix); defaults to the cloop file's name.
    #[arg(long)]
    name: Option<String>,
    /// Replace OUTDIR/NAME.hbi when it indexes another image.
    #[arg(long)]
    force: bool,
}

pub fn run(a: Args) -> Result<i32> {
    let a = Args {
        name: a.name.map(|n| create::index_name(&n).to_string()),
        ..a
    };
    if let Some(n) = &a.name {
        create::check_name(n)?;
    }
    let cloop = Cloop::open(&a.file)?;
    let block_size = a.block_size.unwrap_or(
        if Options::block_shift_of(cloop.block_size as u64).is_ok() {
            cloop.block_size as u64
        } else {
            256 * 1024
        },
    );
    let name = a.name.unwrap_or_else(|| {
        a.file
            .file_stem()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned()
    });
    let opts = Options {
        block_shift: Options::block_shift_of(block_size)?,
        codec: a.codec.into(),
        hash: a.hash.into(),
        name,
        force: a.force,
    };
    eprintln!(
        "cloop V{}: {} bytes in blocks of {}",
        cloop.version, cloop.size, cloop.block_size
    );
    let size = cloop.httpblk_size();
    let pb = progress::bar(size, "import");
    let started = std::time::Instant::now();
    let what = a.file.display().to_string();
    let c = create::create_from(
        Box::new(cloop.reader()),
        &what,
        size,
        &a.outdir,
        &opts,
        &|n| pb.set_position(n),
    )?;
    pb.finish_and_clear();
    super::create::print_report(&c, started.elapsed())?;
    Ok(0)
}
