//! Cutting a published image into chunks: the chunk file (each non-zero chunk compressed on its
//! own as an lz4 block, concatenated in image order) and its index (docs/formats.md, "Chunk
//! index"). The lz4 image is decompressed as a stream: memory holds one chunk and its compressed
//! copy, whatever the image size.

use crate::error::{self, Result};
use sha2::{Digest, Sha256};
use snafu::ResultExt;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use update_metadata::chunks::{Chunk, ChunkData, ChunkIndex, Sha256Digest};
use update_metadata::{TargetName, chunks};

/// The two files made for one image, in a temporary directory.
#[derive(Debug)]
pub struct ChunkedImage {
    /// The chunk file.
    pub chunk_file: PathBuf,
    /// The index (JSON).
    pub index_file: PathBuf,
    /// The index.
    pub index: ChunkIndex,
}

/// Cuts the lz4 image at `lz4_image` into chunks of `chunk_size` bytes, writing
/// `<image_target>.chunks` and `<image_target>.chunks.json` into `out_dir`.
pub fn chunk_image(
    lz4_image: &Path,
    image_target: &str,
    chunk_size: u64,
    out_dir: &Path,
) -> Result<ChunkedImage> {
    let chunk_name = format!("{image_target}.chunks");
    let bad_index = |source| error::Error::Manifest {
        action: format!("index the chunks of '{}' for", lz4_image.display()),
        source: Box::new(source),
    };
    // Refuse a bad size before reading anything.
    if !chunk_size.is_power_of_two()
        || !(chunks::MIN_CHUNK_SIZE..=chunks::MAX_CHUNK_SIZE).contains(&chunk_size)
    {
        return error::BadChunkSizeSnafu { chunk_size }.fail();
    }
    let input = std::fs::File::open(lz4_image).context(error::ReadFileSnafu { path: lz4_image })?;
    let mut decoder = lz4_flex::frame::FrameDecoder::new(std::io::BufReader::new(input));
    let chunk_file = out_dir.join(&chunk_name);
    let mut out = BufWriter::new(
        std::fs::File::create(&chunk_file).context(error::WriteFileSnafu { path: &chunk_file })?,
    );
    let mut buf = vec![0u8; chunk_size as usize];
    let mut compressed = vec![0u8; chunks::max_compressed_len(chunk_size) as usize];
    let mut roundtrip = vec![0u8; chunk_size as usize];
    let mut image_hash = Sha256::new();
    let mut list = Vec::new();
    let (mut image_length, mut offset) = (0u64, 0u64);
    loop {
        let n = verity::read_full(&mut decoder, &mut buf)
            .context(error::ReadFileSnafu { path: lz4_image })?;
        if n == 0 {
            break;
        }
        let bytes = &buf[..n];
        image_hash.update(bytes);
        image_length += n as u64;
        let sha256 = Sha256Digest::new(Sha256::digest(bytes).into());
        let data = if bytes.iter().all(|&b| b == 0) {
            ChunkData::Zero
        } else {
            let len = lz4_flex::block::compress_into(bytes, &mut compressed).map_err(|e| {
                error::Error::WriteFile {
                    path: chunk_file.clone(),
                    source: std::io::Error::other(e),
                }
            })?;
            // updog writes what this decompresses to once its compressed sha256 matches, and
            // finds it on disk later by the uncompressed sha256: the two must agree.
            let back = lz4_flex::block::decompress_into(&compressed[..len], &mut roundtrip);
            if back.ok() != Some(n) || roundtrip[..n] != *bytes {
                return Err(error::Error::WriteFile {
                    path: chunk_file.clone(),
                    source: std::io::Error::other(format!(
                        "chunk {} does not decompress to the bytes it was made from",
                        list.len()
                    )),
                });
            }
            out.write_all(&compressed[..len])
                .context(error::WriteFileSnafu { path: &chunk_file })?;
            let data = ChunkData::Stored {
                offset,
                length: len as u64,
                sha256: Sha256Digest::new(Sha256::digest(&compressed[..len]).into()),
            };
            offset += len as u64;
            data
        };
        list.push(Chunk { sha256, data });
        if n < buf.len() {
            break;
        }
    }
    out.into_inner()
        .map_err(|e| e.into_error())
        .and_then(|f| f.sync_all())
        .context(error::WriteFileSnafu { path: &chunk_file })?;
    let index = ChunkIndex::new(
        chunk_size,
        image_length,
        Sha256Digest::new(image_hash.finalize().into()),
        TargetName::new(chunk_name.as_str()).map_err(bad_index)?,
        offset,
        list,
    )
    .map_err(bad_index)?;
    let index_file = out_dir.join(format!("{chunk_name}.json"));
    std::fs::write(&index_file, index.to_json())
        .context(error::WriteFileSnafu { path: &index_file })?;
    Ok(ChunkedImage {
        chunk_file,
        index_file,
        index,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn chunks_decompress_to_the_image_and_zero_chunks_are_not_stored() {
        let dir = tempfile::tempdir().unwrap();
        let mut image = vec![0u8; 3 * 4096 + 100];
        image[10] = 1;
        image[2 * 4096..3 * 4096].fill(7);
        let lz4 = dir.path().join("img.lz4");
        let mut enc = lz4_flex::frame::FrameEncoder::new(std::fs::File::create(&lz4).unwrap());
        enc.write_all(&image).unwrap();
        enc.finish().unwrap();
        let made = chunk_image(&lz4, "img.lz4", 4096, dir.path()).unwrap();
        let index = &made.index;
        assert_eq!(index.image_length(), image.len() as u64);
        assert_eq!(index.chunks().len(), 4);
        assert_eq!(index.chunks()[1].data, ChunkData::Zero);
        let file = std::fs::read(&made.chunk_file).unwrap();
        assert_eq!(file.len() as u64, index.chunk_file_length());
        for (i, chunk) in index.chunks().iter().enumerate() {
            let range = index.range(i);
            let want = &image[range.start as usize..range.end as usize];
            let got = match chunk.data {
                ChunkData::Zero => vec![0u8; want.len()],
                ChunkData::Stored { offset, length, .. } => {
                    let mut out = vec![0u8; want.len()];
                    let part = &file[offset as usize..(offset + length) as usize];
                    lz4_flex::block::decompress_into(part, &mut out).unwrap();
                    out
                }
            };
            assert_eq!(got, want, "chunk {i}");
        }
        let parsed = ChunkIndex::from_json(&std::fs::read(&made.index_file).unwrap()).unwrap();
        assert_eq!(&parsed, index);
        let err = chunk_image(&lz4, "img.lz4", 5000, dir.path()).unwrap_err();
        assert!(err.to_string().contains("5000"), "{err}");
    }
}
