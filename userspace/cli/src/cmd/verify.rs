//! `httpblk verify DIR|FILE|URL...`: check every referenced block decodes to its digest.

use anyhow::Result;
use httpblk_core::http::image_url::is_url;
use httpblk_core::location::Location;
use httpblk_core::reader::Reader;

use super::http_args::HttpArgs;

/// Check that every block of an image (or of every image in a store) is present and intact:
/// each bad block file is listed as missing, corrupt or unreachable (exit status 2).
#[derive(clap::Args)]
pub struct Args {
    /// A store directory (every index in it), an index file, or http[s]://HOST/PATH/NAME.hbi
    /// (several: mirrors of one image).
    #[arg(required = true, num_args = 1..)]
    location: Vec<String>,
    /// Refuse an index whose SHA-256 differs (in a directory: check only that index).
    #[arg(long, value_name = "SHA256", value_parser = super::image_args::index_digest)]
    index_digest: Option<String>,
    /// Blocks checked concurrently.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=1024))]
    jobs: u32,
    #[command(flatten)]
    http: HttpArgs,
}

pub fn run(a: Args) -> Result<i32> {
    let pin = a.index_digest.as_deref();
    let locations = if a.location.len() == 1 && !is_url(&a.location[0]) && pin.is_none() {
        Location::parse_all(&a.location[0])?
    } else {
        vec![Location::parse(&a.location, pin)?]
    };
    let opts = a.http.options()?;
    super::runtime().block_on(async {
        let mut bad = 0usize;
        for loc in locations {
            let what = loc.describe();
            let reader = Reader::open(loc, pin, &opts).await?;
            let problems = reader.verify(a.jobs as usize).await;
            for p in &problems {
                let kind = p.kind.as_str();
                let blocks: Vec<String> = p.blocks.iter().take(8).map(u64::to_string).collect();
                let more = if p.blocks.len() > 8 { ", …" } else { "" };
                outln!("{kind}: blocks {}{more}: {}", blocks.join(", "), p.reason)?;
            }
            let n = reader.index.entries.len();
            if problems.is_empty() {
                outln!(
                    "{what}: ok ({n} blocks, index sha256 {})",
                    reader.index_sha256
                )?;
            } else {
                outln!("{what}: {} bad block files", problems.len())?;
            }
            bad += problems.len();
        }
        Ok(if bad == 0 { 0 } else { 2 })
    })
}
