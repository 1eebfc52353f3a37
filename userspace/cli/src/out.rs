//! Standard output that a closed pipe ends quietly (`httpblk cat DIR | head -c100`), as it
//! ends coreutils: the command stops at the first failed write and dies of SIGPIPE, with no
//! message. Rust ignores SIGPIPE so that a write to a closed socket is an error, not death;
//! `println!` then panics on a closed pipe. Every write to standard output goes through
//! `Stdout` (the `outln!` macro), which marks that error so that `main` knows it.
//!
//! SIGPIPE stays ignored while the command runs: a write to a socket a server reset must
//! stay an error the retries handle.

use std::io::{self, Write};

/// The mark on the I/O error of a write to a closed pipe.
#[derive(Debug)]
pub struct PipeClosed;

impl std::fmt::Display for PipeClosed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("output closed")
    }
}

impl std::error::Error for PipeClosed {}

fn mark(e: io::Error) -> io::Error {
    if e.kind() == io::ErrorKind::BrokenPipe {
        io::Error::new(io::ErrorKind::BrokenPipe, PipeClosed)
    } else {
        e
    }
}

/// A writer whose closed pipe is marked for `main` (standard output, or an `-o` FIFO).
pub struct Guarded<W>(pub W);

impl<W: Write> Write for Guarded<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf).map_err(mark)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.0.write_all(buf).map_err(mark)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush().map_err(mark)
    }
}

/// Standard output, guarded.
pub fn stdout() -> Guarded<io::StdoutLock<'static>> {
    Guarded(io::stdout().lock())
}

/// `println!` that returns the error (marked when the pipe is closed) instead of panicking.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!($crate::out::stdout(), $($arg)*)
    }};
}

/// Whether `e` is, or was caused by, a write to a closed pipe.
pub fn is_pipe_closed(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .and_then(|io| io.get_ref())
            .is_some_and(|inner| inner.is::<PipeClosed>())
    })
}

/// Ends the process as a closed pipe ends coreutils: killed by SIGPIPE (status 141 in a
/// shell, which says nothing about it).
pub fn die_of_sigpipe() -> ! {
    let _ = io::stderr().flush();
    // SAFETY: restoring a signal's default action and raising it touch no Rust state; the
    // process ends here.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        libc::raise(libc::SIGPIPE);
    }
    std::process::exit(128 + libc::SIGPIPE)
}
