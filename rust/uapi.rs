// SPDX-License-Identifier: GPL-2.0
//! The httpblk ABI: on-disk format constants, control ioctls and the fetch ring.
//!
//! This one file is compiled by both the kernel module and the userspace helper (`core` only,
//! no allocation), so the two sides cannot disagree on a layout. Every struct is `#[repr(C)]`
//! with fixed-width fields and explicit padding, and its size is asserted at compile time.
//! Documentation/format.md and Documentation/ring.md describe the same things in prose.

use core::mem::{offset_of, size_of};

// ---------------------------------------------------------------------------------------------
// Image format (Documentation/format.md). All integers little-endian.
// ---------------------------------------------------------------------------------------------

/// First bytes of an index file.
pub const INDEX_MAGIC: [u8; 8] = *b"HTTPBLKI";
/// The only index version this code reads.
pub const INDEX_VERSION: u32 = 1;
/// Index header length; entries follow it.
pub const INDEX_HEADER_LEN: usize = 64;
/// Byte offsets of the index header fields.
pub const IDX_OFF_VERSION: usize = 8;
pub const IDX_OFF_FLAGS: usize = 12;
pub const IDX_OFF_IMAGE_SIZE: usize = 16;
pub const IDX_OFF_BLOCK_COUNT: usize = 24;
pub const IDX_OFF_BLOCK_SHIFT: usize = 32;
pub const IDX_OFF_HASH: usize = 33;
/// Bytes 34..64 are reserved and must be zero.
pub const IDX_OFF_RESERVED: usize = 34;
/// Each entry is the digest followed by the stored length (u32, 0 = all-zero block).
pub const INDEX_ENTRY_LEN_FIELD: usize = 4;

/// Block size limits: 4 KiB to 4 MiB, a power of two.
pub const MIN_BLOCK_SHIFT: u8 = 12;
pub const MAX_BLOCK_SHIFT: u8 = 22;
/// At most this many blocks in one image (4 Mi blocks: 1 TiB at 256 KiB).
pub const MAX_BLOCKS: u64 = 1 << 22;

pub const HASH_SHA256: u8 = 1;
pub const HASH_MD5: u8 = 2;

/// First bytes of a block file.
pub const BLOCK_MAGIC: [u8; 4] = *b"HBLK";
pub const BLOCK_VERSION: u8 = 1;
/// Block file header: magic, version, codec, 2 reserved zero bytes, raw length, payload length.
pub const BLOCK_HEADER_LEN: usize = 16;

/// The header of a block file. Integers are little-endian; read them with `u32::from_le`.
#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub struct BlockHeader {
    /// `BLOCK_MAGIC`.
    pub magic: [u8; 4],
    /// `BLOCK_VERSION`.
    pub version: u8,
    /// One of the `CODEC_*` values.
    pub codec: u8,
    /// Zero.
    pub reserved: [u8; 2],
    /// Length of the block once decoded.
    pub raw_len: u32,
    /// Length of the payload after this header.
    pub payload_len: u32,
}
const _: () = assert!(size_of::<BlockHeader>() == BLOCK_HEADER_LEN);

pub const CODEC_NONE: u8 = 0;
pub const CODEC_LZO: u8 = 1;
pub const CODEC_LZ4: u8 = 2;
pub const CODEC_ZSTD: u8 = 3;
pub const CODEC_ZLIB: u8 = 4;

/// Largest stored block: header plus a block that did not shrink (stored raw).
pub const fn max_stored_len(block_shift: u8) -> usize {
    BLOCK_HEADER_LEN + (1usize << block_shift)
}

// ---------------------------------------------------------------------------------------------
// Control device ioctls (/dev/httpblk-control). Documentation/ring.md.
// ---------------------------------------------------------------------------------------------

/// ABI version carried by `AddDevice` and `RecoverDevice`; the kernel refuses any other.
/// 3: recovery (`IOC_RECOVER`, `recovery_timeout_ms`, `ADD_REMOVE_ON_CLOSE`) and demand
/// marks on submissions (`SQE_DEMAND`).
pub const ABI_VERSION: u32 = 3;
/// Name of the control device node under /dev.
pub const CONTROL_NAME: &str = "httpblk-control";
/// Remove the device when the file that added it is closed (its helper exited), instead of
/// keeping it for a new helper (`IOC_RECOVER`).
pub const ADD_REMOVE_ON_CLOSE: u32 = 1;
/// Every add flag this ABI knows; any other set bit is refused with EINVAL.
pub const ADD_FLAGS_ALL: u32 = ADD_REMOVE_ON_CLOSE;
/// No recover flags are defined yet; any set bit is refused with EINVAL.
pub const RECOVER_FLAGS_ALL: u32 = 0;
/// Longest source URL kept for sysfs, including the NUL.
pub const URL_LEN: usize = 256;
/// Slots per ring: bounds.
pub const MIN_SLOTS: u32 = 1;
pub const MAX_SLOTS: u32 = 256;
/// Largest index the kernel accepts (4 Mi entries of 36 bytes, plus header).
pub const MAX_INDEX_LEN: u64 = INDEX_HEADER_LEN as u64 + MAX_BLOCKS * 36;

const IOC_NRBITS: u32 = 8;
const IOC_TYPEBITS: u32 = 8;
const IOC_SIZEBITS: u32 = 14;
const IOC_NRSHIFT: u32 = 0;
const IOC_TYPESHIFT: u32 = IOC_NRSHIFT + IOC_NRBITS;
const IOC_SIZESHIFT: u32 = IOC_TYPESHIFT + IOC_TYPEBITS;
const IOC_DIRSHIFT: u32 = IOC_SIZESHIFT + IOC_SIZEBITS;
const IOC_WRITE: u32 = 1;
const IOC_READ: u32 = 2;

const fn ioc(dir: u32, nr: u32, size: usize) -> u32 {
    (dir << IOC_DIRSHIFT)
        | ((b'h' as u32) << IOC_TYPESHIFT)
        | (nr << IOC_NRSHIFT)
        | ((size as u32) << IOC_SIZESHIFT)
}

/// Create a device from an index; the calling file becomes the device's ring.
pub const IOC_ADD: u32 = ioc(IOC_READ | IOC_WRITE, 0x01, size_of::<AddDevice>());
/// Remove a device by id.
pub const IOC_REMOVE: u32 = ioc(IOC_WRITE, 0x02, size_of::<DeviceId>());
/// List devices.
pub const IOC_LIST: u32 = ioc(IOC_READ | IOC_WRITE, 0x03, size_of::<DeviceList>());
/// Helper: wait until the submission tail differs from `seen`, then return it.
pub const IOC_WAIT: u32 = ioc(IOC_READ | IOC_WRITE, 0x04, size_of::<Wait>());
/// Helper: the completion ring has new entries up to its tail.
pub const IOC_COMMIT: u32 = ioc(0, 0x05, 0);
/// Helper: the ring is served; add the disk (partition scanning reads through the ring).
pub const IOC_START: u32 = ioc(0, 0x06, 0);
/// A new helper takes over a device whose helper is gone; the calling file becomes its ring.
pub const IOC_RECOVER: u32 = ioc(IOC_READ | IOC_WRITE, 0x07, size_of::<RecoverDevice>());

/// `IOC_ADD` argument. Inputs are validated by the kernel; outputs are filled on success.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct AddDevice {
    /// In: must be `ABI_VERSION`.
    pub abi_version: u32,
    /// In: `ADD_REMOVE_ON_CLOSE` or zero; any other bit is refused (`ADD_FLAGS_ALL`).
    pub flags: u32,
    /// In: user address and length of the raw index file.
    pub index_addr: u64,
    pub index_len: u64,
    /// In: fetch slots wanted (concurrent fetches), `0..=MAX_SLOTS`; 0 = the module's
    /// `max_inflight`. Out: the slots granted, never more than `max_inflight`.
    pub nr_slots: u32,
    /// In: I/O timeout in milliseconds; 0 = the module's `io_timeout_ms`.
    pub io_timeout_ms: u32,
    /// In: source URL for sysfs, NUL-terminated.
    pub url: [u8; URL_LEN],
    /// Out: the device number N of /dev/httpblkN.
    pub dev_id: u32,
    /// Out: bytes of each data slot (a multiple of the page size).
    pub slot_size: u32,
    /// Out: length of the read-only kernel region (mmap offset `KERNEL_REGION_OFFSET`).
    pub kernel_region_len: u64,
    /// Out: length of the helper region (mmap offset `HELPER_REGION_OFFSET`).
    pub helper_region_len: u64,
    /// Out: the index digest (SHA-256) the kernel computed.
    pub index_sha256: [u8; 32],
    /// In: how long reads that miss wait for a new helper once this one is gone, in
    /// milliseconds; 0 = the module's `recovery_timeout_ms`.
    pub recovery_timeout_ms: u32,
    pub reserved0: u32,
    pub reserved: [u64; 4],
}
const _: () = assert!(size_of::<AddDevice>() == 384);
const _: () = assert!(offset_of!(AddDevice, url) == 32);
const _: () = assert!(offset_of!(AddDevice, dev_id) == 288);

/// `IOC_RECOVER` argument. Inputs are validated by the kernel; outputs are filled on success.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct RecoverDevice {
    /// In: must be `ABI_VERSION`.
    pub abi_version: u32,
    /// In: must be zero (`RECOVER_FLAGS_ALL`).
    pub flags: u32,
    /// In: the device N of /dev/httpblkN.
    pub dev_id: u32,
    /// Out: the device's slots (the new ring has as many as the old one).
    pub nr_slots: u32,
    /// In: the SHA-256 of the index the new helper serves; must be the device's.
    pub index_sha256: [u8; 32],
    /// Out: bytes of each data slot.
    pub slot_size: u32,
    pub reserved0: u32,
    /// Out: lengths of the new ring's regions (mmap offsets as for `IOC_ADD`).
    pub kernel_region_len: u64,
    pub helper_region_len: u64,
    pub reserved: [u64; 7],
}
const _: () = assert!(size_of::<RecoverDevice>() == 128);
const _: () = assert!(offset_of!(RecoverDevice, slot_size) == 48);

#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct DeviceId {
    pub dev_id: u32,
    pub reserved: u32,
}
const _: () = assert!(size_of::<DeviceId>() == 8);

pub const LIST_MAX: usize = 64;

#[repr(C)]
#[derive(Clone, Copy)]
pub struct DeviceList {
    /// Out: number of valid ids.
    pub count: u32,
    pub reserved: u32,
    pub ids: [u32; LIST_MAX],
}
const _: () = assert!(size_of::<DeviceList>() == 8 + 4 * LIST_MAX);

#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct Wait {
    /// In: the submission tail the helper has consumed up to.
    pub seen: u32,
    /// Out: the current submission tail.
    pub tail: u32,
}
const _: () = assert!(size_of::<Wait>() == 8);

// ---------------------------------------------------------------------------------------------
// The fetch ring. Two mmap regions of the control file that made the device:
//   kernel region (read-only for the helper): KernelHeader, then `nr_slots` Sqe.
//   helper region (read-write):               HelperHeader, then `nr_slots` Cqe, then the
//                                             data slots at `helper_data_offset(nr_slots)`.
// Both rings have `nr_slots` entries; at most `nr_slots` fetches are in flight (one per slot),
// so the submission ring can never overflow. Indexes are free-running u32, wrapped with `%`.
// ---------------------------------------------------------------------------------------------

pub const KERNEL_REGION_OFFSET: u64 = 0;
pub const HELPER_REGION_OFFSET: u64 = 1 << 32;
/// The unit of the ring layout. Regions are mapped whole, so the kernel's page size must
/// divide it (the module refuses to build otherwise).
pub const PAGE: usize = 4096;

/// Written by the kernel only.
#[repr(C)]
pub struct KernelHeader {
    /// Next submission index the kernel will write (release-stored after the Sqe).
    pub sq_tail: u32,
    pub _pad0: [u32; 15],
    /// Completion entries the kernel has consumed.
    pub cq_head: u32,
    pub _pad1: [u32; 15],
    /// Non-zero once the device is being removed; the helper stops.
    pub dead: u32,
    pub _pad2: [u32; 15],
}
const _: () = assert!(size_of::<KernelHeader>() == 192);

/// Written by the helper only; the kernel treats every value as untrusted.
#[repr(C)]
pub struct HelperHeader {
    /// Next completion index the helper will write (release-stored after the Cqe).
    pub cq_tail: u32,
    pub _pad0: [u32; 15],
}
const _: () = assert!(size_of::<HelperHeader>() == 64);

/// Submission: fetch block `block` of the image into slot `slot`.
#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub struct Sqe {
    pub block: u64,
    pub slot: u32,
    /// Stored length of the block file, from the index: the helper must deliver exactly this.
    pub stored_len: u32,
    /// Generation of this submission (never reused); echoed in the Cqe so a stale completion
    /// is ignored.
    pub seq: u32,
    /// 0 for a block's first submission; n when the n previous copies the helper delivered
    /// failed the kernel's checks (the helper should ask another server).
    pub retry: u32,
    /// `SQE_DEMAND` when a read waits for this block (else readahead or prefetch).
    pub flags: u32,
    pub reserved: u32,
}

/// `Sqe::flags`: a read is waiting for this block; the helper serves these first.
pub const SQE_DEMAND: u32 = 1;
const _: () = assert!(size_of::<Sqe>() == 32);

/// Completion: slot `slot` holds `len` bytes of the block file, or `status` < 0 (an errno).
#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub struct Cqe {
    pub slot: u32,
    pub seq: u32,
    pub status: i32,
    pub len: u32,
}
const _: () = assert!(size_of::<Cqe>() == 16);

pub const KERNEL_SQ_OFFSET: usize = size_of::<KernelHeader>();
pub const HELPER_CQ_OFFSET: usize = size_of::<HelperHeader>();

const fn page_align(n: usize) -> usize {
    (n + PAGE - 1) & !(PAGE - 1)
}

/// Length of the kernel region for `nr_slots`.
pub const fn kernel_region_len(nr_slots: u32) -> usize {
    page_align(KERNEL_SQ_OFFSET + nr_slots as usize * size_of::<Sqe>())
}

/// Offset of data slot 0 in the helper region.
pub const fn helper_data_offset(nr_slots: u32) -> usize {
    page_align(HELPER_CQ_OFFSET + nr_slots as usize * size_of::<Cqe>())
}

/// Size of one data slot for a block size.
pub const fn slot_size(block_shift: u8) -> usize {
    page_align(max_stored_len(block_shift))
}

/// Length of the helper region.
pub const fn helper_region_len(nr_slots: u32, block_shift: u8) -> usize {
    helper_data_offset(nr_slots) + nr_slots as usize * slot_size(block_shift)
}
