// SPDX-License-Identifier: GPL-2.0
//! The sysfs view of a device: the attributes under /sys/block/httpblkN/httpblk/, one value
//! per file, from its settings, its state and its `Stats`. Documentation/operations.md lists
//! every attribute; a VM test checks that it does.
#![forbid(unsafe_code)]

use core::sync::atomic::{AtomicU64, Ordering};

use crate::device::Device;
use crate::sys::time;
use crate::uapi;

crate::blk::disk_attrs!(
    ATTRS,
    "httpblk",
    Device,
    [
        "index_sha256",
        "url",
        "image_size",
        "block_size",
        "hash",
        "nr_slots",
        "io_timeout_ms",
        "recovery_timeout_ms",
        "helper",
        "orphaned_ms",
        "waiting_reads",
        "reads",
        "read_bytes",
        "cache_hits",
        "cache_misses",
        "fetches",
        "readahead_fetches",
        "readahead_inflight_max",
        "joined_fetches",
        "fetched_bytes",
        "decompressed_bytes",
        "fetch_latency_avg_us",
        "fetch_latency_max_us",
        "verify_failures",
        "decompress_failures",
        "fetch_errors",
        "timeouts",
        "protocol_errors",
        "io_errors",
        "writes_refused",
        "cache_bytes",
        "cache_limit_bytes",
        "cache_blocks",
        "cache_evictions",
    ]
);

impl Device {
    /// The sysfs attributes of this device's disk.
    pub(crate) fn attrs() -> &'static crate::blk::sysfs::Groups {
        &ATTRS
    }

    /// Prints sysfs attribute `name`: one value and a newline.
    pub(crate) fn show_attr(
        &self,
        name: &[u8],
        out: &mut dyn core::fmt::Write,
    ) -> core::fmt::Result {
        let s = &self.stats;
        let c = &self.shared.cache;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let value = match name {
            b"index_sha256" => {
                for b in self.index_sha256 {
                    write!(out, "{:02x}", b)?;
                }
                return writeln!(out);
            }
            b"url" => {
                let end = self
                    .url
                    .iter()
                    .position(|&b| b == 0)
                    .unwrap_or(self.url.len());
                for &b in &self.url[..end] {
                    // URLs are ASCII; anything else is shown escaped.
                    if b.is_ascii_graphic() {
                        out.write_char(b as char)?;
                    } else {
                        write!(out, "%{:02X}", b)?;
                    }
                }
                return writeln!(out);
            }
            b"hash" => {
                return writeln!(
                    out,
                    "{}",
                    if self.index.hash_id == uapi::HASH_MD5 {
                        "md5"
                    } else {
                        "sha256"
                    }
                )
            }
            b"image_size" => self.index.image_size,
            b"block_size" => 1u64 << self.index.block_shift,
            b"nr_slots" => u64::from(self.nr_slots.get()),
            b"io_timeout_ms" => u64::from(self.io_timeout_ms),
            b"recovery_timeout_ms" => u64::from(self.recovery_timeout_ms),
            b"helper" => {
                let st = self.state.lock();
                let state = match st.ring.orphaned_since {
                    None => "attached",
                    Some(since)
                        if time::after(
                            since.wrapping_add(self.recovery_timeout),
                            time::jiffies(),
                        ) =>
                    {
                        "orphaned"
                    }
                    Some(_) => "expired",
                };
                drop(st);
                return writeln!(out, "{}", if self.is_dead() { "dead" } else { state });
            }
            b"orphaned_ms" => {
                let since = self.state.lock().ring.orphaned_since;
                since.map_or(0, |s| time::jiffies_to_ms(time::jiffies().wrapping_sub(s)))
            }
            b"waiting_reads" => self.state.lock().waiting.iter().count() as u64,
            b"reads" => get(&s.reads),
            b"read_bytes" => get(&s.read_bytes),
            b"cache_hits" => get(&s.cache_hits),
            b"cache_misses" => get(&s.cache_misses),
            b"fetches" => get(&s.fetches),
            b"readahead_fetches" => get(&s.readahead_fetches),
            b"readahead_inflight_max" => get(&s.readahead_inflight_max),
            b"joined_fetches" => get(&s.joined_fetches),
            b"fetched_bytes" => get(&s.fetched_bytes),
            b"decompressed_bytes" => get(&s.decompressed_bytes),
            b"fetch_latency_avg_us" => get(&s.fetch_ns_total) / get(&s.fetch_ok).max(1) / 1000,
            b"fetch_latency_max_us" => get(&s.fetch_ns_max) / 1000,
            b"verify_failures" => get(&s.verify_failures),
            b"decompress_failures" => get(&s.decompress_failures),
            b"fetch_errors" => get(&s.fetch_errors),
            b"timeouts" => get(&s.timeouts),
            b"protocol_errors" => get(&s.protocol_errors),
            b"io_errors" => get(&s.io_errors),
            b"writes_refused" => get(&s.writes_refused),
            b"cache_bytes" => c.bytes() as u64,
            b"cache_limit_bytes" => c.limit() as u64,
            b"cache_blocks" => c.len() as u64,
            b"cache_evictions" => get(&c.evictions),
            _ => return Err(core::fmt::Error),
        };
        writeln!(out, "{}", value)
    }
}
