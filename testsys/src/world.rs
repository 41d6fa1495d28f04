//! The world most integration tests start from: a repository with 1.0.0 published, served on
//! loopback, and a node booted from 1.0.0 in set A, all in one temporary directory.

use crate::error::{self, Result};
use crate::node::{NodeSpec, TestNode};
use crate::repo::{BuiltRelease, PublishOptions, TestRepo};
use crate::server::{Fault, HttpServer};
use snafu::ResultExt;
use std::path::PathBuf;

/// Whether the tools that building release images needs (`mkfs.ext4`, `debugfs`) are here:
/// a test returns early when they are not, and fails instead with `CI=true`.
pub fn tools_present() -> bool {
    ["mkfs.ext4", "debugfs"]
        .iter()
        .all(|t| test_tools::require_tool(t).is_some())
}

/// A repository ([`ServedNode::VARIANT`], [`ServedNode::ARCH`]) with a first release published,
/// an [`HttpServer`] serving it, and a [`TestNode`] booted from that release in set A whose
/// `etc/updog.toml` points at the server, with seed [`ServedNode::SEED`]. Everything lives in
/// `work`, removed on drop.
#[derive(Debug)]
pub struct ServedNode {
    /// The repository, in `work/publisher`.
    pub repo: TestRepo,
    /// The release in set A.
    pub first: BuiltRelease,
    /// The server of `repo.base()`.
    pub server: HttpServer,
    /// The node, in `work/node`.
    pub node: TestNode,
    /// The directory holding everything; free for a test's own files. Declared last so that it
    /// is removed after the server stops.
    pub work: tempfile::TempDir,
}

impl ServedNode {
    /// The variant of the served repository.
    pub const VARIANT: &'static str = "demo";
    /// The architecture of the served repository.
    pub const ARCH: &'static str = "x86_64";
    /// The node's seed in `etc/updog.toml`.
    pub const SEED: u32 = 42;

    /// The usual world: release 1.0.0 with `etc/motd` = "one\n" in set A.
    pub fn new() -> Result<ServedNode> {
        ServedNode::with_first(|repo| {
            repo.release(
                "1.0.0",
                &[("etc/motd", b"one\n")],
                &PublishOptions::default(),
            )
        })
    }

    /// A world whose first release is what `publish` builds and publishes, given the fresh
    /// repository (which it may configure first, e.g. `root_uuid_seed`).
    pub fn with_first(
        publish: impl FnOnce(&mut TestRepo) -> Result<BuiltRelease>,
    ) -> Result<ServedNode> {
        let work = tempfile::tempdir().context(error::IoSnafu {
            action: "create",
            path: std::env::temp_dir(),
        })?;
        let mut repo = TestRepo::create(&work.path().join("publisher"), Self::VARIANT, Self::ARCH)?;
        let first = publish(&mut repo)?;
        let server = HttpServer::serve(&repo.base())?;
        let spec = NodeSpec {
            urls: Some(repo.urls(&server.url())),
            seed: Some(Self::SEED),
            ..NodeSpec::default()
        };
        let node = TestNode::create(&work.path().join("node"), &first, &spec)?;
        Ok(ServedNode {
            repo,
            first,
            server,
            node,
            work,
        })
    }

    /// Builds and publishes `version` with `etc/motd` = "release {version}\n".
    pub fn release(&self, version: &str) -> Result<BuiltRelease> {
        let motd = format!("release {version}\n");
        self.repo.release(
            version,
            &[("etc/motd", motd.as_bytes())],
            &PublishOptions::default(),
        )
    }

    /// The served target file whose name ends with `suffix` (target files carry a hash
    /// prefix), e.g. `1.1.0-root.ext4.lz4`; the first one found.
    pub fn target_file(&self, suffix: &str) -> Result<PathBuf> {
        let dir = self.repo.base().join("targets");
        let entries = std::fs::read_dir(&dir).context(error::IoSnafu {
            action: "list",
            path: &dir,
        })?;
        for entry in entries {
            let path = entry
                .context(error::IoSnafu {
                    action: "list",
                    path: &dir,
                })?
                .path();
            if path.to_string_lossy().ends_with(suffix) {
                return Ok(path);
            }
        }
        error::NoTargetSnafu { suffix, dir }.fail()
    }

    /// Injects `fault` into the next `times` downloads (every one when `None`) of the served
    /// target whose name ends with `suffix`.
    pub fn inject_target(&self, suffix: &str, fault: Fault, times: Option<u32>) -> Result<()> {
        let path = self.target_file(suffix)?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        self.server.inject(&name, fault, times);
        Ok(())
    }
}

/// Declares an integration test crate's world: `struct $name(pub ServedNode)` that derefs to
/// its [`ServedNode`], with `new`, `release` and `target_file` that panic with the error instead
/// of returning it (a world that cannot be set up fails the test there). The crate adds its own
/// helpers in an `impl $name` of its own: a macro rather than a type here because those helpers
/// must be inherent methods, which only the crate that declares the type can add, and which its
/// test files call without importing a trait.
///
/// ```no_run
/// testsys::served_world! {
///     /// The world of these tests.
///     pub struct World;
/// }
///
/// impl World {
///     /// Runs updog against the node.
///     fn updog(&self, args: &[&str]) -> std::process::Output {
///         testsys::run_updog(&self.node.sysroot, args).expect("updog runs")
///     }
/// }
///
/// let world = World::new();
/// world.release("1.1.0");
/// assert!(world.target_file("1.1.0-root.ext4.lz4").is_file());
/// assert!(world.updog(&["check-update"]).status.success());
/// ```
#[macro_export]
macro_rules! served_world {
    ($(#[$attr:meta])* $vis:vis struct $name:ident;) => {
        $(#[$attr])*
        $vis struct $name(pub $crate::ServedNode);

        impl ::std::ops::Deref for $name {
            type Target = $crate::ServedNode;

            fn deref(&self) -> &$crate::ServedNode {
                &self.0
            }
        }

        impl $name {
            /// `ServedNode::new`: 1.0.0 published and served, the node booted from it in set A
            /// (seed 42).
            $vis fn new() -> $name {
                $name($crate::ServedNode::new().unwrap_or_else(|e| panic!("{e}")))
            }

            /// `ServedNode::release`: builds and publishes `version`.
            $vis fn release(&self, version: &str) -> $crate::BuiltRelease {
                self.0.release(version).unwrap_or_else(|e| panic!("{e}"))
            }

            /// `ServedNode::target_file`: the served target file whose name ends with `suffix`.
            $vis fn target_file(&self, suffix: &str) -> ::std::path::PathBuf {
                self.0.target_file(suffix).unwrap_or_else(|e| panic!("{e}"))
            }
        }
    };
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use signpost::SetId;

    #[test]
    fn the_node_boots_the_first_release_and_later_releases_are_served() {
        if !tools_present() {
            return;
        }
        let world = ServedNode::new().unwrap();
        assert_eq!(world.first.version.to_string(), "1.0.0");
        assert_eq!(
            world.node.images_differing(SetId::A, &world.first).unwrap(),
            Vec::<&str>::new()
        );
        let config = std::fs::read_to_string(world.node.sysroot.join("etc/updog.toml")).unwrap();
        assert!(config.contains(&world.server.url()), "{config}");
        assert!(config.contains("seed = 42\n"), "{config}");

        let second = world.release("1.1.0").unwrap();
        let root = world.target_file("1.1.0-root.ext4.lz4").unwrap();
        assert_eq!(
            std::fs::read(&root).unwrap(),
            std::fs::read(&second.images.root.lz4_path).unwrap()
        );
        let err = world.target_file("9.9.9-root.ext4.lz4").unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "Failed to find a served target ending in '9.9.9-root.ext4.lz4' in '{}'",
                world.repo.base().join("targets").display()
            )
        );
        assert!(matches!(
            world.inject_target("9.9.9-root.ext4.lz4", Fault::Status(500), None),
            Err(crate::Error::NoTarget { .. })
        ));
    }

    crate::served_world! {
        /// A world as a test crate declares it.
        struct World;
    }

    #[test]
    fn a_declared_world_is_its_served_node_and_panics_with_the_error() {
        if !tools_present() {
            return;
        }
        let world = World::new();
        assert_eq!(world.first.version.to_string(), "1.0.0");
        let second = world.release("1.1.0");
        assert_eq!(second.version.to_string(), "1.1.0");
        assert_eq!(
            world.target_file("1.1.0-root.ext4.lz4"),
            world.0.target_file("1.1.0-root.ext4.lz4").unwrap()
        );
        let panic = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            world.target_file("9.9.9-root.ext4.lz4")
        }))
        .unwrap_err();
        assert_eq!(
            panic.downcast_ref::<String>(),
            Some(&format!(
                "Failed to find a served target ending in '9.9.9-root.ext4.lz4' in '{}'",
                world.repo.base().join("targets").display()
            ))
        );
    }
}
