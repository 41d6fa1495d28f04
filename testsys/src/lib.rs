//! Test support for the whole project: real release images, signed repositories served by a
//! real HTTP server on loopback, and nodes that live in a directory.
//!
//! ```no_run
//! use testsys::{HttpServer, NodeSpec, PublishOptions, TestNode, TestRepo};
//! # fn main() -> testsys::Result<()> {
//! let work = tempfile::tempdir().expect("temp dir");
//! let repo = TestRepo::create(&work.path().join("publisher"), "demo", "x86_64")?;
//! let first = repo.release("1.0.0", &[("etc/motd", b"hello\n")], &PublishOptions::default())?;
//! let server = HttpServer::serve(&repo.base())?;
//! let spec = NodeSpec { urls: Some(repo.urls(&server.url())), ..NodeSpec::default() };
//! let node = TestNode::create(&work.path().join("node"), &first, &spec)?;
//! assert!(node.sysroot.join("etc/os-release").is_file());
//! # Ok(()) }
//! ```
//!
//! Most integration tests want exactly that world; [`ServedNode`] builds it in one call:
//!
//! ```no_run
//! # fn main() -> testsys::Result<()> {
//! let world = testsys::ServedNode::new()?;
//! world.release("1.1.0")?;
//! let out = testsys::run_updog(&world.node.sysroot, &["check-update"])?;
//! assert!(String::from_utf8_lossy(&out.stdout).starts_with("demo x86_64 1.1.0"));
//! # Ok(()) }
//! ```
//!
//! # Testing
//!
//! `cargo nextest run -p testsys`: builds real ext4 images (needs `mkfs.ext4` and `debugfs`
//! from e2fsprogs; skipped outside CI when missing), publishes them, serves them and checks a
//! client's view, including every injectable fault.
#![deny(missing_docs)]

mod bins;
mod error;
mod node;
mod repo;
mod server;
mod world;

pub use bins::{binary, run_signpost, run_updog, signpost_command, updog_command};
pub use error::{Error, Result};
pub use node::{DISK_IMAGE, NodeSpec, TestNode};
pub use repo::{BuiltRelease, PublishOptions, TestRepo, block_on};
pub use server::{Fault, HttpServer, LoggedRequest, TRICKLE};
pub use world::{ServedNode, tools_present};
