//! updog: the TUF-verified update client of an A/B image-based host, compatible with
//! Bottlerocket's updog.
//!
//! It refreshes TUF metadata (tough, from the root.json shipped in the booted image, with a
//! persisted version floor), chooses an update from `manifest.json` (waves, version lock, failed
//! versions), caches what the migrator needs offline, streams the lz4 images into the inactive
//! partition set with bounded memory, verifies what is on disk (ROOT against HASH with the
//! parameters read back from the new BOOT) and only then marks the set valid. Applying and
//! rebooting are separate steps.
//!
//! ```no_run
//! use tokio_util::sync::CancellationToken;
//! use updog::{NoProgress, Request, UpdateLock, Updater};
//! # async fn example() -> updog::Result<()> {
//! let sysroot = std::path::Path::new("/");
//! let lock = UpdateLock::acquire(&updog::Paths::new(sysroot).lock, "update API")?;
//! let updater = Updater::new(sysroot, None)?;
//! let cancel = CancellationToken::new();
//! if let Some(staged) =
//!     updog::install(&updater, &lock, &Request::default(), &NoProgress, &cancel).await?
//! {
//!     println!("{} staged in set {}", staged.version, staged.set);
//!     updater.apply(&lock)?;
//! }
//! # Ok(()) }
//! ```
//!
//! # Testing
//!
//! `cargo nextest run -p updog`. Unit tests sit with each module. The integration tests build
//! real releases (ext4 images, needing `mkfs.ext4` and `debugfs`; skipped with a message outside
//! CI when missing), publish them with repo-tools, serve them over HTTP on loopback with
//! testsys (with injected faults) and run the `updog` binary against node directories:
//! `tests/install.rs` (end to end, file://, seed, lock, SIGTERM, each metadata file fetched once
//! per refresh) and `tests/attacks.rs` (each attack or fault refused with a one-line error, the
//! inactive set left unbootable and the active set byte-for-byte unchanged) and
//! `tests/chunks.rs` (chunked images: only changed chunks downloaded, garbage partitions, a
//! corrupted chunk and a tampered index refused, no Range support, file://, a dropped
//! connection, resuming after SIGKILL and after a power cut at every chunk point).
//! `benches/install/` measures a 1 GiB install against `curl | lz4 -dc | dd` and
//! Bottlerocket's loop, and the resume, delta and chunk-size figures (see docs/benchmarks.md).
#![deny(missing_docs)]

pub mod cli;
pub mod config;
mod error;
pub mod install;
pub mod lock;
pub mod os_release;
pub mod paths;
pub mod progress;
pub mod seed;
pub mod transport;
pub mod tuf;
pub mod updater;

pub use config::Config;
pub use error::{Error, Result};
pub use install::{Installed, install, install_update, provision};
pub use lock::UpdateLock;
pub use paths::Paths;
pub use progress::{JsonLines, NoProgress, Phase, ProgressEvent, ProgressSink};
pub use tokio_util::sync::CancellationToken;
pub use tuf::TrustedState;
pub use updater::{Applied, Refreshed, Request, Updater};
