//! Writes the generated seeds of the fuzz corpora: the GPT sectors of disks made by
//! `signpost::create_disk` (fresh, after an update was applied, and with one copy torn) and
//! lz4 frames of images that fit the fuzzed partition or overflow it.
//!
//! `cargo run -p fuzz-targets --example seeds -- fuzz/corpus`
#![allow(clippy::unwrap_used)]

use fuzz_targets::gpt::{DISK_LEN, HEAD_LEN, TAIL_LEN};
use fuzz_targets::partition_writer::PART_LEN;
use signpost::{Layout, MemDisk, SetId, SignpostDisk};
use std::io::Write;
use std::path::Path;

/// The flag byte (recompute both copies' CRCs) and the GPT sectors of `disk`.
fn gpt_sectors(disk: &MemDisk) -> Vec<u8> {
    let mut head = vec![0; HEAD_LEN];
    let mut tail = vec![0; TAIL_LEN];
    disk.read_at(0, &mut head);
    disk.read_at(DISK_LEN - TAIL_LEN as u64, &mut tail);
    head.extend(tail);
    head.insert(0, 3);
    head
}

fn lz4(data: &[u8], block_checksums: bool) -> Vec<u8> {
    let mut info = lz4_flex::frame::FrameInfo::new();
    info.block_checksums = block_checksums;
    info.content_checksum = true;
    let mut encoder = lz4_flex::frame::FrameEncoder::with_frame_info(info, Vec::new());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

fn main() {
    let out = std::env::args().nth(1).expect("usage: seeds <corpus dir>");
    let out = Path::new(&out);
    let write = |target: &str, name: &str, bytes: &[u8]| {
        let dir = out.join(target);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), bytes).unwrap();
    };

    let layout = Layout {
        boot_mib: 1,
        root_mib: 1,
        hash_mib: 1,
        reserved_mib: 0,
        private_mib: 1,
        data_mib: Some(1),
    };
    let mut disk = MemDisk::new(DISK_LEN);
    signpost::create_disk(&mut disk, "seed.img", &layout).unwrap();
    write("gpt", "fresh", &gpt_sectors(&disk));
    let mut rest = MemDisk::new(DISK_LEN);
    let data_takes_the_rest = Layout {
        data_mib: None,
        ..layout.clone()
    };
    signpost::create_disk(&mut rest, "seed.img", &data_takes_the_rest).unwrap();
    write("gpt", "data-takes-the-rest", &gpt_sectors(&rest));
    let mut sd = SignpostDisk::open(disk, "seed.img")
        .unwrap()
        .with_active(SetId::A);
    sd.mark_successful_boot().unwrap();
    sd.clear_inactive().unwrap();
    sd.mark_inactive_valid().unwrap();
    sd.upgrade_to_inactive().unwrap();
    let applied = sd.into_inner();
    write("gpt", "applied", &gpt_sectors(&applied));
    let mut torn = gpt_sectors(&applied);
    torn[0] = 2; // keep the primary as it is
    torn[1 + 512 + 40] ^= 0xff; // first usable LBA: the primary header's CRC no longer matches
    write("gpt", "primary-torn", &torn);
    let mut torn = gpt_sectors(&applied);
    torn[0] = 1; // keep the backup as it is
    torn[1 + HEAD_LEN + 512] ^= 0xff; // the backup's first entry: its array CRC no longer matches
    write("gpt", "backup-torn", &torn);

    let image: Vec<u8> = (0..PART_LEN as usize / 2)
        .map(|i| (i % 251) as u8)
        .collect();
    write("partition_writer", "half", &lz4(&image, false));
    write(
        "partition_writer",
        "half-block-checksums",
        &lz4(&image, true),
    );
    write(
        "partition_writer",
        "full",
        &lz4(&vec![7; PART_LEN as usize], false),
    );
    write(
        "partition_writer",
        "one-over",
        &lz4(&vec![7; PART_LEN as usize + 1], false),
    );
    write("partition_writer", "empty", &lz4(&[], false));
}
