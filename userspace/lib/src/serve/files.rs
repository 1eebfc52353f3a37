//! What a request path names: a regular file beneath the store, opened without leaving it.

use std::fs::{File, Metadata};
use std::path::{Component, Path, PathBuf};

use http::StatusCode;
use rustix::fs::{Mode, OFlags, ResolveFlags};

/// Maps a request path to a path relative to the store, refusing anything that could leave
/// it.
pub(super) fn resolve(uri_path: &str) -> Option<PathBuf> {
    let decoded = percent_decode(uri_path)?;
    let mut out = PathBuf::new();
    for c in Path::new(decoded.trim_start_matches('/')).components() {
        match c {
            Component::Normal(s) => out.push(s),
            _ => return None,
        }
    }
    (!out.as_os_str().is_empty()).then_some(out)
}

pub(super) fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    let s = String::from_utf8(out).ok()?;
    (!s.contains('\0')).then_some(s)
}

/// Opens `rel` in `root` for reading without leaving it: `..`, a symlink out of the store, an
/// absolute symlink or a /proc magic link on the way fails (EXDEV, ELOOP). Non-blocking, so
/// that a FIFO does not wait for a writer; the caller checks the file type.
pub(super) fn open_beneath(root: &Path, rel: &Path) -> std::io::Result<File> {
    let flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC;
    // Opened for each request, as a path-based server would: a store renamed into place
    // is served at once.
    let dir = rustix::fs::open(
        root,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let resolve = ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS;
    match rustix::fs::openat2(&dir, rel, flags, Mode::empty(), resolve) {
        // No openat2 (before 5.6), or a seccomp filter that refuses it (older container
        // profiles answer EPERM).
        Err(rustix::io::Errno::NOSYS | rustix::io::Errno::PERM) => open_canonical(root, rel, flags),
        r => Ok(File::from(r?)),
    }
}

/// `open_beneath` for kernels without openat2 (before 5.6): the canonical path must be
/// inside the canonical store. Laxer (an absolute symlink into the store is followed) and
/// racy against a store changed while it checks, but never out of a store left alone.
pub(super) fn open_canonical(root: &Path, rel: &Path, flags: OFlags) -> std::io::Result<File> {
    let root = root.canonicalize()?;
    let path = root.join(rel).canonicalize()?;
    if !path.starts_with(&root) {
        return Err(std::io::Error::from_raw_os_error(libc::EXDEV));
    }
    Ok(File::from(rustix::fs::open(
        &path,
        flags | OFlags::NOFOLLOW,
        Mode::empty(),
    )?))
}

/// Opens a regular file of the store; anything else (or nothing) is `NotFound`.
pub(super) fn open_file(root: &Path, rel: &Path) -> std::io::Result<(File, Metadata)> {
    let file = open_beneath(root, rel)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(std::io::ErrorKind::NotFound.into());
    }
    Ok((file, meta))
}

/// The answer to a failed open: 404 for what is not there to serve (missing, out of the
/// store, not a regular file, a socket), 403 for what may not be read, else none (500).
pub(super) fn refusal(e: &std::io::Error) -> Option<StatusCode> {
    if e.kind() == std::io::ErrorKind::NotFound {
        return Some(StatusCode::NOT_FOUND);
    }
    match e.raw_os_error()? {
        libc::ENOTDIR | libc::EXDEV | libc::ELOOP | libc::ENXIO | libc::ENAMETOOLONG => {
            Some(StatusCode::NOT_FOUND)
        }
        libc::EACCES | libc::EPERM => Some(StatusCode::FORBIDDEN),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn paths_stay_inside_the_root() {
        assert_eq!(resolve("/a/b.hbi"), Some(PathBuf::from("a/b.hbi")));
        assert_eq!(resolve("/a//b%2ehbi"), Some(PathBuf::from("a/b.hbi")));
        assert_eq!(resolve("/a/%2e%2e/%2e%2e/etc/passwd"), None);
        assert_eq!(resolve("/../etc/passwd"), None);
        assert_eq!(resolve("/"), None);
        assert_eq!(resolve("/a%00b"), None);
    }

    /// Both ways of opening keep to the store: openat2, and the fallback without it.
    #[test]
    fn symlinks_out_of_the_store_are_not_followed() {
        let t = tempfile::tempdir().unwrap();
        let store = t.path().join("store");
        std::fs::create_dir_all(store.join("sub")).unwrap();
        std::fs::write(store.join("sub/f"), b"x").unwrap();
        std::fs::write(t.path().join("secret"), b"s").unwrap();
        let link = |target: &str, name: &str| {
            std::os::unix::fs::symlink(target, store.join(name)).unwrap()
        };
        link("sub/f", "inside");
        link("../secret", "up");
        link("..", "parent");
        link("/etc", "etc");
        let flags = OFlags::RDONLY | OFlags::NONBLOCK;
        for (path, served) in [
            ("sub/f", true),
            ("inside", true),
            ("up", false),
            ("parent/secret", false),
            ("etc/passwd", false),
        ] {
            let rel = Path::new(path);
            assert_eq!(open_beneath(&store, rel).is_ok(), served, "{path}");
            assert_eq!(open_canonical(&store, rel, flags).is_ok(), served, "{path}");
            if let Err(e) = open_beneath(&store, rel) {
                assert_eq!(refusal(&e), Some(StatusCode::NOT_FOUND), "{path}: {e}");
            }
        }
        // An absolute symlink is refused even into the store (the fallback follows it).
        link(store.join("sub/f").to_str().unwrap(), "absolute");
        assert!(open_beneath(&store, Path::new("absolute")).is_err());
    }

    #[test]
    fn only_regular_files_are_opened() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir(t.path().join("dir")).unwrap();
        let _sock = std::os::unix::net::UnixListener::bind(t.path().join("sock")).unwrap();
        for name in ["dir", "sock", "missing"] {
            let e = open_file(t.path(), Path::new(name)).unwrap_err();
            assert_eq!(refusal(&e), Some(StatusCode::NOT_FOUND), "{name}: {e}");
        }
    }
}
