//! Partition types, the two partition sets and where their partitions are.

use crate::error::{self, Result};
use crate::table::{SECTOR_SIZE, Table};
use gptman::GPTPartitionEntry;
use serde::Serialize;
use std::fmt;
use std::ops::Range;
use std::str::FromStr;
use uuid::Uuid;

/// One of the two partition sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum SetId {
    /// The first BOOT/ROOT/HASH partitions in table order.
    A,
    /// The second BOOT/ROOT/HASH partitions in table order.
    B,
}

impl SetId {
    /// Both sets, A first.
    pub const ALL: [SetId; 2] = [SetId::A, SetId::B];

    /// The other set.
    pub fn other(self) -> SetId {
        match self {
            SetId::A => SetId::B,
            SetId::B => SetId::A,
        }
    }

    fn index(self) -> usize {
        match self {
            SetId::A => 0,
            SetId::B => 1,
        }
    }
}

impl fmt::Display for SetId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SetId::A => "A",
            SetId::B => "B",
        })
    }
}

/// A set id that is neither `A` nor `B`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseSetIdError {
    given: String,
}

impl fmt::Display for ParseSetIdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid set '{}': expected A or B", self.given)
    }
}

impl std::error::Error for ParseSetIdError {}

impl FromStr for SetId {
    type Err = ParseSetIdError;

    fn from_str(s: &str) -> Result<SetId, ParseSetIdError> {
        match s {
            "A" | "a" => Ok(SetId::A),
            "B" | "b" => Ok(SetId::B),
            _ => Err(ParseSetIdError {
                given: s.to_string(),
            }),
        }
    }
}

/// The partition types signpost knows (design.md section 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PartitionType {
    /// Kernel and verity parameters.
    Boot,
    /// The root filesystem.
    Root,
    /// The dm-verity hash tree of ROOT.
    Hash,
    /// Reserved space of a set.
    Reserved,
    /// Persistent private storage (the datastore); carries bit 57.
    Private,
    /// Persistent data.
    Data,
}

impl PartitionType {
    /// Every type, in layout order.
    pub const ALL: [PartitionType; 6] = [
        PartitionType::Boot,
        PartitionType::Root,
        PartitionType::Hash,
        PartitionType::Reserved,
        PartitionType::Private,
        PartitionType::Data,
    ];

    /// The type GUID (Bottlerocket's).
    pub const fn guid(self) -> Uuid {
        Uuid::from_u128(match self {
            PartitionType::Boot => 0x6b636168_7420_6568_2070_6c616e657421,
            PartitionType::Root => 0x5526016a_1a97_4ea4_b39a_b7c8c6ca4502,
            PartitionType::Hash => 0x598f10af_c955_4456_6a99_7720068a6cea,
            PartitionType::Reserved => 0x0c5d99a5_d331_4147_baef_08e2b855bdc9,
            PartitionType::Private => 0x440408bb_eb0b_4328_a6e5_a29038fad706,
            PartitionType::Data => 0x626f7474_6c65_6474_6861_726d61726b73,
        })
    }

    /// The type a GUID names, if signpost knows it.
    pub fn from_guid(guid: Uuid) -> Option<PartitionType> {
        PartitionType::ALL.into_iter().find(|t| t.guid() == guid)
    }

    /// The short name: `BOOT`, `ROOT`, `HASH`, `RESERVED`, `PRIVATE`, `DATA`.
    pub fn name(self) -> &'static str {
        match self {
            PartitionType::Boot => "BOOT",
            PartitionType::Root => "ROOT",
            PartitionType::Hash => "HASH",
            PartitionType::Reserved => "RESERVED",
            PartitionType::Private => "PRIVATE",
            PartitionType::Data => "DATA",
        }
    }

    /// The partition label signpost gives it: `BOTTLEROCKET-BOOT-A`, `BOTTLEROCKET-PRIVATE`,
    /// and none for DATA.
    pub fn label(self, set: Option<SetId>) -> String {
        match (self, set) {
            (PartitionType::Data, _) => String::new(),
            (_, Some(set)) => format!("BOTTLEROCKET-{}-{set}", self.name()),
            (_, None) => format!("BOTTLEROCKET-{}", self.name()),
        }
    }
}

/// One partition of the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionInfo {
    /// Its number in the table, from 1.
    pub number: u32,
    /// Its label (GPT partition name).
    pub label: String,
    /// Its type GUID.
    pub type_guid: Uuid,
    /// Its unique GUID (what `PARTUUID=` names).
    pub unique_guid: Uuid,
    /// First sector.
    pub first_lba: u64,
    /// Last sector (inclusive).
    pub last_lba: u64,
}

impl PartitionInfo {
    pub(crate) fn from_entry(number: u32, entry: &GPTPartitionEntry) -> PartitionInfo {
        PartitionInfo {
            number,
            label: entry.partition_name.as_str().to_string(),
            type_guid: Uuid::from_bytes_le(entry.partition_type_guid),
            unique_guid: Uuid::from_bytes_le(entry.unique_partition_guid),
            first_lba: entry.starting_lba,
            last_lba: entry.ending_lba,
        }
    }

    /// The bytes of the disk it covers (end exclusive): where an image is written.
    pub fn byte_range(&self) -> Range<u64> {
        self.first_lba * SECTOR_SIZE..(self.last_lba + 1) * SECTOR_SIZE
    }

    /// Its size in bytes.
    pub fn size_bytes(&self) -> u64 {
        (self.last_lba + 1 - self.first_lba) * SECTOR_SIZE
    }
}

/// The partitions of one set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetPartitions {
    /// BOOT; its entry carries the set's gptprio bits.
    pub boot: PartitionInfo,
    /// ROOT, at BOOT+1.
    pub root: PartitionInfo,
    /// HASH, at BOOT+2.
    pub hash: PartitionInfo,
    /// RESERVED, when the disk has one for this set.
    pub reserved: Option<PartitionInfo>,
}

/// Where everything signpost needs sits in the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Sets {
    sets: [SetPartitions; 2],
    pub(crate) private: PartitionInfo,
    pub(crate) data: Option<PartitionInfo>,
}

impl Sets {
    pub(crate) fn set(&self, set: SetId) -> &SetPartitions {
        &self.sets[set.index()]
    }
}

/// Finds sets A and B and the PRIVATE partition, or says what is missing.
pub(crate) fn find_sets(table: &Table, disk: &str) -> Result<Sets> {
    let mut by_type: Vec<(PartitionType, Vec<PartitionInfo>)> = PartitionType::ALL
        .iter()
        .map(|t| (*t, Vec::new()))
        .collect();
    for (number, entry) in table.entries().filter(|(_, e)| e.is_used()) {
        let info = PartitionInfo::from_entry(number, entry);
        if let Some((_, found)) = by_type.iter_mut().find(|(t, _)| t.guid() == info.type_guid) {
            found.push(info);
        }
    }
    let nth = |kind: PartitionType, set: SetId| {
        by_type
            .iter()
            .find(|(t, _)| *t == kind)
            .and_then(|(_, found)| found.get(set.index()).cloned())
    };

    let mut problems = Vec::new();
    let mut sets = Vec::new();
    for set in SetId::ALL {
        let parts = [
            PartitionType::Boot,
            PartitionType::Root,
            PartitionType::Hash,
        ]
        .map(|kind| (kind, nth(kind, set)));
        let missing: Vec<&str> = parts
            .iter()
            .filter(|(_, p)| p.is_none())
            .map(|(kind, _)| kind.name())
            .collect();
        if !missing.is_empty() {
            let which = if set == SetId::A { "first" } else { "second" };
            problems.push(format!(
                "set {set} is missing its {} partition{} (the {which} of each type in table order)",
                missing.join(", "),
                if missing.len() > 1 { "s" } else { "" }
            ));
            continue;
        }
        let [(_, Some(boot)), (_, Some(root)), (_, Some(hash))] = parts else {
            continue;
        };
        for (kind, part, offset) in [("ROOT", &root, 1), ("HASH", &hash, 2)] {
            if part.number != boot.number + offset {
                problems.push(format!(
                    "set {set}: {kind} is partition {}, expected partition {} (BOOT+{offset})",
                    part.number,
                    boot.number + offset
                ));
            }
        }
        sets.push(SetPartitions {
            boot,
            root,
            hash,
            reserved: nth(PartitionType::Reserved, set),
        });
    }
    let private = nth(PartitionType::Private, SetId::A);
    if private.is_none() {
        problems.push(format!(
            "no PRIVATE partition (type {})",
            PartitionType::Private.guid()
        ));
    }
    let data = nth(PartitionType::Data, SetId::A);
    let mut placed: Vec<&PartitionInfo> = private.iter().chain(data.as_ref()).collect();
    for set in &sets {
        placed.extend([&set.boot, &set.root, &set.hash]);
        placed.extend(set.reserved.as_ref());
    }
    problems.extend(misplaced(&placed, table));
    match (<[SetPartitions; 2]>::try_from(sets), private) {
        (Ok(sets), Some(private)) if problems.is_empty() => Ok(Sets {
            sets,
            private,
            data,
        }),
        _ => error::MissingSetsSnafu {
            disk,
            missing: problems.join("; "),
        }
        .fail(),
    }
}

/// What is wrong with where the partitions signpost uses lie: each must sit inside the table's
/// usable area and overlap no other, or an image written into one would land on a copy of the
/// table or on another partition.
fn misplaced(parts: &[&PartitionInfo], table: &Table) -> Vec<String> {
    let (first, last) = (table.first_usable_lba(), table.last_usable_lba());
    let mut problems = Vec::new();
    for p in parts {
        if p.first_lba > p.last_lba || p.first_lba < first || p.last_lba > last {
            problems.push(format!(
                "{} (partition {}) spans LBAs {}..={}, outside the usable LBAs {first}..={last}",
                p.label.escape_debug(),
                p.number,
                p.first_lba,
                p.last_lba
            ));
        }
    }
    if problems.is_empty() {
        for (i, a) in parts.iter().enumerate() {
            for b in &parts[i + 1..] {
                if a.first_lba <= b.last_lba && b.first_lba <= a.last_lba {
                    problems.push(format!(
                        "partitions {} and {} overlap",
                        a.number.min(b.number),
                        a.number.max(b.number)
                    ));
                }
            }
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_ids_parse_and_print() {
        assert_eq!("a".parse::<SetId>().unwrap(), SetId::A);
        assert_eq!("B".parse::<SetId>().unwrap(), SetId::B);
        assert_eq!(
            "C".parse::<SetId>().unwrap_err().to_string(),
            "invalid set 'C': expected A or B"
        );
        assert_eq!(SetId::A.other().to_string(), "B");
    }

    #[test]
    fn type_guids_are_stored_mixed_endian() {
        let guid = PartitionType::Boot.guid();
        assert_eq!(guid.to_string(), "6b636168-7420-6568-2070-6c616e657421");
        let on_disk = guid.to_bytes_le();
        assert_eq!(&on_disk[..4], &[0x68, 0x61, 0x63, 0x6b]);
        assert_eq!(
            PartitionType::from_guid(Uuid::from_bytes_le(on_disk)),
            Some(PartitionType::Boot)
        );
        assert_eq!(
            PartitionType::Hash.label(Some(SetId::B)),
            "BOTTLEROCKET-HASH-B"
        );
        assert_eq!(PartitionType::Private.label(None), "BOTTLEROCKET-PRIVATE");
    }
}

/// Tables found by fuzzing (`fuzz/regressions/gpt/`): entries that pass the CRCs but put a
/// partition where no image may be written.
#[cfg(test)]
mod misplaced_tests {
    #![allow(clippy::unwrap_used)]
    use crate::disk::MemDisk;
    use crate::table::{Copies, write_table};
    use crate::{Layout, SignpostDisk, create_disk};

    const MIB: u64 = 1 << 20;

    fn layout() -> Layout {
        Layout {
            boot_mib: 1,
            root_mib: 1,
            hash_mib: 1,
            reserved_mib: 0,
            private_mib: 1,
            data_mib: Some(1),
        }
    }

    /// A fresh disk whose entry `number` is changed by `f`, with both copies' CRCs right.
    fn disk_with(number: u32, f: impl FnOnce(&mut gptman::GPTPartitionEntry)) -> MemDisk {
        let mut disk = MemDisk::new(layout().needed_mib() * MIB);
        create_disk(&mut disk, "mem", &layout()).unwrap();
        let mut table = SignpostDisk::open(disk.clone(), "mem")
            .unwrap()
            .table()
            .clone();
        f(table.entry_mut(number).unwrap());
        table.seal();
        write_table(&mut disk, "mem", &table, Copies::BOTH, true).unwrap();
        disk
    }

    fn open_error(disk: MemDisk) -> String {
        SignpostDisk::open(disk, "fuzz.img")
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn a_partition_that_ends_before_it_starts_is_refused() {
        // ROOT-B (partition 5) ending before its start made `size_bytes` underflow: a panic, or
        // in a release build a partition of nearly 2^64 bytes for the install to write into.
        let disk = disk_with(5, |e| e.ending_lba = e.starting_lba - 2);
        assert_eq!(
            open_error(disk),
            "Failed to find the partition sets on 'fuzz.img': BOTTLEROCKET-ROOT-B (partition 5) \
             spans LBAs 10240..=10238, outside the usable LBAs 34..=20446"
        );
    }

    #[test]
    fn a_partition_over_the_table_or_past_the_disk_is_refused() {
        let over_the_table = disk_with(2, |e| e.starting_lba = 1);
        assert!(open_error(over_the_table).ends_with(
            "BOTTLEROCKET-ROOT-A (partition 2) spans LBAs 1..=6143, outside the usable LBAs 34..=20446"
        ));
        let past_the_end = disk_with(8, |e| e.ending_lba = u64::MAX);
        assert!(open_error(past_the_end).contains("spans LBAs 16384..=18446744073709551615"));
    }

    /// Found by fuzzing: the label comes from the disk and can hold a newline.
    #[test]
    fn a_misplaced_partition_s_label_is_written_escaped() {
        let disk = disk_with(5, |e| {
            e.ending_lba = e.starting_lba - 2;
            e.partition_name = "ROOT\nB".into();
        });
        assert!(open_error(disk).contains(": ROOT\\nB (partition 5) spans"));
    }

    #[test]
    fn overlapping_partitions_are_refused() {
        // HASH-A (3) grown over ROOT-B's start: writing HASH-A would overwrite set B.
        let disk = disk_with(3, |e| e.ending_lba += 2048);
        assert_eq!(
            open_error(disk),
            "Failed to find the partition sets on 'fuzz.img': partitions 3 and 4 overlap"
        );
    }
}
