//! Every path updog uses, resolved under a sysroot (design section 2).

use crate::error::{self, Result};
use snafu::ResultExt;
use std::path::{Path, PathBuf};

/// The files and directories of a node, under its sysroot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    /// The sysroot (`/` on a real node).
    pub sysroot: PathBuf,
    /// `etc/updog.toml`.
    pub config: PathBuf,
    /// `etc/os-release` of the booted image.
    pub os_release: PathBuf,
    /// `usr/share/updog/root.json`: the trusted root shipped in the booted image.
    pub root_json: PathBuf,
    /// `var/lib/updog/tuf/`: tough's datastore.
    pub tuf_datastore: PathBuf,
    /// `var/lib/updog/trusted-state.json`: the version floor.
    pub trusted_state: PathBuf,
    /// `var/lib/updog/seed`.
    pub seed: PathBuf,
    /// `var/lib/updog/failed-versions.json`.
    pub failed_versions: PathBuf,
    /// `var/cache/updog/metadata/`: cached metadata (the root chain and every role).
    pub metadata_cache: PathBuf,
    /// `var/lib/updog/migrations/`: cached manifest and migrations.
    pub migrations_cache: PathBuf,
    /// `run/updog.lock`.
    pub lock: PathBuf,
}

impl Paths {
    /// The paths under `sysroot`.
    pub fn new(sysroot: &Path) -> Paths {
        let at = |p: &str| sysroot.join(p);
        Paths {
            sysroot: sysroot.to_path_buf(),
            config: at("etc/updog.toml"),
            os_release: at("etc/os-release"),
            root_json: at("usr/share/updog/root.json"),
            tuf_datastore: at("var/lib/updog/tuf"),
            trusted_state: at("var/lib/updog/trusted-state.json"),
            seed: at("var/lib/updog/seed"),
            failed_versions: at("var/lib/updog/failed-versions.json"),
            metadata_cache: at("var/cache/updog/metadata"),
            migrations_cache: at("var/lib/updog/migrations"),
            lock: signpost::lock::lock_path(sysroot),
        }
    }

    /// The disk: `explicit` if given, else `<sysroot>/dev/disk.img` when the sysroot is not `/`,
    /// else the disk under `/` found by signpost.
    pub fn disk(&self, explicit: Option<&Path>) -> Result<PathBuf> {
        if let Some(path) = explicit {
            return Ok(path.to_path_buf());
        }
        if self.sysroot != Path::new("/") {
            return Ok(self.sysroot.join("dev/disk.img"));
        }
        signpost::discover::find_disk(&self.sysroot).context(error::DiskSnafu {
            action: "find the disk under '/'",
        })
    }
}

/// Writes `bytes` to `path` atomically: a temporary file in the same directory, synced, renamed
/// over `path`, then the directory synced.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    powercut::write_atomic(path, bytes, &format!("updog.write.{name}")).context(error::IoSnafu {
        verb: "write",
        path,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_directory_uses_its_disk_image() {
        let paths = Paths::new(Path::new("/tmp/node"));
        assert_eq!(
            paths.disk(None).unwrap(),
            PathBuf::from("/tmp/node/dev/disk.img")
        );
        assert_eq!(
            paths.disk(Some(Path::new("/dev/vdb"))).unwrap(),
            PathBuf::from("/dev/vdb")
        );
        assert_eq!(paths.lock, PathBuf::from("/tmp/node/run/updog.lock"));
    }
}
