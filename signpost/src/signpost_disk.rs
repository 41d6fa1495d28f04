//! [`SignpostDisk`]: a disk's partition table, its two sets and the active one.

use crate::attrs::{self, BootFlags};
use crate::disk::Disk;
use crate::error::Result;
use crate::gptprio;
use crate::sets::{PartitionInfo, SetId, SetPartitions, Sets, find_sets};
use crate::table::{self, Copies, CopyState, Table, TableHealth};

/// A GPT disk with two partition sets, read and checked.
///
/// Opening reads both copies of the GPT; every transition writes the whole table (both copies,
/// in the crash-safe order) before it returns. `name` is only used in messages.
#[derive(Debug)]
pub struct SignpostDisk<D> {
    pub(crate) disk: D,
    pub(crate) name: String,
    pub(crate) table: Table,
    pub(crate) sets: Sets,
    health: TableHealth,
    clean: bool,
    repaired: bool,
    pub(crate) active: Option<SetId>,
    sync_between_copies: bool,
}

impl<D: Disk> SignpostDisk<D> {
    /// Reads and checks both GPT copies and finds sets A and B and PRIVATE. Writes nothing.
    pub fn open(mut disk: D, name: impl Into<String>) -> Result<SignpostDisk<D>> {
        let name = name.into();
        let (table, health) = table::read_table(&mut disk, &name)?;
        let sets = find_sets(&table, &name)?;
        Ok(SignpostDisk {
            disk,
            name,
            table,
            sets,
            clean: health.is_clean(),
            health,
            repaired: false,
            active: None,
            sync_between_copies: true,
        })
    }

    /// Rewrites a stale or invalid copy from the good one (primary first). Returns whether
    /// anything was written.
    pub fn repair(&mut self) -> Result<bool> {
        let copies = Copies {
            primary: self.health.primary != CopyState::Good,
            backup: self.health.backup != CopyState::Good,
        };
        if self.clean || (!copies.primary && !copies.backup) {
            return Ok(false);
        }
        table::write_table(&mut self.disk, &self.name, &self.table, copies, true)?;
        self.clean = true;
        self.repaired = true;
        Ok(true)
    }

    /// The state of both GPT copies as found when the disk was opened.
    pub fn health(&self) -> &TableHealth {
        &self.health
    }

    /// Whether [`repair`](Self::repair) rewrote a copy.
    pub fn was_repaired(&self) -> bool {
        self.repaired
    }

    /// The disk's name, as given to [`open`](Self::open).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The partition table in use.
    pub fn table(&self) -> &Table {
        &self.table
    }

    /// Sets which set is booted (see [`crate::discover`] for finding it).
    pub fn set_active(&mut self, set: Option<SetId>) {
        self.active = set;
    }

    /// [`set_active`](Self::set_active) in builder form.
    pub fn with_active(mut self, set: SetId) -> SignpostDisk<D> {
        self.active = Some(set);
        self
    }

    /// The booted set, if known.
    pub fn active_set(&self) -> Option<SetId> {
        self.active
    }

    /// The set that is not booted, if the booted one is known.
    pub fn inactive_set(&self) -> Option<SetId> {
        self.active.map(SetId::other)
    }

    /// The partitions of a set.
    pub fn partitions(&self, set: SetId) -> &SetPartitions {
        self.sets.set(set)
    }

    /// The PRIVATE partition.
    pub fn private_partition(&self) -> &PartitionInfo {
        &self.sets.private
    }

    /// The DATA partition, if the disk has one.
    pub fn data_partition(&self) -> Option<&PartitionInfo> {
        self.sets.data.as_ref()
    }

    /// The gptprio fields on a set's BOOT entry.
    pub fn flags(&self, set: SetId) -> BootFlags {
        BootFlags::from_bits(self.attribute_bits(self.sets.set(set).boot.number))
    }

    /// PRIVATE bit 57: whether a boot has ever succeeded on this disk.
    pub fn has_boot_ever_succeeded(&self) -> bool {
        attrs::ever_succeeded(self.attribute_bits(self.sets.private.number))
    }

    /// The set the bootloader would pick now (gptprio), without writing anything.
    pub fn next_boot(&self) -> Option<SetId> {
        gptprio::choose(&SetId::ALL.map(|set| (set, self.flags(set))))
    }

    /// Gives the disk back.
    pub fn into_inner(self) -> D {
        self.disk
    }

    /// Test hook: write the two copies without the sync between them, which breaks crash
    /// safety. Only the fault-injection tests use it, to prove their checker notices.
    #[doc(hidden)]
    pub fn unsafe_skip_sync_between_copies(&mut self) {
        self.sync_between_copies = false;
    }

    fn attribute_bits(&self, number: u32) -> u64 {
        // Numbers come from `find_sets` over this same table, so the entry exists.
        self.table.entry(number).map_or(0, |e| e.attribute_bits)
    }

    /// Applies `change` to a copy of the table and writes it whole, if anything changed.
    pub(crate) fn commit(&mut self, change: impl FnOnce(&mut Table, &Sets)) -> Result<()> {
        let mut new = self.table.clone();
        change(&mut new, &self.sets);
        new.seal();
        if new == self.table && self.clean {
            return Ok(());
        }
        table::write_table(
            &mut self.disk,
            &self.name,
            &new,
            Copies::BOTH,
            self.sync_between_copies,
        )?;
        self.table = new;
        self.clean = true;
        Ok(())
    }
}

/// Changes the gptprio fields of a set's BOOT entry in `table`, keeping every other bit.
pub(crate) fn update_flags(
    table: &mut Table,
    sets: &Sets,
    set: SetId,
    f: impl FnOnce(&mut BootFlags),
) {
    if let Some(entry) = table.entry_mut(sets.set(set).boot.number) {
        let mut flags = BootFlags::from_bits(entry.attribute_bits);
        f(&mut flags);
        entry.attribute_bits = flags.apply_to(entry.attribute_bits);
    }
}

/// Sets PRIVATE bit 57 in `table`.
pub(crate) fn set_ever_succeeded(table: &mut Table, sets: &Sets) {
    if let Some(entry) = table.entry_mut(sets.private.number) {
        entry.attribute_bits = attrs::with_ever_succeeded(entry.attribute_bits, true);
    }
}
