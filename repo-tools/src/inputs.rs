//! Checking a release's input files before anything is written: each image is one whole lz4
//! frame as a node decompresses it, and each declarative migration is a document the node's
//! migrator accepts.

use crate::error::{self, Result};
use lz4_flex::frame::{Error as FrameError, FrameDecoder};
use snafu::{ResultExt, ensure};
use std::io::{BufReader, Cursor, ErrorKind, Read};
use std::path::Path;

/// What follows the file for the decoder: inside a frame, the header of a block far larger than
/// any frame allows; at the start, a frame header (7 bytes at least) with no lz4 magic number,
/// so that a file too short to hold one is refused as not lz4.
const END: [u8; 7] = [0xff; 7];

/// Decompresses the lz4 frame in `path`, refusing, naming `what` and `path`, a file that is
/// empty, is not lz4, ends inside its frame, has a frame that does not decode, or has anything
/// after its frame (a node stops reading at the end of the first frame, and updog refuses more).
///
/// lz4_flex's decoder takes a stream that stops between two blocks for the end of the frame, so
/// the file is followed by [`END`]: the end mark and checksum of a whole frame are read from the
/// file itself, and a frame the file leaves unfinished reads `END` as a block header (too big)
/// or block bytes, which the decoder refuses or stops at.
pub(crate) fn check_lz4(what: &str, path: &Path) -> Result<()> {
    let file = std::fs::File::open(path).context(error::ReadFileSnafu { path })?;
    let len = file
        .metadata()
        .context(error::ReadFileSnafu { path })?
        .len();
    check_stream(what, path, BufReader::new(file), len, None)
}

/// [`check_lz4`] of the `len` bytes `input` reads, appending what the frame holds to `out` when
/// given.
fn check_stream(
    what: &str,
    path: &Path,
    input: impl Read,
    len: u64,
    mut out: Option<&mut Vec<u8>>,
) -> Result<()> {
    let not_lz4 = |reason: &str| error::NotLz4Snafu {
        what,
        path,
        reason: reason.to_string(),
    };
    let corrupt = |reason: String| error::CorruptLz4Snafu { what, path, reason };
    let truncated = error::TruncatedLz4Snafu { what, path };
    ensure!(len > 0, not_lz4("it is empty"));
    let mut decoder = FrameDecoder::new(input.chain(Cursor::new(END)));
    let mut buf = vec![0u8; 64 * 1024];
    let error = loop {
        match decoder.read(&mut buf) {
            Ok(0) => break None,
            Ok(n) => {
                if let Some(out) = out.as_deref_mut() {
                    out.extend_from_slice(&buf[..n]);
                }
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => break Some(e),
        }
    };
    /// How much of END the decoder has read.
    fn end_read<R: Read>(decoder: &FrameDecoder<std::io::Chain<R, Cursor<[u8; 7]>>>) -> u64 {
        decoder.get_ref().get_ref().1.position()
    }
    let Some(error) = error else {
        // The decoder stopped: at the end of the frame if it read nothing of END.
        ensure!(end_read(&decoder) == 0, truncated);
        let mut next = [0u8; 1];
        decoder
            .get_mut()
            .read_exact(&mut next)
            .context(error::ReadFileSnafu { path })?;
        ensure!(
            end_read(&decoder) == 1,
            error::CorruptLz4Snafu {
                what,
                path,
                reason: "more data follows the end of its lz4 frame",
            }
        );
        return Ok(());
    };
    match error.get_ref().and_then(|e| e.downcast_ref::<FrameError>()) {
        Some(FrameError::WrongMagicNumber) => {
            not_lz4("it does not start with the lz4 frame magic number").fail()
        }
        Some(e) if end_read(&decoder) == 0 => corrupt(e.to_string()).fail(),
        None if error.kind() != ErrorKind::UnexpectedEof && end_read(&decoder) == 0 => {
            Err(error).context(error::ReadFileSnafu { path })
        }
        _ => truncated.fail(),
    }
}

/// Checks a declarative migration as the node's migrator will read it: `target` is the name it
/// is published under (which says whether it is declarative, see [`migrator::Kind::of`]), `path`
/// the file given, lz4-compressed if its name ends in `.lz4`. Executable migrations pass.
pub(crate) fn check_migration(target: &str, path: &Path) -> Result<()> {
    if migrator::Kind::of(target) != migrator::Kind::Declarative {
        return Ok(());
    }
    let compressed = path
        .file_name()
        .is_some_and(|n| n.to_string_lossy().ends_with(".lz4"));
    let name = path.display().to_string();
    let bytes = std::fs::read(path).context(error::ReadFileSnafu { path })?;
    let read = if compressed {
        // The whole-frame check names what is wrong with the frame; the node's own reading then
        // bounds what it decompresses to.
        check_stream("migration", path, &bytes[..], bytes.len() as u64, None)?;
        migrator::read_declarative(&name, &bytes)
    } else {
        migrator::Document::from_slice(&name, &bytes)
    };
    read.map_err(Box::new).context(error::MigrationSnafu)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::io::Write;

    fn frame(data: &[u8], content_checksum: bool, block_checksums: bool) -> Vec<u8> {
        let info = lz4_flex::frame::FrameInfo::new()
            .content_checksum(content_checksum)
            .block_checksums(block_checksums)
            .block_size(lz4_flex::frame::BlockSize::Max64KB);
        let mut enc = lz4_flex::frame::FrameEncoder::with_frame_info(info, Vec::new());
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }

    fn check(bytes: &[u8]) -> std::result::Result<Vec<u8>, String> {
        let mut out = Vec::new();
        let path = Path::new("img.lz4");
        check_stream(
            "boot image",
            path,
            bytes,
            bytes.len() as u64,
            Some(&mut out),
        )
        .map(|()| out)
        .map_err(|e| e.to_string())
    }

    /// Incompressible bytes for two blocks: the first is stored as it is, so its end is at a
    /// known offset.
    fn data() -> Vec<u8> {
        test_tools::noise(0x2545_f491_4f6c_dd1d, 70_000)
    }

    #[test]
    fn whole_streams_pass_and_every_cut_is_refused() {
        let data = data();
        for (content, blocks) in [(false, false), (true, false), (false, true), (true, true)] {
            let whole = frame(&data, content, blocks);
            assert_eq!(check(&whole).unwrap(), data);
            let mut two = whole.clone();
            two.extend_from_slice(&frame(b"more", content, blocks));
            let err = check(&two).unwrap_err();
            assert!(
                err.contains("more data follows the end of its lz4 frame"),
                "{err}"
            );
            assert_eq!(check(&frame(b"", content, blocks)).unwrap(), b"");
            // Every cut in the header, around the end of the first block (7 header bytes, a
            // 4-byte block header, 64 KiB, maybe a 4-byte checksum) and in the end mark and
            // checksum, and some in between.
            let block_end = 7 + 4 + 65_536 + if blocks { 4 } else { 0 };
            let cuts = (1..64)
                .chain(block_end - 64..block_end + 64)
                .chain(whole.len() - 64..whole.len())
                .chain((1..whole.len()).step_by(997));
            for keep in cuts {
                let err = check(&whole[..keep]).unwrap_err();
                assert!(
                    err.contains("is truncated")
                        || err.contains("is a corrupt lz4 frame")
                        || err.contains("is not an lz4 frame"),
                    "cut to {keep} of {} ({content}, {blocks}): {err}",
                    whole.len()
                );
            }
        }
    }

    #[test]
    fn other_files_are_refused_with_what_is_wrong() {
        let err = check(b"").unwrap_err();
        assert!(err.ends_with("is not an lz4 frame: it is empty"), "{err}");
        let err = check(b"hi").unwrap_err();
        assert!(
            err.contains("is not an lz4 frame: it does not start"),
            "{err}"
        );
        let mut trailing = frame(b"image", false, false);
        trailing.extend_from_slice(b"garbage");
        let err = check(&trailing).unwrap_err();
        assert!(
            err.contains("more data follows the end of its lz4 frame"),
            "{err}"
        );
        let mut one_more = frame(b"image", false, false);
        one_more.push(0);
        let err = check(&one_more).unwrap_err();
        assert!(
            err.contains("more data follows the end of its lz4 frame"),
            "{err}"
        );
    }
}
