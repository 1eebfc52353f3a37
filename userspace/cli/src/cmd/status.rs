//! `httpblk status`: the attached devices, with the kernel's statistics from
//! /sys/block/httpblkN/httpblk/.

use std::collections::BTreeMap;

use anyhow::Result;
use httpblk_core::ring::{control_path, Control};
use serde::Serialize;

use super::state::{self, DeviceState};

/// Show attached devices and their statistics.
#[derive(clap::Args)]
pub struct Args {
    /// Machine-readable output.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Row {
    device: String,
    #[serde(flatten)]
    state: Option<DeviceState>,
    /// Every file of /sys/block/httpblkN/httpblk/: numbers as numbers, the rest as text.
    kernel: BTreeMap<String, serde_json::Value>,
    /// Each mirror address the helper uses: state, latency, bytes (HTTP sources only).
    #[serde(skip_serializing_if = "Option::is_none")]
    mirrors: Option<serde_json::Value>,
}

/// Reads the device's sysfs statistics; empty when the kernel has none (yet).
fn kernel_stats(id: u32) -> BTreeMap<String, serde_json::Value> {
    let mut out = BTreeMap::new();
    let Ok(dir) = std::fs::read_dir(format!("/sys/block/httpblk{id}/httpblk")) else {
        return out;
    };
    for e in dir.flatten() {
        let Ok(text) = std::fs::read_to_string(e.path()) else {
            continue;
        };
        let text = text.trim();
        let v = text
            .parse::<u64>()
            .map(serde_json::Value::from)
            .unwrap_or_else(|_| serde_json::Value::from(text));
        out.insert(e.file_name().to_string_lossy().into_owned(), v);
    }
    out
}

fn num(k: &BTreeMap<String, serde_json::Value>, name: &str) -> u64 {
    k.get(name).and_then(|v| v.as_u64()).unwrap_or(0)
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1 << 20) as f64
}

pub fn run(a: Args) -> Result<i32> {
    // No module is a state, not a failure: no devices (and valid JSON for scripts).
    let loaded = std::path::Path::new(&control_path()).exists();
    let ids = if loaded {
        Control::open()?.list()?
    } else {
        Vec::new()
    };
    let rows: Vec<Row> = ids
        .iter()
        .map(|&id| Row {
            device: format!("/dev/httpblk{id}"),
            // The recorded attach arguments may hold credentials: never shown.
            state: DeviceState::read(id).map(|mut s| {
                s.attach_args.clear();
                s
            }),
            kernel: kernel_stats(id),
            mirrors: state::read_mirrors(id),
        })
        .collect();
    if a.json {
        outln!("{}", serde_json::to_string_pretty(&rows)?)?;
        return Ok(0);
    }
    if !loaded {
        outln!("no devices attached (httpblk.ko is not loaded)")?;
    } else if rows.is_empty() {
        outln!("no devices attached")?;
    }
    for r in &rows {
        match &r.state {
            Some(s) => outln!(
                "{}  {} bytes  block {}  index {}  pid {}  {}",
                r.device,
                s.image_size,
                s.block_size,
                &s.index_sha256[..16],
                s.pid,
                s.url
            )?,
            None => outln!("{}  (no helper state)", r.device)?,
        }
        let k = &r.kernel;
        if k.is_empty() {
            continue;
        }
        match k.get("helper").and_then(|v| v.as_str()) {
            Some("attached") | None => {}
            Some(h) => outln!(
                "  helper: {h} for {:.1} s, {} reads waiting (recovery timeout {} ms; httpblk recover {})",
                num(k, "orphaned_ms") as f64 / 1000.0,
                num(k, "waiting_reads"),
                num(k, "recovery_timeout_ms"),
                r.device
            )?,
        }
        let (hits, misses) = (num(k, "cache_hits"), num(k, "cache_misses"));
        outln!(
            "  reads {} ({:.1} MiB)  cache hits {} misses {} ({:.1}% hit)",
            num(k, "reads"),
            mib(num(k, "read_bytes")),
            hits,
            misses,
            100.0 * hits as f64 / (hits + misses).max(1) as f64
        )?;
        outln!(
            "  fetches {} (readahead {}, joined {})  fetched {:.1} MiB  decompressed {:.1} MiB  latency avg {} us max {} us",
            num(k, "fetches"),
            num(k, "readahead_fetches"),
            num(k, "joined_fetches"),
            mib(num(k, "fetched_bytes")),
            mib(num(k, "decompressed_bytes")),
            num(k, "fetch_latency_avg_us"),
            num(k, "fetch_latency_max_us")
        )?;
        outln!(
            "  errors: verify {}  decompress {}  fetch {}  timeouts {}  protocol {}  io {}",
            num(k, "verify_failures"),
            num(k, "decompress_failures"),
            num(k, "fetch_errors"),
            num(k, "timeouts"),
            num(k, "protocol_errors"),
            num(k, "io_errors")
        )?;
        for m in r
            .mirrors
            .as_ref()
            .and_then(|m| m.as_array())
            .into_iter()
            .flatten()
        {
            let n = |f: &str| m[f].as_u64().unwrap_or(0);
            outln!(
                "  mirror {} at {}: {}  latency {:.1} ms  requests {}  {:.1} MiB  failures {}  rejected {}  hedges won {}",
                m["mirror"].as_str().unwrap_or("?"),
                m["address"].as_str().unwrap_or("?"),
                m["state"].as_str().unwrap_or("?"),
                m["latency_ms"].as_f64().unwrap_or(0.0),
                n("requests"),
                mib(n("bytes")),
                n("failures"),
                n("rejected"),
                n("hedges_won")
            )?;
        }
    }
    if let Some(k) = rows.iter().map(|r| &r.kernel).find(|k| !k.is_empty()) {
        outln!(
            "module cache (all devices): {:.1} of {:.0} MiB, {} blocks, {} evictions",
            mib(num(k, "cache_bytes")),
            mib(num(k, "cache_limit_bytes")),
            num(k, "cache_blocks"),
            num(k, "cache_evictions")
        )?;
    }
    Ok(0)
}
