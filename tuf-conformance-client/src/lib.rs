//! A client for the command-line protocol of the TUF project's conformance suite
//! (`tuf-conformance`, its `CLIENT-CLI.md`), built on updog's TUF code path: updog's
//! [`load_repository`](updog::tuf::load_repository) (tough, then updog's version floor) over
//! updog's HTTP transport.
//!
//! ```text
//! tuf-conformance-client --metadata-dir DIR init TRUSTED_ROOT
//! tuf-conformance-client --metadata-url URL --metadata-dir DIR refresh
//! tuf-conformance-client --metadata-url URL --metadata-dir DIR --target-name NAME [...]
//!     --target-dir DIR --target-base-url URL download
//! ```
//!
//! The metadata directory holds the trusted role files only (`root.json`, `timestamp.json`,
//! `snapshot.json`, `targets.json`, `<delegated role>.json`), with the bytes the repository
//! served. Targets are stored in the target directory under their percent-encoded target
//! path. Exit 0 on success, 1 on any failure. docs/tuf-conformance.md has the protocol, how to
//! run the official suite, and where tough departs from the specification.
//!
//! ```no_run
//! # async fn example() -> tuf_conformance_client::Result<()> {
//! use std::path::Path;
//! let dir = Path::new("/tmp/metadata");
//! tuf_conformance_client::init(dir, Path::new("root.json"))?;
//! let trusted = tuf_conformance_client::refresh(dir, "http://127.0.0.1:8080/metadata", None).await?;
//! println!("trusted targets version {}", trusted.repo.targets().signed.version);
//! # Ok(()) }
//! ```
//!
//! # Testing
//!
//! `cargo nextest run -p tuf-conformance-client`. `tests/workflow.rs` runs the binary against
//! repositories written with python-tuf's metadata API (`tests/repo_sim.py`, needs python3 with
//! `tuf`) and with repo-tool, served over HTTP on loopback by testsys: one test per step of the
//! client workflow, and the protocol itself. The expiry tests run the binary under `faketime`
//! (Debian's `faketime` package). Outside CI a missing tool skips a test with a message.
#![deny(missing_docs)]

pub mod cli;
pub mod client;
mod error;
pub mod metadata_dir;
pub mod recording;
pub mod search;

pub use client::{Downloaded, Trusted, download, init, refresh};
pub use error::{Error, Result};
