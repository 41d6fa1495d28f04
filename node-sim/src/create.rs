//! Creating a node: a sysroot, a factory-fresh GPT disk, and a first release downloaded through
//! TUF from a repository and written into set A, as the image that provisions a real node does.

use crate::boot::Node;
use crate::error::{self, Result};
use snafu::{OptionExt, ResultExt};
use std::path::{Path, PathBuf};
use update_metadata::Seed;
use update_metadata::error::error_chain;

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
    pub seed: Option<Seed>,
}

/// What `--reboot` runs on a node in a directory: nothing. Its reboot is the next `node-sim
/// boot`, and updog's default (`systemctl reboot`) would reboot the machine the node lives on.
pub const REBOOT_COMMAND: [&str; 1] = ["true"];

/// Creates the node: directories, disk (set A bootable, B empty), updog's configuration (with
/// [`REBOOT_COMMAND`]) and trusted root, then fetches `version` through TUF and writes and
/// verifies it in set A. Power it on with [`Node::boot`].
///
/// Every argument is checked before anything is written, and a sysroot that holds a disk
/// already (a node, or a create that stopped half-way) is refused.
pub fn create(spec: &CreateSpec) -> Result<Node> {
    let root = &spec.sysroot;
    let disk = root.join(signpost::discover::NODE_DISK_IMAGE);
    let size = disk_size(spec.disk_mib)?;
    let config = updog_config(spec)?;
    let trusted = std::fs::read(&spec.trusted_root).context(error::IoSnafu {
        action: "read",
        path: &spec.trusted_root,
    })?;
    match disk.symlink_metadata() {
        Ok(_) => return node_exists(root, &disk),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => {
            return Err(source).context(error::IoSnafu {
                action: "inspect",
                path: &disk,
            });
        }
    }

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
    // A disk that appeared since the check above is refused the same way.
    let mut file = match signpost::create_image_file(&disk, Some(size), size, false) {
        Ok((file, _)) => file,
        Err(signpost::Error::ImageExists { .. }) => return node_exists(root, &disk),
        Err(source) => {
            return Err(source).context(error::DiskSnafu {
                action: format!("create disk image '{}'", disk.display()),
            });
        }
    };
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

    write(root, "etc/updog.toml", config.as_bytes())?;
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

/// The disk's size in bytes, when `disk_mib` holds the partition layout.
fn disk_size(disk_mib: u64) -> Result<u64> {
    let needed_mib = signpost::Layout::default().needed_mib();
    snafu::ensure!(
        disk_mib >= needed_mib,
        error::DiskSizeSnafu {
            disk_mib,
            reason: format!("the partition layout needs at least {needed_mib} MiB"),
        }
    );
    disk_mib.checked_mul(1 << 20).context(error::DiskSizeSnafu {
        disk_mib,
        reason: "it is more bytes than a file can hold".to_string(),
    })
}

/// The `etc/updog.toml` of the node, checked as updog will read it.
fn updog_config(spec: &CreateSpec) -> Result<String> {
    let quoted = |text: &str| toml::Value::String(text.to_string()).to_string();
    let mut config = format!(
        "metadata_base_url = {}\ntargets_base_url = {}\n",
        quoted(&spec.metadata_url),
        quoted(&spec.targets_url)
    );
    if let Some(seed) = spec.seed {
        config.push_str(&format!("seed = {seed}\n"));
    }
    let reboot: Vec<String> = REBOOT_COMMAND.iter().map(|w| quoted(w)).collect();
    config.push_str(&format!(
        "# This node's reboot is its next `node-sim boot`: never reboot the machine it lives on.\n\
         reboot_command = [{}]\n",
        reboot.join(", ")
    ));
    let path = spec.sysroot.join("etc/updog.toml");
    match updog::Config::parse(&config, &path) {
        Ok(_) => Ok(config),
        Err(updog::Error::ConfigField { field, reason, .. }) => {
            let flag = match field.as_str() {
                "metadata_base_url" => "--metadata-url",
                "targets_base_url" => "--targets-url",
                "seed" => "--seed",
                other => other,
            };
            error::ArgumentSnafu {
                flag: flag.to_string(),
                reason,
            }
            .fail()
        }
        // Only the URLs are text the arguments put in the file.
        Err(other) => error::ArgumentSnafu {
            flag: "--metadata-url and --targets-url".to_string(),
            reason: error_chain(&other),
        }
        .fail(),
    }
}

fn node_exists<T>(sysroot: &Path, disk: &Path) -> Result<T> {
    error::NodeExistsSnafu {
        sysroot: sysroot.to_path_buf(),
        disk: disk.to_path_buf(),
    }
    .fail()
}

fn write(root: &Path, path: &str, bytes: &[u8]) -> Result<()> {
    crate::record::write_atomic(&root.join(path), bytes)
}
