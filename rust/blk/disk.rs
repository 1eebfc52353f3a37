// SPDX-License-Identifier: GPL-2.0
//! A blk-mq disk with its own tag set, and the C callbacks blk-mq calls.

use core::fmt::{self, Write};
use core::marker::PhantomData;
use core::ptr::NonNull;

use kernel::bindings;
use kernel::error::{from_err_ptr, to_result};
use kernel::ffi::c_uint;
use kernel::prelude::*;
use kernel::types::{ForeignOwnable, Opaque, ScopeGuard};

use super::request::{Request, TimedOut};
use super::{NoIo, Operations, TimeoutAction};

/// Geometry and queue settings of a new disk.
pub(crate) struct DiskParams {
    pub(crate) capacity_sectors: u64,
    pub(crate) logical_block_size: u32,
    pub(crate) physical_block_size: u32,
    pub(crate) max_hw_sectors: u32,
    /// Optimal I/O size in bytes (0 = none).
    pub(crate) io_opt: u32,
    /// 0 = one per possible CPU.
    pub(crate) nr_hw_queues: u32,
    pub(crate) queue_depth: u32,
    /// First deadline of every request, in jiffies (the `.timeout` handler may extend it).
    pub(crate) timeout_jiffies: u32,
    /// Sysfs attribute groups of the disk (`disk_attrs!`).
    pub(crate) attrs: Option<&'static super::sysfs::Groups>,
}

/// A registered, read-only gendisk, its tag set and its queue data.
///
/// # Invariants
/// `gendisk` was added with `device_add_disk` and is deleted and put only in `drop`; its
/// queue's `queuedata` came from `T::QueueData::into_foreign` and is reclaimed in `drop`.
pub(crate) struct Disk<T: Operations> {
    gendisk: NonNull<bindings::gendisk>,
    queuedata: *mut kernel::ffi::c_void,
    tag_set: KBox<Opaque<bindings::blk_mq_tag_set>>,
    _t: PhantomData<T>,
}

// SAFETY: The gendisk is only touched in `new` and `drop`; queue data is Send + Sync.
unsafe impl<T: Operations> Send for Disk<T> {}
// SAFETY: As above.
unsafe impl<T: Operations> Sync for Disk<T> {}

struct Table<T>(PhantomData<T>);

impl<T: Operations> Table<T> {
    const MQ_OPS: bindings::blk_mq_ops = {
        // SAFETY: All-zero is a valid blk_mq_ops (every callback None).
        let mut ops: bindings::blk_mq_ops = unsafe { core::mem::zeroed() };
        ops.queue_rq = Some(queue_rq_callback::<T>);
        ops.timeout = Some(timeout_callback::<T>);
        ops
    };
}

/// Lockdep class of the disks' queues (lockdep wants static storage).
struct LockKey(Opaque<bindings::lock_class_key>);
// SAFETY: Lockdep owns the key's contents and synchronises access itself.
unsafe impl Sync for LockKey {}
static DISK_LOCK_KEY: LockKey = LockKey(Opaque::uninit());

/// The block_device_operations of every disk: no callbacks, the module as owner.
struct BlockOps(bindings::block_device_operations);
// SAFETY: Immutable after initialisation.
unsafe impl Sync for BlockOps {}
static BLOCK_OPS: BlockOps = BlockOps({
    // SAFETY: All-zero is a valid block_device_operations.
    let mut ops: bindings::block_device_operations = unsafe { core::mem::zeroed() };
    ops.owner = &raw mut bindings::__this_module;
    ops
});

impl<T: Operations> Disk<T> {
    /// Allocates a tag set and a disk named by `name`, and adds the disk.
    ///
    /// May sleep (partition scanning reads the disk through `T`).
    ///
    /// # Errors
    /// The errno of the failing blk-mq or block layer call.
    pub(crate) fn new(
        name: fmt::Arguments<'_>,
        p: &DiskParams,
        data: T::QueueData,
    ) -> Result<Self> {
        // SAFETY: All-zero is the starting state blk_mq_alloc_tag_set expects.
        let zeroed: bindings::blk_mq_tag_set = unsafe { core::mem::zeroed() };
        let tag_set = KBox::new(Opaque::new(zeroed), GFP_KERNEL)?;
        let set = tag_set.get();
        let nr_hw_queues = match p.nr_hw_queues {
            0 => crate::sys::helpers::nr_cpu_ids(),
            n => n,
        };
        // SAFETY: `set` is a zeroed tag set we own; blk_mq_alloc_tag_set initialises the rest.
        unsafe {
            (*set).ops = &Table::<T>::MQ_OPS;
            (*set).nr_hw_queues = nr_hw_queues;
            (*set).queue_depth = p.queue_depth;
            (*set).timeout = p.timeout_jiffies.max(1) as c_uint;
            (*set).numa_node = bindings::NUMA_NO_NODE;
            // Blocking: cache hits are copied and misses attached to their fetch right in
            // `queue_rq`, which takes mutexes and allocates; nothing waits for the network.
            // Merging is the default since 6.14, which dropped the flag that asked for it.
            #[cfg(httpblk_should_merge)]
            let flags = bindings::BLK_MQ_F_SHOULD_MERGE | bindings::BLK_MQ_F_BLOCKING;
            #[cfg(not(httpblk_should_merge))]
            let flags = bindings::BLK_MQ_F_BLOCKING;
            (*set).flags = flags;
            to_result(bindings::blk_mq_alloc_tag_set(set))?;
        }
        let set_guard = ScopeGuard::new_with_data(set, |set| {
            // SAFETY: Allocated above, no disk uses it.
            unsafe { bindings::blk_mq_free_tag_set(set) }
        });

        // SAFETY: All-zero queue_limits means "defaults" to blk-mq.
        let mut lim: bindings::queue_limits = unsafe { core::mem::zeroed() };
        lim.logical_block_size = p.logical_block_size;
        lim.physical_block_size = p.physical_block_size;
        lim.max_hw_sectors = p.max_hw_sectors;
        lim.io_opt = p.io_opt;

        let queuedata = crate::sys::compat::into_foreign(data);
        let data_guard = ScopeGuard::new_with_data(queuedata, |queuedata| {
            // SAFETY: From into_foreign above, not yet reclaimed.
            drop(unsafe { T::QueueData::from_foreign(queuedata) })
        });
        // SAFETY: Valid tag set and limits; the lock class key is static.
        let gendisk = from_err_ptr(unsafe {
            bindings::__blk_mq_alloc_disk(set, &mut lim, queuedata, DISK_LOCK_KEY.0.get())
        })?;
        // An ERR_PTR was turned into an error above; NULL is not expected but not trusted.
        let gendisk = NonNull::new(gendisk).ok_or(ENOMEM)?;
        let disk_guard = ScopeGuard::new_with_data(gendisk, |gendisk| {
            // SAFETY: Allocated above and never added.
            unsafe { bindings::put_disk(gendisk.as_ptr()) }
        });
        // SAFETY: `gendisk` is a fresh disk we own.
        unsafe {
            let gendisk = gendisk.as_ptr();
            (*gendisk).fops = &BLOCK_OPS.0;
            let mut w = NameWriter {
                buf: &mut (*gendisk).disk_name,
                pos: 0,
            };
            w.write_fmt(name).map_err(|_| EINVAL)?;
            bindings::set_capacity(gendisk, p.capacity_sectors);
            bindings::set_disk_ro(gendisk, true);
            let groups = p.attrs.map_or(core::ptr::null_mut(), |g| g.as_ptr());
            to_result(bindings::device_add_disk(
                core::ptr::null_mut(),
                gendisk,
                groups,
            ))?;
        }
        disk_guard.dismiss();
        data_guard.dismiss();
        set_guard.dismiss();
        // INVARIANT: Added above; queuedata came from into_foreign.
        Ok(Self {
            gendisk,
            queuedata,
            tag_set,
            _t: PhantomData,
        })
    }
}

impl<T: Operations> Drop for Disk<T> {
    fn drop(&mut self) {
        // SAFETY: By the invariant. del_gendisk drains all requests, so no callback uses the
        // queue data afterwards; the tag set outlives the disk's queue teardown.
        unsafe {
            bindings::del_gendisk(self.gendisk.as_ptr());
            bindings::put_disk(self.gendisk.as_ptr());
            bindings::blk_mq_free_tag_set(self.tag_set.get());
            drop(T::QueueData::from_foreign(self.queuedata));
        }
    }
}

/// Writes a NUL-terminated name into `gendisk.disk_name`.
struct NameWriter<'a> {
    buf: &'a mut [kernel::ffi::c_char; 32],
    pos: usize,
}

impl Write for NameWriter<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for &b in s.as_bytes() {
            if self.pos + 1 >= self.buf.len() {
                return Err(fmt::Error);
            }
            self.buf[self.pos] = b;
            self.pos += 1;
        }
        self.buf[self.pos] = 0;
        Ok(())
    }
}

/// # Safety
/// Called by blk-mq with a valid hardware context and queue data.
unsafe extern "C" fn queue_rq_callback<T: Operations>(
    _hctx: *mut bindings::blk_mq_hw_ctx,
    bd: *const bindings::blk_mq_queue_data,
) -> bindings::blk_status_t {
    // SAFETY: `bd` and its request are valid for this call.
    let Some(rq) = NonNull::new(unsafe { (*bd).rq }) else {
        // SAFETY: FFI call without preconditions.
        return unsafe { bindings::errno_to_blk_status(EIO.to_errno()) };
    };
    // SAFETY: A request blk-mq dispatched to us; starting it makes us its owner.
    unsafe { bindings::blk_mq_start_request(rq.as_ptr()) };
    // SAFETY: Started above, owned by us.
    let rq = unsafe { Request::from_raw(rq) };
    // SAFETY: The queue data came from `T::QueueData::into_foreign` and lives until del_gendisk
    // has drained every request.
    let data = unsafe { T::QueueData::borrow(rq.queuedata()) };
    let _noio = NoIo::begin();
    match T::queue_rq(data, rq) {
        Ok(()) => bindings::BLK_STS_OK as bindings::blk_status_t,
        // SAFETY: FFI call without preconditions; -ENOMEM is BLK_STS_RESOURCE (a macro).
        Err(_busy) => unsafe { bindings::errno_to_blk_status(ENOMEM.to_errno()) },
    }
}

/// # Safety
/// Called by blk-mq (from its timeout work, process context) for a started request.
unsafe extern "C" fn timeout_callback<T: Operations>(
    rq: *mut bindings::request,
) -> bindings::blk_eh_timer_return {
    let Some(rq) = NonNull::new(rq) else {
        return bindings::blk_eh_timer_return_BLK_EH_RESET_TIMER;
    };
    // SAFETY: The request of this timeout call; the handle lives only during the call.
    let timed_out = unsafe { TimedOut::new(rq) };
    // SAFETY: As in queue_rq_callback: a started request's queue data is alive.
    let data = unsafe { T::QueueData::borrow(timed_out.queuedata()) };
    let _noio = NoIo::begin();
    match T::timeout(data, &timed_out) {
        TimeoutAction::Done => bindings::blk_eh_timer_return_BLK_EH_DONE,
        TimeoutAction::ResetTimer => bindings::blk_eh_timer_return_BLK_EH_RESET_TIMER,
    }
}
