//! A node in a directory (design section 2): a sysroot with a GPT disk image holding a first
//! release in set A, the files the agent reads, and updog's configuration.

use crate::error::{self, Result};
use crate::repo::BuiltRelease;
use signpost::{Layout, SetId, SignpostDisk};
use snafu::ResultExt;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Where the disk image of a node directory lives, relative to the sysroot.
pub const DISK_IMAGE: &str = signpost::discover::NODE_DISK_IMAGE;

/// How to lay out a node.
#[derive(Debug, Clone)]
pub struct NodeSpec {
    /// Partition sizes.
    pub layout: Layout,
    /// Disk size in MiB.
    pub disk_mib: u64,
    /// updog's repository URLs (metadata, targets), written to `etc/updog.toml`.
    pub urls: Option<(String, String)>,
    /// The node's seed in `etc/updog.toml`.
    pub seed: Option<u32>,
}

impl Default for NodeSpec {
    fn default() -> Self {
        NodeSpec {
            layout: Layout::default(),
            disk_mib: 128,
            urls: None,
            seed: None,
        }
    }
}

/// A node directory.
#[derive(Debug, Clone)]
pub struct TestNode {
    /// The sysroot.
    pub sysroot: PathBuf,
    /// The disk image.
    pub disk: PathBuf,
}

impl TestNode {
    /// Creates a node in `sysroot`: directories, a fresh disk with set A bootable, `first`
    /// written into set A's partitions, the booted-set marker naming set A, and `etc/os-release`
    /// and `usr/share/updog/root.json` read back from set A's ROOT filesystem on the disk.
    pub fn create(sysroot: &Path, first: &BuiltRelease, spec: &NodeSpec) -> Result<TestNode> {
        for dir in [
            "etc",
            "dev",
            "proc",
            "run",
            "usr/share/updog",
            "var/lib/updog",
            "var/cache/updog",
            "var/lib/datastore",
        ] {
            let path = sysroot.join(dir);
            std::fs::create_dir_all(&path).context(error::IoSnafu {
                action: "create",
                path: &path,
            })?;
        }
        let disk = sysroot.join(DISK_IMAGE);
        let (mut file, _) = signpost::create_image_file(
            &disk,
            Some(spec.disk_mib << 20),
            spec.disk_mib << 20,
            false,
        )
        .context(error::DiskSnafu {
            action: format!("create disk image '{}'", disk.display()),
        })?;
        signpost::create_disk(&mut file, &disk.display().to_string(), &spec.layout).context(
            error::DiskSnafu {
                action: format!("lay out '{}'", disk.display()),
            },
        )?;
        drop(file);
        let node = TestNode {
            sysroot: sysroot.to_path_buf(),
            disk,
        };
        node.write_release(SetId::A, first)?;
        let boot_guid = node.signpost()?.partitions(SetId::A).boot.unique_guid;
        signpost::discover::write_booted_marker(sysroot, boot_guid).context(error::DiskSnafu {
            action: "write the booted-set marker",
        })?;
        node.expose_booted_files(SetId::A)?;
        node.write_updog_toml(spec)?;
        std::fs::write(sysroot.join("proc/cmdline"), b"console=ttyS0 quiet\n").context(
            error::IoSnafu {
                action: "write",
                path: sysroot.join("proc/cmdline"),
            },
        )?;
        Ok(node)
    }

    /// Opens the node's disk with signpost (read-write).
    pub fn signpost(&self) -> Result<SignpostDisk<File>> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&self.disk)
            .context(error::IoSnafu {
                action: "open",
                path: &self.disk,
            })?;
        SignpostDisk::open(file, self.disk.display().to_string()).context(error::DiskSnafu {
            action: format!("read the partition table of '{}'", self.disk.display()),
        })
    }

    /// Writes a release's raw images into a set's BOOT, ROOT and HASH partitions (no bit
    /// changes): how tests put a disk into a given state.
    pub fn write_release(&self, set: SetId, release: &BuiltRelease) -> Result<()> {
        let parts = self.signpost()?.partitions(set).clone();
        let mut disk = OpenOptions::new()
            .write(true)
            .open(&self.disk)
            .context(error::IoSnafu {
                action: "open",
                path: &self.disk,
            })?;
        for (image, part) in [
            (&release.images.boot, &parts.boot),
            (&release.images.root, &parts.root),
            (&release.images.hash, &parts.hash),
        ] {
            if image.size > part.size_bytes() {
                return error::TooBigSnafu {
                    path: image.path.clone(),
                    size: image.size,
                    partition: part.label.clone(),
                    capacity: part.size_bytes(),
                }
                .fail();
            }
            let mut input = File::open(&image.path).context(error::IoSnafu {
                action: "open",
                path: &image.path,
            })?;
            disk.seek(SeekFrom::Start(part.byte_range().start))
                .and_then(|_| std::io::copy(&mut input, &mut disk))
                .context(error::IoSnafu {
                    action: "write an image into",
                    path: &self.disk,
                })?;
        }
        disk.sync_all().context(error::IoSnafu {
            action: "sync",
            path: &self.disk,
        })
    }

    /// Reads `etc/os-release` and `usr/share/updog/root.json` from a set's ROOT filesystem on
    /// the disk and places them in the sysroot, as the booted image exposes them.
    pub fn expose_booted_files(&self, set: SetId) -> Result<()> {
        let root = self.signpost()?.partitions(set).root.clone();
        let file = File::open(&self.disk).context(error::IoSnafu {
            action: "open",
            path: &self.disk,
        })?;
        let region =
            image_builder::ImageRegion::new(file, root.byte_range().start, root.size_bytes());
        let info = image_builder::read_root_info(region).context(error::ReadBackSnafu {
            what: "os-release and root.json",
        })?;
        for (path, bytes) in [
            ("etc/os-release", info.os_release.text().as_bytes()),
            ("usr/share/updog/root.json", info.root_json.as_slice()),
        ] {
            let dst = self.sysroot.join(path);
            std::fs::write(&dst, bytes).context(error::IoSnafu {
                action: "write",
                path: &dst,
            })?;
        }
        Ok(())
    }

    /// The first `len` bytes of a set's partition (`which`: boot, root or hash).
    pub fn read_partition(&self, set: SetId, which: &str, len: u64) -> Result<Vec<u8>> {
        let parts = self.signpost()?.partitions(set).clone();
        let part = match which {
            "boot" => parts.boot,
            "root" => parts.root,
            _ => parts.hash,
        };
        let mut file = File::open(&self.disk).context(error::IoSnafu {
            action: "open",
            path: &self.disk,
        })?;
        let mut bytes = vec![0; len.min(part.size_bytes()) as usize];
        file.seek(SeekFrom::Start(part.byte_range().start))
            .and_then(|_| file.read_exact(&mut bytes))
            .context(error::IoSnafu {
                action: "read",
                path: &self.disk,
            })?;
        Ok(bytes)
    }

    /// Which of a set's three partitions do not begin with `release`'s image bytes (empty when
    /// the set holds the release exactly).
    pub fn images_differing(
        &self,
        set: SetId,
        release: &BuiltRelease,
    ) -> Result<Vec<&'static str>> {
        let mut differing = Vec::new();
        for (which, image) in [
            ("boot", &release.images.boot),
            ("root", &release.images.root),
            ("hash", &release.images.hash),
        ] {
            let expected = std::fs::read(&image.path).context(error::IoSnafu {
                action: "read",
                path: &image.path,
            })?;
            if self.read_partition(set, which, image.size)? != expected {
                differing.push(which);
            }
        }
        Ok(differing)
    }

    fn write_updog_toml(&self, spec: &NodeSpec) -> Result<()> {
        let Some((metadata, targets)) = &spec.urls else {
            return Ok(());
        };
        let mut text =
            format!("metadata_base_url = \"{metadata}\"\ntargets_base_url = \"{targets}\"\n");
        if let Some(seed) = spec.seed {
            text.push_str(&format!("seed = {seed}\n"));
        }
        text.push_str("version_lock = \"latest\"\nignore_waves = false\n");
        let path = self.sysroot.join("etc/updog.toml");
        let mut file = File::create(&path).context(error::IoSnafu {
            action: "create",
            path: &path,
        })?;
        file.write_all(text.as_bytes()).context(error::IoSnafu {
            action: "write",
            path: &path,
        })
    }
}
