//! Creating a node: a sysroot, a factory-fresh GPT disk, and a first release downloaded through
//! TUF from a repository and written into set A, as the image that provisions a real node does.

use crate::boot::Node;
use crate::error::{self, Result};
use snafu::ResultExt;
use std::path::{Path, PathBuf};

/// What a new node needs.
#[derive(Debug, Clone)]
pub struct CreateSpec {
    /// The node's directory.
    pub sysroot: PathBuf,
    /// updog's `metadata_base_url`.
    pub metadata_url: String,
    /// updog's `targets_base_url`.
    pub targets_url: String,
    /// The trusted root the node starts from (the one its images ship).
    pub trusted_root: PathBuf,
    /// The variant to install.
    pub variant: String,
    /// The architecture to install.
    pub arch: String,
    /// The release to install into set A.
    pub version: semver::Version,
    /// Disk size in MiB.
    pub disk_mib: u64,
    /// The node's seed, if fixed.
    pub seed: Option<u32>,
}

/// Creates the node: directories, disk (set A bootable, B empty), updog's configuration and
/// trusted root, then fetches `version` through TUF and writes and verifies it in set A. Power it
/// on with [`Node::boot`].
pub fn create(spec: &CreateSpec) -> Result<Node> {
    let root = &spec.sysroot;
    for dir in [
        "etc",
        "dev",
        "proc",
        "run",
        "usr/share/updog",
        "var/lib/updog",
        "var/lib/datastore",
    ] {
        let path = root.join(dir);
        std::fs::create_dir_all(&path).context(error::IoSnafu {
            action: "create",
            path: &path,
        })?;
    }
    let disk = root.join(signpost::discover::NODE_DISK_IMAGE);
    let size = spec.disk_mib << 20;
    let (mut file, _) =
        signpost::create_image_file(&disk, Some(size), size, false).context(error::DiskSnafu {
            action: format!("create disk image '{}'", disk.display()),
        })?;
    signpost::create_disk(
        &mut file,
        &disk.display().to_string(),
        &signpost::Layout::default(),
    )
    .context(error::DiskSnafu {
        action: format!("lay out '{}'", disk.display()),
    })?;
    drop(file);
    let node = Node::open(root, Some(&disk))?;

    let mut config = format!(
        "metadata_base_url = \"{}\"\ntargets_base_url = \"{}\"\n",
        spec.metadata_url, spec.targets_url
    );
    if let Some(seed) = spec.seed {
        config.push_str(&format!("seed = {seed}\n"));
    }
    write(root, "etc/updog.toml", config.as_bytes())?;
    let trusted = std::fs::read(&spec.trusted_root).context(error::IoSnafu {
        action: "read",
        path: &spec.trusted_root,
    })?;
    write(root, "usr/share/updog/root.json", &trusted)?;
    // Until the first boot exposes the installed image's own os-release, the node runs nothing.
    let placeholder = format!(
        "VERSION_ID=0.0.0\nVARIANT_ID={}\nVARIANT_ARCH={}\n",
        spec.variant, spec.arch
    );
    write(root, "etc/os-release", placeholder.as_bytes())?;
    write(root, "proc/cmdline", b"console=ttyS0\n")?;
    let boot_guid = node_boot_guid(&node, signpost::SetId::A)?;
    signpost::discover::write_booted_marker(root, boot_guid).context(error::DiskSnafu {
        action: "record set A as the provisioning target",
    })?;

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context(error::IoSnafu {
            action: "start an async runtime for",
            path: root,
        })?;
    let found = runtime
        .block_on(provision(root, &disk, &spec.version))
        .context(error::ProvisionSnafu {
            version: spec.version.to_string(),
        })?;
    snafu::ensure!(
        found,
        error::NoSuchVersionSnafu {
            version: spec.version.to_string(),
            variant: spec.variant.clone(),
            arch: spec.arch.clone(),
        }
    );
    Ok(node)
}

/// Fetches and writes `version` into set A; `Ok(false)` when the repository does not have it.
async fn provision(sysroot: &Path, disk: &Path, version: &semver::Version) -> updog::Result<bool> {
    let updater = updog::updater::Updater::new(sysroot, Some(disk))?;
    let lock = updog::UpdateLock::acquire(&updog::Paths::new(sysroot).lock, "node-sim create")?;
    let refreshed = updater.refresh().await?;
    let request = updog::updater::Request {
        image: Some(version.clone()),
        ignore_waves: true,
    };
    let Some(update) = updater.choose(&refreshed, &request)? else {
        return Ok(false);
    };
    let cancel = updog::CancellationToken::new();
    updog::provision(
        &updater,
        &lock,
        &refreshed,
        &update,
        signpost::SetId::A,
        &updog::NoProgress,
        &cancel,
    )
    .await?;
    Ok(true)
}

fn node_boot_guid(node: &Node, set: signpost::SetId) -> Result<uuid::Uuid> {
    let file = signpost::discover::open_disk(&node.disk, false).context(error::DiskSnafu {
        action: "open the disk",
    })?;
    let disk = signpost::SignpostDisk::open(file, node.disk.display().to_string()).context(
        error::DiskSnafu {
            action: "read the partition table",
        },
    )?;
    Ok(disk.partitions(set).boot.unique_guid)
}

fn write(root: &Path, path: &str, bytes: &[u8]) -> Result<()> {
    crate::record::write_atomic(&root.join(path), bytes)
}
