//! The update lock `run/updog.lock`: an exclusive `flock` held for the whole of a command that
//! changes the disk. The lock itself is signpost's ([`signpost::lock`]), so that updog, the
//! update API and signpost's verbs that write the partition table all exclude one another; this
//! wrapper gives updog's errors: a held lock is [`Error::Locked`], exit
//! code 4, naming the holder (`pid 1234 (updog update-image)`).
//!
//! The update API takes the same lock, then calls the library with the guard as proof.

use crate::error::{Error, Result};

pub use signpost::lock::Holder;

/// The held lock; dropping it releases it.
#[derive(Debug)]
pub struct UpdateLock(signpost::lock::UpdateLock);

impl UpdateLock {
    /// Takes the lock at `path` for `command`, or fails at once with
    /// [`Error::Locked`] naming the holder.
    pub fn acquire(path: &std::path::Path, command: &str) -> Result<UpdateLock> {
        signpost::lock::UpdateLock::acquire(path, command)
            .map(UpdateLock)
            .map_err(|e| match e {
                signpost::Error::Locked { path, holder } => Error::Locked { path, holder },
                signpost::Error::LockIo { verb, path, source } => Error::Io { verb, path, source },
                other => Error::Disk {
                    action: "take the update lock".to_string(),
                    source: Box::new(other),
                },
            })
    }

    /// The lock file.
    pub fn path(&self) -> &std::path::Path {
        self.0.path()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_taker_is_told_who_holds_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run/updog.lock");
        let held = UpdateLock::acquire(&path, "updog update-image").unwrap();
        let err = UpdateLock::acquire(&path, "updog update").unwrap_err();
        assert_eq!(err.exit_code(), 4);
        let msg = err.to_string();
        assert!(
            msg.contains(&format!("pid {} (updog update-image)", std::process::id())),
            "{msg}"
        );
        drop(held);
        let again = UpdateLock::acquire(&path, "updog update").unwrap();
        assert_eq!(again.path(), path);
    }
}
