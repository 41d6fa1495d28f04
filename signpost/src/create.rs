//! Laying out a fresh Bottlerocket-style disk.

use crate::attrs::{BootFlags, Priority, Tries};
use crate::disk::Disk;
use crate::error::{self, Result};
use crate::sets::{PartitionType, SetId};
use crate::table::{self, Copies, SECTOR_SIZE, Table};
use snafu::ResultExt;
use std::fs::{File, OpenOptions};
use std::io::SeekFrom;
use std::path::Path;
use uuid::Uuid;

const MIB: u64 = 1 << 20;
const MIB_SECTORS: u64 = MIB / SECTOR_SIZE;

/// Partition sizes in MiB for [`create_disk`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// Size of each BOOT partition.
    pub boot_mib: u64,
    /// Size of each ROOT partition.
    pub root_mib: u64,
    /// Size of each HASH partition.
    pub hash_mib: u64,
    /// Size of each RESERVED partition; 0 leaves them out.
    pub reserved_mib: u64,
    /// Size of PRIVATE.
    pub private_mib: u64,
    /// Size of DATA; `None` takes the rest of the disk (at least 1 MiB).
    pub data_mib: Option<u64>,
}

impl Default for Layout {
    /// Small sizes for test and demo images: boot 4, root 32, hash 4, reserved 1, private 4,
    /// DATA the rest.
    fn default() -> Layout {
        Layout {
            boot_mib: 4,
            root_mib: 32,
            hash_mib: 4,
            reserved_mib: 1,
            private_mib: 4,
            data_mib: None,
        }
    }
}

impl Layout {
    /// The smallest disk, in MiB, this layout fits: 1 MiB before the first partition (MBR and
    /// primary GPT), the partitions, and 1 MiB after DATA for the backup GPT.
    pub fn needed_mib(&self) -> u64 {
        let set = self.boot_mib + self.root_mib + self.hash_mib + self.reserved_mib;
        1 + 2 * set + self.private_mib + self.data_mib.unwrap_or(1) + 1
    }

    /// The partitions in table order, with their sizes (`None`: the rest of the disk).
    fn partitions(&self) -> Vec<(PartitionType, Option<SetId>, Option<u64>)> {
        let mut parts = Vec::new();
        for set in SetId::ALL {
            parts.push((PartitionType::Boot, Some(set), Some(self.boot_mib)));
            parts.push((PartitionType::Root, Some(set), Some(self.root_mib)));
            parts.push((PartitionType::Hash, Some(set), Some(self.hash_mib)));
            if self.reserved_mib > 0 {
                parts.push((PartitionType::Reserved, Some(set), Some(self.reserved_mib)));
            }
        }
        parts.push((PartitionType::Private, None, Some(self.private_mib)));
        parts.push((PartitionType::Data, None, self.data_mib));
        parts
    }
}

/// Writes a protective MBR and a fresh GPT with sets A and B, PRIVATE and DATA, MiB-aligned,
/// sized by `layout`, on the whole of `disk` (its current length). Set A boots: priority 1,
/// successful; set B is all zero; PRIVATE bit 57 is clear. Unique GUIDs are random.
pub fn create_disk<D: Disk>(disk: &mut D, name: &str, layout: &Layout) -> Result<()> {
    for (kind, set, size) in layout.partitions() {
        if size == Some(0) {
            let label = kind.label(set);
            return error::InvalidLayoutSnafu {
                disk: name,
                reason: format!("partition {label} {} has size 0 MiB", kind.name()),
            }
            .fail();
        }
    }
    let len = disk
        .seek(SeekFrom::End(0))
        .context(error::ReadTableSnafu { disk: name })?;
    let needed_mib = layout.needed_mib();
    let needed = needed_mib.saturating_mul(MIB);
    if len < needed {
        return error::DiskTooSmallSnafu {
            disk: name,
            needed,
            needed_mib,
            given: len,
        }
        .fail();
    }
    let mut table =
        Table::empty(len, Uuid::new_v4()).context(error::EncodeTableSnafu { disk: name })?;
    // The last whole MiB that ends before the backup entry array.
    let end_limit = (table.last_usable_lba() + 1) / MIB_SECTORS * MIB_SECTORS;
    let mut start = MIB_SECTORS;
    for (number, (kind, set, size)) in (1..).zip(layout.partitions()) {
        let end = match size {
            Some(mib) => start + mib * MIB_SECTORS,
            None => end_limit,
        };
        let Some(entry) = table.entry_mut(number) else {
            continue;
        };
        entry.partition_type_guid = kind.guid().to_bytes_le();
        entry.unique_partition_guid = Uuid::new_v4().to_bytes_le();
        entry.starting_lba = start;
        entry.ending_lba = end - 1;
        entry.partition_name = kind.label(set).as_str().into();
        if kind == PartitionType::Boot && set == Some(SetId::A) {
            entry.attribute_bits = BootFlags {
                priority: Priority::ONE,
                tries_left: Tries::ZERO,
                successful: true,
            }
            .apply_to(0);
        }
        start = end;
    }
    table.seal();
    table::write_protective_mbr(disk, name)?;
    table::write_table(disk, name, &table, Copies::BOTH, true)
}

/// Opens the target of `create-disk`: creates a sparse image file of `size` bytes (default
/// `default_size`), or, with `force`, reuses an existing file (resized when `size` is given) or
/// block device (its own size). Returns the file and whether it was created here.
pub fn create_image_file(
    path: &Path,
    size: Option<u64>,
    default_size: u64,
    force: bool,
) -> Result<(File, bool)> {
    let ctx = || error::CreateImageSnafu { path };
    let existing = match OpenOptions::new().read(true).write(true).open(path) {
        Ok(file) => Some(file),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).context(error::OpenDiskSnafu { path }),
    };
    match existing {
        Some(_) if !force => error::ImageExistsSnafu { path }.fail(),
        Some(file) => {
            let is_file = file.metadata().with_context(|_| ctx())?.is_file();
            if let (true, Some(size)) = (is_file, size) {
                file.set_len(size).with_context(|_| ctx())?;
            }
            Ok((file, false))
        }
        None => {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .open(path)
                .with_context(|_| ctx())?;
            file.set_len(size.unwrap_or(default_size))
                .with_context(|_| ctx())?;
            Ok((file, true))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SignpostDisk;
    use crate::disk::MemDisk;

    #[test]
    fn a_fresh_disk_boots_set_a() {
        let mut disk = MemDisk::new(100 * MIB);
        create_disk(&mut disk, "mem", &Layout::default()).unwrap();
        let sd = SignpostDisk::open(disk, "mem").unwrap();
        assert_eq!(sd.next_boot(), Some(SetId::A));
        assert!(sd.flags(SetId::A).successful);
        assert_eq!(sd.flags(SetId::B), BootFlags::EMPTY);
        assert!(!sd.has_boot_ever_succeeded());
        let b = sd.partitions(SetId::B);
        assert_eq!((b.boot.number, b.root.number, b.hash.number), (5, 6, 7));
        assert_eq!(b.root.label, "BOTTLEROCKET-ROOT-B");
        assert_eq!(b.root.size_bytes(), 32 * MIB);
        assert_eq!(sd.private_partition().number, 9);
        let data = sd.data_partition().unwrap();
        assert_eq!(data.first_lba % MIB_SECTORS, 0);
        assert_eq!((data.last_lba + 1) % MIB_SECTORS, 0);
        assert!(sd.health().is_clean());
    }

    #[test]
    fn too_small_a_disk_is_refused_with_both_sizes() {
        let mut disk = MemDisk::new(10 * MIB);
        let err = create_disk(&mut disk, "small.img", &Layout::default()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Failed to create the partition layout on 'small.img': disk too small: the layout needs 89 MiB (93323264 bytes), the disk has 10485760 bytes"
        );
        assert_eq!(disk, MemDisk::new(10 * MIB));
    }
}
