// SPDX-License-Identifier: GPL-2.0
//! The control device: ioctls that add, start, list and remove devices, and the ring calls of
//! the helper. The file that adds a device owns its ring: mmap() maps the ring, and closing
//! the file (the helper exiting or being killed) removes the device.
//!
//! Locks: `devices` is never held while a disk is added or deleted.
#![forbid(unsafe_code)]

use core::sync::atomic::Ordering;

use kernel::new_mutex;
use kernel::prelude::*;
use kernel::sync::{Arc, ArcBorrow, Mutex};
use kernel::uaccess::UserSlice;

use crate::blk::{Disk, DiskParams};
use crate::chardev::{FileOps, Vma};
use crate::device::{Device, Params, Shared};
use crate::digest;
use crate::index::Index;
use crate::params;
use crate::uapi::{self, AddDevice, DeviceId, DeviceList, Wait};

struct Attached {
    device: Arc<Device>,
    disk: Option<Disk<Device>>,
}

#[pin_data]
pub(crate) struct Control {
    shared: Arc<Shared>,
    /// Indexed by device id.
    #[pin]
    devices: Mutex<KVec<Option<Attached>>>,
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

/// An open control file.
#[pin_data]
pub(crate) struct Session {
    control: Arc<Control>,
    /// The device whose ring this file owns.
    #[pin]
    device: Mutex<Option<Arc<Device>>>,
}

impl Session {
    fn device(&self) -> Result<Arc<Device>> {
        self.device.lock().clone().ok_or(ENXIO)
    }

    fn add(&self, arg: usize) -> Result<isize> {
        let (mut reader, mut writer) =
            UserSlice::new(arg as _, core::mem::size_of::<AddDevice>()).reader_writer();
        let mut req: AddDevice = reader.read()?;
        if req.abi_version != uapi::ABI_VERSION {
            pr_err!(
                "add: ABI version {} (this module speaks {})\n",
                req.abi_version,
                uapi::ABI_VERSION
            );
            return Err(EINVAL);
        }
        if req.flags & !uapi::ADD_FLAGS_ALL != 0 || req.reserved.iter().any(|&r| r != 0) {
            return Err(EINVAL);
        }
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
        if self.device.lock().is_some() {
            return Err(EBUSY);
        }
        let len = req.index_len as usize;
        let mut raw = KVVec::with_capacity(len, GFP_KERNEL)?;
        raw.extend_with(len, 0, GFP_KERNEL)?;
        UserSlice::new(req.index_addr as _, len)
            .reader()
            .read_slice(&mut raw)?;
        let sha = digest::sha256(&raw);
        let index = Index::parse(raw)?;

        let shared = self.control.shared.clone();
        let mut devs = self.control.devices.lock();
        let id = devs.iter().position(Option::is_none).ok_or(ENOSPC)? as u32;
        let device = Device::new(
            id,
            index,
            sha,
            &Params {
                nr_slots,
                io_timeout_ms,
                url: req.url,
            },
            shared,
        )?;
        devs[id as usize] = Some(Attached {
            device: device.clone(),
            disk: None,
        });
        drop(devs);

        req.dev_id = id;
        req.nr_slots = nr_slots;
        req.slot_size = device.slot_size() as u32;
        req.kernel_region_len = device.kernel_region.len() as u64;
        req.helper_region_len = device.helper_region.len() as u64;
        req.index_sha256 = sha;
        let claimed = {
            let mut guard = self.device.lock();
            let free = guard.is_none();
            if free {
                *guard = Some(device.clone());
            }
            free
        };
        if !claimed {
            let _ = self.control.remove(id, Some(&device));
            return Err(EBUSY);
        }
        // On failure the device stays with this file and goes when the file is closed.
        writer.write(&req)?;
        Ok(0)
    }

    /// Adds the disk: the helper serves its ring by now, so partition scanning can read.
    fn start(&self) -> Result<isize> {
        let device = self.device()?;
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
            timeout_jiffies: device.first_timeout().try_into().unwrap_or(u32::MAX),
            attrs: Some(Device::attrs()),
        };
        let disk = Disk::new(
            format_args!("httpblk{}", device.id),
            &params,
            device.clone(),
        )?;
        let mut devs = self.control.devices.lock();
        match devs[device.id as usize]
            .as_mut()
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
        for a in self.control.devices.lock().iter().flatten() {
            out.ids[out.count as usize] = a.device.id;
            out.count += 1;
        }
        UserSlice::new(arg as _, core::mem::size_of::<DeviceList>())
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
            pin_init!(Session { control: control.into(), device <- new_mutex!(None, "httpblk:session") }),
            GFP_KERNEL,
        )
    }

    fn ioctl(s: ArcBorrow<'_, Session>, cmd: u32, arg: usize) -> Result<isize> {
        match cmd {
            uapi::IOC_ADD => s.add(arg),
            uapi::IOC_START => s.start(),
            uapi::IOC_REMOVE => {
                let id: DeviceId = UserSlice::new(arg as _, core::mem::size_of::<DeviceId>())
                    .reader()
                    .read()?;
                if id.reserved != 0 {
                    return Err(EINVAL);
                }
                s.control.remove(id.dev_id, None).map(|()| 0)
            }
            uapi::IOC_LIST => s.list(arg),
            uapi::IOC_WAIT => {
                let (mut r, mut w) =
                    UserSlice::new(arg as _, core::mem::size_of::<Wait>()).reader_writer();
                let mut wait: Wait = r.read()?;
                wait.tail = s.device()?.wait_submissions(wait.seen)?;
                w.write(&wait)?;
                Ok(0)
            }
            uapi::IOC_COMMIT => s.device()?.commit().map(|()| 0),
            _ => Err(ENOTTY),
        }
    }

    fn mmap(s: ArcBorrow<'_, Session>, vma: &Vma) -> Result {
        let device = s.device()?;
        match vma.offset() {
            uapi::KERNEL_REGION_OFFSET => vma.map(&device.kernel_region, true),
            uapi::HELPER_REGION_OFFSET => vma.map(&device.helper_region, false),
            _ => Err(EINVAL),
        }
    }

    fn release(s: Arc<Session>) {
        let device = s.device.lock().take();
        if let Some(device) = device {
            device.kill();
            // Already gone if removed with IOC_REMOVE (its id may belong to a new device by
            // now, which must stay).
            let _ = s.control.remove(device.id, Some(&device));
        }
    }
}
