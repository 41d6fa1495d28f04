//! `migrator [flags]`: the boot-time migration.

use super::Common;
use migrator::{Cache, MigrateOptions, Steps};
use std::path::PathBuf;

/// Flags of the default verb.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct Args {
    /// The booted image's os-release (VERSION_ID) [default: <sysroot>/etc/os-release].
    #[arg(long, value_name = "FILE")]
    os_release: Option<PathBuf>,
    /// The trusted TUF root [default: <sysroot>/usr/share/updog/root.json].
    #[arg(long, value_name = "FILE")]
    trusted_root: Option<PathBuf>,
    /// The cached TUF metadata [default: <sysroot>/var/cache/updog/metadata].
    #[arg(long, value_name = "DIR")]
    cache_metadata: Option<PathBuf>,
    /// The cached targets [default: <sysroot>/var/lib/updog/migrations].
    #[arg(long, value_name = "DIR")]
    cache_targets: Option<PathBuf>,
    /// Print the outcome as JSON.
    #[arg(long)]
    json: bool,
}

impl Args {
    /// Whether any migration flag was given.
    pub(crate) fn is_given(&self) -> bool {
        self.os_release.is_some()
            || self.trusted_root.is_some()
            || self.cache_metadata.is_some()
            || self.cache_targets.is_some()
            || self.json
    }

    pub(crate) fn run(self, common: &Common) -> migrator::Result<()> {
        let c = common;
        let version = migrator::read_os_release(&c.path(&self.os_release, migrator::OS_RELEASE))?;
        let options = MigrateOptions {
            datastore: c.datastore(),
            version,
            cache: Cache {
                trusted_root: c.path(&self.trusted_root, migrator::TRUSTED_ROOT),
                metadata_dir: c.path(&self.cache_metadata, migrator::CACHE_METADATA),
                targets_dir: c.path(&self.cache_targets, migrator::CACHE_TARGETS),
            },
            steps: Steps::new(),
        };
        let outcome = migrator::migrate(&options)?;
        if self.json {
            println!("{}", serde_json::to_string(&outcome).unwrap_or_default());
        } else {
            println!("{outcome}");
        }
        Ok(())
    }
}
