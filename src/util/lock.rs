//! Advisory locks on run and ensemble directories, so that two processes never write one run at
//! once (a resume beside `train --force`, two resumes).
//!
//! The lock is an OS file lock (`flock` on Unix) on a small file *beside* the directory,
//! `.<name>.reconad-lock`, holding the PID and command line of its holder. Beside, not inside:
//! `train --force` replaces the whole directory and a new run creates it, both under the lock.
//! The OS releases the lock when its process ends however it ends (crash, SIGKILL), so a stale
//! lock file left behind is simply taken over; the file itself is never deleted (deleting it
//! would let two processes lock two different files of the same name).

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// A held lock on a directory; released when dropped (or when the process ends).
#[derive(Debug)]
pub struct DirLock {
    _file: File,
    path: PathBuf,
}

impl DirLock {
    /// Locks `dir` (which need not exist yet) for this process, or fails naming the process that
    /// holds it.
    pub fn acquire(dir: &Path) -> Result<DirLock> {
        let path = lock_path(dir);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                return Err(Error::file(
                    dir,
                    format!(
                        "in use by another reconad process ({}); wait for it to end (the lock is {})",
                        if holder.is_empty() { "unknown" } else { holder },
                        path.display()
                    ),
                ));
            }
            Err(TryLockError::Error(e)) => return Err(Error::io(&path, e)),
        }
        let holder = format!(
            "pid {}: {}",
            std::process::id(),
            std::env::args().collect::<Vec<_>>().join(" ")
        );
        file.set_len(0)
            .and_then(|_| file.seek(SeekFrom::Start(0)))
            .and_then(|_| file.write_all(holder.as_bytes()))
            .map_err(|e| Error::io(&path, e))?;
        Ok(DirLock { _file: file, path })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// `.<name>.reconad-lock` in the parent of `dir`.
pub fn lock_path(dir: &Path) -> PathBuf {
    let abs = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    let name = abs
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "root".into());
    let parent = abs.parent().unwrap_or(Path::new("/"));
    parent.join(format!(".{name}.reconad-lock"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_a_directory_fails_until_the_first_is_released() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("run");
        let first = DirLock::acquire(&run).unwrap();
        assert_eq!(first.path(), dir.path().join(".run.reconad-lock"));
        let err = DirLock::acquire(&run).unwrap_err().to_string();
        assert!(err.contains("in use by another reconad process"), "{err}");
        assert!(
            err.contains(&format!("pid {}", std::process::id())),
            "{err}"
        );
        // Another directory is independent.
        let _other = DirLock::acquire(&dir.path().join("other")).unwrap();
        drop(first);
        // Released: the leftover file is taken over.
        let again = DirLock::acquire(&run).unwrap();
        assert!(again.path().is_file());
    }
}
