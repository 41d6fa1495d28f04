//! A publisher with releases built for the guest, and the factory that makes each machine: its
//! GPT disk with the first release in set A and DATA seeded, and its offline repository disk.

use crate::error::{self, Result};
use crate::guest::{self, Binaries, REPO_MOUNT, list_dir, mkdir, read_file, run, write_file};
use crate::kernel::Kernel;
use crate::machine::Machine;
use signpost::Layout;
use snafu::ResultExt;
use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::Command;
use testsys::{BuiltRelease, NodeSpec, PublishOptions, TestNode, TestRepo};

/// The variant of the test releases.
pub const VARIANT: &str = "vm";
/// The architecture of the test releases (the guest is x86_64).
pub const ARCH: &str = "x86_64";
/// Set to keep every machine's directory (disk, serial logs) after the test.
pub const KEEP_ENV: &str = "TWINSET_VM_KEEP";
/// The host's CA bundle, shipped in ROOT at the same path.
const CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";
/// DATA's size: the datastore, updog's state and caches.
const DATA_MIB: u64 = 16;

/// The tools a machine needs on the host.
pub const TOOLS: [&str; 11] = [
    "qemu-system-x86_64",
    "timeout",
    "busybox",
    "dmsetup",
    "cpio",
    "strip",
    "ldd",
    "sgdisk",
    "debugfs",
    "e2fsck",
    "mkfs.ext4",
];

/// A publisher and the guest's shared pieces: kernel, initramfs, the ROOT tree every release
/// carries (binaries, busybox, init, updog's configuration).
#[derive(Debug)]
pub struct Lab {
    /// Everything lives here.
    pub dir: tempfile::TempDir,
    /// The kernel.
    pub kernel: Kernel,
    /// The initramfs.
    pub initramfs: PathBuf,
    /// The signed repository the releases are published to.
    pub repo: TestRepo,
    tree: PathBuf,
    root_size: u64,
}

impl Lab {
    /// Builds the guest's pieces, or `Ok(None)` when a tool or the kernel is missing outside CI
    /// (under `CI=true` that fails the test instead).
    pub fn new() -> Result<Option<Lab>> {
        let mut found = Vec::new();
        for tool in TOOLS {
            match test_tools::require_tool(tool) {
                Some(path) => found.push(path),
                None => return Ok(None),
            }
        }
        let kernel_dir = Kernel::default_dir();
        let kernel = match Kernel::open(&kernel_dir) {
            Ok(kernel) => kernel,
            Err(e) => return Ok(test_tools::skip_or_fail(&e.to_string())),
        };
        let dir = tempfile::Builder::new()
            .prefix("twinset-vm-")
            .disable_cleanup(std::env::var_os(KEEP_ENV).is_some())
            .tempdir()
            .context(error::IoSnafu {
                action: "create",
                path: std::env::temp_dir(),
            })?;
        let work = dir.path().join("guest");
        let binaries = Binaries::collect(
            &work.join("bin"),
            &[
                testsys::binary("signpost", "signpost"),
                testsys::binary("node-sim", "node-sim"),
                testsys::binary("updog", "updog"),
            ],
        )?;
        let initramfs = dir.path().join("initramfs.cpio");
        guest::build_initramfs(&kernel, &found[2], &found[3], &binaries, &work, &initramfs)?;
        let repo = TestRepo::create(&dir.path().join("publisher"), VARIANT, ARCH).context(
            error::BuildSnafu {
                action: "create the repository",
            },
        )?;
        let tree = work.join("root");
        for sub in [
            "var",
            "run",
            "proc",
            "sys",
            "dev",
            "tmp",
            "media/repo",
            "etc/twinset",
        ] {
            mkdir(&tree.join(sub))?;
        }
        guest::install_busybox(&found[2], &tree)?;
        binaries.install(&tree, &["updog", "node-sim"])?;
        write_file(&tree.join("sbin/init"), guest::ROOT_INIT.as_bytes(), 0o755)?;
        // updog's HTTPS client loads the system's trust store even for file:// repositories,
        // as on any image that ships an HTTPS client.
        guest::copy_file(
            Path::new(CA_BUNDLE),
            &tree.join(CA_BUNDLE.trim_start_matches('/')),
            0o644,
        )?;
        let (metadata, targets) = repo.urls(&format!("file://{REPO_MOUNT}/"));
        let config =
            format!("metadata_base_url = \"{metadata}\"\ntargets_base_url = \"{targets}\"\n");
        write_file(&tree.join("etc/updog.toml"), config.as_bytes(), 0o644)?;
        // Room for the tree, ext4's metadata and every release's few own files.
        let content = tree_size(&tree)?;
        let root_size = (content + content / 6 + (6 << 20)).div_ceil(1 << 20) << 20;
        Ok(Some(Lab {
            dir,
            kernel,
            initramfs,
            repo,
            tree,
            root_size,
        }))
    }

    /// Builds release `version` (its image carries `health_checks` as
    /// `etc/twinset/health-checks.toml`) and publishes it with `migrations`.
    pub fn release(
        &self,
        version: &str,
        health_checks: &str,
        migrations: &[PathBuf],
    ) -> Result<BuiltRelease> {
        let parsed: semver::Version = version.parse().map_err(|_| error::Error::Io {
            action: format!("parse version '{version}' of"),
            path: self.dir.path().to_path_buf(),
            source: std::io::Error::other("not a semantic version"),
        })?;
        write_file(
            &self.tree.join("etc/twinset/health-checks.toml"),
            health_checks.as_bytes(),
            0o644,
        )?;
        let root_json = read_file(&self.repo.root_json)?;
        let mut spec = image_builder::ReleaseSpec::new(parsed.clone(), VARIANT, ARCH, root_json);
        spec.root_tree = Some(self.tree.clone());
        spec.root_size = Some(self.root_size);
        let out = self.dir.path().join("build").join(version);
        let images =
            image_builder::build_release(&spec, &out).context(error::ImageSnafu { version })?;
        let built = BuiltRelease {
            version: parsed,
            images,
        };
        let options = PublishOptions {
            migrations: migrations.to_vec(),
            ..PublishOptions::default()
        };
        self.repo
            .publish(&built, &options)
            .context(error::BuildSnafu {
                action: format!("publish {version}"),
            })?;
        Ok(built)
    }

    /// The disk layout: ROOT partitions sized for the releases, a small DATA.
    pub fn layout(&self) -> Layout {
        Layout {
            root_mib: self.root_size >> 20,
            data_mib: Some(DATA_MIB),
            ..Layout::default()
        }
    }

    /// A factory-fresh machine: `first` written into set A (set A bootable, B empty), and DATA
    /// formatted with a datastore at `first`'s version holding `settings` (key, JSON value).
    pub fn machine(
        &self,
        name: &str,
        first: &BuiltRelease,
        settings: &[(&str, serde_json::Value)],
    ) -> Result<Machine> {
        let dir = self.dir.path().join(name);
        let layout = self.layout();
        let spec = NodeSpec {
            disk_mib: layout.needed_mib(),
            layout,
            urls: None,
            seed: None,
        };
        let node =
            TestNode::create(&dir.join("node"), first, &spec).context(error::BuildSnafu {
                action: "lay out the disk",
            })?;

        // The factory datastore, made by the migrator itself, on DATA's filesystem.
        let staging = dir.join("data-staging");
        let options = migrator::MigrateOptions::under_sysroot(&staging, first.version.clone());
        let datastore = options.datastore.clone();
        mkdir(&datastore)?;
        let ds_err = || error::DatastoreSnafu { path: &datastore };
        migrator::migrate(&options).with_context(|_| ds_err())?;
        let store = migrator::Datastore::open_current(&datastore).with_context(|_| ds_err())?;
        for (key, value) in settings {
            let key = migrator::Key::new(key).with_context(|_| ds_err())?;
            store.set(&key, value).with_context(|_| ds_err())?;
        }
        let data_img = dir.join("data.ext4");
        let machine = Machine::new(dir, node, &self.kernel.image, &self.initramfs);
        let data_part = machine.data_partition()?;
        ext4_image(
            "DATA",
            &staging.join("var"),
            &data_img,
            data_part.size_bytes(),
            "format DATA",
        )?;
        write_at(&machine.disk, data_part.byte_range().start, &data_img)?;
        Ok(machine)
    }

    /// Writes everything published so far to `image`, an ext4 filesystem labelled `REPO`: the
    /// offline repository disk.
    pub(crate) fn write_repo_disk(&self, image: &Path) -> Result<()> {
        let base = self.repo.base();
        let mib = (tree_size(&base)? * 5 / 4 + (8 << 20)).div_ceil(1 << 20);
        ext4_image(
            "REPO",
            &base,
            image,
            mib << 20,
            "write the offline repository disk",
        )
    }
}

/// Makes `image`, an ext4 filesystem of `bytes` labelled `label` holding `tree`
/// (`mkfs.ext4 -d`); a failure names `action`.
fn ext4_image(label: &str, tree: &Path, image: &Path, bytes: u64, action: &str) -> Result<()> {
    run(
        Command::new("mkfs.ext4")
            .args(["-q", "-F", "-L", label, "-b", "4096", "-d"])
            .arg(tree)
            .arg(image)
            .arg(format!("{}k", bytes / 1024)),
        action,
    )?;
    Ok(())
}

fn tree_size(dir: &Path) -> Result<u64> {
    let mut total = 0;
    for path in list_dir(dir)? {
        let meta = std::fs::symlink_metadata(&path).context(error::IoSnafu {
            action: "stat",
            path: &path,
        })?;
        total += if meta.is_dir() {
            tree_size(&path)? + 4096
        } else {
            meta.len().div_ceil(4096) * 4096 + 256
        };
    }
    Ok(total)
}

fn write_at(disk: &Path, offset: u64, image: &Path) -> Result<()> {
    let mut input = File::open(image).context(error::IoSnafu {
        action: "open",
        path: image,
    })?;
    let mut out = OpenOptions::new()
        .write(true)
        .open(disk)
        .context(error::IoSnafu {
            action: "open",
            path: disk,
        })?;
    out.seek(SeekFrom::Start(offset))
        .and_then(|_| std::io::copy(&mut input, &mut out))
        .and_then(|_| out.sync_all())
        .context(error::IoSnafu {
            action: "write into",
            path: disk,
        })?;
    Ok(())
}
