//! The output folder's build lock: two `hcikit build` runs into one folder would stage,
//! commit and clean up each other's files, so the second fails at once instead.

use anyhow::{Context, Result};
use nix::fcntl::{Flock, FlockArg};
use std::fs::File;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Name of the lock file inside the output folder (removed when the build ends).
pub const LOCK_FILE: &str = ".hcikit-build.lock";

/// An exclusive `flock` on `<out>/.hcikit-build.lock`, held until dropped. The kernel
/// releases it when the process dies, so a killed build never blocks the next one.
pub struct BuildLock {
    path: PathBuf,
    _lock: Flock<File>,
}

impl BuildLock {
    /// Takes the lock or fails (exit 1: nothing is wrong with the input) naming the
    /// folder; never waits.
    pub fn acquire(out_dir: &Path) -> Result<BuildLock> {
        let path = out_dir.join(LOCK_FILE);
        let busy = || {
            anyhow::anyhow!(
                "another hcikit build is writing into {}; wait for it to finish or choose another --out",
                out_dir.display()
            )
        };
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .with_context(|| format!("opening the build lock {}", path.display()))?;
        let lock = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(l) => l,
            Err((_, nix::errno::Errno::EWOULDBLOCK)) => return Err(busy()),
            Err((_, e)) => {
                return Err(e).with_context(|| format!("locking {}", path.display()));
            }
        };
        // The holder before us removes the file when it ends: if it did so between our
        // open and our lock, we hold a lock on a file nobody else will see, and a third
        // build could lock a new one. Only the file that is still at `path` counts.
        let ours = lock.metadata().context("reading the build lock")?;
        match std::fs::symlink_metadata(&path) {
            Ok(m) if m.dev() == ours.dev() && m.ino() == ours.ino() => {}
            _ => return Err(busy()),
        }
        Ok(BuildLock { path, _lock: lock })
    }
}

impl Drop for BuildLock {
    fn drop(&mut self) {
        // Removed while still locked (the field drops after this), so no build can lock
        // this file after it is gone from the folder.
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_the_same_folder_fails_and_the_file_goes_with_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let first = BuildLock::acquire(dir.path()).unwrap();
        let p = dir.path().join(LOCK_FILE);
        assert_eq!(std::fs::metadata(&p).unwrap().mode() & 0o777, 0o600);
        let e = BuildLock::acquire(dir.path()).err().unwrap();
        assert!(
            format!("{e:#}").contains("another hcikit build is writing into"),
            "{e:#}"
        );
        assert_eq!(crate::error::exit_code(&e), 1);
        // Another folder is independent.
        let other = tempfile::tempdir().unwrap();
        drop(BuildLock::acquire(other.path()).unwrap());
        drop(first);
        assert!(!p.exists(), "the lock file is removed with the lock");
        drop(BuildLock::acquire(dir.path()).unwrap());
    }

    #[test]
    fn a_lock_file_left_by_a_killed_build_does_not_block() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(LOCK_FILE), b"").unwrap();
        drop(BuildLock::acquire(dir.path()).unwrap());
    }
}
