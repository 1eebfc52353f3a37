//! A hostile *recovering* helper for the VM suite: it tries to take over an orphaned device
//! with a wrong index digest, a bad ABI version and unknown flags (each must be refused), then
//! takes it over for real and serves its ring with garbage (wrong generations and slots,
//! impossible lengths, corrupt data, finally an impossible tail), while a second file tries to
//! take over the device it owns (refused). Usage: hostile_recover DEV_ID INDEX_FILE IMAGE.
//! Exits non-zero if the kernel accepted something it must refuse or a read returned data
//! other than the image's (cached blocks read fine: they never came from this helper).

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

mod common;

use httpblk_core::uapi::{self, Cqe, HelperHeader, RecoverDevice, Sqe, Wait};
use sha2::{Digest, Sha256};

/// The garbage server gives up after this, whatever happens.
const SERVE_BOUND: Duration = Duration::from_secs(60);

fn open() -> File {
    OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/httpblk-control")
        .expect("open control")
}

fn ioctl<T>(f: &File, cmd: u32, arg: *mut T) -> Result<(), i32> {
    // SAFETY: `arg` points to a value of the size `cmd` encodes, or is unused.
    let r = unsafe { libc::ioctl(f.as_raw_fd(), cmd as _, arg) };
    if r < 0 {
        Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
    } else {
        Ok(())
    }
}

fn request(dev_id: u32, sha: [u8; 32]) -> RecoverDevice {
    RecoverDevice {
        abi_version: uapi::ABI_VERSION,
        dev_id,
        index_sha256: sha,
        ..Default::default()
    }
}

fn map(f: &File, off: u64, len: usize, prot: i32) -> *mut u8 {
    // SAFETY: a fresh shared mapping of the control file; the kernel checks it.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            prot,
            libc::MAP_SHARED,
            f.as_raw_fd(),
            off as _,
        )
    };
    assert!(p != libc::MAP_FAILED, "mmap of the recovered ring");
    p.cast()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (dev_id, index, image) = match &args[..] {
        [_, id, path, image] => (
            id.parse::<u32>().expect("DEV_ID"),
            std::fs::read(path).expect("read index"),
            File::open(image).expect("open image"),
        ),
        _ => panic!("usage: hostile_recover DEV_ID INDEX_FILE IMAGE"),
    };
    let sha: [u8; 32] = Sha256::digest(&index).into();
    let mut failures = 0;

    // 1. Requests the kernel must refuse.
    let mut wrong = sha;
    wrong[0] ^= 1;
    type Mutation = Box<dyn Fn(&mut RecoverDevice)>;
    let cases: Vec<(&str, Mutation)> = vec![
        ("another index", Box::new(move |r| r.index_sha256 = wrong)),
        ("abi version", Box::new(|r| r.abi_version = 99)),
        ("unknown flag", Box::new(|r| r.flags = 1)),
        ("reserved set", Box::new(|r| r.reserved[3] = 1)),
        ("no such device", Box::new(|r| r.dev_id = 63)),
    ];
    for (what, mutate) in cases {
        let mut r = request(dev_id, sha);
        mutate(&mut r);
        match ioctl(&open(), uapi::IOC_RECOVER, &mut r) {
            Ok(()) => {
                eprintln!("ACCEPTED: recover with {what}");
                failures += 1;
            }
            Err(e) => eprintln!("recover with {what}: refused (errno {e})"),
        }
    }

    // 2. The real takeover.
    let f = open();
    let mut r = request(dev_id, sha);
    if let Err(e) = ioctl(&f, uapi::IOC_RECOVER, &mut r) {
        eprintln!("recover with the right index refused (errno {e})");
        std::process::exit(1);
    }
    // A second helper for an owned device, and a second device for this file.
    let mut again = request(dev_id, sha);
    if ioctl(&open(), uapi::IOC_RECOVER, &mut again).is_ok() {
        eprintln!("ACCEPTED: a second helper for an owned device");
        failures += 1;
    }
    if ioctl(&f, uapi::IOC_RECOVER, &mut again).is_ok() {
        eprintln!("ACCEPTED: a second recover on one file");
        failures += 1;
    }
    let nr = r.nr_slots;
    let kern = map(
        &f,
        uapi::KERNEL_REGION_OFFSET,
        r.kernel_region_len as usize,
        libc::PROT_READ,
    ) as usize;
    let help = map(
        &f,
        uapi::HELPER_REGION_OFFSET,
        r.helper_region_len as usize,
        libc::PROT_READ | libc::PROT_WRITE,
    ) as usize;
    let slot_size = r.slot_size as usize;
    let ring = f.try_clone().expect("dup");

    // 3. Garbage on the new ring while reads wait.
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let (kern, help) = (kern as *mut u8, help as *mut u8);
        // SAFETY: the helper region header is mapped read-write.
        let tail = unsafe {
            &*(help.add(std::mem::offset_of!(HelperHeader, cq_tail)) as *const AtomicU32)
        };
        let (mut seen, mut n) = (0u32, 0u32);
        let mut doomed = false;
        let start = Instant::now();
        // Ends when the kernel fails the device (IOC_WAIT: ENODEV): true.
        let failed = loop {
            if start.elapsed() > SERVE_BOUND {
                break false;
            }
            let mut w = Wait { seen, tail: 0 };
            match ioctl(&ring, uapi::IOC_WAIT, &mut w) {
                Ok(()) => {}
                Err(libc::EINTR) => continue,
                Err(e) => break e == libc::ENODEV,
            }
            while seen != w.tail {
                let i = (seen % nr) as usize;
                // SAFETY: inside the mapped kernel region.
                let sqe: Sqe = unsafe {
                    std::ptr::read_volatile(
                        kern.add(uapi::KERNEL_SQ_OFFSET + i * std::mem::size_of::<Sqe>())
                            .cast(),
                    )
                };
                seen = seen.wrapping_add(1);
                let data = uapi::helper_data_offset(nr) + (sqe.slot % nr) as usize * slot_size;
                // SAFETY: the slot lies inside the helper region (slot taken modulo nr).
                unsafe { std::ptr::write_bytes(help.add(data), 0x5A, slot_size) };
                let mut cqe = Cqe {
                    slot: sqe.slot,
                    seq: sqe.seq,
                    status: 0,
                    len: sqe.stored_len,
                };
                match n % 4 {
                    0 => cqe.seq = cqe.seq.wrapping_sub(1),
                    1 => cqe.slot = u32::MAX,
                    2 => cqe.len = u32::MAX,
                    _ => {} // right slot and generation, corrupt data
                }
                n += 1;
                let t = tail.load(Ordering::Relaxed);
                // SAFETY: inside the mapped completion ring.
                unsafe {
                    std::ptr::write_volatile(
                        help.add(uapi::HELPER_CQ_OFFSET + (t % nr) as usize * 16)
                            .cast(),
                        cqe,
                    )
                };
                // An add, not a store: the main thread may push the tail too (below).
                tail.fetch_add(1, Ordering::Release);
                let _ = ioctl(&ring, uapi::IOC_COMMIT, std::ptr::null_mut::<u8>());
            }
            if n > 40 && !doomed {
                // An impossible tail: the kernel must fail the device.
                doomed = true;
                tail.fetch_add(1000, Ordering::Release);
                let _ = ioctl(&ring, uapi::IOC_COMMIT, std::ptr::null_mut::<u8>());
            }
        };
        let _ = done_tx.send(failed);
    });
    let dev = format!("/dev/httpblk{dev_id}");
    let parsed = httpblk_core::index::Index::parse(&index).expect("test index");
    let stored: Vec<u64> = (0..parsed.entries.len() as u64)
        .filter(|&i| !parsed.entries[i as usize].is_zero())
        .collect();
    // Ten reads at once, each of a block the garbage serves (so the run takes about one I/O
    // timeout, not ten).
    let wrong = std::thread::scope(|s| {
        let reads: Vec<_> = stored
            .iter()
            .step_by((stored.len() / 10).max(1))
            .map(|&b| {
                let (dev, image, parsed) = (&dev, &image, &parsed);
                s.spawn(move || {
                    let (mut got, mut want) = (vec![0u8; 4096], vec![0u8; 4096]);
                    let off = b * parsed.block_size();
                    let read = File::open(dev).and_then(|d| d.read_exact_at(&mut got, off));
                    image.read_exact_at(&mut want, off).expect("read image");
                    read.is_ok() && got != want
                })
            })
            .collect();
        reads
            .into_iter()
            .map(|r| r.join().expect("read thread"))
            .filter(|&wrong| wrong)
            .count()
    });
    if wrong > 0 {
        eprintln!("ACCEPTED: {wrong} reads returned data a garbage-serving helper gave");
        failures += 1;
    }
    // The reads are over: an impossible tail now if the garbage did not send one.
    failures += common::impossible_tail(help as *mut u8, &f, &done_rx);
    if failures > 0 {
        eprintln!("{failures} hostile inputs were accepted");
        std::process::exit(1);
    }
    println!("hostile recovering helper: every malformed input was refused");
}
