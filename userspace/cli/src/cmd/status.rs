//! `httpblk status`: the attached devices.

use anyhow::Result;
use httpblk_core::ring::Control;
use serde::Serialize;

use super::state::DeviceState;

/// Show attached devices.
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
}

pub fn run(a: Args) -> Result<i32> {
    let ids = Control::open()?.list()?;
    let rows: Vec<Row> = ids
        .iter()
        .map(|&id| Row {
            device: format!("/dev/httpblk{id}"),
            state: DeviceState::read(id),
        })
        .collect();
    if a.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(0);
    }
    if rows.is_empty() {
        println!("no devices attached");
    }
    for r in rows {
        match r.state {
            Some(s) => println!(
                "{}  {} bytes  block {}  index {}  pid {}  {}",
                r.device,
                s.image_size,
                s.block_size,
                &s.index_sha256[..16],
                s.pid,
                s.url
            ),
            None => println!("{}  (no helper state)", r.device),
        }
    }
    Ok(0)
}
