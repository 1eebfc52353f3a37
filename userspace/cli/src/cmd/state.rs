//! What a running helper records about its device, for `status` (/run/httpblk/httpblkN.json).

use std::path::PathBuf;

use anyhow::Result;
use httpblk_core::mirrors::EndpointReport;
use serde::{Deserialize, Serialize};

/// Where helpers keep their state and logs: $HTTPBLK_RUN_DIR, or /run/httpblk.
pub fn dir() -> PathBuf {
    std::env::var_os("HTTPBLK_RUN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/run/httpblk"))
}

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct DeviceState {
    pub dev_id: u32,
    pub url: String,
    pub index_sha256: String,
    pub pid: u32,
    pub image_size: u64,
    pub block_size: u64,
    /// The `attach` arguments (URLs and options), for `recover`. May hold credentials: the
    /// file is readable by root only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attach_args: Vec<String>,
}

fn path(dev_id: u32) -> PathBuf {
    dir().join(format!("httpblk{dev_id}.json"))
}

impl DeviceState {
    pub fn write(&self) -> Result<()> {
        use std::io::Write;
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        std::fs::create_dir_all(dir())?;
        // Root only: the recorded attach arguments may hold credentials.
        std::fs::set_permissions(dir(), std::fs::Permissions::from_mode(0o700))?;
        // Written whole under a temporary name, then renamed: a reader never sees half.
        let tmp = dir().join(format!(".httpblk{}.json.tmp", self.dev_id));
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(&serde_json::to_vec_pretty(self)?)?;
        std::fs::rename(&tmp, path(self.dev_id))?;
        Ok(())
    }

    pub fn read(dev_id: u32) -> Option<DeviceState> {
        serde_json::from_slice(&std::fs::read(path(dev_id)).ok()?).ok()
    }
}

fn mirrors_path(dev_id: u32) -> PathBuf {
    dir().join(format!("httpblk{dev_id}.mirrors.json"))
}

/// Records every mirror endpoint's state (replacing the file whole, so readers never see half).
pub fn write_mirrors(dev_id: u32, report: &[EndpointReport]) -> Result<()> {
    let list: Vec<serde_json::Value> = report
        .iter()
        .map(|e| {
            serde_json::json!({
                "mirror": e.mirror, "address": e.address, "state": e.state,
                "latency_ms": (e.latency_ms * 100.0).round() / 100.0, "inflight": e.inflight,
                "requests": e.requests, "bytes": e.bytes, "failures": e.failures,
                "rejected": e.rejected, "hedges_won": e.hedges_won, "last_error": e.last_error,
            })
        })
        .collect();
    let tmp = dir().join(format!(".httpblk{dev_id}.mirrors.json.tmp"));
    std::fs::write(&tmp, serde_json::to_vec_pretty(&list)?)?;
    std::fs::rename(&tmp, mirrors_path(dev_id))?;
    Ok(())
}

/// The endpoints a helper last recorded, if it has mirrors.
pub fn read_mirrors(dev_id: u32) -> Option<serde_json::Value> {
    serde_json::from_slice(&std::fs::read(mirrors_path(dev_id)).ok()?).ok()
}

pub fn remove_mirrors(dev_id: u32) {
    let _ = std::fs::remove_file(mirrors_path(dev_id));
}

pub fn remove(dev_id: u32) {
    let _ = std::fs::remove_file(path(dev_id));
}
