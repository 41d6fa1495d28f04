//! The repository lock: an exclusive `flock` on the repository's top directory (`--repo`),
//! held by every command that changes the repository from before it reads the current metadata
//! until its commit is written. Two commands changing one repository at once take turns, so
//! neither signs over a state the other is replacing and loses its work.
//!
//! The lock is on the directory itself (opened read-only; Linux allows `flock` on a directory),
//! so no lock file appears among the files served. All variants and arches under one `--repo`
//! share it, as they share `targets/`. The kernel releases it when its holder exits, however it
//! exits, so nothing stale is ever left to clear. A command that finds it held says so once and
//! waits: a CI pipeline queues instead of failing. Commands that only read take no lock; every
//! write is an atomic rename, so a reader never sees half a commit.
//!
//! ```
//! use repo_tools::lock::RepoLock;
//! use repo_tools::repo::RepoDir;
//!
//! let work = tempfile::tempdir()?;
//! let repo = RepoDir::new(work.path().join("repo"), "demo", "x86_64");
//! // The publish that creates the repository creates its directory to lock it.
//! let lock = RepoLock::acquire(&repo, true, |line| eprintln!("{line}"))?;
//! // ... read, change, sign and commit ...
//! drop(lock);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use crate::error::{self, Result};
use crate::repo::RepoDir;
use rustix::fs::{FlockOperation, Mode, OFlags, flock};
use rustix::io::Errno;
use snafu::ResultExt;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

/// The held lock of a repository; dropping it (or exiting) releases it.
#[derive(Debug)]
pub struct RepoLock {
    /// The repository's top directory, open; closing it releases the lock.
    _dir: OwnedFd,
    /// The top directory's path.
    base: PathBuf,
    /// The highest directory that taking the lock created (the top directory or a parent).
    created: Option<PathBuf>,
}

impl RepoLock {
    /// Takes the lock of `repo`'s top directory, creating the directory first when `create` is
    /// set (the command creates the repository). If another process holds it, calls `waiting`
    /// once with the line to show ([`waiting_line`]) and waits until it is released.
    ///
    /// Without `create`, a top directory that does not exist is refused as a repository that
    /// has no root yet ([`Error::NoRoot`](crate::Error::NoRoot)).
    pub fn acquire(repo: &RepoDir, create: bool, waiting: impl FnOnce(&str)) -> Result<RepoLock> {
        let path = &repo.base;
        let mut waiting = Some(waiting);
        loop {
            let created = create.then(|| first_missing(path)).flatten();
            if create {
                std::fs::create_dir_all(path).context(error::CreateRepoDirSnafu { path })?;
            }
            let dir = match rustix::fs::open(
                path,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            ) {
                Ok(dir) => dir,
                Err(Errno::NOENT) if !create => {
                    return error::NoRootSnafu {
                        path: repo.metadata_dir(),
                    }
                    .fail();
                }
                Err(e) => {
                    return Err(std::io::Error::from(e)).context(error::OpenRepoDirSnafu { path });
                }
            };
            match flock(&dir, FlockOperation::NonBlockingLockExclusive) {
                Ok(()) => {}
                Err(Errno::WOULDBLOCK) => {
                    if let Some(waiting) = waiting.take() {
                        waiting(&waiting_line(path));
                    }
                    wait_for(&dir, path)?;
                }
                Err(e) => {
                    return Err(std::io::Error::from(e)).context(error::LockRepoSnafu { path });
                }
            }
            // A first publish that fails removes the directories it created; a command that
            // waited for it then holds the lock of a directory that is gone, and takes the lock
            // again, of the directory now at the path (if any).
            if names(&dir, path) {
                return Ok(RepoLock {
                    _dir: dir,
                    base: path.clone(),
                    created,
                });
            }
        }
    }

    /// For a command refused after it created the repository to lock it: removes the empty
    /// directories under the top directory, then the directories taking the lock created, each
    /// only while it is empty (a file is never removed), and lets go.
    pub fn remove_created(self) {
        let Some(top) = &self.created else {
            return;
        };
        fn prune(dir: &Path) {
            let Ok(entries) = std::fs::read_dir(dir) else {
                return;
            };
            for entry in entries.flatten() {
                if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    prune(&entry.path());
                    let _ = std::fs::remove_dir(entry.path());
                }
            }
        }
        prune(&self.base);
        for dir in self.base.ancestors() {
            if std::fs::remove_dir(dir).is_err() || dir == top {
                break;
            }
        }
    }
}

/// The highest of `path` and its parents that does not exist (`None` if `path` exists).
fn first_missing(path: &Path) -> Option<PathBuf> {
    path.ancestors()
        .take_while(|a| !a.as_os_str().is_empty() && !a.exists())
        .last()
        .map(Path::to_path_buf)
}

/// Waits until the lock of `dir` (the directory at `path`) is ours.
fn wait_for(dir: &OwnedFd, path: &Path) -> Result<()> {
    loop {
        match flock(dir, FlockOperation::LockExclusive) {
            Ok(()) => return Ok(()),
            Err(Errno::INTR) => continue,
            Err(e) => return Err(std::io::Error::from(e)).context(error::LockRepoSnafu { path }),
        }
    }
}

/// Whether `path` is still the directory open as `dir`.
fn names(dir: &OwnedFd, path: &Path) -> bool {
    match (rustix::fs::fstat(dir), rustix::fs::stat(path)) {
        (Ok(open), Ok(now)) => open.st_dev == now.st_dev && open.st_ino == now.st_ino,
        _ => false,
    }
}

/// The line a command shows when it waits for another to release the lock of `base`.
pub fn waiting_line(base: &Path) -> String {
    format!(
        "Waiting for another repo-tool changing '{}' to finish",
        base.display()
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, mpsc};
    use std::time::Duration;

    #[test]
    fn a_second_taker_says_it_waits_and_gets_the_lock_once_released() {
        let work = tempfile::tempdir().unwrap();
        let repo = RepoDir::new(work.path().join("repo"), "demo", "x86_64");
        let first =
            RepoLock::acquire(&repo, true, |line| panic!("nobody holds it: {line}")).unwrap();
        assert!(repo.base.is_dir());

        let (said, heard) = mpsc::channel();
        let taken = Arc::new(AtomicBool::new(false));
        let second = {
            let (repo, taken) = (repo.clone(), Arc::clone(&taken));
            std::thread::spawn(move || {
                let lock =
                    RepoLock::acquire(&repo, false, |line| said.send(line.to_string()).unwrap());
                taken.store(true, Ordering::SeqCst);
                lock.map(drop)
            })
        };
        let line = heard.recv_timeout(Duration::from_secs(30)).unwrap();
        assert_eq!(
            line,
            format!(
                "Waiting for another repo-tool changing '{}' to finish",
                repo.base.display()
            )
        );
        std::thread::sleep(Duration::from_millis(200));
        assert!(!taken.load(Ordering::SeqCst), "the lock was taken twice");
        drop(first);
        second.join().unwrap().unwrap();
        assert!(taken.load(Ordering::SeqCst));
        // Nothing was added to what is served.
        assert_eq!(std::fs::read_dir(&repo.base).unwrap().count(), 0);
    }

    #[test]
    fn a_repository_that_does_not_exist_is_created_only_when_asked() {
        let work = tempfile::tempdir().unwrap();
        let repo = RepoDir::new(work.path().join("repo"), "demo", "x86_64");
        let err = RepoLock::acquire(&repo, false, |_| ()).unwrap_err();
        assert!(matches!(err, crate::Error::NoRoot { .. }), "{err}");
        assert!(!repo.base.exists());

        std::fs::write(&repo.base, b"not a directory").unwrap();
        let err = RepoLock::acquire(&repo, false, |_| ()).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "Failed to open repository '{}' to lock it: Not a directory (os error 20)",
                repo.base.display()
            )
        );
    }

    #[test]
    fn a_taker_whose_directory_was_removed_meanwhile_locks_the_new_one() {
        let work = tempfile::tempdir().unwrap();
        let repo = RepoDir::new(work.path().join("repo"), "demo", "x86_64");
        let first = RepoLock::acquire(&repo, true, |_| ()).unwrap();
        let (said, heard) = mpsc::channel();
        let (held_tx, held) = mpsc::channel();
        let (release, released) = mpsc::channel::<()>();
        let second = {
            let repo = repo.clone();
            std::thread::spawn(move || {
                let lock = RepoLock::acquire(&repo, true, |line| {
                    let _ = said.send(line.to_string());
                });
                // Held until the test has tried to take the lock of the directory now there.
                let _ = held_tx.send(lock.is_ok());
                let _ = released.recv();
                lock.map(drop)
            })
        };
        heard.recv_timeout(Duration::from_secs(30)).unwrap();
        // The first publish failed: it removes the directory it created, then lets go.
        std::fs::remove_dir(&repo.base).unwrap();
        drop(first);
        assert!(held.recv_timeout(Duration::from_secs(30)).unwrap());
        assert!(repo.base.is_dir(), "the directory was not created again");
        let third = rustix::fs::open(
            &repo.base,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .unwrap();
        assert_eq!(
            flock(&third, FlockOperation::NonBlockingLockExclusive),
            Err(Errno::WOULDBLOCK),
            "the waiting taker holds the lock of the removed directory, not of the new one"
        );
        release.send(()).unwrap();
        second.join().unwrap().unwrap();
    }

    #[test]
    fn a_refused_first_publish_removes_only_the_empty_directories_it_created() {
        let work = tempfile::tempdir().unwrap();
        let repo = RepoDir::new(work.path().join("new/parent/repo"), "demo", "x86_64");
        let base = repo.base.clone();
        let top = work.path().join("new");
        assert_eq!(super::first_missing(&base), Some(top.clone()));
        assert_eq!(super::first_missing(work.path()), None);

        let lock = RepoLock::acquire(&repo, true, |_| ()).unwrap();
        std::fs::create_dir_all(base.join("demo/x86_64")).unwrap();
        std::fs::create_dir_all(base.join("targets")).unwrap();
        lock.remove_created();
        assert!(!top.exists());
        assert!(work.path().exists());

        // A file stays, and so do the directories above it.
        let lock = RepoLock::acquire(&repo, true, |_| ()).unwrap();
        std::fs::create_dir_all(base.join("targets")).unwrap();
        std::fs::write(base.join("targets/kept"), b"x").unwrap();
        std::fs::create_dir_all(base.join("demo/x86_64")).unwrap();
        lock.remove_created();
        assert!(base.join("targets/kept").exists());
        assert!(!base.join("demo").exists());

        // A repository that was there is never removed.
        let lock = RepoLock::acquire(&repo, true, |_| ()).unwrap();
        std::fs::remove_file(base.join("targets/kept")).unwrap();
        lock.remove_created();
        assert!(base.is_dir());
    }
}
