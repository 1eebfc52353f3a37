//! `httpblk cat URL...|DIR|FILE`: rebuild the image in userspace.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use httpblk_core::location::Location;
use httpblk_core::reader::Reader;

use super::http_args::{HttpArgs, MaxTime};
use crate::{out, progress};

/// Small blocks are gathered into writes of this size; blocks this large or larger go out
/// directly, not copied through the buffer.
const OUTPUT_BUFFER: usize = 64 << 10;

/// Write an image's bytes to a file or standard output.
#[derive(clap::Args)]
pub struct Args {
    /// http[s]://HOST/PATH/NAME.hbi (several: mirrors of one image), an index file, or a
    /// store directory (with several indexes, choose one by --index-digest).
    #[arg(required = true, num_args = 1..)]
    location: Vec<String>,
    /// Refuse an index whose SHA-256 differs.
    #[arg(long, value_name = "SHA256", value_parser = super::image_args::index_digest)]
    index_digest: Option<String>,
    /// Output file (default, or '-': standard output). A regular file is written under a
    /// temporary name and renamed when complete: a failed cat leaves no partial image.
    #[arg(long, short)]
    output: Option<PathBuf>,
    /// Blocks fetched concurrently.
    #[arg(long, visible_alias = "max-inflight", default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=1024))]
    jobs: u32,
    #[command(flatten)]
    http: HttpArgs,
    #[command(flatten)]
    max_time: MaxTime,
}

/// The output file: a temporary sibling renamed over the target on success, removed on
/// failure; or, for what is not a regular file (a device, a pipe, /dev/null), the target
/// itself.
struct Output {
    target: PathBuf,
    temp: Option<PathBuf>,
}

impl Output {
    fn create(target: &Path) -> Result<(Output, std::fs::File)> {
        let special = std::fs::metadata(target).is_ok_and(|m| !m.is_file());
        if special {
            let f = std::fs::OpenOptions::new()
                .write(true)
                .open(target)
                .with_context(|| format!("open {}", target.display()))?;
            let out = Output {
                target: target.into(),
                temp: None,
            };
            return Ok((out, f));
        }
        let name = target
            .file_name()
            .with_context(|| format!("{}: not a file name", target.display()))?;
        let temp = target.with_file_name(format!(
            ".{}.partial-{}",
            name.to_string_lossy(),
            std::process::id()
        ));
        let f =
            std::fs::File::create(&temp).with_context(|| format!("create {}", temp.display()))?;
        let out = Output {
            target: target.into(),
            temp: Some(temp),
        };
        Ok((out, f))
    }

    fn finish(mut self) -> Result<()> {
        if let Some(temp) = self.temp.take() {
            std::fs::rename(&temp, &self.target).with_context(|| {
                format!("rename {} to {}", temp.display(), self.target.display())
            })?;
        }
        Ok(())
    }
}

impl Drop for Output {
    fn drop(&mut self) {
        if let Some(temp) = &self.temp {
            let _ = std::fs::remove_file(temp);
        }
    }
}

pub fn run(a: Args) -> Result<i32> {
    let pin = a.index_digest.as_deref();
    let location = Location::parse(&a.location, pin)?;
    let opts = a.http.options()?;
    let written = match &a.output {
        Some(p) if p != Path::new("-") => format!("; {} not written", p.display()),
        _ => String::new(),
    };
    let rt = super::runtime();
    let work = async {
        let reader = Reader::open(location, pin, &opts).await?;
        let pb = progress::bar(reader.index.image_size, "cat");
        let jobs = a.jobs as usize;
        // `-o -` is standard output, as for curl; ./- names a file called '-'.
        match a.output.as_deref().filter(|p| *p != Path::new("-")) {
            Some(p) => {
                let stop = stop_signal()?;
                let (output, file) = Output::create(p)?;
                // A FIFO's reader may go away too.
                let mut out = std::io::BufWriter::with_capacity(OUTPUT_BUFFER, out::Guarded(file));
                // A signal that would end the process at once would leave the temporary
                // file: end here instead, where dropping `output` removes it.
                let progress = |n| pb.set_position(n);
                tokio::select! {
                    r = reader.cat(&mut out, jobs, &progress) => r?,
                    code = stop => {
                        pb.finish_and_clear();
                        drop(output);
                        eprintln!("httpblk: interrupted; {} not written", p.display());
                        return Ok(code);
                    }
                }
                let file = out.into_inner().map_err(|e| e.into_error())?.0;
                if output.temp.is_some() {
                    file.sync_all()
                        .with_context(|| format!("sync {}", p.display()))?;
                }
                drop(file);
                output.finish()?;
            }
            None => {
                let mut out = std::io::BufWriter::with_capacity(OUTPUT_BUFFER, out::stdout());
                reader.cat(&mut out, jobs, &|n| pb.set_position(n)).await?;
                out.flush()?;
            }
        }
        pb.finish_and_clear();
        Ok(0)
    };
    let r = rt.block_on(a.max_time.bound(work));
    r.unwrap_or_else(|| Ok(a.max_time.reached(&written)))
}

/// SIGINT or SIGTERM, caught from now on (so none ends the process while the temporary file
/// exists); resolves to the exit code a shell gives a command they end.
fn stop_signal() -> Result<impl std::future::Future<Output = i32>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut int = signal(SignalKind::interrupt())?;
    let mut term = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = int.recv() => 128 + libc::SIGINT,
            _ = term.recv() => 128 + libc::SIGTERM,
        }
    })
}
