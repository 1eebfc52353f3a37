//! A deliberately hostile helper for the VM suite: it feeds the kernel malformed add requests,
//! mutated indexes and garbage on the ring, and checks that each is refused or fails only its
//! own device. Usage: hostile_helper INDEX_FILE. Exits non-zero if the kernel accepted
//! something it must refuse.
//!
//! `hostile_helper --reuse-id INDEX_FILE`: device ownership across a reused id. File A adds a
//! device (id N), file B removes it, file C adds a new device (the lowest free id: N again),
//! then A is closed: C's device must survive (listed, not dead, its ring calls still work).
//! Exits non-zero if closing A removed or killed C's device.

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

mod common;

use httpblk_core::uapi::{self, AddDevice, Cqe, DeviceList, HelperHeader, KernelHeader, Sqe, Wait};

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
        Err(std::io::Error::last_os_error().raw_os_error().unwrap())
    } else {
        Ok(())
    }
}

fn add_req(index: &[u8]) -> AddDevice {
    // SAFETY: plain data.
    let mut r: AddDevice = unsafe { std::mem::zeroed() };
    r.abi_version = uapi::ABI_VERSION;
    r.index_addr = index.as_ptr() as u64;
    r.index_len = index.len() as u64;
    r.nr_slots = 4;
    r.io_timeout_ms = 2000;
    r
}

fn mmap(f: &File, off: u64, len: usize, prot: i32) -> *mut u8 {
    // SAFETY: a fresh shared mapping; the kernel validates it.
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
    if p == libc::MAP_FAILED {
        std::ptr::null_mut()
    } else {
        p.cast()
    }
}

/// Ids of the attached devices.
fn list(f: &File) -> Vec<u32> {
    let mut l = DeviceList {
        count: 0,
        reserved: 0,
        ids: [0; uapi::LIST_MAX],
    };
    ioctl(f, uapi::IOC_LIST, &mut l).expect("IOC_LIST");
    l.ids[..(l.count as usize).min(uapi::LIST_MAX)].to_vec()
}

/// `IOC_WAIT` with a `seen` that differs from the submission tail: a live device answers at
/// once with its tail, a dead one with `ENODEV`. Run on a thread, bounded, in case it blocks.
fn wait_differs(f: &File) -> Result<Result<u32, i32>, &'static str> {
    let f = f.try_clone().expect("dup control file");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        // No submission was ever posted (the disk was never started): the tail is 0.
        let mut w = Wait {
            seen: 0x8000_0000,
            tail: 0,
        };
        let r = ioctl(&f, uapi::IOC_WAIT, &mut w).map(|()| w.tail);
        // Closed before answering: the caller may close the last other copy right after.
        drop(f);
        let _ = tx.send(r);
    });
    rx.recv_timeout(Duration::from_secs(10))
        .map_err(|_| "IOC_WAIT still blocked after 10 s")
}

fn reuse_id(index: &[u8]) -> i32 {
    let a = open();
    let mut ra = add_req(index);
    if let Err(e) = ioctl(&a, uapi::IOC_ADD, &mut ra) {
        eprintln!("reuse-id: add from file A refused (errno {e})");
        return 2;
    }
    let n = ra.dev_id;
    let b = open();
    let mut id = uapi::DeviceId {
        dev_id: n,
        reserved: 0,
    };
    if let Err(e) = ioctl(&b, uapi::IOC_REMOVE, &mut id) {
        eprintln!("reuse-id: IOC_REMOVE of device {n} from file B refused (errno {e})");
        return 2;
    }
    if list(&b).contains(&n) {
        eprintln!("reuse-id: device {n} still listed after IOC_REMOVE");
        return 1;
    }
    let c = open();
    let mut rc = add_req(index);
    if let Err(e) = ioctl(&c, uapi::IOC_ADD, &mut rc) {
        eprintln!("reuse-id: add from file C refused (errno {e})");
        return 2;
    }
    let m = rc.dev_id;
    if m == n {
        eprintln!("reuse-id: file C's new device got the freed id {n}");
    } else {
        eprintln!("reuse-id: note: file C's new device got id {m}, not the freed id {n}");
    }
    let klen = rc.kernel_region_len as usize;
    let kern = mmap(&c, uapi::KERNEL_REGION_OFFSET, klen, libc::PROT_READ);
    if kern.is_null() {
        eprintln!("reuse-id: mapping device {m}'s kernel region refused");
        return 1;
    }
    match wait_differs(&c) {
        Ok(Ok(_)) => {}
        r => {
            eprintln!("reuse-id: device {m}'s ring is not usable before closing A: {r:?}");
            return 2;
        }
    }

    // The first file goes: its device was removed long ago; it must take nothing with it.
    drop(a);

    let mut failures = 0;
    let ids = list(&b);
    if !ids.contains(&m) {
        eprintln!("FAILED: closing file A removed device {m}, which file C owns (listed: {ids:?})");
        failures += 1;
    }
    // SAFETY: the kernel header lies at the start of the mapping made above.
    let dead =
        unsafe { &*(kern.add(std::mem::offset_of!(KernelHeader, dead)) as *const AtomicU32) };
    if dead.load(Ordering::Acquire) != 0 {
        eprintln!("FAILED: closing file A marked device {m} (file C's) dead");
        failures += 1;
    }
    match wait_differs(&c) {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => {
            eprintln!("FAILED: IOC_WAIT on file C fails with errno {e} after closing file A");
            failures += 1;
        }
        Err(what) => {
            eprintln!("FAILED: {what} on file C after closing file A");
            failures += 1;
        }
    }
    // Closing C removes its own device.
    // SAFETY: mapped above with this length.
    unsafe { libc::munmap(kern.cast(), klen) };
    drop(c);
    let ids = list(&b);
    if ids.contains(&m) {
        eprintln!("FAILED: device {m} still listed after its file was closed ({ids:?})");
        failures += 1;
    }
    if failures > 0 {
        return 1;
    }
    println!("reuse-id: closing a file whose device was removed left device {m} alone");
    0
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() == 3 && args[1] == "--reuse-id" {
        let index = std::fs::read(&args[2]).expect("read index");
        std::process::exit(reuse_id(&index));
    }
    let path = args
        .get(1)
        .expect("usage: hostile_helper [--reuse-id] INDEX_FILE");
    let index = std::fs::read(path).expect("read index");
    let mut failures = 0;

    // 1. Malformed requests, each on a fresh file.
    type Mutation = Box<dyn Fn(&mut AddDevice)>;
    let cases: Vec<(&str, Mutation)> = vec![
        ("abi version", Box::new(|r| r.abi_version = 99)),
        ("unknown flag", Box::new(|r| r.flags = !uapi::ADD_FLAGS_ALL)),
        // (0 slots is valid: it asks for the module's max_inflight.)
        (
            "too many slots",
            Box::new(|r| r.nr_slots = uapi::MAX_SLOTS + 1),
        ),
        ("huge timeout", Box::new(|r| r.io_timeout_ms = 600_001)),
        ("tiny timeout", Box::new(|r| r.io_timeout_ms = 1)),
        (
            "url without NUL",
            Box::new(|r| r.url = [b'a'; uapi::URL_LEN]),
        ),
        ("reserved set", Box::new(|r| r.reserved[2] = 1)),
        ("huge index", Box::new(|r| r.index_len = u64::MAX)),
        ("bad pointer", Box::new(|r| r.index_addr = 0x10)),
        ("short index", Box::new(|r| r.index_len = 10)),
    ];
    for (what, mutate) in &cases {
        let f = open();
        let mut r = add_req(&index);
        mutate(&mut r);
        if ioctl(&f, uapi::IOC_ADD, &mut r).is_ok() {
            eprintln!("ACCEPTED: {what}");
            failures += 1;
        }
    }

    // 2. Mutated indexes: header and length fields must be refused; the kernel must survive all.
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut rnd = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for i in 0..300 {
        let mut m = index.clone();
        match i % 3 {
            0 => {
                let at = (rnd() as usize) % uapi::INDEX_HEADER_LEN;
                m[at] ^= 1 << (rnd() % 8);
            }
            1 => m.truncate((rnd() as usize) % m.len()),
            _ => {
                let at = (rnd() as usize) % m.len();
                m[at] = rnd() as u8;
            }
        }
        let f = open();
        let mut r = add_req(&m);
        let res = ioctl(&f, uapi::IOC_ADD, &mut r);
        // The kernel and the userspace parser must agree on every index.
        let valid = httpblk_core::index::Index::parse(&m).is_ok();
        if valid != res.is_ok() {
            eprintln!("DISAGREE: mutated index #{i}: userspace valid={valid}, kernel {res:?}");
            failures += 1;
        }
    }

    // 3. A valid device whose helper writes garbage on the ring.
    let f = open();
    let mut r = add_req(&index);
    ioctl(&f, uapi::IOC_ADD, &mut r).expect("valid add refused");
    let klen = r.kernel_region_len as usize;
    let hlen = r.helper_region_len as usize;
    if !mmap(
        &f,
        uapi::KERNEL_REGION_OFFSET,
        klen,
        libc::PROT_READ | libc::PROT_WRITE,
    )
    .is_null()
    {
        eprintln!("ACCEPTED: writable mapping of the kernel region");
        failures += 1;
    }
    let kern = mmap(&f, uapi::KERNEL_REGION_OFFSET, klen, libc::PROT_READ);
    assert!(!kern.is_null(), "read-only mapping refused");
    // SAFETY: mapped above with this length.
    if unsafe { libc::mprotect(kern.cast(), klen, libc::PROT_READ | libc::PROT_WRITE) } == 0 {
        eprintln!("ACCEPTED: mprotect of the kernel region to writable");
        failures += 1;
    }
    let help = mmap(
        &f,
        uapi::HELPER_REGION_OFFSET,
        hlen,
        libc::PROT_READ | libc::PROT_WRITE,
    );
    assert!(!help.is_null(), "helper mapping refused");
    if !mmap(&f, uapi::HELPER_REGION_OFFSET, hlen + 4096, libc::PROT_READ).is_null() {
        eprintln!("ACCEPTED: oversized mapping");
        failures += 1;
    }

    let dev = format!("/dev/httpblk{}", r.dev_id);
    let fr = f.try_clone().unwrap();
    let (kern_addr, help_addr) = (kern as usize, help as usize);
    // Serve with garbage: wrong generations, slots, lengths and contents.
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let (kern, help) = (kern_addr as *mut u8, help_addr as *mut u8);
        let nr = 4u32;
        // SAFETY: the helper region header is mapped read-write.
        let tail = unsafe {
            &*(help.add(std::mem::offset_of!(HelperHeader, cq_tail)) as *const AtomicU32)
        };
        let mut seen = 0;
        let mut n = 0u32;
        let mut doomed = false;
        let start = Instant::now();
        // Ends when the kernel fails the device (IOC_WAIT: ENODEV): true.
        let failed = loop {
            if start.elapsed() > Duration::from_secs(60) {
                break false;
            }
            let mut w = Wait { seen, tail: 0 };
            match ioctl(&fr, uapi::IOC_WAIT, &mut w) {
                Ok(()) => {}
                Err(libc::EINTR) => continue,
                Err(e) => break e == libc::ENODEV,
            }
            while seen != w.tail {
                let i = (seen % nr) as usize;
                // SAFETY: inside the mapped kernel region.
                let sqe: Sqe = unsafe {
                    std::ptr::read_volatile(kern.add(uapi::KERNEL_SQ_OFFSET + i * 32).cast())
                };
                seen = seen.wrapping_add(1);
                let data_off = uapi::helper_data_offset(nr);
                // SAFETY: the slot lies inside the helper region (kernel-chosen slot < nr).
                unsafe {
                    std::ptr::write_bytes(
                        help.add(data_off + sqe.slot as usize * r.slot_size as usize),
                        0xAB,
                        sqe.stored_len as usize,
                    )
                };
                let cqe = match n % 5 {
                    0 => Cqe {
                        slot: sqe.slot,
                        seq: sqe.seq.wrapping_add(7),
                        status: 0,
                        len: sqe.stored_len,
                    },
                    1 => Cqe {
                        slot: 1000,
                        seq: sqe.seq,
                        status: 0,
                        len: sqe.stored_len,
                    },
                    2 => Cqe {
                        slot: sqe.slot,
                        seq: sqe.seq,
                        status: 0,
                        len: u32::MAX,
                    },
                    3 => Cqe {
                        slot: sqe.slot,
                        seq: sqe.seq,
                        status: 12345,
                        len: sqe.stored_len,
                    },
                    _ => Cqe {
                        slot: sqe.slot,
                        seq: sqe.seq,
                        status: 0,
                        len: sqe.stored_len,
                    },
                };
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
                let _ = ioctl(&fr, uapi::IOC_COMMIT, std::ptr::null_mut::<u8>());
            }
            if n > 40 && !doomed {
                // An impossible tail: the kernel must fail the device.
                doomed = true;
                tail.fetch_add(1000, Ordering::Release);
                let _ = ioctl(&fr, uapi::IOC_COMMIT, std::ptr::null_mut::<u8>());
            }
        };
        let _ = done_tx.send(failed);
    });
    let starter = f.try_clone().unwrap();
    let _ = ioctl(&starter, uapi::IOC_START, std::ptr::null_mut::<u8>());
    let t0 = Instant::now();
    // Only stored blocks: zero blocks read fine without any fetch.
    let parsed = httpblk_core::index::Index::parse(&index).expect("test index");
    let stored: Vec<u64> = (0..parsed.entries.len() as u64)
        .filter(|&i| !parsed.entries[i as usize].is_zero())
        .collect();
    // Ten reads at once (so the run takes about one I/O timeout, not ten).
    let ok = std::thread::scope(|s| {
        let reads: Vec<_> = stored
            .iter()
            .step_by((stored.len() / 10).max(1))
            .map(|&b| {
                let (dev, parsed) = (&dev, &parsed);
                s.spawn(move || {
                    let mut buf = vec![0u8; 4096];
                    use std::os::unix::fs::FileExt;
                    File::open(dev)
                        .and_then(|d| d.read_exact_at(&mut buf, b * parsed.block_size()))
                        .is_ok()
                })
            })
            .collect();
        reads
            .into_iter()
            .map(|r| r.join().expect("read thread"))
            .filter(|&ok| ok)
            .count()
    });
    if ok > 0 {
        eprintln!("ACCEPTED: {ok} reads succeeded from a garbage-serving helper");
        failures += 1;
    }
    eprintln!(
        "garbage ring: reads failed as they should in {:?}",
        t0.elapsed()
    );
    // The reads are over: an impossible tail now if the garbage did not send one.
    failures += common::impossible_tail(help, &f, &done_rx);
    let mut id = uapi::DeviceId {
        dev_id: r.dev_id,
        reserved: 0,
    };
    let _ = ioctl(&open(), uapi::IOC_REMOVE, &mut id);
    drop(f);
    drop(starter);
    if failures > 0 {
        eprintln!("{failures} hostile inputs were accepted");
        std::process::exit(1);
    }
    println!("hostile helper: every malformed input was refused");
}
