// SPDX-License-Identifier: GPL-2.0
//! The control device: ioctls that add, start, recover, list and remove devices, and the ring
//! calls of the helper. The file that adds (or recovers) a device owns its ring: mmap() maps
//! that ring, and only that file's ring calls are accepted. Closing the file (the helper
//! exiting or being killed) leaves the device waiting for a new helper (`IOC_RECOVER`), or
//! removes it when it was added with `ADD_REMOVE_ON_CLOSE` or never started.
//!
//! Locks: `devices` is never held while a disk is added or deleted.
#![forbid(unsafe_code)]

use core::sync::atomic::Ordering;

use kernel::new_mutex;
use kernel::prelude::*;
use kernel::sync::{Arc, ArcBorrow, Mutex};

use crate::blk::{Disk, DiskParams, ModuleRef};
use crate::device::{Device, Params, Shared};
use crate::index::Index;
use crate::params;
use crate::ring::Regions;
use crate::sys::compat::user_slice;
use crate::sys::miscdevice::{FileOps, Vma};
use crate::sys::shash;
use crate::uapi::{self, AddDevice, DeviceId, DeviceList, RecoverDevice, Wait};

struct Attached {
    device: Arc<Device>,
    disk: Option<Disk<Device>>,
    /// A device may outlive every open file (it waits for a new helper), so it pins the
    /// module itself: rmmod is refused until it is removed.
    _module: ModuleRef,
}

#[pin_data]
pub(crate) struct Control {
    shared: Arc<Shared>,
    /// Indexed by device id.
    #[pin]
    devices: Mutex<KVec<Option<Attached>>>,
}

impl crate::sys::workqueue::Ticked for Control {
    fn tick(&self) -> bool {
        let mut devices = KVec::new();
        for a in self.devices.lock().iter().flatten() {
            // A device missed now is looked at on the next tick.
            let _ = devices.push(a.device.clone(), GFP_KERNEL);
        }
        let mut again = false;
        for d in &devices {
            again |= d.enforce_deadlines();
        }
        again
    }
}

impl Control {
    pub(crate) fn new(shared: Arc<Shared>) -> Result<Arc<Self>> {
        // `max_devices` is read-only: the table keeps its size until the module goes.
        let max = params::MAX_DEVICES.get().min(uapi::LIST_MAX as u32);
        let mut table = KVec::with_capacity(max as usize, GFP_KERNEL)?;
        for _ in 0..max {
            table.push(None, GFP_KERNEL)?;
        }
        Arc::pin_init(
            pin_init!(Control { shared, devices <- new_mutex!(table, "httpblk:devices") }),
            GFP_KERNEL,
        )
    }

    /// Removes device `id`: fails its I/O, then deletes its disk. With `only`, removes it
    /// only if it is that very device (a file acts only on the device it owns, never on a
    /// later device that got the same id). Sleeps.
    fn remove(&self, id: u32, only: Option<&Arc<Device>>) -> Result {
        let attached = {
            let mut devs = self.devices.lock();
            let entry = devs.get_mut(id as usize).ok_or(ENODEV)?;
            match (entry.as_ref(), only) {
                (None, _) => return Err(ENODEV),
                (Some(a), Some(d)) if !Arc::ptr_eq(&a.device, d) => return Err(ENODEV),
                _ => {}
            }
            entry.take().ok_or(ENODEV)?
        };
        attached.device.kill();
        drop(attached.disk);
        pr_info!("httpblk{}: detached\n", id);
        Ok(())
    }
}

/// The device whose ring a file owns, and that ring.
#[derive(Clone)]
struct Owned {
    device: Arc<Device>,
    regions: Arc<Regions>,
}

/// An open control file.
#[pin_data]
pub(crate) struct Session {
    control: Arc<Control>,
    #[pin]
    owned: Mutex<Option<Owned>>,
}

impl Session {
    fn owned(&self) -> Result<Owned> {
        self.owned.lock().clone().ok_or(ENXIO)
    }

    /// Makes this file the owner of `o`; `false` when it owns a device already.
    fn take_ownership(&self, o: Owned) -> bool {
        let mut guard = self.owned.lock();
        if guard.is_some() {
            return false;
        }
        *guard = Some(o);
        true
    }

    /// `IOC_RECOVER`: this file's helper takes over an orphaned device.
    fn recover(&self, arg: usize) -> Result<isize> {
        let (mut reader, mut writer) =
            user_slice(arg, core::mem::size_of::<RecoverDevice>()).reader_writer();
        let mut req: RecoverDevice = reader.read()?;
        if req.abi_version != uapi::ABI_VERSION {
            pr_err!(
                "recover: ABI version {} (this module speaks {})\n",
                req.abi_version,
                uapi::ABI_VERSION
            );
            return Err(EINVAL);
        }
        if req.flags & !uapi::RECOVER_FLAGS_ALL != 0
            || req.reserved0 != 0
            || req.reserved.iter().any(|&r| r != 0)
        {
            return Err(EINVAL);
        }
        // Opening the control file needed CAP_SYS_ADMIN; taking over a device needs it now.
        if !crate::sys::miscdevice::capable_sys_admin() {
            return Err(EPERM);
        }
        if self.owned.lock().is_some() {
            return Err(EBUSY);
        }
        let device = {
            let devs = self.control.devices.lock();
            devs.get(req.dev_id as usize)
                .and_then(Option::as_ref)
                .map(|a| a.device.clone())
                .ok_or(ENODEV)?
        };
        if !device.started.load(Ordering::Acquire) {
            return Err(ENODEV);
        }
        let regions = device.recover(&req.index_sha256)?;
        req.nr_slots = device.nr_slots.get();
        req.slot_size = device.slot_size() as u32;
        req.kernel_region_len = regions.kernel.len() as u64;
        req.helper_region_len = regions.helper.len() as u64;
        let o = Owned {
            device: device.clone(),
            regions: regions.clone(),
        };
        if !self.take_ownership(o) {
            // Raced with an add or recover on this same file: give the ring back.
            device.orphan(&regions);
            return Err(EBUSY);
        }
        // On failure the ring stays with this file and is given up when the file is closed.
        writer.write(&req)?;
        Ok(0)
    }

    fn add(&self, arg: usize) -> Result<isize> {
        let (mut reader, mut writer) =
            user_slice(arg, core::mem::size_of::<AddDevice>()).reader_writer();
        let mut req: AddDevice = reader.read()?;
        if req.abi_version != uapi::ABI_VERSION {
            pr_err!(
                "add: ABI version {} (this module speaks {})\n",
                req.abi_version,
                uapi::ABI_VERSION
            );
            return Err(EINVAL);
        }
        if req.flags & !uapi::ADD_FLAGS_ALL != 0
            || req.reserved0 != 0
            || req.reserved.iter().any(|&r| r != 0)
        {
            return Err(EINVAL);
        }
        let recovery_timeout_ms = match req.recovery_timeout_ms {
            0 => params::RECOVERY_TIMEOUT_MS.get(),
            t @ 100..=3_600_000 => t,
            _ => return Err(EINVAL),
        };
        let max_inflight = params::MAX_INFLIGHT.get();
        let nr_slots = match req.nr_slots {
            0 => max_inflight,
            n @ uapi::MIN_SLOTS..=uapi::MAX_SLOTS => n.min(max_inflight),
            _ => return Err(EINVAL),
        };
        let io_timeout_ms = match req.io_timeout_ms {
            0 => params::IO_TIMEOUT_MS.get(),
            t @ 100..=600_000 => t,
            _ => return Err(EINVAL),
        };
        if !req.url.contains(&0) {
            return Err(EINVAL);
        }
        if req.index_len == 0 || req.index_len > uapi::MAX_INDEX_LEN {
            return Err(EINVAL);
        }
        // No lock is held across user copies: mmap() takes `device` under mmap_lock.
        if self.owned.lock().is_some() {
            return Err(EBUSY);
        }
        let len = req.index_len as usize;
        let mut raw = KVVec::with_capacity(len, GFP_KERNEL)?;
        raw.extend_with(len, 0, GFP_KERNEL)?;
        user_slice(req.index_addr as usize, len)
            .reader()
            .read_slice(&mut raw)?;
        let sha = shash::sha256(&raw);
        let index = Index::parse(raw)?;

        let shared = self.control.shared.clone();
        let module = ModuleRef::get()?;
        let mut devs = self.control.devices.lock();
        let id = devs.iter().position(Option::is_none).ok_or(ENOSPC)? as u32;
        let p = Params {
            nr_slots,
            io_timeout_ms,
            recovery_timeout_ms,
            remove_on_close: req.flags & uapi::ADD_REMOVE_ON_CLOSE != 0,
            url: req.url,
        };
        let device = Device::new(id, index, sha, &p, shared)?;
        let regions = device.regions().ok_or(ENXIO)?;
        let slot = devs.get_mut(id as usize).ok_or(ENOSPC)?;
        *slot = Some(Attached {
            device: device.clone(),
            disk: None,
            _module: module,
        });
        drop(devs);

        req.dev_id = id;
        req.nr_slots = nr_slots;
        req.slot_size = device.slot_size() as u32;
        req.kernel_region_len = regions.kernel.len() as u64;
        req.helper_region_len = regions.helper.len() as u64;
        req.index_sha256 = sha;
        if !self.take_ownership(Owned {
            device: device.clone(),
            regions,
        }) {
            let _ = self.control.remove(id, Some(&device));
            return Err(EBUSY);
        }
        // On failure the device stays with this file and goes when the file is closed.
        writer.write(&req)?;
        Ok(0)
    }

    /// Adds the disk: the helper serves its ring by now, so partition scanning can read.
    fn start(&self) -> Result<isize> {
        let device = self.owned()?.device;
        if device.started.swap(true, Ordering::AcqRel) {
            return Err(EBUSY);
        }
        let b = device.index.block_shift;
        let params = DiskParams {
            capacity_sectors: device.capacity_sectors(),
            logical_block_size: 512,
            physical_block_size: 4096,
            // One request spans at most one block plus a partial one.
            max_hw_sectors: ((1u32 << b) / 512).max(8),
            // One image block: md RAID1 moves a sequential reader to an idle member after
            // this much, so members fetch different blocks; page-cache readahead covers two.
            io_opt: 1u32 << b,
            nr_hw_queues: params::NR_HW_QUEUES.get(),
            queue_depth: params::QUEUE_DEPTH.get(),
            timeout_jiffies: device.blk_timeout().try_into().unwrap_or(u32::MAX),
            attrs: Some(Device::attrs()),
        };
        let disk = match Disk::new(
            format_args!("httpblk{}", device.id),
            &params,
            device.clone(),
        ) {
            Ok(disk) => disk,
            Err(e) => {
                // Not started: its helper's exit removes it, and IOC_START may be tried again.
                device.started.store(false, Ordering::Release);
                return Err(e);
            }
        };
        let mut devs = self.control.devices.lock();
        match devs
            .get_mut(device.id as usize)
            .and_then(Option::as_mut)
            .filter(|a| Arc::ptr_eq(&a.device, &device))
        {
            Some(a) => a.disk = Some(disk),
            None => {
                drop(devs);
                drop(disk); // removed meanwhile
                return Err(ENODEV);
            }
        }
        pr_info!(
            "httpblk{}: {} bytes in {} blocks of {} bytes\n",
            device.id,
            device.index.image_size,
            device.index.nr_blocks,
            1u64 << b
        );
        Ok(0)
    }

    fn list(&self, arg: usize) -> Result<isize> {
        let mut out = DeviceList {
            count: 0,
            reserved: 0,
            ids: [0; uapi::LIST_MAX],
        };
        for (slot, a) in out
            .ids
            .iter_mut()
            .zip(self.control.devices.lock().iter().flatten())
        {
            *slot = a.device.id;
            out.count += 1;
        }
        user_slice(arg, core::mem::size_of::<DeviceList>())
            .writer()
            .write(&out)?;
        Ok(0)
    }
}

/// The control device's file operations.
pub(crate) struct ControlFile;

impl FileOps for ControlFile {
    type Context = Arc<Control>;
    type File = Arc<Session>;

    fn open(control: ArcBorrow<'_, Control>) -> Result<Arc<Session>> {
        Arc::pin_init(
            pin_init!(Session { control: control.into(), owned <- new_mutex!(None, "httpblk:session") }),
            GFP_KERNEL,
        )
    }

    fn ioctl(s: ArcBorrow<'_, Session>, cmd: u32, arg: usize) -> Result<isize> {
        match cmd {
            uapi::IOC_ADD => s.add(arg),
            uapi::IOC_START => s.start(),
            uapi::IOC_RECOVER => s.recover(arg),
            uapi::IOC_REMOVE => {
                let id: DeviceId = user_slice(arg, core::mem::size_of::<DeviceId>())
                    .reader()
                    .read()?;
                if id.reserved != 0 {
                    return Err(EINVAL);
                }
                s.control.remove(id.dev_id, None).map(|()| 0)
            }
            uapi::IOC_LIST => s.list(arg),
            uapi::IOC_WAIT => {
                let (mut r, mut w) = user_slice(arg, core::mem::size_of::<Wait>()).reader_writer();
                let mut wait: Wait = r.read()?;
                let o = s.owned()?;
                wait.tail = o.device.wait_submissions(&o.regions, wait.seen)?;
                w.write(&wait)?;
                Ok(0)
            }
            uapi::IOC_COMMIT => {
                let o = s.owned()?;
                o.device.commit(&o.regions).map(|()| 0)
            }
            _ => Err(ENOTTY),
        }
    }

    fn mmap(s: ArcBorrow<'_, Session>, vma: &Vma) -> Result {
        // This file's own ring, current or not: an old ring's memory is never a later one's.
        let o = s.owned()?;
        match vma.offset() {
            uapi::KERNEL_REGION_OFFSET => vma.map(&o.regions.kernel, true),
            uapi::HELPER_REGION_OFFSET => vma.map(&o.regions.helper, false),
            _ => Err(EINVAL),
        }
    }

    fn release(s: Arc<Session>) {
        let owned = s.owned.lock().take();
        let Some(Owned { device, regions }) = owned else {
            return;
        };
        if device.remove_on_close || !device.started.load(Ordering::Acquire) {
            device.kill();
            // Already gone if removed with IOC_REMOVE (its id may belong to a new device by
            // now, which must stay).
            let _ = s.control.remove(device.id, Some(&device));
        } else {
            device.orphan(&regions);
        }
    }
}
