//! repo-tools: keeps signed TUF update repositories for CI pipelines.
//!
//! The `repo-tool` binary is a thin layer over this library: generate keys, create and rotate
//! root.json, publish releases (images, manifest, waves, migrations), change published releases,
//! refresh expiring metadata (all of it, or `timestamp.json` alone with the timestamp key),
//! validate a repository as a client would, check expirations, and plot how a release's waves
//! reach a fleet.
//!
//! ```no_run
//! # async fn example() -> repo_tools::Result<()> {
//! use repo_tools::keys::{self, KeyType};
//! use std::path::Path;
//! let key = Path::new("keys/publish.pem");
//! keys::generate(KeyType::Ed25519, key)?;
//! repo_tools::root::init(Path::new("root.json"), "2027-11-25T00:00:00Z".parse().unwrap())?;
//! for role in repo_tools::root::ROLES {
//!     repo_tools::root::add_key(Path::new("root.json"), key, &[role])?;
//! }
//! repo_tools::root::sign(Path::new("root.json"), &[key.to_path_buf()], None).await?;
//! # Ok(()) }
//! ```
//!
//! Writes follow design section 5: targets first (content-addressed, so additive), then the
//! targets and snapshot metadata, and `timestamp.json` last, each by an atomic rename, so a client
//! reading while a publish runs never sees metadata naming a target that is not there. A command
//! that changes a repository holds its [`lock`] from before it reads the current metadata until it
//! has committed, so two run at once take turns instead of one losing the other's work.
//!
//! # Testing
//!
//! `cargo nextest run -p repo-tools`. The integration tests drive the `repo-tool` binary through
//! the walkthrough of docs/publishing.md; the interop test needs python3 with `tuf` installed
//! (`.ci/run` installs it) and is skipped elsewhere when it is missing.
#![deny(missing_docs)]

pub mod chunks;
pub mod error;
mod fsutil;
mod inputs;
pub mod keys;
pub mod lock;
pub mod plot;
pub mod publish;
pub mod repo;
pub mod root;
pub mod sign;
pub mod time;
pub mod timestamp;
pub mod validate;

pub use error::{Error, Result};
