// SPDX-License-Identifier: GPL-2.0
//! The module's parameters (`modprobe httpblk cache_mb=512 ...`, `modinfo httpblk`), with
//! their bounds. Writable ones (mode 0644, under /sys/module/httpblk/parameters/) take effect
//! at runtime: for new devices, or at once for `cache_mb` (the cache shrinks to fit).

use crate::sys::module_param::uint_param;

uint_param!(
    MAX_DEVICES,
    max_devices,
    16,
    1..=64,
    0o444,
    "Most devices attached at once (1-64)"
);
uint_param!(
    CACHE_MB,
    cache_mb,
    256,
    1..=1048576,
    0o644,
    "Size of the in-kernel block cache shared by all devices, in MiB (1-1048576)",
    hook = crate::cache::cache_mb_changed
);
uint_param!(
    QUEUE_DEPTH,
    queue_depth,
    128,
    1..=4096,
    0o444,
    "Requests per hardware queue (1-4096)"
);
uint_param!(
    NR_HW_QUEUES,
    nr_hw_queues,
    0,
    0..=1024,
    0o444,
    "Hardware queues per device; 0 = one per CPU (0-1024)"
);
uint_param!(
    IO_TIMEOUT_MS,
    io_timeout_ms,
    30000,
    100..=600000,
    0o644,
    "Default I/O timeout of new devices in ms; a read waits no longer, then fails with EIO"
);
uint_param!(
    RECOVERY_TIMEOUT_MS,
    recovery_timeout_ms,
    30000,
    100..=3600000,
    0o644,
    "Default time, in ms, that reads which miss the cache wait for a new helper once a device's helper is gone"
);
uint_param!(
    MAX_INFLIGHT,
    max_inflight,
    64,
    1..=256,
    0o644,
    "Most concurrent block fetches per device (ring slots); a helper may ask for fewer"
);
uint_param!(
    READAHEAD_KB,
    readahead_kb,
    1024,
    0..=65536,
    0o644,
    "Blocks fetched ahead of a sequential reader, in KiB; 0 = off"
);
uint_param!(
    READAHEAD_INFLIGHT,
    readahead_inflight,
    4,
    1..=256,
    0o644,
    "Most readahead fetches in flight per device; a read's own misses are never held back by them"
);
