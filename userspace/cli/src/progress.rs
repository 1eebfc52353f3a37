//! A progress bar on a terminal, nothing otherwise (nor with `-q`).

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};

use indicatif::{ProgressBar, ProgressStyle};

static HIDDEN: AtomicBool = AtomicBool::new(false);

/// No bars from here on (`-q`: errors only).
pub fn hide() {
    HIDDEN.store(true, Ordering::Relaxed);
}

pub fn bar(total: u64, what: &str) -> ProgressBar {
    if HIDDEN.load(Ordering::Relaxed) || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(total);
    pb.set_style(
        ProgressStyle::with_template(
            "{msg} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        )
        .unwrap()
        .progress_chars("=> "),
    );
    pb.set_message(what.to_string());
    pb
}
