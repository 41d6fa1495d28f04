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

pub use bins::binary;
pub use error::{Error, Result};
pub use node::{DISK_IMAGE, NodeSpec, TestNode};
pub use repo::{BuiltRelease, PublishOptions, TestRepo};
pub use server::{Fault, HttpServer, LoggedRequest};
