//! Finding the disk and the active set on a node, and recording the booted set.
//!
//! Every path is resolved under a sysroot. The active set comes from, in order: an explicit
//! choice; the marker `<sysroot>/run/booted-set` (the booted BOOT partition's unique GUID); a
//! `PARTUUID=` of a set's BOOT or ROOT partition on `<sysroot>/proc/cmdline`; and, only when the
//! sysroot is `/`, the block device under `/` through `/sys` (the slaves of a dm-verity device),
//! matched by partition number.

use crate::disk::Disk;
use crate::error::{self, Result};
use crate::sets::SetId;
use crate::signpost_disk::SignpostDisk;
use snafu::ResultExt;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use uuid::Uuid;

/// The marker file, relative to the sysroot.
pub const BOOTED_SET_MARKER: &str = "run/booted-set";

/// How the active set was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActiveSource {
    /// An explicit `--active-set`.
    Explicit,
    /// The `run/booted-set` marker.
    Marker,
    /// A `PARTUUID=` on the kernel command line.
    KernelCmdline,
    /// The block device under `/`.
    RootDevice,
}

impl fmt::Display for ActiveSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ActiveSource::Explicit => "--active-set",
            ActiveSource::Marker => "booted-set marker",
            ActiveSource::KernelCmdline => "kernel command line",
            ActiveSource::RootDevice => "root device",
        })
    }
}

/// Finds the active set of `disk`, trying every source in order; the error lists each one tried.
pub fn find_active_set<D: Disk>(
    disk: &SignpostDisk<D>,
    sysroot: &Path,
    explicit: Option<SetId>,
) -> Result<(SetId, ActiveSource)> {
    if let Some(set) = explicit {
        return Ok((set, ActiveSource::Explicit));
    }
    let mut tried = vec!["--active-set (not given)".to_string()];
    let set_of_guid = |guid: Uuid, with_root: bool| {
        SetId::ALL.into_iter().find(|set| {
            let parts = disk.partitions(*set);
            parts.boot.unique_guid == guid || (with_root && parts.root.unique_guid == guid)
        })
    };

    let marker = sysroot.join(BOOTED_SET_MARKER);
    match fs::read_to_string(&marker) {
        Ok(text) => match Uuid::parse_str(text.trim()) {
            Ok(guid) => match set_of_guid(guid, false) {
                Some(set) => return Ok((set, ActiveSource::Marker)),
                None => tried.push(format!(
                    "marker '{}' (names {guid}, not a BOOT partition of this disk)",
                    marker.display()
                )),
            },
            Err(_) => tried.push(format!("marker '{}' (not a GUID)", marker.display())),
        },
        Err(e) => tried.push(format!("marker '{}' ({e})", marker.display())),
    }

    let cmdline = sysroot.join("proc/cmdline");
    match fs::read_to_string(&cmdline) {
        Ok(text) => {
            let found = partuuids(&text).find_map(|guid| set_of_guid(guid, true));
            match found {
                Some(set) => return Ok((set, ActiveSource::KernelCmdline)),
                None => tried.push(format!(
                    "kernel command line '{}' (no PARTUUID= of a BOOT or ROOT partition of this disk)",
                    cmdline.display()
                )),
            }
        }
        Err(e) => tried.push(format!("kernel command line '{}' ({e})", cmdline.display())),
    }

    if sysroot == Path::new("/") {
        match root_partitions() {
            Ok(found) => {
                let matches: Vec<SetId> = SetId::ALL
                    .into_iter()
                    .filter(|set| {
                        let parts = disk.partitions(*set);
                        let numbers = [parts.boot.number, parts.root.number, parts.hash.number];
                        found.iter().any(|p| numbers.contains(&p.number))
                    })
                    .collect();
                if let [set] = matches[..] {
                    return Ok((set, ActiveSource::RootDevice));
                }
                let names: Vec<&str> = found.iter().map(|p| p.name.as_str()).collect();
                tried.push(format!(
                    "root device (partitions {} match no single set)",
                    names.join(", ")
                ));
            }
            Err(reason) => tried.push(format!("root device ({reason})")),
        }
    } else {
        tried.push("root device (only with --sysroot /)".to_string());
    }
    error::NoActiveSetSnafu {
        disk: disk.name(),
        tried: tried.join("; "),
    }
    .fail()
}

/// The GUIDs named by `PARTUUID=` on a kernel command line (`root=PARTUUID=<guid>`,
/// `PARTUUID=<guid>/PARTNROFF=1`, ...).
fn partuuids(cmdline: &str) -> impl Iterator<Item = Uuid> + '_ {
    cmdline.split_whitespace().filter_map(|word| {
        let (_, value) = word.split_once("PARTUUID=")?;
        let value = value.split('/').next().unwrap_or(value);
        Uuid::parse_str(value).ok()
    })
}

/// A partition found through /sys.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SysPartition {
    /// Kernel name, e.g. `nvme0n1p3`.
    name: String,
    /// Its disk's kernel name, e.g. `nvme0n1`.
    disk: String,
    /// Partition number.
    number: u32,
}

/// The partitions under `/`: the device itself, or the slaves of a device-mapper device.
fn root_partitions() -> std::result::Result<Vec<SysPartition>, String> {
    let dev = fs::metadata("/")
        .map_err(|e| format!("stat '/': {e}"))?
        .dev();
    let (major, minor) = (major(dev), minor(dev));
    let sys = PathBuf::from(format!("/sys/dev/block/{major}:{minor}"));
    let dir = fs::canonicalize(&sys).map_err(|e| format!("'{}': {e}", sys.display()))?;
    let slaves: Vec<PathBuf> = fs::read_dir(dir.join("slaves"))
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .filter_map(|e| fs::canonicalize(e.path()).ok())
                .collect()
        })
        .unwrap_or_default();
    let devices = if slaves.is_empty() { vec![dir] } else { slaves };
    let mut found = Vec::new();
    for device in devices {
        let name = file_name(&device);
        let Ok(number) = fs::read_to_string(device.join("partition")) else {
            return Err(format!("{major}:{minor} ({name}) is not a partition"));
        };
        let number = number
            .trim()
            .parse()
            .map_err(|_| format!("bad partition number for {name}"))?;
        let disk = device.parent().map(file_name).unwrap_or_default();
        found.push(SysPartition { name, disk, number });
    }
    Ok(found)
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Linux's `major()` of a `dev_t`.
fn major(dev: u64) -> u64 {
    ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff)
}

/// Linux's `minor()` of a `dev_t`.
fn minor(dev: u64) -> u64 {
    (dev & 0xff) | ((dev >> 12) & !0xff)
}

/// Where a node in a directory keeps its disk image, relative to the sysroot.
pub const NODE_DISK_IMAGE: &str = "dev/disk.img";

/// Finds the disk: under a sysroot other than `/`, the node directory's disk image
/// ([`NODE_DISK_IMAGE`]); on a real node, the disk that holds `/` through /sys.
pub fn find_disk(sysroot: &Path) -> Result<PathBuf> {
    if sysroot != Path::new("/") {
        // A node in a directory keeps its disk image at a fixed place.
        let image = sysroot.join(NODE_DISK_IMAGE);
        if image.exists() {
            return Ok(image);
        }
        return error::FindDiskSnafu {
            reason: format!(
                "no disk under --sysroot '{}' (expected '{}')",
                sysroot.display(),
                image.display()
            ),
        }
        .fail();
    }
    let found = root_partitions().map_err(|reason| error::FindDiskSnafu { reason }.build())?;
    match found.first() {
        Some(p) if !p.disk.is_empty() => Ok(PathBuf::from("/dev").join(&p.disk)),
        _ => error::FindDiskSnafu {
            reason: "the device under '/' has no parent disk".to_string(),
        }
        .fail(),
    }
}

/// Opens a disk (image file or block device), read-write or read-only.
pub fn open_disk(path: &Path, writable: bool) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .write(writable)
        .open(path)
        .context(error::OpenDiskSnafu { path })
}

/// Records the booted BOOT partition's unique GUID in `<sysroot>/run/booted-set`: written to a
/// temporary file, synced, renamed over the marker, and the directory synced.
pub fn write_booted_marker(sysroot: &Path, boot_guid: Uuid) -> Result<PathBuf> {
    let path = sysroot.join(BOOTED_SET_MARKER);
    let ctx = || error::WriteMarkerSnafu { path: path.clone() };
    let dir = path.parent().unwrap_or(sysroot);
    fs::create_dir_all(dir).with_context(|_| ctx())?;
    let tmp = dir.join(".booted-set.tmp");
    let mut file = File::create(&tmp).with_context(|_| ctx())?;
    file.write_all(format!("{boot_guid}\n").as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|_| ctx())?;
    fs::rename(&tmp, &path).with_context(|_| ctx())?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|_| ctx())?;
    powercut::point("signpost.booted-set-marker");
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partuuids_are_found_in_any_form() {
        let line = "quiet root=PARTUUID=5526016A-1a97-4ea4-b39a-b7c8c6ca4502 \
                    verity=PARTUUID=6b636168-7420-6568-2070-6c616e657421/PARTNROFF=1 PARTUUID=junk";
        let found: Vec<Uuid> = partuuids(line).collect();
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].to_string(), "5526016a-1a97-4ea4-b39a-b7c8c6ca4502");
    }

    #[test]
    fn major_and_minor_follow_linux() {
        assert_eq!((major(0xfe00), minor(0xfe00)), (254, 0));
        assert_eq!((major(0x10300), minor(0x10300)), (259, 0));
        assert_eq!((major(0x0700), minor(0x0703)), (7, 3));
    }

    #[test]
    fn marker_is_written_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let guid = Uuid::from_u128(42);
        let path = write_booted_marker(dir.path(), guid).unwrap();
        assert_eq!(fs::read_to_string(path).unwrap().trim(), guid.to_string());
        assert!(!dir.path().join("run/.booted-set.tmp").exists());
    }
}
