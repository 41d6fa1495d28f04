//! The GPT of a disk image: the sectors signpost reads before it trusts a partition.

use signpost::{MemDisk, PartitionInfo, SECTOR_SIZE, SetId, SignpostDisk};

/// The disk the input is laid on: 10 MiB, what `signpost create-disk --size-mib 10
/// --boot-mib 1 --root-mib 1 --hash-mib 1 --reserved-mib 0 --private-mib 1 --data-mib 1` makes.
pub const DISK_LEN: u64 = 10 << 20;
/// The bytes of the input laid at the start of the disk: the protective MBR, the primary header
/// and a 128-entry array.
pub const HEAD_LEN: usize = 34 * SECTOR_SIZE as usize;
/// The bytes of the input laid at the end of the disk: the backup array and header.
pub const TAIL_LEN: usize = 33 * SECTOR_SIZE as usize;

/// The disk an input describes. The first byte says which copies get their CRCs recomputed
/// after laying the rest (bit 0 the primary, bit 1 the backup), so that the fuzzer reaches the
/// checks behind the CRCs; then the next [`HEAD_LEN`] bytes go at the start of a zeroed
/// [`DISK_LEN`]-byte disk and the next [`TAIL_LEN`] at its end. A seed is therefore a flag byte
/// and the first 34 and the last 33 sectors of a real image.
pub fn disk_from(data: &[u8]) -> MemDisk {
    let (flags, data) = data.split_first().map_or((0, data), |(f, rest)| (*f, rest));
    let mut disk = MemDisk::new(DISK_LEN);
    let (head, rest) = data.split_at(data.len().min(HEAD_LEN));
    let tail = &rest[..rest.len().min(TAIL_LEN)];
    disk.write_at(0, head).unwrap();
    disk.write_at(DISK_LEN - TAIL_LEN as u64, tail).unwrap();
    if flags & 1 != 0 {
        reseal(&mut disk, 1);
    }
    if flags & 2 != 0 {
        reseal(&mut disk, DISK_LEN / SECTOR_SIZE - 1);
    }
    disk
}

fn le32(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap())
}

/// Recomputes the entry array CRC and the header CRC of the header at `lba`, as far as its
/// fields can be followed on this disk.
fn reseal(disk: &mut MemDisk, lba: u64) {
    let mut header = vec![0; SECTOR_SIZE as usize];
    disk.read_at(lba * SECTOR_SIZE, &mut header);
    let entries_lba = u64::from_le_bytes(header[72..80].try_into().unwrap());
    let array_len = u64::from(le32(&header, 80)) * u64::from(le32(&header, 84));
    if array_len <= 1 << 20 && entries_lba.saturating_mul(SECTOR_SIZE) < DISK_LEN {
        let mut array = vec![0; array_len as usize];
        disk.read_at(entries_lba * SECTOR_SIZE, &mut array);
        header[88..92].copy_from_slice(&crc32fast::hash(&array).to_le_bytes());
    }
    let size = (le32(&header, 12) as usize).clamp(92, SECTOR_SIZE as usize);
    header[16..20].fill(0);
    let crc = crc32fast::hash(&header[..size]);
    header[16..20].copy_from_slice(&crc.to_le_bytes());
    disk.write_at(lba * SECTOR_SIZE, &header).unwrap();
}

/// Opens the disk `data` describes. Opening never panics and an error is one line. A table it
/// accepts names partitions that lie inside the usable area and do not overlap (an image written
/// into one must not land on the table or on another partition); its status serialises; a
/// repair leaves both copies good and the same table; a transition reads back as written.
pub fn gpt(data: &[u8]) {
    let disk = disk_from(data);
    let sd = match SignpostDisk::open(disk.clone(), "fuzz.img") {
        Ok(sd) => sd,
        Err(e) => {
            let message = e.to_string();
            assert!(
                !message.contains('\n'),
                "a table error spans lines: {message:?}"
            );
            return;
        }
    };
    let table = sd.table();
    let (first, last) = (table.first_usable_lba(), table.last_usable_lba());
    let mut parts: Vec<&PartitionInfo> = vec![sd.private_partition()];
    parts.extend(sd.data_partition());
    for set in SetId::ALL {
        let p = sd.partitions(set);
        parts.extend([&p.boot, &p.root, &p.hash]);
        parts.extend(p.reserved.as_ref());
    }
    for p in &parts {
        assert!(
            first <= p.first_lba && p.first_lba <= p.last_lba && p.last_lba <= last,
            "{} spans LBAs {}..={} outside the usable {first}..={last}",
            p.label,
            p.first_lba,
            p.last_lba
        );
        assert!(p.byte_range().end <= DISK_LEN);
        assert_eq!(p.size_bytes(), p.byte_range().end - p.byte_range().start);
    }
    for (i, a) in parts.iter().enumerate() {
        for b in &parts[i + 1..] {
            if a.number != b.number {
                assert!(
                    a.last_lba < b.first_lba || b.last_lba < a.first_lba,
                    "partitions {} and {} overlap",
                    a.number,
                    b.number
                );
            }
        }
    }
    sd.status(None).to_json().unwrap();
    let _ = sd.next_boot();
    let _ = sd.has_boot_ever_succeeded();
    let used = sd.table().clone();

    // A repair leaves a clean table that reads back the same.
    let mut repaired = SignpostDisk::open(disk.clone(), "fuzz.img").unwrap();
    repaired.repair().unwrap();
    let reread = SignpostDisk::open(repaired.into_inner(), "fuzz.img").unwrap();
    assert!(
        reread.health().is_clean(),
        "repaired but {:?}",
        reread.health()
    );
    assert_eq!(reread.table(), &used, "a repair changed the table");

    // A transition is written whole and reads back.
    let mut marked = SignpostDisk::open(disk, "fuzz.img")
        .unwrap()
        .with_active(SetId::A);
    marked.mark_successful_boot().unwrap();
    let reread = SignpostDisk::open(marked.into_inner(), "fuzz.img").unwrap();
    assert!(reread.health().is_clean());
    assert!(reread.flags(SetId::A).successful);
    assert!(reread.has_boot_ever_succeeded());
}
