//! `httpblk verify DIR|FILE|URL...`: check every referenced block decodes to its digest, on
//! every mirror given.

use anyhow::Result;
use httpblk_core::http::image_url::is_url;
use httpblk_core::location::Location;
use httpblk_core::reader::{ProblemKind, Reader};

use super::http_args::{HttpArgs, MaxTime};

/// Exit status when a block file is missing or corrupt, or a mirror serves another image.
const EXIT_BAD: i32 = 2;
/// Exit status when nothing found is bad but something could not be checked (a mirror or
/// a block file unreachable).
const EXIT_UNCHECKED: i32 = 3;

/// Check that every block of an image (or of every image in a store) is present and intact,
/// on each mirror: each bad block file is listed as missing, corrupt or unreachable. Exit
/// status 2 when something is missing or corrupt (or a mirror serves another image), 3 when
/// nothing is but something could not be checked.
#[derive(clap::Args)]
pub struct Args {
    /// A store directory (every index in it), an index file, or http[s]://HOST/PATH/NAME.hbi
    /// (several: mirrors of one image, each checked).
    #[arg(required = true, num_args = 1..)]
    location: Vec<String>,
    /// Refuse an index whose SHA-256 differs (in a directory: check only that index).
    #[arg(long, value_name = "SHA256", value_parser = super::image_args::index_digest)]
    index_digest: Option<String>,
    /// Blocks checked concurrently.
    #[arg(long, visible_alias = "max-inflight", default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=1024))]
    jobs: u32,
    #[command(flatten)]
    http: HttpArgs,
    #[command(flatten)]
    max_time: MaxTime,
}

/// What verify found, worst first.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Verdict {
    Ok,
    Unchecked,
    Bad,
}

pub fn run(a: Args) -> Result<i32> {
    let pin = a.index_digest.clone();
    // Each mirror alone: a mirror used only as a fallback would hide its own bad copies.
    let locations = if a.location.iter().all(|l| is_url(l)) {
        a.location
            .iter()
            .map(|u| Location::parse(std::slice::from_ref(u), None))
            .collect::<Result<Vec<_>, _>>()?
    } else if a.location.len() == 1 && pin.is_none() {
        Location::parse_all(&a.location[0])?
    } else {
        vec![Location::parse(&a.location, pin.as_deref())?]
    };
    let mirrors = a.location.len() > 1 && locations.len() == a.location.len();
    let opts = a.http.options()?;
    let rt = super::runtime();
    let work = async {
        let mut verdict = Verdict::Ok;
        // Of a set of mirrors, the index all must serve: the pinned one, else the first read.
        let mut want: Option<(String, String)> =
            pin.map(|p| (p.to_lowercase(), "--index-digest".into()));
        for loc in locations {
            let what = loc.describe();
            let own_pin = if mirrors {
                None
            } else {
                a.index_digest.as_deref()
            };
            let reader = match Reader::open(loc, own_pin, &opts).await {
                Ok(r) => r,
                Err(e) if mirrors => {
                    outln!("{what}: unreachable: {e}")?;
                    verdict = verdict.max(Verdict::Unchecked);
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            let sha = reader.index_sha256.clone();
            match &want {
                Some((w, from)) if *w != sha => {
                    outln!(
                        "{what}: serves another image than {from}: index sha256 {sha}, not {w}"
                    )?;
                    verdict = Verdict::Bad;
                    continue;
                }
                Some(_) => {}
                None if mirrors => want = Some((sha, what.clone())),
                None => {}
            }
            verdict = verdict.max(report(&what, &reader, a.jobs as usize).await?);
        }
        Ok(match verdict {
            Verdict::Ok => 0,
            Verdict::Unchecked => EXIT_UNCHECKED,
            Verdict::Bad => EXIT_BAD,
        })
    };
    let r = rt.block_on(a.max_time.bound(work));
    r.unwrap_or_else(|| Ok(a.max_time.reached(": not all checked")))
}

/// Verifies one image at one place and prints what it found.
async fn report(what: &str, reader: &std::sync::Arc<Reader>, jobs: usize) -> Result<Verdict> {
    let problems = reader.verify(jobs).await;
    for p in &problems {
        let kind = p.kind.as_str();
        let blocks: Vec<String> = p.blocks.iter().take(8).map(u64::to_string).collect();
        let more = if p.blocks.len() > 8 { ", …" } else { "" };
        outln!(
            "{what}: {kind}: blocks {}{more}: {}",
            blocks.join(", "),
            p.reason
        )?;
    }
    let n = reader.index.entries.len();
    if problems.is_empty() {
        outln!(
            "{what}: ok ({n} blocks, index sha256 {})",
            reader.index_sha256
        )?;
        return Ok(Verdict::Ok);
    }
    outln!("{what}: {} bad block files", problems.len())?;
    Ok(
        if problems.iter().all(|p| p.kind == ProblemKind::Unreachable) {
            Verdict::Unchecked
        } else {
            Verdict::Bad
        },
    )
}
