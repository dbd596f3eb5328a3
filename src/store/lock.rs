//! The work-dir lock: one writer per work dir.
//!
//! Commands that write a work dir hold an exclusive `flock` on
//! `WORK_DIR/.lock` for as long as they run. The operating system releases
//! it when the process ends, however it ends (a `kill -9` leaves no stale
//! lock), so a second writer is refused at once with the holder's pid and
//! command, and the next writer after a crash starts normally. Read-only
//! commands (`rsr sql`) never take it. Sampling tasks (`rsr sample --task`)
//! hold it shared: they run together, and no other writer runs beside
//! them.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::StoreError;

/// File name of the lock inside a work dir.
pub const LOCK_FILE: &str = ".lock";

/// A work dir's lock (exclusive, or shared by sampling tasks), released
/// when the last clone is dropped.
#[derive(Debug, Clone)]
pub struct WorkDirLock {
    _file: Arc<File>,
}

impl WorkDirLock {
    /// Takes the lock of the work dir at `root` without waiting; names the
    /// holder in the error when another process has it.
    pub fn acquire(root: &Path) -> Result<Self, StoreError> {
        Self::take(root, false)
    }

    /// Takes the lock shared with other sampling tasks, without waiting;
    /// names the holder when a whole-dir writer has it.
    pub fn acquire_shared(root: &Path) -> Result<Self, StoreError> {
        Self::take(root, true)
    }

    fn take(root: &Path, shared: bool) -> Result<Self, StoreError> {
        let path = root.join(LOCK_FILE);
        let io = |source| StoreError::Io {
            path: path.clone(),
            source,
        };
        let mut file = open_rw(&path).map_err(io)?;
        let taken = if shared {
            file.try_lock_shared()
        } else {
            file.try_lock()
        };
        match taken {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                // Held shared (the exclusive attempt failed, a shared one
                // would not): sampling tasks, whose names are elsewhere.
                let holder = if !shared && file.try_lock_shared().is_ok() {
                    let _ = file.unlock();
                    format!("sampling tasks: rsr status {} lists them", root.display())
                } else {
                    let mut holder = String::new();
                    let _ = file.read_to_string(&mut holder);
                    holder.trim().to_string()
                };
                return Err(StoreError::Locked {
                    path: root.to_path_buf(),
                    holder,
                });
            }
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
        if !shared {
            // Tasks share the lock: their names are in their shard locks.
            let who = format!(
                "pid {} ({}) since {}\n",
                std::process::id(),
                command_line(),
                chrono::Local::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, false)
            );
            file.set_len(0).map_err(io)?;
            file.seek(SeekFrom::Start(0)).map_err(io)?;
            file.write_all(who.as_bytes()).map_err(io)?;
        }
        Ok(Self {
            _file: Arc::new(file),
        })
    }
}

/// An exclusive lock on `path` (created when missing) without waiting;
/// `Err` when another holder has it. Released when the file is dropped.
pub fn try_exclusive(path: &Path) -> Result<File, StoreError> {
    let io = |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = open_rw(path).map_err(io)?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(TryLockError::WouldBlock) => Err(io(std::io::ErrorKind::WouldBlock.into())),
        Err(TryLockError::Error(e)) => Err(io(e)),
    }
}

/// Holds an exclusive lock on `path` (created when missing), waiting for
/// it: for a read-modify-write of a file that several sampling tasks
/// update. Released when the returned file is dropped.
pub fn wait_exclusive(path: &Path) -> Result<File, StoreError> {
    let io = |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let file = open_rw(path).map_err(io)?;
    file.lock().map_err(io)?;
    Ok(file)
}

/// `path` opened for reading and writing, created when missing, kept as it
/// is: a lock file.
pub(super) fn open_rw(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
}

/// `rsr sample work_dir=…`: the program's file name and its arguments.
fn command_line() -> String {
    let mut args = std::env::args();
    let program = args
        .next()
        .map(PathBuf::from)
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "rsr".into());
    std::iter::once(program)
        .chain(args)
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_is_refused_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let first = WorkDirLock::acquire(dir.path()).unwrap();
        let err = WorkDirLock::acquire(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains(&format!("pid {}", std::process::id())),
            "{err}"
        );
        assert!(err.contains("in use"), "{err}");
        let clone = first.clone();
        drop(first);
        assert!(
            WorkDirLock::acquire(dir.path()).is_err(),
            "a clone keeps it"
        );
        drop(clone);
        WorkDirLock::acquire(dir.path()).unwrap();
    }

    #[test]
    fn tasks_share_the_lock_and_keep_whole_dir_writers_out() {
        let dir = tempfile::tempdir().unwrap();
        let a = WorkDirLock::acquire_shared(dir.path()).unwrap();
        let b = WorkDirLock::acquire_shared(dir.path()).unwrap();
        let err = WorkDirLock::acquire(dir.path()).unwrap_err().to_string();
        assert!(err.contains("sampling tasks: rsr status"), "{err}");
        drop((a, b));
        let whole = WorkDirLock::acquire(dir.path()).unwrap();
        let err = WorkDirLock::acquire_shared(dir.path())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&format!("pid {}", std::process::id())),
            "{err}"
        );
        drop(whole);
    }
}
