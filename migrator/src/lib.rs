//! migrator: the versioned settings datastore of an image-based host, and the migrations that
//! move it between OS versions, compatible with Bottlerocket's datastore and migrator.
//!
//! - [`Datastore`], [`Key`], [`MetadataKey`], [`Transaction`]: read, write, list and commit
//!   settings in Bottlerocket's on-disk layout (docs/datastore.md).
//! - [`migrate`]: the boot-time step. Reads the cached TUF repository offline
//!   ([`Cache`]), computes the migration path from the manifest, runs each migration into a
//!   fresh directory and flips `current -> vM -> vM.m -> vM.m.p -> vM.m.p_<random>`; falls
//!   back to the kept previous directory when the current version was never confirmed.
//! - [`confirm`]: after a successful boot, marks the version confirmed and prunes to the
//!   current and previous directories. [`status`] reports both.
//! - Migrations ([`migration`]): executables with Bottlerocket's arguments, run from a sealed
//!   memory file, and declarative JSON documents ([`Document`]) inverted automatically
//!   (docs/migrations.md).
//!
//! ```no_run
//! # fn main() -> migrator::Result<()> {
//! use migrator::{Datastore, Key, MigrateOptions};
//! use std::path::Path;
//!
//! let sysroot = Path::new("/");
//! let booted = migrator::read_os_release(&sysroot.join(migrator::OS_RELEASE))?;
//! let outcome = migrator::migrate(&MigrateOptions::under_sysroot(sysroot, booted))?;
//! println!("{outcome}");
//!
//! let datastore = Datastore::open_current(&sysroot.join(migrator::DATASTORE))?;
//! let motd = Key::new("settings.motd")?;
//! datastore.set(&motd, &serde_json::json!("hello"))?;
//! assert_eq!(datastore.get(&motd)?, Some(serde_json::json!("hello")));
//!
//! // Once the boot is marked successful:
//! migrator::confirm(&sysroot.join(migrator::DATASTORE))?;
//! # Ok(()) }
//! ```
//!
//! # Crash safety
//!
//! Every durable step (each migration output, each link rename, each state-file write, each
//! pruned directory) is reported to [`Steps`]; tests stop a run after each one in turn and
//! check that running again leaves the datastore at the old or the new version, never between.
//!
//! # Testing
//!
//! `cargo nextest run -p migrator`. The integration tests publish real signed repositories
//! with `repo-tools`, arrange them into a node's cache and run the library and the `migrator`
//! binary against them: failing and tampered migrations, every crash point, a round trip
//! 1.0.0 -> 1.1.0 -> 1.2.0 -> 1.0.0, and a fallback. `cargo bench -p migrator` runs the
//! 10,000-key benchmark (docs/benchmarks.md).
#![deny(missing_docs)]

pub mod cache;
pub mod datastore;
pub mod error;
mod fsutil;
pub mod migration;
pub mod state;
pub mod steps;

pub use cache::Cache;
pub use datastore::{Datastore, Key, MetadataKey, Transaction};
pub use error::{Error, Result};
pub use migration::declarative::{Document, Operation};
pub use migration::run::{
    CACHE_METADATA, CACHE_TARGETS, DATASTORE, MigrateOptions, OS_RELEASE, Outcome, Status,
    TRUSTED_ROOT, confirm, confirm_with, migrate, read_os_release, status,
};
pub use migration::{Direction, Kind, read_declarative};
pub use steps::{Step, Steps};
