//! The update lock `run/updog.lock`: an exclusive `flock` held for the whole of a command that
//! changes the disk. The file holds one JSON line naming the holder,
//! `{"pid":1234,"command":"updog update-image"}`; a second updater reads it to say who holds the
//! lock, and gives up at once (exit code 4). The kernel releases the lock when the holder exits,
//! however it exits, so a stale file never blocks anyone.
//!
//! The update API takes the same lock, then calls the library with the guard as proof.

use crate::error::{self, Result};
use rustix::fs::{FlockOperation, flock};
use serde::{Deserialize, Serialize};
use snafu::ResultExt;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Who holds the lock, as written in the lock file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    /// The holder's process id.
    pub pid: u32,
    /// What it is doing.
    pub command: String,
}

/// The held lock; dropping it releases it.
#[derive(Debug)]
pub struct UpdateLock {
    file: File,
    path: PathBuf,
}

impl UpdateLock {
    /// Takes the lock at `path` for `command`, or fails at once with
    /// [`Error::Locked`](crate::Error::Locked) naming the holder.
    pub fn acquire(path: &Path, command: &str) -> Result<UpdateLock> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).context(error::IoSnafu {
                verb: "create directory",
                path: dir,
            })?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .context(error::IoSnafu {
                verb: "open lock file",
                path,
            })?;
        if let Err(e) = flock(&file, FlockOperation::NonBlockingLockExclusive) {
            if e == rustix::io::Errno::WOULDBLOCK {
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                let holder = match serde_json::from_str::<Holder>(text.trim()) {
                    Ok(h) => format!("pid {} ({})", h.pid, h.command),
                    Err(_) => "another process (the lock file does not say which)".to_string(),
                };
                return error::LockedSnafu { path, holder }.fail();
            }
            return Err(std::io::Error::from(e)).context(error::IoSnafu { verb: "lock", path });
        }
        let holder = Holder {
            pid: std::process::id(),
            command: command.to_string(),
        };
        let mut line = serde_json::to_string(&holder).context(error::SerializeSnafu {
            what: "the lock holder",
        })?;
        line.push('\n');
        file.set_len(0)
            .and_then(|()| file.seek(SeekFrom::Start(0)))
            .and_then(|_| file.write_all(line.as_bytes()))
            .context(error::IoSnafu {
                verb: "write lock file",
                path,
            })?;
        Ok(UpdateLock {
            file,
            path: path.to_path_buf(),
        })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for UpdateLock {
    fn drop(&mut self) {
        // Say nobody holds it before the kernel releases it with the descriptor.
        let _ = self.file.set_len(0);
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
