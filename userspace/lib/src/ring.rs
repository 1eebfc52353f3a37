//! The helper's side of a device's fetch ring (Documentation/ring.md): the control device's
//! ioctls, the two shared regions, and posting completions.

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;

use crate::uapi::{
    self, AddDevice, Cqe, DeviceId, DeviceList, HelperHeader, KernelHeader, RecoverDevice, Sqe,
    Wait,
};
use crate::{Error, Result};

/// Path of the control device.
pub fn control_path() -> String {
    format!("/dev/{}", uapi::CONTROL_NAME)
}

fn os_err(what: &str) -> Error {
    let e = std::io::Error::last_os_error();
    Error::Io {
        path: format!("{} ({what})", control_path()).into(),
        source: e,
    }
}

/// An open control device.
pub struct Control {
    file: File,
}

impl Control {
    pub fn open() -> Result<Control> {
        let path = control_path();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|source| Error::Io {
                path: format!("{path} (is httpblk.ko loaded? modprobe httpblk)").into(),
                source,
            })?;
        Ok(Control { file })
    }

    fn ioctl<T>(&self, cmd: u32, arg: *mut T, what: &str) -> Result<()> {
        // SAFETY: `arg` points to a live value of the size encoded in `cmd` (checked by the
        // uapi layout assertions), or is unused by the command.
        let r = unsafe { libc::ioctl(self.file.as_raw_fd(), cmd as _, arg) };
        if r < 0 {
            return Err(os_err(what));
        }
        Ok(())
    }

    /// Ids of the attached devices.
    pub fn list(&self) -> Result<Vec<u32>> {
        let mut l = DeviceList {
            count: 0,
            reserved: 0,
            ids: [0; uapi::LIST_MAX],
        };
        self.ioctl(uapi::IOC_LIST, &mut l, "list")?;
        Ok(l.ids[..(l.count as usize).min(uapi::LIST_MAX)].to_vec())
    }

    /// Removes device `id`; its helper sees the device die and exits.
    pub fn remove(&self, id: u32) -> Result<()> {
        let mut d = DeviceId {
            dev_id: id,
            reserved: 0,
        };
        self.ioctl(uapi::IOC_REMOVE, &mut d, "remove")
    }
}

/// A shared memory mapping.
struct Mapping {
    ptr: *mut u8,
    len: usize,
}

// SAFETY: plain shared memory; all access is through raw pointers and atomics.
unsafe impl Send for Mapping {}
// SAFETY: as above.
unsafe impl Sync for Mapping {}

impl Mapping {
    fn new(file: &File, offset: u64, len: usize, writable: bool) -> Result<Mapping> {
        let prot = libc::PROT_READ | if writable { libc::PROT_WRITE } else { 0 };
        // SAFETY: a fresh shared mapping of the control file; the kernel checks offset and size.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                prot,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                offset as _,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(os_err("mmap"));
        }
        Ok(Mapping { ptr: p.cast(), len })
    }

    fn at(&self, offset: usize, len: usize) -> *mut u8 {
        assert!(offset + len <= self.len, "ring access out of bounds");
        // SAFETY: in bounds, checked above.
        unsafe { self.ptr.add(offset) }
    }

    fn index(&self, offset: usize) -> &AtomicU32 {
        // SAFETY: aligned, in bounds, alive while `self` is.
        unsafe { &*self.at(offset, 4).cast::<AtomicU32>() }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: mapped in `new` with this length.
        unsafe { libc::munmap(self.ptr.cast(), self.len) };
    }
}

/// What the kernel said about a new device.
#[derive(Clone, Debug)]
pub struct Added {
    pub dev_id: u32,
    pub index_sha256: String,
}

/// Settings of a new device; 0 takes the module's default.
#[derive(Clone, Copy, Debug, Default)]
pub struct AddOptions {
    /// Ring slots (the module's `max_inflight` by default and at most).
    pub nr_slots: u32,
    pub io_timeout_ms: u32,
    /// How long reads that miss wait for a new helper once this one is gone.
    pub recovery_timeout_ms: u32,
    /// Remove the device when this helper exits, instead of waiting for `recover`.
    pub remove_on_close: bool,
}

/// A device's ring; dropping it closes the control file, and the device waits for a new
/// helper (or goes, if it was added with `remove_on_close`).
pub struct Ring {
    control: Control,
    kernel: Mapping,
    helper: Mapping,
    pub nr_slots: u32,
    pub slot_size: usize,
    pub added: Added,
    /// Serialises completion posting (several fetch tasks finish at once).
    cq: Mutex<()>,
}

impl Ring {
    /// Creates a device from a raw index and maps its ring.
    pub fn add(index: &[u8], o: AddOptions, url: &str) -> Result<Ring> {
        let control = Control::open()?;
        // SAFETY: AddDevice is plain data; all-zero is valid.
        let mut req: AddDevice = unsafe { std::mem::zeroed() };
        req.abi_version = uapi::ABI_VERSION;
        req.index_addr = index.as_ptr() as u64;
        req.index_len = index.len() as u64;
        req.nr_slots = o.nr_slots;
        req.io_timeout_ms = o.io_timeout_ms;
        req.recovery_timeout_ms = o.recovery_timeout_ms;
        if o.remove_on_close {
            req.flags |= uapi::ADD_REMOVE_ON_CLOSE;
        }
        let u = url.as_bytes();
        let n = u.len().min(uapi::URL_LEN - 1);
        req.url[..n].copy_from_slice(&u[..n]);
        control.ioctl(
            uapi::IOC_ADD,
            &mut req,
            "add device; dmesg tells why on EINVAL",
        )?;
        let added = Added {
            dev_id: req.dev_id,
            index_sha256: hex::encode(req.index_sha256),
        };
        // The kernel may grant fewer slots than asked (its `max_inflight`).
        Self::map(
            control,
            added,
            req.nr_slots,
            req.slot_size,
            req.kernel_region_len,
            req.helper_region_len,
        )
    }

    /// Takes over device `dev_id`, whose helper is gone, serving the index with SHA-256
    /// `index_sha256` (the kernel refuses any other), and maps its new ring. Fetches that were
    /// in flight come again as submissions on the new ring.
    pub fn recover(dev_id: u32, index_sha256: [u8; 32]) -> Result<Ring> {
        let control = Control::open()?;
        let mut req = RecoverDevice {
            abi_version: uapi::ABI_VERSION,
            dev_id,
            index_sha256,
            ..Default::default()
        };
        control.ioctl(
            uapi::IOC_RECOVER,
            &mut req,
            "recover device (EBUSY: a helper owns it; EINVAL: another index, see dmesg)",
        )?;
        let added = Added {
            dev_id,
            index_sha256: hex::encode(index_sha256),
        };
        Self::map(
            control,
            added,
            req.nr_slots,
            req.slot_size,
            req.kernel_region_len,
            req.helper_region_len,
        )
    }

    fn map(
        control: Control,
        added: Added,
        nr_slots: u32,
        slot_size: u32,
        kernel_len: u64,
        helper_len: u64,
    ) -> Result<Ring> {
        let kernel = Mapping::new(
            &control.file,
            uapi::KERNEL_REGION_OFFSET,
            kernel_len as usize,
            false,
        )?;
        let helper = Mapping::new(
            &control.file,
            uapi::HELPER_REGION_OFFSET,
            helper_len as usize,
            true,
        )?;
        Ok(Ring {
            control,
            kernel,
            helper,
            nr_slots,
            slot_size: slot_size as usize,
            added,
            cq: Mutex::new(()),
        })
    }

    /// Adds the disk. Call once the ring is being served: partition scanning reads through it.
    pub fn start(&self) -> Result<()> {
        self.control
            .ioctl(uapi::IOC_START, std::ptr::null_mut::<u8>(), "start")
    }

    /// Blocks until the submission tail moves past `seen`; returns the new tail, or `None`
    /// once the device is gone or another helper took it over.
    pub fn wait(&self, seen: u32) -> Result<Option<u32>> {
        loop {
            let mut w = Wait { seen, tail: 0 };
            match self.control.ioctl(uapi::IOC_WAIT, &mut w, "wait") {
                Ok(()) => return Ok(Some(w.tail)),
                Err(Error::Io { source, .. }) if source.raw_os_error() == Some(libc::EINTR) => {
                    continue
                }
                Err(Error::Io { source, .. })
                    if matches!(source.raw_os_error(), Some(libc::ENODEV | libc::ESTALE)) =>
                {
                    return Ok(None)
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The submission at free-running position `pos`.
    pub fn sqe(&self, pos: u32) -> Sqe {
        let i = (pos % self.nr_slots) as usize;
        let p = self.kernel.at(
            uapi::KERNEL_SQ_OFFSET + i * size_of::<Sqe>(),
            size_of::<Sqe>(),
        );
        // SAFETY: in bounds; Sqe is plain data.
        unsafe { std::ptr::read_volatile(p.cast::<Sqe>()) }
    }

    /// True once the kernel marked the device dead.
    pub fn is_dead(&self) -> bool {
        self.kernel
            .index(std::mem::offset_of!(KernelHeader, dead))
            .load(Ordering::Acquire)
            != 0
    }

    /// The data slot `slot` as a raw pointer and length.
    ///
    /// Only the task serving the slot's current submission may write to it.
    pub fn slot_ptr(&self, slot: u32) -> (*mut u8, usize) {
        assert!(slot < self.nr_slots);
        let off = uapi::helper_data_offset(self.nr_slots) + slot as usize * self.slot_size;
        (self.helper.at(off, self.slot_size), self.slot_size)
    }

    /// Posts a completion and tells the kernel.
    pub fn complete(&self, cqe: Cqe) -> Result<()> {
        let _g = self.cq.lock().unwrap();
        let tail_ref = self
            .helper
            .index(std::mem::offset_of!(HelperHeader, cq_tail));
        let head_ref = self
            .kernel
            .index(std::mem::offset_of!(KernelHeader, cq_head));
        let tail = tail_ref.load(Ordering::Relaxed);
        // One completion per outstanding slot, committed right away: the ring cannot be full.
        debug_assert!(tail.wrapping_sub(head_ref.load(Ordering::Acquire)) < self.nr_slots);
        let i = (tail % self.nr_slots) as usize;
        let p = self.helper.at(
            uapi::HELPER_CQ_OFFSET + i * size_of::<Cqe>(),
            size_of::<Cqe>(),
        );
        // SAFETY: in bounds; the helper region is writable.
        unsafe { std::ptr::write_volatile(p.cast::<Cqe>(), cqe) };
        // Release: the kernel that sees the new tail also sees the entry.
        tail_ref.store(tail.wrapping_add(1), Ordering::Release);
        match self
            .control
            .ioctl(uapi::IOC_COMMIT, std::ptr::null_mut::<u8>(), "commit")
        {
            Err(Error::Io { source, .. })
                if matches!(source.raw_os_error(), Some(libc::ENODEV | libc::ESTALE)) =>
            {
                Ok(())
            }
            r => r,
        }
    }
}
