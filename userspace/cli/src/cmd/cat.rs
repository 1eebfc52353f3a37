//! `httpblk cat URL|DIR`: rebuild the image in userspace.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use httpblk_core::location::Location;
use httpblk_core::reader::Reader;

use crate::progress;

/// Small blocks are gathered into writes of this size; blocks this large or larger go out
/// directly, not copied through the buffer.
const OUTPUT_BUFFER: usize = 64 << 10;

/// Write an image's bytes to a file or standard output.
#[derive(clap::Args)]
pub struct Args {
    /// A store directory with one index, an index file, or http://HOST/PATH/NAME.hbi.
    location: String,
    /// Refuse an index whose SHA-256 differs.
    #[arg(long)]
    index_digest: Option<String>,
    /// Output file (default: standard output).
    #[arg(long, short)]
    output: Option<PathBuf>,
    /// Blocks fetched concurrently.
    #[arg(long, default_value_t = 32)]
    jobs: usize,
}

pub fn run(a: Args) -> Result<i32> {
    super::runtime().block_on(async {
        let reader = Reader::open(Location::parse(&a.location)?, a.index_digest.as_deref()).await?;
        let pb = progress::bar(reader.index.image_size, "cat");
        let mut out: Box<dyn Write> = match &a.output {
            Some(p) => Box::new(std::io::BufWriter::with_capacity(
                OUTPUT_BUFFER,
                std::fs::File::create(p).with_context(|| format!("create {}", p.display()))?,
            )),
            None => Box::new(std::io::BufWriter::with_capacity(
                OUTPUT_BUFFER,
                std::io::stdout().lock(),
            )),
        };
        reader
            .cat(&mut out, a.jobs, &|n| pb.set_position(n))
            .await?;
        pb.finish_and_clear();
        Ok(0)
    })
}
