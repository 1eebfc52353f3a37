//! `httpblk attach URL...`: create /dev/httpblkN and serve its fetch ring. `recover` runs the
//! same helper for an existing device whose helper is gone (`serve` with a device number).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};
use std::sync::Arc;
use std::time::Duration;

use httpblk_core::helper::{Helper, Source};
use httpblk_core::location::Location;
use httpblk_core::mirrors::Mirrors;
use httpblk_core::ring::{AddOptions, Control, Ring};

use super::http_args::HttpArgs;
use super::state::{self, DeviceState};

/// Attach an image as a read-only block device, fetched lazily over HTTP.
#[derive(clap::Args, Clone)]
pub struct Args {
    /// http[s]://HOST[:PORT]/PATH/NAME.hbi[?QUERY], one per mirror of the image (all must
    /// serve the same index); a host name stands for all its addresses. Or one local index
    /// file.
    #[arg(required = true, num_args = 1..)]
    urls: Vec<String>,
    #[command(flatten)]
    http: HttpArgs,
    /// Refuse an index whose SHA-256 differs (the image identity printed by `create`).
    #[arg(long, value_name = "SHA256", value_parser = super::image_args::index_digest)]
    index_digest: Option<String>,
    /// Keep fetched block files here (second cache level, survives reboots).
    #[arg(long)]
    cache_dir: Option<PathBuf>,
    /// Stay in the foreground instead of detaching once the device is ready.
    #[arg(long)]
    foreground: bool,
    /// Concurrent fetches (ring slots), 1 to 256 [default and upper bound: the module's
    /// max_inflight parameter].
    #[arg(long, visible_alias = "jobs", value_parser = clap::value_parser!(u32).range(1..=256))]
    max_inflight: Option<u32>,
    /// A read fails with EIO after this long without its block, 100 to 600000
    /// [default: the module's io_timeout_ms parameter].
    #[arg(long, value_parser = clap::value_parser!(u32).range(100..=600_000))]
    io_timeout_ms: Option<u32>,
    /// When this helper dies, reads that miss the cache wait this long for `httpblk recover`
    /// before failing, 100 to 3600000 [default: the module's recovery_timeout_ms parameter].
    #[arg(long, value_parser = clap::value_parser!(u32).range(100..=3_600_000))]
    recovery_timeout_ms: Option<u32>,
    /// Remove the device when this helper exits, instead of keeping it for `httpblk recover`.
    #[arg(long)]
    remove_on_exit: bool,
}

impl Args {
    /// The attach command line as recorded for `recover`: the arguments as given, without
    /// `--foreground`.
    fn recorded(&self) -> Vec<String> {
        std::env::args()
            .skip(2)
            .filter(|a| a != "--foreground")
            .collect()
    }

    /// Replaces the image URLs (a recovering helper may be given new ones).
    pub fn set_urls(&mut self, urls: Vec<String>) {
        self.urls = urls;
    }

    pub fn set_foreground(&mut self) {
        self.foreground = true;
    }
}

/// Locks the helper in memory and out of the OOM killer's reach, and marks it as a task that
/// writeback may depend on: reads of its own device (a root file system, swap on it) must
/// never wait for memory that only those reads could free. Best effort, each step logged.
fn harden() {
    // SAFETY: plain syscalls on the calling process.
    if unsafe { libc::mlockall(libc::MCL_CURRENT | libc::MCL_FUTURE) } != 0 {
        tracing::warn!("mlockall: {}", std::io::Error::last_os_error());
    }
    // include/uapi/linux/prctl.h (Linux 5.6); the libc crate does not name it.
    const PR_SET_IO_FLUSHER: libc::c_int = 57;
    // SAFETY: as above; PR_SET_IO_FLUSHER takes 1 and no other argument.
    if unsafe { libc::prctl(PR_SET_IO_FLUSHER, 1, 0, 0, 0) } != 0 {
        tracing::warn!("PR_SET_IO_FLUSHER: {}", std::io::Error::last_os_error());
    }
    if let Err(e) = std::fs::write("/proc/self/oom_score_adj", "-1000") {
        tracing::warn!("oom_score_adj: {e}");
    }
}

pub fn run(a: Args) -> Result<i32> {
    // Without the module nothing below can work: say so before fetching anything.
    Control::open()?;
    if !a.foreground {
        let mut args: Vec<String> = std::env::args().skip(1).collect();
        args.push("--foreground".into());
        return run_in_background(args);
    }
    serve(a, None)
}

/// The I/O timeout the device has (`recover`) or will have: `--io-timeout-ms`, else the
/// module's default; the module's own default if neither can be read.
fn io_timeout(a: &Args, recover: Option<u32>) -> Duration {
    let path = match recover {
        Some(dev_id) => format!("/sys/block/httpblk{dev_id}/httpblk/io_timeout_ms"),
        None => "/sys/module/httpblk/parameters/io_timeout_ms".into(),
    };
    let ms = match (recover, a.io_timeout_ms) {
        (None, Some(ms)) => Some(ms),
        _ => std::fs::read_to_string(&path)
            .ok()
            .and_then(|s| s.trim().parse().ok()),
    };
    ms.map(|ms| Duration::from_millis(u64::from(ms)))
        .unwrap_or(httpblk_core::http::options::DEFAULT_TIMEOUT)
}

/// Runs the helper: adds a device for the image (`recover` = `None`) or takes over device
/// `recover`, whose helper is gone, then serves its ring until the device goes.
pub fn serve(a: Args, recover: Option<u32>) -> Result<i32> {
    harden();
    let rt = super::runtime();
    let pin = a.index_digest.as_deref();
    let location = Location::parse(&a.urls, pin)?;
    // A read fails at the device's I/O timeout whatever the helper does: until then a
    // request may take its time and be retried.
    let io_timeout = io_timeout(&a, recover);
    let opened = rt.block_on(location.open(pin, &a.http.options_for(Some(io_timeout))?))?;
    let (source, index, sha, raw) = (opened.store, opened.index, opened.index_sha256, opened.raw);
    // What the kernel (sysfs `url`) and `status` show: no credentials, no query string.
    let url = location.describe();
    let ring = match recover {
        None => {
            let o = AddOptions {
                nr_slots: a.max_inflight.unwrap_or(0),
                io_timeout_ms: a.io_timeout_ms.unwrap_or(0),
                recovery_timeout_ms: a.recovery_timeout_ms.unwrap_or(0),
                remove_on_close: a.remove_on_exit,
            };
            // The kernel shows one URL (sysfs `url`); `status` lists every mirror.
            Ring::add(&raw, o, url.split(' ').next().unwrap_or(""))?
        }
        Some(dev_id) => {
            let mut digest = [0u8; 32];
            hex::decode_to_slice(&sha, &mut digest).context("index digest")?;
            Ring::recover(dev_id, digest)
                .with_context(|| format!("recovering /dev/httpblk{dev_id}"))?
        }
    };
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
    if recover.is_none() {
        helper.ring.start().context("adding the disk")?;
    }
    let attach_args = match recover {
        // A recovering helper keeps the first helper's record (and its own URLs, if given).
        Some(_) => DeviceState::read(dev_id).map_or_else(|| a.recorded(), |s| s.attach_args),
        None => a.recorded(),
    };
    let st = DeviceState {
        dev_id,
        url: url.clone(),
        index_sha256: sha,
        pid: std::process::id(),
        image_size: helper.index.image_size,
        block_size: helper.index.block_size(),
        attach_args,
    };
    st.write()?;
    if recover.is_some() {
        tracing::info!("{dev}: recovered");
    }
    tracing::info!("{dev}: {} bytes from {url}", st.image_size);
    // The device is attached: a reader that went away does not stop its helper.
    let _ = outln!("{dev}");
    if let Source::Mirrors(m) = &helper.source {
        let _guard = rt.enter();
        tokio::spawn(report_mirrors(dev_id, Arc::downgrade(m)));
    }

    // Serve until the device is removed (detach) or we are told to stop.
    rt.block_on(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        let done = tokio::task::spawn_blocking(move || serving.join());
        tokio::select! {
            _ = term.recv() => tracing::info!("{dev}: SIGTERM, exiting"),
            _ = tokio::signal::ctrl_c() => tracing::info!("{dev}: interrupted, exiting"),
            r = done => match r {
                Ok(Ok(Ok(()))) => tracing::info!("{dev}: removed, or taken over by another helper"),
                Ok(Ok(Err(e))) => tracing::error!("{dev}: ring: {e}"),
                _ => tracing::error!("{dev}: ring thread failed"),
            },
        }
        anyhow::Ok(())
    })?;
    state::remove_mirrors(dev_id);
    if helper.ring.is_dead() {
        state::remove(dev_id);
    }
    // Exiting closes the control file: the device waits for `recover` (or goes, with
    // --remove-on-exit); after a detach it is gone already.
    std::process::exit(0);
}

/// Runs `httpblk ARGS` as a detached child, and returns once it printed the device (or
/// failed). Started from an initramfs, the child is marked as a root storage daemon
/// (`argv[0]` beginning with '@'), so that systemd leaves it running when it switches root.
pub fn run_in_background(args: Vec<String>) -> Result<i32> {
    let exe = std::env::current_exe()?;
    std::fs::create_dir_all(state::dir()).ok();
    let log_path = state::dir().join(format!("attach-{}.log", std::process::id()));
    let log = std::fs::File::create(&log_path)
        .with_context(|| format!("create {}", log_path.display()))?;
    let mut child = {
        use std::os::unix::process::CommandExt;
        let mut cmd = Command::new(exe);
        if std::path::Path::new("/etc/initrd-release").exists() {
            cmd.arg0("@httpblk");
        }
        cmd.args(&args)
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
        // Its helper is gone and what it said is in this error: nothing to keep.
        let _ = std::fs::remove_file(&log_path);
        bail!("attach failed ({status}):\n{}", log.trim_end());
    }
    outln!("{}", line.trim())?;
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
