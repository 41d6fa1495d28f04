//! Builds the three images of an OS release, and reads them back.
//!
//! A release is ROOT (an ext4 root filesystem made with `mkfs.ext4 -d`), HASH (ROOT's dm-verity
//! hash tree, from the [`verity`] crate) and BOOT (a small ext4 holding `verity.params` and,
//! where given, the kernel `vmlinuz`), written as one set into a partition set. ROOT carries
//! `etc/os-release` (`VERSION_ID`, `VARIANT_ID`, ...) and the trusted TUF root at
//! `usr/share/updog/root.json`. Builds are reproducible: the same [`ReleaseSpec`] and tree give
//! the same bytes (fixed UUIDs, hash seed, salt and timestamps; every inode owned by root).
//!
//! [`read_boot_params`] and [`read_root_info`] read those files back with the pure-Rust ext4
//! reader `ext4-view` from an image file or a partition of a disk image ([`ImageRegion`]).
//!
//! ```no_run
//! use image_builder::{ImageRegion, ReleaseSpec, build_release, read_boot_params, read_root_info};
//! use std::fs::File;
//!
//! let version = semver::Version::new(1, 2, 0);
//! let mut spec = ReleaseSpec::new(version, "dev", "x86_64", std::fs::read("root.json")?);
//! spec.root_tree = Some("rootfs".into());
//! let release = build_release(&spec, "out".as_ref())?;
//!
//! let params = read_boot_params(ImageRegion::whole(File::open(&release.boot.path)?)?)?;
//! let root = File::open(&release.root.path)?;
//! let hash = File::open(&release.hash.path)?;
//! verity::verify(&params, &root, hash)?;
//! let info = read_root_info(ImageRegion::whole(root)?)?;
//! assert_eq!(info.os_release.variant_id(), "dev");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Building needs `mkfs.ext4` and `debugfs` (e2fsprogs); reading back needs no tool.
//!
//! # Testing
//!
//! `cargo nextest run -p image-builder`. The tests that build images ask for `mkfs.ext4`,
//! `debugfs` and `lz4` through `test_tools::require_tool`: skipped with a message where missing,
//! failing under `CI=true`.
#![deny(missing_docs)]

mod build;
mod error;
mod mkfs;
mod os_release;
mod read;
mod spec;
mod stage;

pub use build::{ImageFile, Release, build_release};
pub use error::{Error, Result};
pub use os_release::{OS_ID, OS_NAME, OsRelease};
pub use read::{ImageRegion, RootInfo, read_boot_params, read_root_info};
pub use spec::{DEFAULT_EPOCH, ReleaseSpec, SizeLimits};

/// Path of the verity parameters in BOOT.
pub const BOOT_PARAMS_PATH: &str = "verity.params";
/// Path of the kernel in BOOT, where there is one.
pub const BOOT_KERNEL_PATH: &str = "vmlinuz";
/// Path of os-release in ROOT.
pub const ROOT_OS_RELEASE_PATH: &str = "etc/os-release";
/// Path of the trusted TUF root in ROOT.
pub const ROOT_TUF_ROOT_PATH: &str = "usr/share/updog/root.json";
/// Path of the boot health checks in ROOT (optional; see docs/operations.md).
pub const ROOT_HEALTH_CHECKS_PATH: &str = "etc/twinset/health-checks.toml";
