//! What the disk says, through signpost: the booted image, whether the inactive set is staged
//! (valid, not yet applied) or applied (the next to boot), and which image it holds.

use crate::error::{self, Result};
use crate::status::UpdateImage;
use signpost::{BootFlags, SetId, SignpostDisk};
use snafu::ResultExt;
use std::fs::File;
use std::path::{Path, PathBuf};

/// The inactive set as signpost sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inactive {
    /// Not bootable, or holding an older image that is not the next to boot.
    Nothing,
    /// Valid with a try and priority 0, not successful: exactly what `upgrade-to-inactive`
    /// accepts (updog's install marked it valid; nobody applied it yet).
    Staged,
    /// The bootloader's choice for the next boot (gptprio): applied.
    Applied,
}

/// What the server derives its state from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskFacts {
    /// The booted image (`etc/os-release`).
    pub active: UpdateImage,
    /// The inactive set.
    pub inactive: Inactive,
    /// The image in the inactive set, read from its ROOT filesystem when it is staged or applied
    /// (`None` when unreadable or not looked at).
    pub inactive_image: Option<UpdateImage>,
}

/// Classifies the inactive set from both sets' flags and the bootloader's next choice.
pub fn classify(inactive: BootFlags, next_boot_is_inactive: bool) -> Inactive {
    if next_boot_is_inactive {
        Inactive::Applied
    } else if inactive.priority.is_zero() && !inactive.tries_left.is_zero() && !inactive.successful
    {
        Inactive::Staged
    } else {
        Inactive::Nothing
    }
}

/// The running image from `os-release`.
pub fn running_image(os_release: &Path) -> Result<UpdateImage> {
    let running = updog::os_release::Running::read(os_release)
        .context(error::OsReleaseSnafu { path: os_release })?;
    Ok(UpdateImage {
        arch: running.arch,
        version: running.version,
        variant: running.variant,
    })
}

/// The disk of a node: `explicit`, else updog's default under the sysroot.
pub fn disk_path(sysroot: &Path, explicit: Option<&Path>) -> Result<PathBuf> {
    updog::Paths::new(sysroot)
        .disk(explicit)
        .context(error::UpdogSnafu {
            action: "find the disk",
        })
}

/// Reads the facts: os-release, the partition table, and the inactive ROOT's os-release when
/// the set is staged or applied.
pub fn read(sysroot: &Path, disk: &Path) -> Result<DiskFacts> {
    let active = running_image(&updog::Paths::new(sysroot).os_release)?;
    read_sets(sysroot, disk, active)
}

/// [`read`] for a caller that knows the booted image already (it only changes with a boot,
/// which restarts the server): the partition table and the inactive ROOT's os-release.
pub fn read_sets(sysroot: &Path, disk: &Path, active: UpdateImage) -> Result<DiskFacts> {
    let name = disk.display().to_string();
    let file = signpost::discover::open_disk(disk, false).context(error::DiskSnafu {
        action: format!("open disk '{name}'"),
    })?;
    let mut sd = SignpostDisk::open(file, name.clone()).context(error::DiskSnafu {
        action: format!("read the partition table of '{name}'"),
    })?;
    let (active_set, _) =
        signpost::discover::find_active_set(&sd, sysroot, None).context(error::DiskSnafu {
            action: "find the active set",
        })?;
    sd.set_active(Some(active_set));
    let inactive_set = active_set.other();
    let inactive = classify(sd.flags(inactive_set), sd.next_boot() == Some(inactive_set));
    let inactive_image = match inactive {
        Inactive::Nothing => None,
        Inactive::Staged | Inactive::Applied => read_image(disk, &sd, inactive_set),
    };
    Ok(DiskFacts {
        active,
        inactive,
        inactive_image,
    })
}

/// The image in `set`, from its ROOT filesystem's os-release; `None` (logged) when unreadable.
fn read_image(disk: &Path, sd: &SignpostDisk<File>, set: SetId) -> Option<UpdateImage> {
    let root = sd.partitions(set).root.clone();
    let read = || -> std::result::Result<UpdateImage, String> {
        let file = File::open(disk).map_err(|e| e.to_string())?;
        let region =
            image_builder::ImageRegion::new(file, root.byte_range().start, root.size_bytes());
        let info = image_builder::read_root_info(region).map_err(|e| e.to_string())?;
        let running =
            updog::os_release::Running::parse(info.os_release.text(), Path::new(&root.label))
                .map_err(|e| e.to_string())?;
        Ok(UpdateImage {
            arch: running.arch,
            version: running.version,
            variant: running.variant,
        })
    };
    match read() {
        Ok(image) => Some(image),
        Err(e) => {
            tracing::warn!("cannot read the image in set {set}: {e}");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use signpost::{Priority, Tries};

    fn flags(priority: u8, tries: u8, successful: bool) -> BootFlags {
        BootFlags {
            priority: Priority::new(priority).unwrap(),
            tries_left: Tries::new(tries).unwrap(),
            successful,
        }
    }

    #[test]
    fn staged_is_what_upgrade_to_inactive_accepts_and_applied_is_the_next_boot() {
        assert_eq!(classify(flags(0, 1, false), false), Inactive::Staged);
        assert_eq!(classify(flags(0, 0, false), false), Inactive::Nothing);
        // The previous release, kept for rollback: not staged.
        assert_eq!(classify(flags(1, 0, true), false), Inactive::Nothing);
        assert_eq!(classify(flags(0, 0, true), false), Inactive::Nothing);
        assert_eq!(classify(flags(2, 1, false), true), Inactive::Applied);
        // A set whose one try failed: priority 2 but not the next boot.
        assert_eq!(classify(flags(2, 0, false), false), Inactive::Nothing);
    }
}
