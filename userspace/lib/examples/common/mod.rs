//! What the hostile example helpers share.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::Receiver;
use std::time::Duration;

use httpblk_core::uapi::{self, HelperHeader};

/// Pushes the helper's completion tail far past anything possible and commits it on `ring`:
/// the kernel must fail the device (EPROTO, or ENODEV when a garbage server's own impossible
/// tail already had), which wakes the garbage server out of IOC_WAIT with ENODEV, reported as
/// `true` on `server_done`. `help` is the read-write mapping of the helper region. Returns the
/// hostile inputs the kernel accepted (0, 1 or 2), each reported on stderr.
pub fn impossible_tail(help: *mut u8, ring: &File, server_done: &Receiver<bool>) -> u32 {
    let mut accepted = 0;
    // SAFETY: the helper region header is mapped read-write, and stays mapped.
    let tail =
        unsafe { &*(help.add(std::mem::offset_of!(HelperHeader, cq_tail)) as *const AtomicU32) };
    // An add, not a store: the garbage server may be moving the tail too.
    tail.fetch_add(1000, Ordering::Release);
    // SAFETY: IOC_COMMIT takes no argument.
    let r = unsafe { libc::ioctl(ring.as_raw_fd(), uapi::IOC_COMMIT as _, 0) };
    let errno = std::io::Error::last_os_error().raw_os_error();
    if r == 0 || !matches!(errno, Some(libc::EPROTO | libc::ENODEV)) {
        eprintln!("ACCEPTED: an impossible completion tail was committed: {r} {errno:?}");
        accepted += 1;
    }
    match server_done.recv_timeout(Duration::from_secs(10)) {
        Ok(true) => eprintln!("impossible tail: the kernel failed the device"),
        Ok(false) | Err(_) => {
            eprintln!("ACCEPTED: an impossible completion tail did not fail the device");
            accepted += 1;
        }
    }
    accepted
}
