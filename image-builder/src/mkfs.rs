//! Making a reproducible ext4 image from a staged directory with `mkfs.ext4 -d`, then fixing every
//! inode's owner and times with `debugfs` (mke2fs 1.47.0 copies them from the staging files).

use crate::error::{self, Result};
use crate::stage::Survey;
use snafu::{OptionExt, ResultExt, ensure};
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use verity::Uuid;

/// Our own mke2fs configuration, so that the features do not depend on the host's
/// /etc/mke2fs.conf. No journal (the images are read-only) and no resize inode.
const MKE2FS_CONF: &str = "\
[defaults]
\tbase_features = sparse_super,large_file,filetype,dir_index,ext_attr
\tblocksize = 4096
\tinode_size = 256
\tinode_ratio = 16384

[fs_types]
\text4 = {
\t\tfeatures = extent,huge_file,flex_bg,metadata_csum,64bit,dir_nlink,extra_isize
\t}
\tsmall = {
\t\tblocksize = 4096
\t}
\tfloppy = {
\t\tblocksize = 4096
\t}
";

/// How to make one ext4 image.
#[derive(Debug)]
pub(crate) struct Ext4Spec<'a> {
    /// `ROOT` or `BOOT`: the label, and the image's name in errors.
    pub(crate) label: &'static str,
    /// The filesystem UUID, also its directory hash seed.
    pub(crate) uuid: Uuid,
    /// Size of the image in bytes (a multiple of 4096).
    pub(crate) size: u64,
    /// Inodes to reserve.
    pub(crate) inodes: u64,
    /// Every inode's times, and the filesystem's (seconds since the epoch, not 0).
    pub(crate) epoch: u64,
    /// The staged tree and its survey.
    pub(crate) staging: &'a Path,
    /// What `staging` holds.
    pub(crate) survey: &'a Survey,
    /// A scratch directory for the configuration and the debugfs script.
    pub(crate) scratch: &'a Path,
}

/// Finds a tool on PATH or in the sbin directories.
pub(crate) fn find_tool(tool: &'static str) -> Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/local/sbin", "/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(tool))
        .find(|candidate| candidate.is_file())
        .context(error::MissingToolSnafu { tool })
}

/// Makes the image at `image`.
pub(crate) fn make_ext4(spec: &Ext4Spec<'_>, image: &Path) -> Result<()> {
    let mkfs = find_tool("mkfs.ext4")?;
    let debugfs = find_tool("debugfs")?;
    let conf = spec.scratch.join(format!("mke2fs-{}.conf", spec.label));
    fs::write(&conf, MKE2FS_CONF).context(error::IoSnafu {
        verb: "write",
        path: &conf,
    })?;
    let file = fs::File::create(image).context(error::IoSnafu {
        verb: "create",
        path: image,
    })?;
    file.set_len(spec.size).context(error::IoSnafu {
        verb: "size",
        path: image,
    })?;
    drop(file);

    let uuid = spec.uuid.hyphenated().to_string();
    let mut command = Command::new(&mkfs);
    command
        .args([
            "-q", "-F", "-t", "ext4", "-b", "4096", "-I", "256", "-m", "0",
        ])
        .arg("-N")
        .arg(spec.inodes.to_string())
        .args(["-U", &uuid, "-L", spec.label])
        .arg("-E")
        .arg(format!("hash_seed={uuid},root_owner=0:0,nodiscard"))
        .arg("-d")
        .arg(spec.staging)
        .arg(image);
    run(command, "mkfs.ext4", image, spec, &conf)?;

    // Every inode: owned by root, with the build's times (and no sub-second parts).
    let mut script = String::new();
    for path in std::iter::once("/").chain(spec.survey.paths.iter().map(String::as_str)) {
        for (field, value) in [("uid", "0"), ("gid", "0")] {
            let _ = writeln!(script, "sif \"{path}\" {field} {value}");
        }
        for time in ["atime", "mtime", "ctime", "crtime"] {
            let _ = writeln!(script, "sif \"{path}\" {time} @{}", spec.epoch);
            let _ = writeln!(script, "sif \"{path}\" {time}_extra 0");
        }
    }
    let script_path = spec.scratch.join(format!("debugfs-{}.cmds", spec.label));
    fs::write(&script_path, script).context(error::IoSnafu {
        verb: "write",
        path: &script_path,
    })?;
    let mut command = Command::new(&debugfs);
    command.arg("-w").arg("-f").arg(&script_path).arg(image);
    run(command, "debugfs", image, spec, &conf)
}

/// Runs a tool with our configuration and fake time; any error output beyond debugfs's banner
/// lines is a failure (debugfs exits 0 when a command fails).
fn run(
    mut command: Command,
    tool: &'static str,
    image: &Path,
    spec: &Ext4Spec<'_>,
    conf: &Path,
) -> Result<()> {
    let output = command
        .env("MKE2FS_CONFIG", conf)
        .env("E2FSPROGS_FAKE_TIME", spec.epoch.to_string())
        .env("LC_ALL", "C")
        .output()
        .context(error::SpawnToolSnafu { tool, image })?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    let complaints: Vec<&str> = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("debugfs "))
        .collect();
    ensure!(
        output.status.success() && complaints.is_empty(),
        error::ToolFailedSnafu {
            tool,
            image,
            status: output.status,
            stderr: complaints.join("; "),
        }
    );
    Ok(())
}
