//! A block store on local disk: `NAME.hbi` index files and `blocks/XX/DIGEST` block files.
//! Any static HTTP server exporting the directory serves it as is.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::digest::BlockDigest;
use crate::error::IoContext;
use crate::Result;

/// File name suffix of an index.
pub const INDEX_SUFFIX: &str = ".hbi";

/// Path of a block file relative to the store root (also its URL path).
pub fn block_rel_path(digest: &BlockDigest) -> String {
    let hex = digest.hex();
    format!("blocks/{}/{}", &hex[..2], hex)
}

/// Writes `data` to `path` through a temporary name and a rename, so that a reader never sees
/// a partial file. Returns false, writing nothing, when `path` already exists.
pub fn write_new_file(path: &Path, data: &[u8]) -> Result<bool> {
    if path.exists() {
        return Ok(false);
    }
    let dir = path.parent().expect("store paths have a parent");
    fs::create_dir_all(dir).at(dir)?;
    let mut tmp = tempfile_in(dir)?;
    tmp.1.write_all(data).at(&tmp.0)?;
    tmp.persist(path)?;
    Ok(true)
}

/// Replaces `path` atomically and durably (for index files, which may be re-created): the
/// data is on disk before the rename, and the rename before this returns.
pub fn replace_file(path: &Path, data: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile_in(dir)?;
    tmp.1.write_all(data).at(&tmp.0)?;
    tmp.1.sync_all().at(&tmp.0)?;
    tmp.persist(path)?;
    fs::File::open(dir).and_then(|d| d.sync_all()).at(dir)
}

/// A file written under a temporary name, not yet renamed to its place.
pub struct Staged {
    tmp: TempFile,
    path: PathBuf,
}

/// Writes `data` for `path` under a temporary name in the same directory. `commit` puts a
/// batch of them in place after one `syncfs`, so a crash never leaves a named block file
/// without its bytes, at the cost of one sync per batch rather than one per file.
pub fn stage(path: &Path, data: &[u8]) -> Result<Staged> {
    let dir = path.parent().expect("store paths have a parent");
    fs::create_dir_all(dir).at(dir)?;
    let mut tmp = tempfile_in(dir)?;
    tmp.1.write_all(data).at(&tmp.0)?;
    Ok(Staged {
        tmp,
        path: path.to_path_buf(),
    })
}

/// Flushes everything written on the file system holding `dir` to disk.
pub fn sync_fs(dir: &Path) -> Result<()> {
    let d = fs::File::open(dir).at(dir)?;
    rustix::fs::syncfs(&d).map_err(std::io::Error::from).at(dir)
}

/// Makes the staged files durable (one `syncfs` of `dir`'s file system), then renames each
/// over its path (replacing a damaged file there).
pub fn commit(dir: &Path, staged: Vec<Staged>) -> Result<()> {
    if staged.is_empty() {
        return Ok(());
    }
    sync_fs(dir)?;
    for s in staged {
        s.tmp.persist(&s.path)?;
    }
    Ok(())
}

/// A temporary file that removes itself unless its path was cleared after the rename.
struct TempFile(PathBuf, fs::File);

impl TempFile {
    /// Renames the file to `path`; it is no longer removed on drop.
    fn persist(mut self, path: &Path) -> Result<()> {
        fs::rename(&self.0, path).at(path)?;
        self.0 = PathBuf::new();
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.0.as_os_str().is_empty() {
            let _ = fs::remove_file(&self.0);
        }
    }
}

fn tempfile_in(dir: &Path) -> Result<TempFile> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    loop {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(format!(".tmp-{}-{n}", std::process::id()));
        match fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(f) => return Ok(TempFile(path, f)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e).at(path),
        }
    }
}

/// The index files in a store directory, sorted by name.
pub fn list_indexes(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for ent in fs::read_dir(dir).at(dir)? {
        let p = ent.at(dir)?.path();
        if p.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.ends_with(INDEX_SUFFIX))
        {
            out.push(p);
        }
    }
    out.sort();
    Ok(out)
}
