//! The status report: both sets, the active one, the next boot, the state of the GPT copies.
//!
//! Serialised as the stable JSON object documented in the crate's README (`schema_version` 1).

use crate::disk::Disk;
use crate::error::{self, Result};
use crate::sets::{PartitionInfo, SetId};
use crate::signpost_disk::SignpostDisk;
use crate::table::CopyState;
use serde::Serialize;
use snafu::ResultExt;

/// Everything `signpost status` reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Status {
    /// Version of this JSON schema; bumped only on incompatible changes.
    pub schema_version: u32,
    /// The disk's name (its path for the CLI).
    pub disk: String,
    /// The disk GUID.
    pub disk_guid: String,
    /// The booted set, `null` when unknown.
    pub active: Option<SetId>,
    /// How the active set was found, `null` when unknown.
    pub active_source: Option<String>,
    /// The set the bootloader would pick now (without spending a try), `null` if none.
    pub next_boot: Option<SetId>,
    /// PRIVATE bit 57.
    pub has_boot_ever_succeeded: bool,
    /// The two copies of the GPT.
    pub table: TableStatus,
    /// Set A.
    #[serde(rename = "A")]
    pub a: SetStatus,
    /// Set B.
    #[serde(rename = "B")]
    pub b: SetStatus,
    /// The PRIVATE partition.
    pub private: PartitionStatus,
    /// The DATA partition, `null` if absent.
    pub data: Option<PartitionStatus>,
}

/// The state of the GPT copies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TableStatus {
    /// The primary copy as found.
    pub primary: CopyState,
    /// The backup copy as found.
    pub backup: CopyState,
    /// Whether a stale or invalid copy was rewritten.
    pub repaired: bool,
}

/// One set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SetStatus {
    /// Bits 48–51 of its BOOT entry.
    pub priority: u8,
    /// Bits 52–55 of its BOOT entry.
    pub tries_left: u8,
    /// Bit 56 of its BOOT entry.
    pub successful: bool,
    /// Whether the bootloader may pick it.
    pub bootable: bool,
    /// BOOT.
    pub boot: PartitionStatus,
    /// ROOT.
    pub root: PartitionStatus,
    /// HASH.
    pub hash: PartitionStatus,
    /// RESERVED, `null` if absent.
    pub reserved: Option<PartitionStatus>,
}

/// One partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PartitionStatus {
    /// Number in the table, from 1.
    pub number: u32,
    /// GPT partition name.
    pub label: String,
    /// Type GUID, lowercase.
    pub type_guid: String,
    /// Unique GUID (PARTUUID), lowercase.
    pub unique_guid: String,
    /// First sector.
    pub first_lba: u64,
    /// Last sector, inclusive.
    pub last_lba: u64,
    /// Size in bytes.
    pub size_bytes: u64,
}

impl Status {
    /// The stable JSON form (pretty-printed).
    pub fn to_json(&self) -> Result<String> {
        serde_json::to_string_pretty(self).context(error::SerializeStatusSnafu { disk: &self.disk })
    }
}

impl From<&PartitionInfo> for PartitionStatus {
    fn from(p: &PartitionInfo) -> PartitionStatus {
        PartitionStatus {
            number: p.number,
            label: p.label.clone(),
            type_guid: p.type_guid.to_string(),
            unique_guid: p.unique_guid.to_string(),
            first_lba: p.first_lba,
            last_lba: p.last_lba,
            size_bytes: p.size_bytes(),
        }
    }
}

impl<D: Disk> SignpostDisk<D> {
    /// The status report; `active_source` says how the active set was found, if it is known.
    pub fn status(&self, active_source: Option<String>) -> Status {
        let set = |id: SetId| {
            let flags = self.flags(id);
            let parts = self.partitions(id);
            SetStatus {
                priority: flags.priority.get(),
                tries_left: flags.tries_left.get(),
                successful: flags.successful,
                bootable: flags.is_bootable(),
                boot: (&parts.boot).into(),
                root: (&parts.root).into(),
                hash: (&parts.hash).into(),
                reserved: parts.reserved.as_ref().map(Into::into),
            }
        };
        Status {
            schema_version: 1,
            disk: self.name().to_string(),
            disk_guid: self.table().disk_guid().to_string(),
            active: self.active_set(),
            active_source: self.active_set().and(active_source),
            next_boot: self.next_boot(),
            has_boot_ever_succeeded: self.has_boot_ever_succeeded(),
            table: TableStatus {
                primary: self.health().primary.clone(),
                backup: self.health().backup.clone(),
                repaired: self.was_repaired(),
            },
            a: set(SetId::A),
            b: set(SetId::B),
            private: self.private_partition().into(),
            data: self.data_partition().map(Into::into),
        }
    }
}
