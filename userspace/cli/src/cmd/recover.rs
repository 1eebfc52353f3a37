//! `httpblk recover DEV [URL...]`: start a new helper for a device whose helper is gone.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;

use super::attach;
use super::detach::parse_dev;
use super::state::DeviceState;

/// Serve an orphaned device again: the kernel kept its cache and its waiting reads; fetches
/// that were in flight are fetched again by the new helper.
#[derive(clap::Args)]
pub struct Args {
    /// /dev/httpblkN, httpblkN or N.
    device: String,
    /// The image's URLs (mirrors) [default: those the device's first helper recorded under
    /// /run/httpblk, with its options].
    urls: Vec<String>,
    /// If a helper still serves the device, wait until it is gone, then take over (for a
    /// supervisor such as httpblk@.service).
    #[arg(long)]
    wait: bool,
    /// Stay in the foreground.
    #[arg(long)]
    foreground: bool,
}

/// Parses a recorded attach command line.
#[derive(Parser)]
#[command(name = "attach")]
struct AttachLine {
    #[command(flatten)]
    args: attach::Args,
}

/// The device's helper state as the kernel shows it: attached, orphaned, expired or dead.
fn helper_state(dev_id: u32) -> Result<String> {
    let p = format!("/sys/block/httpblk{dev_id}/httpblk/helper");
    let s = std::fs::read_to_string(&p).with_context(|| format!("{p} (no such device?)"))?;
    Ok(s.trim().to_string())
}

pub fn run(a: Args) -> Result<i32> {
    let dev_id = parse_dev(&a.device)?;
    let recorded = DeviceState::read(dev_id)
        .map(|s| s.attach_args)
        .unwrap_or_default();
    if recorded.is_empty() && a.urls.is_empty() {
        bail!(
            "no record of /dev/httpblk{dev_id} under {}: give the image URLs",
            super::state::dir().display()
        );
    }
    let line = std::iter::once("attach".to_string()).chain(recorded.iter().cloned());
    let mut attach_args = if recorded.is_empty() {
        AttachLine::try_parse_from(["attach".to_string()].into_iter().chain(a.urls.clone()))?
    } else {
        AttachLine::try_parse_from(line).context("the recorded attach arguments")?
    }
    .args;
    if !a.urls.is_empty() {
        attach_args.set_urls(a.urls.clone());
    }
    if a.wait {
        // Poll the kernel's view: cheap, and right whichever way the old helper went.
        let start = Instant::now();
        while helper_state(dev_id)? == "attached" {
            std::thread::sleep(Duration::from_millis(100));
            if start.elapsed() > Duration::from_secs(24 * 3600) {
                bail!("/dev/httpblk{dev_id} kept its helper for a day");
            }
        }
    }
    match helper_state(dev_id)?.as_str() {
        "attached" => {
            bail!("/dev/httpblk{dev_id} has a helper (use --wait to take over when it goes)")
        }
        "dead" => bail!("/dev/httpblk{dev_id} is being removed"),
        _ => {}
    }
    if !a.foreground {
        let mut args: Vec<String> = std::env::args().skip(1).filter(|x| x != "--wait").collect();
        args.push("--foreground".into());
        return attach::run_in_background(args);
    }
    attach_args.set_foreground();
    attach::serve(attach_args, Some(dev_id))
}
