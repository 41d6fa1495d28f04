//! What the node remembers across boots: the last boot's outcome (`var/lib/twinset/last-boot.json`)
//! and the versions whose first boot failed (`var/lib/updog/failed-versions.json`, which updog
//! reads so it does not offer them again unless named with `--image`).

use crate::error::{self, Result};
use crate::health::CheckResult;
use serde::{Deserialize, Serialize};
use snafu::ResultExt;
use std::path::Path;

/// The last boot's record, relative to the sysroot.
pub const LAST_BOOT: &str = "var/lib/twinset/last-boot.json";
/// The failed versions, relative to the sysroot (shared with updog).
pub const FAILED_VERSIONS: &str = "var/lib/updog/failed-versions.json";

/// How a boot ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Every step passed and the set was marked successful by this boot.
    Marked,
    /// Every step passed on a set that was already marked.
    Healthy,
    /// The set was already marked; some health checks failed. Reported, no reboot.
    Degraded,
    /// ROOT did not match its HASH (dm-verity would have refused it). Reboot.
    VerityFailed,
    /// The migrator failed. Reboot.
    MigrationFailed,
    /// A health check failed or timed out on an unmarked set. Reboot.
    HealthFailed,
}

impl Outcome {
    /// Whether the node must reboot (the set was never marked, so the bootloader falls back).
    pub fn needs_reboot(self) -> bool {
        matches!(
            self,
            Outcome::VerityFailed | Outcome::MigrationFailed | Outcome::HealthFailed
        )
    }
}

/// One boot, as `node-sim status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BootRecord {
    /// Boots of this node so far, this one included.
    pub boot: u64,
    /// The set the bootloader chose.
    pub set: String,
    /// The version booted (from its verified ROOT), when known.
    pub version: Option<String>,
    /// How it ended.
    pub outcome: Outcome,
    /// Why, in one line.
    pub reason: String,
    /// What the migrator did.
    pub migration: Option<String>,
    /// Each health check.
    pub checks: Vec<CheckResult>,
    /// The other set's version, when this boot is a fallback from its failed try: only on the
    /// boot that falls back, once per failed try.
    pub fell_back_from: Option<String>,
    /// The other set's version while it outranks this set with its try spent and never marked
    /// (the fallback of some boot, this one or an earlier one, still holds); how the next boot
    /// knows that fallback is recorded already.
    #[serde(default)]
    pub other_set_failed: Option<String>,
    /// When the boot ended.
    pub time: String,
}

/// Reads the last boot's record.
pub fn last_boot(sysroot: &Path) -> Result<Option<BootRecord>> {
    read_json(&sysroot.join(LAST_BOOT))
}

/// Writes the last boot's record (atomically).
pub fn write_last_boot(sysroot: &Path, record: &BootRecord) -> Result<()> {
    write_json(&sysroot.join(LAST_BOOT), record)?;
    Ok(())
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct FailedVersions {
    versions: Vec<String>,
}

/// The versions whose first boot failed.
pub fn failed_versions(sysroot: &Path) -> Result<Vec<String>> {
    Ok(read_json::<FailedVersions>(&sysroot.join(FAILED_VERSIONS))?
        .map(|f| f.versions)
        .unwrap_or_default())
}

/// Adds a version to the failed list (once).
pub fn record_failed_version(sysroot: &Path, version: &str) -> Result<()> {
    let mut versions = failed_versions(sysroot)?;
    if versions.iter().any(|v| v == version) {
        return Ok(());
    }
    versions.push(version.to_string());
    write_json(&sysroot.join(FAILED_VERSIONS), &FailedVersions { versions })?;
    Ok(())
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Option<T>> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .context(error::ParseSnafu { path }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(source).context(error::IoSnafu {
            action: "read",
            path,
        }),
    }
}

/// Writes JSON through a temporary file, fsync, rename, fsync of the directory.
pub(crate) fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let mut bytes = serde_json::to_vec_pretty(value).context(error::ParseSnafu { path })?;
    bytes.push(b'\n');
    write_atomic(path, &bytes)
}

/// Writes bytes through a temporary file, fsync, rename, fsync of the directory.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    powercut::write_atomic(path, bytes, &format!("node.write.{name}")).context(error::IoSnafu {
        action: "write",
        path,
    })
}
