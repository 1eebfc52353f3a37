//! `httpblk attach URL...`: create /dev/httpblkN and serve its fetch ring.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use httpblk_core::helper::{Helper, Source};
use httpblk_core::location::Location;
use httpblk_core::mirrors::Mirrors;
use httpblk_core::ring::Ring;

use super::state::{self, DeviceState};

/// Attach an image as a read-only block device, fetched lazily over HTTP.
#[derive(clap::Args)]
pub struct Args {
    /// http://HOST[:PORT]/PATH/NAME.hbi, one per mirror of the image (all must serve the
    /// same index); a host name stands for all its addresses. Or one local index file.
    #[arg(required = true, num_args = 1..)]
    urls: Vec<String>,
    /// Ask this DNS server (ADDR:PORT) instead of the system's (/etc/resolv.conf).
    #[arg(long)]
    dns_server: Option<SocketAddr>,
    /// Give up on one HTTP request after this long (it is retried on another mirror).
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(100..=600_000))]
    request_timeout_ms: u64,
    /// Refuse an index whose SHA-256 differs (the image identity printed by `create`).
    #[arg(long)]
    index_digest: Option<String>,
    /// Keep fetched block files here (second cache level, survives reboots).
    #[arg(long)]
    cache_dir: Option<PathBuf>,
    /// Stay in the foreground instead of detaching once the device is ready.
    #[arg(long)]
    foreground: bool,
    /// Concurrent fetches (ring slots), 1 to 256 [default and upper bound: the module's
    /// max_inflight parameter].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=256))]
    max_inflight: Option<u32>,
    /// A read fails with EIO after this long without its block, 100 to 600000
    /// [default: the module's io_timeout_ms parameter].
    #[arg(long, value_parser = clap::value_parser!(u32).range(100..=600_000))]
    io_timeout_ms: Option<u32>,
}

pub fn run(a: Args) -> Result<i32> {
    if !a.foreground {
        return run_in_background();
    }
    let rt = super::runtime();
    let pin = a.index_digest.as_deref();
    let (source, index, sha, raw) = if a.urls[0].starts_with("http://") {
        let timeout = Duration::from_millis(a.request_timeout_ms);
        let (m, index, sha, raw) =
            rt.block_on(Mirrors::open(&a.urls, pin, a.dns_server, timeout))?;
        (Source::Mirrors(m), index, sha, raw)
    } else {
        anyhow::ensure!(a.urls.len() == 1, "mirrors must be http:// URLs");
        let location = Location::parse(&a.urls[0])?;
        let (index, sha, raw) = rt.block_on(location.open(pin))?;
        (Source::Dir(location), index, sha, raw)
    };
    let url = a.urls.join(" ");
    // The kernel shows one URL (sysfs `url`); `status` lists every mirror.
    let ring = Ring::add(
        &raw,
        a.max_inflight.unwrap_or(0),
        a.io_timeout_ms.unwrap_or(0),
        &a.urls[0],
    )?;
    anyhow::ensure!(
        ring.added.index_sha256 == sha,
        "kernel computed another index digest"
    );
    let dev_id = ring.added.dev_id;
    let dev = format!("/dev/httpblk{dev_id}");
    let helper = Helper::new(ring, index, source, a.cache_dir.clone());

    let serving = {
        let helper = helper.clone();
        let handle = rt.handle().clone();
        std::thread::Builder::new()
            .name("ring".into())
            .spawn(move || helper.run(handle))?
    };
    helper.ring.start().context("adding the disk")?;
    let st = DeviceState {
        dev_id,
        url: url.clone(),
        index_sha256: sha,
        pid: std::process::id(),
        image_size: helper.index.image_size,
        block_size: helper.index.block_size(),
    };
    st.write()?;
    tracing::info!("{dev}: {} bytes from {url}", st.image_size);
    println!("{dev}");
    if let Source::Mirrors(m) = &helper.source {
        let _guard = rt.enter();
        tokio::spawn(report_mirrors(dev_id, Arc::downgrade(m)));
    }

    // Serve until the device is removed (detach) or we are told to stop.
    rt.block_on(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        let done = tokio::task::spawn_blocking(move || serving.join());
        tokio::select! {
            _ = term.recv() => tracing::info!("{dev}: SIGTERM, detaching"),
            _ = tokio::signal::ctrl_c() => tracing::info!("{dev}: interrupted, detaching"),
            r = done => match r {
                Ok(Ok(Ok(()))) => tracing::info!("{dev}: removed"),
                Ok(Ok(Err(e))) => tracing::error!("{dev}: ring: {e}"),
                _ => tracing::error!("{dev}: ring thread failed"),
            },
        }
        anyhow::Ok(())
    })?;
    state::remove(dev_id);
    state::remove_mirrors(dev_id);
    // Exiting closes the control file: the kernel fails what is pending and removes the disk.
    std::process::exit(0);
}

/// Re-runs this command in the foreground as a detached child, and returns once it printed the
/// device (or failed).
fn run_in_background() -> Result<i32> {
    let exe = std::env::current_exe()?;
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    args.push("--foreground".into());
    std::fs::create_dir_all(state::dir()).ok();
    let log_path = state::dir().join(format!("attach-{}.log", std::process::id()));
    let log = std::fs::File::create(&log_path)
        .with_context(|| format!("create {}", log_path.display()))?;
    let mut child = {
        use std::os::unix::process::CommandExt;
        Command::new(exe)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .process_group(0)
            .spawn()?
    };
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line)?;
    if line.trim().is_empty() {
        let status = child.wait()?;
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        bail!("attach failed ({status}):\n{}", log.trim_end());
    }
    println!("{}", line.trim());
    Ok(0)
}

/// Keeps the mirrors' figures in the run directory for `status`, once a second.
async fn report_mirrors(dev_id: u32, mirrors: std::sync::Weak<Mirrors>) {
    loop {
        let Some(m) = mirrors.upgrade() else { return };
        if let Err(e) = state::write_mirrors(dev_id, &m.report()) {
            tracing::warn!("writing mirror figures: {e}");
        }
        drop(m);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
