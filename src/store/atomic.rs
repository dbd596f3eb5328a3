//! Atomic file creation: write to `NAME.tmp`, flush, fsync, then rename.
//!
//! A file written through [`AtomicFile`] is either absent or complete: a crash
//! or an error before [`AtomicFile::commit`] leaves at most a `*.tmp` leftover,
//! which readers ignore and [`crate::store::WorkDir::open`] removes. A
//! destination that exists and is not a regular file (`/dev/stdout`, a
//! FIFO) is written in place: renaming over it would replace the device.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// Suffix of files that are still being written.
pub const TMP_SUFFIX: &str = ".tmp";

/// A file that becomes visible under its final name only when committed.
#[derive(Debug)]
pub struct AtomicFile {
    /// The temporary file, `None` when writing a special file in place.
    tmp: Option<PathBuf>,
    dest: PathBuf,
    file: Option<BufWriter<File>>,
}

impl AtomicFile {
    /// Creates `dest.tmp` (and missing parent directories) for writing.
    pub fn create(dest: impl Into<PathBuf>) -> io::Result<Self> {
        let dest = dest.into();
        if fs::metadata(&dest).is_ok_and(|m| !m.is_file() && !m.is_dir()) {
            let file = File::options().write(true).open(&dest)?;
            return Ok(Self {
                tmp: None,
                dest,
                file: Some(BufWriter::new(file)),
            });
        }
        if let Some(parent) = dest.parent().filter(|p| !p.as_os_str().is_empty()) {
            fs::create_dir_all(parent)?;
        }
        let tmp = tmp_path(&dest);
        let file = File::create(&tmp)?;
        Ok(Self {
            tmp: Some(tmp),
            dest,
            file: Some(BufWriter::new(file)),
        })
    }

    /// The final path this file will have once committed.
    pub fn dest(&self) -> &Path {
        &self.dest
    }

    /// Flushes, fsyncs and renames the file into place, then fsyncs the directory.
    pub fn commit(mut self) -> io::Result<()> {
        let file = self.file.take().expect("AtomicFile committed twice");
        let file = file.into_inner().map_err(|e| e.into_error())?;
        let Some(tmp) = &self.tmp else {
            // A device or pipe: flushed above, nothing to rename.
            return Ok(());
        };
        file.sync_all()?;
        drop(file);
        fs::rename(tmp, &self.dest)?;
        sync_dir(self.dest.parent());
        Ok(())
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.as_mut().expect("write after commit").write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.as_mut().expect("flush after commit").flush()
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if self.file.take().is_some()
            && let Some(tmp) = &self.tmp
        {
            // Not committed: the partial file must never become visible.
            let _ = fs::remove_file(tmp);
        }
    }
}

/// Writes `bytes` to `dest` atomically.
pub fn write_atomic(dest: impl Into<PathBuf>, bytes: &[u8]) -> io::Result<()> {
    let mut file = AtomicFile::create(dest)?;
    file.write_all(bytes)?;
    file.commit()
}

/// The temporary name used while `dest` is written.
pub fn tmp_path(dest: &Path) -> PathBuf {
    let mut name = dest.as_os_str().to_owned();
    name.push(TMP_SUFFIX);
    PathBuf::from(name)
}

/// Removes every `*.tmp` leftover below `dir`; returns how many were removed.
pub fn clean_tmp_files(dir: &Path) -> io::Result<usize> {
    let mut removed = 0;
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            removed += clean_tmp_files(&path)?;
        } else if path.to_string_lossy().ends_with(TMP_SUFFIX) {
            fs::remove_file(&path)?;
            removed += 1;
        }
    }
    Ok(removed)
}

fn sync_dir(dir: Option<&Path>) {
    // Directory fsync makes the rename durable; not every platform allows
    // opening a directory, and failing here must not fail a finished write.
    if let Some(dir) = dir.filter(|d| !d.as_os_str().is_empty())
        && let Ok(handle) = File::open(dir)
    {
        let _ = handle.sync_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_makes_the_file_visible_and_removes_the_tmp() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("sub/a.txt");
        let mut f = AtomicFile::create(&dest).unwrap();
        f.write_all(b"hello").unwrap();
        assert!(!dest.exists());
        assert!(tmp_path(&dest).exists());
        f.commit().unwrap();
        assert_eq!(fs::read_to_string(&dest).unwrap(), "hello");
        assert!(!tmp_path(&dest).exists());
    }

    #[test]
    fn dropping_without_commit_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("a.txt");
        {
            let mut f = AtomicFile::create(&dest).unwrap();
            f.write_all(b"partial").unwrap();
        }
        assert!(!dest.exists());
        assert!(!tmp_path(&dest).exists());
    }

    #[test]
    fn a_special_file_is_written_in_place() {
        use std::os::unix::fs::FileTypeExt;
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path; mkfifo has no other preconditions.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let reader = {
            let fifo = fifo.clone();
            std::thread::spawn(move || std::fs::read_to_string(fifo).unwrap())
        };
        let mut f = AtomicFile::create(&fifo).unwrap();
        f.write_all(b"rows\n").unwrap();
        f.commit().unwrap();
        assert_eq!(reader.join().unwrap(), "rows\n");
        assert!(fs::metadata(&fifo).unwrap().file_type().is_fifo());
        assert!(!tmp_path(&fifo).exists());
    }

    #[test]
    fn clean_removes_only_tmp_files() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("x/y")).unwrap();
        fs::write(dir.path().join("x/y/part.parquet.tmp"), b"").unwrap();
        fs::write(dir.path().join("x/keep.parquet"), b"").unwrap();
        assert_eq!(clean_tmp_files(dir.path()).unwrap(), 1);
        assert!(dir.path().join("x/keep.parquet").exists());
    }
}
