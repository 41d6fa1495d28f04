//! The lz4 stream of an image, decompressed into its partition (updog's install writer).

use std::fs::OpenOptions;
use std::io::Read;
use std::os::unix::fs::FileExt;

/// The disk file: 64 KiB.
pub const DISK_LEN: u64 = 64 << 10;
/// Where the partition starts.
pub const PART_START: u64 = 24 << 10;
/// The partition's size.
pub const PART_LEN: u64 = 16 << 10;
/// What every byte outside the partition holds before the write.
const OUTSIDE: u8 = 0xa5;

/// Streams `data` as an lz4 frame into a 16 KiB partition of a 64 KiB disk file. Whatever the
/// input, no byte outside the partition changes and the disk does not grow; a stream that is
/// accepted wrote exactly its decompressed bytes at the partition's start, and an error is one
/// line.
pub fn partition_writer(data: &[u8]) {
    let scratch = crate::scratch::dir();
    let path = scratch.path().join("disk.img");
    let before = vec![OUTSIDE; DISK_LEN as usize];
    std::fs::write(&path, &before).unwrap();
    let file = OpenOptions::new().write(true).open(&path).unwrap();
    let result = updog::install::write_lz4_stream(
        data,
        file,
        &path,
        PART_START,
        PART_LEN,
        "BOTTLEROCKET-ROOT-B",
        "root.ext4.lz4",
    );
    let after = std::fs::read(&path).unwrap();
    assert_eq!(after.len() as u64, DISK_LEN, "the disk grew or shrank");
    let (start, end) = (PART_START as usize, (PART_START + PART_LEN) as usize);
    assert!(
        after[..start] == before[..start] && after[end..] == before[end..],
        "a byte outside the partition changed"
    );
    match result {
        Ok(written) => {
            let mut expected = Vec::new();
            lz4_flex::frame::FrameDecoder::new(data)
                .read_to_end(&mut expected)
                .expect("what the writer accepted decompresses");
            assert_eq!(written.len, expected.len() as u64);
            assert!(written.len <= PART_LEN);
            assert_eq!(&after[start..start + expected.len()], &expected[..]);
            let file = std::fs::File::open(&path).unwrap();
            let mut tail = vec![0; end - start - expected.len()];
            file.read_exact_at(&mut tail, (start + expected.len()) as u64)
                .unwrap();
            assert!(
                tail.iter().all(|b| *b == OUTSIDE),
                "wrote past what it reported"
            );
        }
        Err(e) => {
            let message = e.to_string();
            assert!(
                !message.contains('\n'),
                "a write error spans lines: {message:?}"
            );
        }
    }
}
