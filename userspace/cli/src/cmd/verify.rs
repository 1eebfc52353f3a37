//! `httpblk verify DIR|URL`: check every referenced block decodes to its digest.

use anyhow::Result;
use httpblk_core::location::Location;
use httpblk_core::reader::Reader;

/// Check that every block of an image (or of every image in a store) is present and intact.
#[derive(clap::Args)]
pub struct Args {
    /// A store directory, an index file, or http://HOST/PATH/NAME.hbi.
    location: String,
    /// Refuse an index whose SHA-256 differs.
    #[arg(long)]
    index_digest: Option<String>,
    /// Blocks checked concurrently.
    #[arg(long, default_value_t = 32)]
    jobs: usize,
}

pub fn run(a: Args) -> Result<i32> {
    super::runtime().block_on(async {
        let mut bad = 0usize;
        for loc in Location::parse_all(&a.location)? {
            let what = loc.describe(&loc.index_name);
            let reader = Reader::open(loc, a.index_digest.as_deref()).await?;
            let problems = reader.verify(a.jobs).await;
            for p in &problems {
                let kind = if p.missing { "missing" } else { "corrupt" };
                let blocks: Vec<String> = p.blocks.iter().take(8).map(u64::to_string).collect();
                let more = if p.blocks.len() > 8 { ", …" } else { "" };
                println!("{kind}: blocks {}{more}: {}", blocks.join(", "), p.reason);
            }
            let n = reader.index.entries.len();
            if problems.is_empty() {
                println!(
                    "{what}: ok ({n} blocks, index sha256 {})",
                    reader.index_sha256
                );
            } else {
                println!("{what}: {} bad block files", problems.len());
            }
            bad += problems.len();
        }
        Ok(if bad == 0 { 0 } else { 2 })
    })
}
