//! Reading, checking, repairing and writing the two copies of the GPT.
//!
//! gptman encodes and decodes; the order of writes and the syncs are ours. A table change is
//! written as: primary entry array, primary header sector, sync, backup entry array, backup header
//! sector, sync. A reader checks both copies on its own; the valid one wins (the primary when both
//! are valid and differ, because it is written and synced first) and the other is rewritten by
//! [`repair`](crate::SignpostDisk::repair).

use crate::disk::Disk;
use crate::error::{self, Result};
use gptman::{GPTHeader, GPTPartitionEntry};
use serde::Serialize;
use snafu::{IntoError, ResultExt};
use std::collections::BTreeMap;
use std::io::{self, Read, Seek, SeekFrom, Write};
use uuid::Uuid;

/// The logical sector size signpost supports.
pub const SECTOR_SIZE: u64 = 512;
const ENTRY_SIZE: u32 = 128;
const MAX_ENTRIES: u32 = 1024;

/// One consistent partition table, held in its primary form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    header: GPTHeader,
    entries: Vec<GPTPartitionEntry>,
}

/// The state of one copy of the GPT as found on disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum CopyState {
    /// Valid and identical to the table in use.
    Good,
    /// Valid, but older than the other copy.
    Stale,
    /// Torn, missing or failing its CRC.
    Invalid {
        /// Why it was refused.
        reason: String,
    },
}

/// The state of both copies of the GPT as found on disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TableHealth {
    /// The copy at LBA 1.
    pub primary: CopyState,
    /// The copy at the disk's last LBA.
    pub backup: CopyState,
}

impl TableHealth {
    /// Whether both copies are good.
    pub fn is_clean(&self) -> bool {
        self.primary == CopyState::Good && self.backup == CopyState::Good
    }
}

/// Which copies to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Copies {
    pub(crate) primary: bool,
    pub(crate) backup: bool,
}

impl Copies {
    pub(crate) const BOTH: Copies = Copies {
        primary: true,
        backup: true,
    };
}

impl Table {
    /// An empty table (no partitions, 128 entries) for a disk of `disk_len` bytes.
    pub(crate) fn empty(disk_len: u64, disk_guid: Uuid) -> gptman::Result<Table> {
        let mut sizer = Capture::new(disk_len);
        let mut header = GPTHeader::new_from(&mut sizer, SECTOR_SIZE, disk_guid.to_bytes_le())?;
        let entries = vec![GPTPartitionEntry::empty(); header.number_of_partition_entries as usize];
        header.update_partition_entry_array_crc32(&entries);
        header.update_crc32_checksum();
        Ok(Table { header, entries })
    }

    /// The partition entries with their numbers (from 1), used or not, in table order.
    pub fn entries(&self) -> impl Iterator<Item = (u32, &GPTPartitionEntry)> {
        (1..).zip(self.entries.iter())
    }

    /// The entry numbered `number` (from 1).
    pub fn entry(&self, number: u32) -> Option<&GPTPartitionEntry> {
        self.entries
            .get(usize::try_from(number).ok()?.checked_sub(1)?)
    }

    pub(crate) fn entry_mut(&mut self, number: u32) -> Option<&mut GPTPartitionEntry> {
        self.entries
            .get_mut(usize::try_from(number).ok()?.checked_sub(1)?)
    }

    /// The disk's GUID.
    pub fn disk_guid(&self) -> Uuid {
        Uuid::from_bytes_le(self.header.disk_guid)
    }

    /// The first LBA a partition may use.
    pub fn first_usable_lba(&self) -> u64 {
        self.header.first_usable_lba
    }

    /// The last LBA a partition may use.
    pub fn last_usable_lba(&self) -> u64 {
        self.header.last_usable_lba
    }

    fn array_sectors(&self) -> u64 {
        array_sectors(&self.header)
    }

    /// Recomputes the CRCs after the entries changed.
    pub(crate) fn seal(&mut self) {
        self.header
            .update_partition_entry_array_crc32(&self.entries);
        self.header.update_crc32_checksum();
    }

    fn backup_header(&self) -> GPTHeader {
        let mut backup = self.header.clone();
        backup.primary_lba = self.header.backup_lba;
        backup.backup_lba = 1;
        backup.partition_entry_lba = self.header.backup_lba - self.array_sectors();
        backup
    }
}

fn array_sectors(header: &GPTHeader) -> u64 {
    (u64::from(header.number_of_partition_entries) * u64::from(header.size_of_partition_entry))
        .div_ceil(SECTOR_SIZE)
}

/// Why one copy could not be used.
enum CopyError {
    NoSignature,
    Bad(String),
}

fn read_copy<D: Disk + ?Sized>(
    disk: &mut D,
    lba: u64,
    last_lba: u64,
) -> std::result::Result<(GPTHeader, Vec<GPTPartitionEntry>), CopyError> {
    let bad = |e: &dyn std::fmt::Display| CopyError::Bad(format!("header at LBA {lba}: {e}"));
    disk.seek(SeekFrom::Start(lba * SECTOR_SIZE))
        .map_err(|e| bad(&e))?;
    let header = match GPTHeader::read_from(disk) {
        Ok(h) => h,
        Err(gptman::Error::InvalidSignature) => return Err(CopyError::NoSignature),
        Err(e) => return Err(bad(&e)),
    };
    if header.primary_lba != lba {
        return Err(bad(&format!(
            "it says it lives at LBA {}",
            header.primary_lba
        )));
    }
    if header.size_of_partition_entry != ENTRY_SIZE
        || header.number_of_partition_entries == 0
        || header.number_of_partition_entries > MAX_ENTRIES
    {
        return Err(bad(&format!(
            "unsupported entry array ({} entries of {} bytes)",
            header.number_of_partition_entries, header.size_of_partition_entry
        )));
    }
    let array = array_sectors(&header);
    // Every LBA in the header is the disk's word; a sum that overflows is a layout that does
    // not fit (and must not wrap round to one that seems to).
    let array_end = header.partition_entry_lba.checked_add(array);
    let array_fits = if lba == 1 {
        header.partition_entry_lba >= 2
            && array_end.is_some_and(|end| end <= header.first_usable_lba)
    } else {
        array_end.is_some_and(|end| end <= lba)
            && header.partition_entry_lba > header.last_usable_lba
    };
    if !array_fits
        || header.first_usable_lba > header.last_usable_lba
        || header
            .last_usable_lba
            .checked_add(array)
            .is_none_or(|end| end >= last_lba)
    {
        return Err(bad(&format!(
            "inconsistent layout (entries at LBA {}, usable LBAs {}..={}, disk ends at LBA {last_lba})",
            header.partition_entry_lba, header.first_usable_lba, header.last_usable_lba
        )));
    }
    let entries = header.read_partitions(disk, SECTOR_SIZE).map_err(|e| {
        CopyError::Bad(format!(
            "entry array at LBA {}: {e}",
            header.partition_entry_lba
        ))
    })?;
    Ok((header, entries))
}

/// The table a copy describes, in primary form.
fn primary_form(mut header: GPTHeader, entries: Vec<GPTPartitionEntry>, last_lba: u64) -> Table {
    if header.primary_lba != 1 {
        header.partition_entry_lba = 2;
    }
    header.primary_lba = 1;
    header.backup_lba = last_lba;
    let mut table = Table { header, entries };
    table.seal();
    table
}

fn describe(error: CopyError) -> String {
    match error {
        CopyError::NoSignature => "no GPT signature".to_string(),
        CopyError::Bad(reason) => reason,
    }
}

/// Reads both copies, checks each on its own and picks the table to use.
pub(crate) fn read_table<D: Disk + ?Sized>(
    disk: &mut D,
    name: &str,
) -> Result<(Table, TableHealth)> {
    let len = disk
        .seek(SeekFrom::End(0))
        .context(error::ReadTableSnafu { disk: name })?;
    let sectors = len / SECTOR_SIZE;
    if sectors < 3 {
        return error::NoGptSnafu { disk: name }.fail();
    }
    let last_lba = sectors - 1;
    let primary = read_copy(disk, 1, last_lba);
    let backup = read_copy(disk, last_lba, last_lba);
    match (primary, backup) {
        (Ok((ph, pe)), backup) => {
            // A primary that points at a backup elsewhere (a grown disk) is rewritten too.
            let primary_state = if ph.backup_lba == last_lba {
                CopyState::Good
            } else {
                CopyState::Stale
            };
            let table = primary_form(ph, pe, last_lba);
            let backup_state = match backup {
                Ok((bh, be)) => {
                    if primary_form(bh, be, last_lba) == table {
                        CopyState::Good
                    } else {
                        CopyState::Stale
                    }
                }
                Err(e) => CopyState::Invalid {
                    reason: describe(e),
                },
            };
            Ok((
                table,
                TableHealth {
                    primary: primary_state,
                    backup: backup_state,
                },
            ))
        }
        (Err(pe), Ok((bh, be))) => Ok((
            primary_form(bh, be, last_lba),
            TableHealth {
                primary: CopyState::Invalid {
                    reason: describe(pe),
                },
                backup: CopyState::Good,
            },
        )),
        (Err(CopyError::NoSignature), Err(CopyError::NoSignature)) => {
            error::NoGptSnafu { disk: name }.fail()
        }
        (Err(pe), Err(be)) => error::CorruptTableSnafu {
            disk: name,
            primary: describe(pe),
            backup: describe(be),
        }
        .fail(),
    }
}

/// The sectors of one copy, in the order they are written: entry array runs, then the header.
fn encode_copy(
    header: &GPTHeader,
    entries: &[GPTPartitionEntry],
    disk_len: u64,
) -> gptman::Result<Vec<(u64, Vec<u8>)>> {
    let mut capture = Capture::new(disk_len);
    header
        .clone()
        .write_into(&mut capture, SECTOR_SIZE, entries)?;
    let mut sectors: BTreeMap<u64, Vec<u8>> = BTreeMap::new();
    for (offset, bytes) in &capture.chunks {
        let mut done = 0;
        while done < bytes.len() {
            let at = offset + done as u64;
            let within = (at % SECTOR_SIZE) as usize;
            let n = (SECTOR_SIZE as usize - within).min(bytes.len() - done);
            let sector = sectors
                .entry(at / SECTOR_SIZE)
                .or_insert_with(|| vec![0; SECTOR_SIZE as usize]);
            sector[within..within + n].copy_from_slice(&bytes[done..done + n]);
            done += n;
        }
    }
    let header_sector = sectors.remove(&header.primary_lba);
    let mut runs: Vec<(u64, Vec<u8>)> = Vec::new();
    for (sector, bytes) in sectors {
        match runs.last_mut() {
            Some((start, run)) if *start + run.len() as u64 == sector * SECTOR_SIZE => {
                run.extend_from_slice(&bytes);
            }
            _ => runs.push((sector * SECTOR_SIZE, bytes)),
        }
    }
    runs.extend(header_sector.map(|bytes| (header.primary_lba * SECTOR_SIZE, bytes)));
    Ok(runs)
}

/// Writes the chosen copies of `table`, each one entries-then-header followed by a sync.
///
/// `sync_between` false skips the sync after the primary copy: only the fault-injection tests
/// use it, to show that the crash checker notices.
pub(crate) fn write_table<D: Disk + ?Sized>(
    disk: &mut D,
    name: &str,
    table: &Table,
    copies: Copies,
    sync_between: bool,
) -> Result<()> {
    let write_err = |e: io::Error| error::WriteTableSnafu { disk: name }.into_error(e);
    let disk_len = disk.seek(SeekFrom::End(0)).map_err(write_err)?;
    let mut plan = Vec::new();
    if copies.primary {
        plan.push(encode_copy(&table.header, &table.entries, disk_len));
    }
    if copies.backup {
        plan.push(encode_copy(
            &table.backup_header(),
            &table.entries,
            disk_len,
        ));
    }
    let last = plan.len();
    for (i, runs) in plan.into_iter().enumerate() {
        let runs = runs.context(error::EncodeTableSnafu { disk: name })?;
        for (offset, bytes) in runs {
            disk.seek(SeekFrom::Start(offset)).map_err(write_err)?;
            disk.write_all(&bytes).map_err(write_err)?;
        }
        if sync_between || i + 1 == last {
            disk.flush().map_err(write_err)?;
            disk.sync().map_err(write_err)?;
            powercut::point(if i == 0 {
                "signpost.table.first-copy-synced"
            } else {
                "signpost.table.second-copy-synced"
            });
        }
    }
    Ok(())
}

/// Writes the protective MBR (sector 0) for a disk of `disk_len` bytes.
pub(crate) fn write_protective_mbr<D: Disk + ?Sized>(disk: &mut D, name: &str) -> Result<()> {
    let write_err = |e: io::Error| error::WriteTableSnafu { disk: name }.into_error(e);
    let disk_len = disk.seek(SeekFrom::End(0)).map_err(write_err)?;
    let mut capture = Capture::new(disk_len);
    gptman::GPT::write_protective_mbr_into(&mut capture, SECTOR_SIZE)
        .context(error::EncodeTableSnafu { disk: name })?;
    let mut sector = vec![0; SECTOR_SIZE as usize];
    for (offset, bytes) in &capture.chunks {
        let start = *offset as usize;
        sector[start..start + bytes.len()].copy_from_slice(bytes);
    }
    disk.seek(SeekFrom::Start(0)).map_err(write_err)?;
    disk.write_all(&sector).map_err(write_err)
}

/// A `Write + Seek` of a given length that records what is written instead of storing a disk.
struct Capture {
    len: u64,
    pos: u64,
    chunks: Vec<(u64, Vec<u8>)>,
}

impl Capture {
    fn new(len: u64) -> Capture {
        Capture {
            len,
            pos: 0,
            chunks: Vec::new(),
        }
    }
}

impl Read for Capture {
    fn read(&mut self, _buf: &mut [u8]) -> io::Result<usize> {
        Ok(0)
    }
}

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.chunks.last_mut() {
            Some((start, bytes)) if *start + bytes.len() as u64 == self.pos => {
                bytes.extend_from_slice(buf);
            }
            _ => self.chunks.push((self.pos, buf.to_vec())),
        }
        self.pos += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Seek for Capture {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        let new = match pos {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = new.ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "bad seek"))?;
        Ok(self.pos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::disk::MemDisk;

    const LEN: u64 = 8 << 20;

    fn sample() -> Table {
        let mut table = Table::empty(LEN, Uuid::from_u128(7)).unwrap();
        let entry = table.entry_mut(1).unwrap();
        entry.partition_type_guid = [1; 16];
        entry.unique_partition_guid = [2; 16];
        entry.starting_lba = 2048;
        entry.ending_lba = 4095;
        entry.partition_name = "one".into();
        table.seal();
        table
    }

    /// Found by fuzzing (`fuzz/regressions/gpt/`): a header (with a right CRC) whose entry
    /// array LBA is near 2^64 overflowed `partition_entry_lba + array`: a panic with overflow
    /// checks, a wrapped sum that could pass the layout check without them.
    #[test]
    fn an_entry_array_lba_near_the_top_of_u64_is_an_inconsistent_layout() {
        let mut disk = MemDisk::new(LEN);
        write_table(&mut disk, "mem", &sample(), Copies::BOTH, true).unwrap();
        let mut header = vec![0; SECTOR_SIZE as usize];
        disk.read_at(SECTOR_SIZE, &mut header);
        header[72..80].copy_from_slice(&(u64::MAX - 1).to_le_bytes());
        header[16..20].fill(0);
        let crc = crc32fast::hash(&header[..92]);
        header[16..20].copy_from_slice(&crc.to_le_bytes());
        disk.write_at(SECTOR_SIZE, &header).unwrap();
        let (table, health) = read_table(&mut disk, "mem").unwrap();
        assert_eq!(table, sample(), "the backup copy is used");
        assert_eq!(
            health.primary,
            CopyState::Invalid {
                reason: format!(
                    "header at LBA 1: inconsistent layout (entries at LBA {}, usable LBAs \
                     34..=16350, disk ends at LBA 16383)",
                    u64::MAX - 1
                )
            }
        );
    }

    #[test]
    fn writes_entries_then_header_primary_first() {
        let table = sample();
        let runs = encode_copy(&table.header, &table.entries, LEN).unwrap();
        assert_eq!(runs.len(), 2);
        assert_eq!(runs[0].0, 2 * SECTOR_SIZE);
        assert_eq!(runs[0].1.len(), 32 * SECTOR_SIZE as usize);
        assert_eq!(runs[1], (SECTOR_SIZE, runs[1].1.clone()));
        assert_eq!(runs[1].1.len(), SECTOR_SIZE as usize);
        let backup = encode_copy(&table.backup_header(), &table.entries, LEN).unwrap();
        let last = LEN / SECTOR_SIZE - 1;
        assert_eq!(backup[0].0, (last - 32) * SECTOR_SIZE);
        assert_eq!(backup[1].0, last * SECTOR_SIZE);
    }

    #[test]
    fn reads_back_and_agrees_with_gptman() {
        let mut disk = MemDisk::new(LEN);
        write_table(&mut disk, "mem", &sample(), Copies::BOTH, true).unwrap();
        let (table, health) = read_table(&mut disk, "mem").unwrap();
        assert_eq!(table, sample());
        assert!(health.is_clean());
        let gpt = gptman::GPT::read_from(&mut disk, SECTOR_SIZE).unwrap();
        assert_eq!(gpt[1], sample().entries[0]);
    }

    #[test]
    fn a_damaged_primary_loses_to_the_backup_and_a_stale_backup_to_the_primary() {
        let mut disk = MemDisk::new(LEN);
        write_table(&mut disk, "mem", &sample(), Copies::BOTH, true).unwrap();
        disk.write_at(2 * SECTOR_SIZE + 3, &[0xff]).unwrap();
        let (table, health) = read_table(&mut disk, "mem").unwrap();
        assert_eq!(table, sample());
        assert!(matches!(health.primary, CopyState::Invalid { .. }));
        assert_eq!(health.backup, CopyState::Good);

        let mut newer = sample();
        newer.entry_mut(1).unwrap().attribute_bits = 1 << 48;
        newer.seal();
        let only_primary = Copies {
            primary: true,
            backup: false,
        };
        write_table(&mut disk, "mem", &newer, only_primary, true).unwrap();
        let (table, health) = read_table(&mut disk, "mem").unwrap();
        assert_eq!(table, newer);
        assert_eq!(health.backup, CopyState::Stale);
    }

    #[test]
    fn no_table_and_two_bad_tables_are_told_apart() {
        let mut disk = MemDisk::new(LEN);
        let err = read_table(&mut disk, "mem").unwrap_err().to_string();
        assert!(err.contains("no GPT found"), "{err}");
        write_table(&mut disk, "mem", &sample(), Copies::BOTH, true).unwrap();
        disk.write_at(SECTOR_SIZE + 20, &[0xff]).unwrap();
        disk.write_at(LEN - SECTOR_SIZE + 20, &[0xff]).unwrap();
        let err = read_table(&mut disk, "mem").unwrap_err().to_string();
        assert!(
            err.starts_with("corrupt primary and backup GPT on 'mem'"),
            "{err}"
        );
    }
}
