//! update-api: the update API of an A/B image-based host, compatible with Bottlerocket's
//! (its apiserver's update endpoints and the `thar-be-updates` state machine), and `apiclient`,
//! the command-line client that Bottlerocket's Kubernetes operator (brupop) drives.
//!
//! The server listens for HTTP on a Unix socket (`<sysroot>/run/api.sock`). A command
//! (`refresh`, `prepare`, `activate`, `deactivate`) checks the state, takes updog's lock
//! (`run/updog.lock`, the same one the `updog` binary takes), answers 204 at once and runs in
//! the background with updog's library; its result lands in `most_recent_command` of the status
//! (`GET /updates/status`), also written atomically to `<sysroot>/run/update-status.json`.
//!
//! States: Idle → Available (refresh found an update) → Staged (prepare wrote and verified it
//! in the inactive set) → Ready (activate made it the next to boot); deactivate goes back to
//! Staged. The state always follows the disk: at startup, after every command, at every status
//! read while no command runs and before a command is admitted it is derived from signpost's view
//! of the partition table ([`mod@derive`]), so a power cut, a killed server or `updog` run by hand
//! never leaves a stale "Staged" or "Ready".
//!
//! ```no_run
//! # async fn example() -> update_api::Result<()> {
//! let sysroot = std::path::Path::new("/tmp/node");
//! let api = update_api::server::Api::open(sysroot, None)?;
//! update_api::server::serve(api, &sysroot.join("run/api.sock"), std::future::pending()).await?;
//! # Ok(()) }
//! ```
//!
//! The client side ([`client`]) makes the same requests as Bottlerocket's `apiclient`: `raw`
//! requests whose errors read `... Status <code> ...` on stderr, and `update check|apply|cancel`,
//! which poll the status for a new `most_recent_command` as Bottlerocket's does.
//!
//! # Testing
//!
//! `cargo nextest run -p update-api`. Unit tests sit with each module (status documents, the
//! state machine with a proptest, the derivation from disk facts). The integration tests in
//! `tests/` build real releases with testsys (they need `mkfs.ext4` and `debugfs`; skipped with a
//! message outside CI when missing), serve them over HTTP on loopback, start the real
//! `update-api` binary on a node directory and drive it with the real `apiclient` binary:
//! every transition, 423/409/404, cancel, a burst of status requests during a prepare, the
//! server killed with SIGKILL during and after a prepare, and the examples in docs/api.md.
#![deny(missing_docs)]

pub mod cli;
pub mod client;
pub mod derive;
pub mod disk;
mod error;
pub mod machine;
pub mod os;
pub mod server;
pub mod status;

pub use error::{Error, Result};
pub use status::{
    CommandResult, CommandStatus, StagedImage, UpdateCommand, UpdateImage, UpdateState,
    UpdateStatus,
};
