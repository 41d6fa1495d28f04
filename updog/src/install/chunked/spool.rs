//! The spool: a chunk's compressed bytes, written into the chunk's own place in the inactive
//! partition as soon as they have arrived, behind a 64-byte header. The place is free until the
//! chunk's decompressed bytes are written over it, so a killed install leaves every chunk it
//! received in the partition, and the restart's scan decompresses it there instead of fetching
//! it again. What a SIGKILL costs is then only what was on its way from the server.
//!
//! The header is `twinset-spool-1\0`, the compressed sha256 from the index and the compressed
//! length (little-endian u64), then 8 zero bytes. It only tells the scan where to look: the bytes
//! are checked against the index's compressed sha256 before they are decompressed, as a
//! download's are. A chunk whose compressed bytes and header do not fit in its place (an
//! incompressible chunk, a short last chunk) is not spooled.

use super::fetch::stored;
use std::fs::File;
use std::os::unix::fs::FileExt;
use update_metadata::ChunkIndex;

/// Bytes before the compressed bytes.
pub(super) const HEADER: usize = 64;
const MAGIC: &[u8; 16] = b"twinset-spool-1\0";

/// Whether chunk `i`'s compressed bytes and header fit in its place.
pub(super) fn fits(index: &ChunkIndex, i: usize) -> bool {
    let range = index.range(i);
    let (_, length, _) = stored(index, i);
    length > 0 && length + HEADER as u64 <= range.end - range.start
}

fn header(index: &ChunkIndex, i: usize) -> [u8; HEADER] {
    let (_, length, sha) = stored(index, i);
    let mut h = [0u8; HEADER];
    h[..16].copy_from_slice(MAGIC);
    h[16..48].copy_from_slice(&sha);
    h[48..56].copy_from_slice(&length.to_le_bytes());
    h
}

/// Writes chunk `i`'s compressed `bytes` into its place, which starts at `at` in `file`.
pub(super) fn write(
    file: &File,
    at: u64,
    index: &ChunkIndex,
    i: usize,
    bytes: &[u8],
) -> std::io::Result<()> {
    file.write_all_at(bytes, at + HEADER as u64)?;
    file.write_all_at(&header(index, i), at)
}

/// Whether `first` (at least the first [`HEADER`] bytes of chunk `i`'s place) is chunk `i`'s
/// spool header.
pub(super) fn holds(index: &ChunkIndex, i: usize, first: &[u8]) -> bool {
    fits(index, i) && first.len() >= HEADER && first[..HEADER] == header(index, i)
}

/// Reads chunk `i`'s spooled compressed bytes from its place at `at` into the front of `buf`
/// (which the chunk's place is larger than). They are not checked here:
/// [`super::pipeline::unpack`] checks them against the index before it decompresses them.
pub(super) fn read<'b>(
    file: &File,
    at: u64,
    index: &ChunkIndex,
    i: usize,
    buf: &'b mut [u8],
) -> std::io::Result<&'b [u8]> {
    let (_, length, _) = stored(index, i);
    let have = buf.len();
    let buf = buf
        .get_mut(..length as usize)
        .ok_or_else(|| std::io::Error::other(format!("a buffer of {have} bytes for {length}")))?;
    file.read_exact_at(buf, at + HEADER as u64)?;
    Ok(buf)
}
