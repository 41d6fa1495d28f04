//! Executable migrations, Bottlerocket's contract:
//! `NAME --source-datastore DIR --target-datastore DIR --forward|--backward`.
//!
//! The verified, decompressed bytes are copied into an anonymous memory file (`memfd_create`),
//! sealed against any further change (`F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL`),
//! reopened read-only, and executed as `/proc/self/fd/N`. No path on disk is involved between
//! the hash check and the exec, so nothing can swap the program in between (the same technique
//! as Bottlerocket's migrator, through `pentacle`). The read-only descriptor is inherited by the
//! child (it is not close-on-exec) so that a `#!` script, which the kernel hands to its
//! interpreter as `/proc/self/fd/N`, can be read by it.

use super::Direction;
use crate::error::{self, Result};
use rustix::fs::{MemfdFlags, Mode, OFlags, SealFlags};
use snafu::ResultExt;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

/// Runs one executable migration from `source` to `target` (a path that does not exist yet: the
/// migration creates it, as Bottlerocket's migrations do).
pub(crate) fn run(
    name: &str,
    program: &[u8],
    source: &Path,
    target: &Path,
    direction: Direction,
) -> Result<()> {
    // The program runs in `/`: it gets its directories as absolute paths, whatever the
    // migrator was given.
    let absolute =
        |path: &Path| std::path::absolute(path).context(error::AbsolutePathSnafu { path });
    let (source, target) = (absolute(source)?, absolute(target)?);
    let seal_err = |e: rustix::io::Errno| std::io::Error::from(e);
    let memfd = rustix::fs::memfd_create(name, MemfdFlags::ALLOW_SEALING | MemfdFlags::CLOEXEC)
        .map_err(seal_err)
        .context(error::SealSnafu { name })?;
    let mut file = std::fs::File::from(memfd);
    file.write_all(program).context(error::SealSnafu { name })?;
    rustix::fs::fcntl_add_seals(
        &file,
        SealFlags::WRITE | SealFlags::GROW | SealFlags::SHRINK | SealFlags::SEAL,
    )
    .map_err(seal_err)
    .context(error::SealSnafu { name })?;
    // A read-only descriptor, without close-on-exec, for the child to run; the writable one is
    // closed first so that exec does not fail with ETXTBSY.
    let readonly = rustix::fs::open(
        format!("/proc/self/fd/{}", file.as_raw_fd()),
        OFlags::RDONLY,
        Mode::empty(),
    )
    .map_err(seal_err)
    .context(error::SealSnafu { name })?;
    drop(file);

    let output = Command::new(format!("/proc/self/fd/{}", readonly.as_raw_fd()))
        .arg0(name)
        .arg("--source-datastore")
        .arg(source)
        .arg("--target-datastore")
        .arg(target)
        .arg(direction.flag())
        .current_dir("/")
        .stdin(Stdio::null())
        .output()
        .context(error::SpawnSnafu { name })?;
    drop(readonly);
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let stderr = stderr
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join("; ");
        return error::MigrationFailedSnafu {
            name,
            direction: direction.to_string(),
            status: output.status,
            stderr: if stderr.is_empty() {
                "no output on stderr".to_string()
            } else {
                stderr
            },
        }
        .fail();
    }
    Ok(())
}
