//! Cutting a published image into chunks: the chunk file (each non-zero chunk compressed on its
//! own as an lz4 block, concatenated in image order) and its index (docs/formats.md, "Chunk
//! index"). The lz4 image is decompressed as a stream on one thread, the chunks hashed and
//! compressed on every core (at most eight threads), and written in order on the calling
//! thread: memory holds a few chunks per worker and their compressed copies, whatever the image
//! size.

use crate::error::{self, Result};
use sha2::{Digest, Sha256};
use snafu::ResultExt;
use std::collections::BTreeMap;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use update_metadata::chunks::{Chunk, ChunkData, ChunkIndex, Sha256Digest};
use update_metadata::{TargetName, chunks};

/// Threads hashing and compressing chunks, at most.
const MAX_WORKERS: usize = 8;
/// Bytes of chunks between the decoder and the writer, about: fewer workers for large chunks.
const IN_FLIGHT_BYTES: u64 = 256 << 20;

/// The two files made for one image, in a temporary directory.
#[derive(Debug)]
pub struct ChunkedImage {
    /// The chunk file.
    pub chunk_file: PathBuf,
    /// The chunk file's sha256 (its length is the index's `chunk_file_length`), hashed as it
    /// was written.
    pub chunk_file_sha256: [u8; 32],
    /// The index (JSON).
    pub index_file: PathBuf,
    /// The index.
    pub index: ChunkIndex,
}

/// One chunk, hashed and (unless all zero) compressed.
struct Cut {
    sha256: Sha256Digest,
    /// Its lz4 block and the block's sha256; `None` for an all-zero chunk.
    stored: Option<(Vec<u8>, Sha256Digest)>,
}

/// Hashes chunk `seq` and compresses it; checks that the block decompresses to the chunk:
/// updog writes what the block decompresses to once its compressed sha256 matches, and finds
/// it on disk later by the uncompressed sha256, so the two must agree.
fn cut(seq: usize, bytes: &[u8], roundtrip: &mut [u8]) -> std::result::Result<Cut, String> {
    let sha256 = Sha256Digest::new(Sha256::digest(bytes).into());
    if bytes.iter().all(|&b| b == 0) {
        return Ok(Cut {
            sha256,
            stored: None,
        });
    }
    let block = lz4_flex::block::compress(bytes);
    let back = lz4_flex::block::decompress_into(&block, &mut roundtrip[..bytes.len()]);
    if back.ok() != Some(bytes.len()) || roundtrip[..bytes.len()] != *bytes {
        return Err(format!(
            "chunk {seq} does not decompress to the bytes it was made from"
        ));
    }
    let block_sha = Sha256Digest::new(Sha256::digest(&block).into());
    Ok(Cut {
        sha256,
        stored: Some((block, block_sha)),
    })
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
    let chunk_file = out_dir.join(&chunk_name);
    let mut out = BufWriter::new(
        std::fs::File::create(&chunk_file).context(error::WriteFileSnafu { path: &chunk_file })?,
    );
    let workers = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(MAX_WORKERS)
        .min(usize::try_from(IN_FLIGHT_BYTES / (3 * chunk_size)).unwrap_or(1))
        .max(1);
    let write_error = |source| error::Error::WriteFile {
        path: chunk_file.clone(),
        source,
    };

    let (list, offset, file_sha, image_length, image_sha) = std::thread::scope(|scope| {
        let (job_tx, job_rx) = sync_channel::<(usize, Vec<u8>)>(workers);
        // Held by the workers only: once they have all stopped (the writer failed), the
        // decoder's next hand-on fails and it stops too.
        let job_rx = Arc::new(Mutex::new(job_rx));
        let (cut_tx, cut_rx) = sync_channel::<(usize, std::result::Result<Cut, String>)>(workers);
        for _ in 0..workers {
            let (job_rx, cut_tx) = (Arc::clone(&job_rx), cut_tx.clone());
            scope.spawn(move || {
                let mut roundtrip = vec![0u8; chunk_size as usize];
                loop {
                    let job = job_rx
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .recv();
                    let Ok((seq, bytes)) = job else { return };
                    if cut_tx
                        .send((seq, cut(seq, &bytes, &mut roundtrip)))
                        .is_err()
                    {
                        return;
                    }
                }
            });
        }
        drop((cut_tx, job_rx));
        let reader = scope.spawn(move || read_chunks(input, lz4_image, chunk_size, &job_tx));
        // In image order, as the chunks come back.
        let written = write_in_order(&cut_rx, &mut out).map_err(|e| match e {
            Failed::Write(source) => write_error(source),
            Failed::Cut(reason) => write_error(std::io::Error::other(reason)),
        });
        drop(cut_rx);
        let read = reader.join().unwrap_or_else(|_| {
            error::InternalSnafu {
                what: "the thread decoding the image",
            }
            .fail()
        });
        // A read error explains a short write; a bad chunk, one that was read whole.
        let (image_length, image_sha) = read?;
        let (list, offset, file_sha) = written?;
        Ok::<_, error::Error>((list, offset, file_sha, image_length, image_sha))
    })?;
    out.into_inner()
        .map_err(|e| e.into_error())
        .and_then(|f| f.sync_all())
        .context(error::WriteFileSnafu { path: &chunk_file })?;
    let index = ChunkIndex::new(
        chunk_size,
        image_length,
        image_sha,
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
        chunk_file_sha256: file_sha,
        index_file,
        index,
    })
}

/// Decodes the image and hands it on chunk by chunk; returns its length and sha256. Stops
/// early, without an error, once the chunks are no longer taken (the writer failed).
fn read_chunks(
    input: std::fs::File,
    path: &Path,
    chunk_size: u64,
    jobs: &SyncSender<(usize, Vec<u8>)>,
) -> Result<(u64, Sha256Digest)> {
    let mut decoder = lz4_flex::frame::FrameDecoder::new(std::io::BufReader::new(input));
    let mut image_hash = Sha256::new();
    let mut image_length = 0u64;
    for seq in 0.. {
        // Read into the capacity: no need to fill a fresh chunk with zeros first.
        let mut buf = Vec::with_capacity(chunk_size as usize);
        let n = (&mut decoder)
            .take(chunk_size)
            .read_to_end(&mut buf)
            .context(error::ReadFileSnafu { path })?;
        if n == 0 {
            break;
        }
        image_hash.update(&buf);
        image_length += n as u64;
        let last = (n as u64) < chunk_size;
        if jobs.send((seq, buf)).is_err() || last {
            break;
        }
    }
    Ok((
        image_length,
        Sha256Digest::new(image_hash.finalize().into()),
    ))
}

/// Why the writer stopped.
enum Failed {
    Write(std::io::Error),
    Cut(String),
}

/// Writes the compressed chunks to `out` in image order; returns the index's chunks and the
/// chunk file's length and sha256.
fn write_in_order(
    cuts: &Receiver<(usize, std::result::Result<Cut, String>)>,
    out: &mut impl Write,
) -> std::result::Result<(Vec<Chunk>, u64, [u8; 32]), Failed> {
    let mut file_sha = Sha256::new();
    let mut pending = BTreeMap::new();
    let mut list = Vec::new();
    let mut offset = 0u64;
    for (seq, cut) in cuts {
        pending.insert(seq, cut);
        while let Some(cut) = pending.remove(&list.len()) {
            let cut = cut.map_err(Failed::Cut)?;
            let data = match cut.stored {
                None => ChunkData::Zero,
                Some((block, sha256)) => {
                    out.write_all(&block).map_err(Failed::Write)?;
                    file_sha.update(&block);
                    let length = block.len() as u64;
                    let data = ChunkData::Stored {
                        offset,
                        length,
                        sha256,
                    };
                    offset += length;
                    data
                }
            };
            list.push(Chunk {
                sha256: cut.sha256,
                data,
            });
        }
    }
    if let Some(seq) = pending.keys().next() {
        let reason = format!("chunk {} never came back before chunk {seq}", list.len());
        return Err(Failed::Cut(reason));
    }
    Ok((list, offset, file_sha.finalize().into()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// `image` as one lz4 frame in `dir/img.lz4`.
    fn lz4_file(dir: &Path, image: &[u8]) -> PathBuf {
        let lz4 = dir.join("img.lz4");
        let mut enc = lz4_flex::frame::FrameEncoder::new(std::fs::File::create(&lz4).unwrap());
        enc.write_all(image).unwrap();
        enc.finish().unwrap();
        lz4
    }

    #[test]
    fn chunks_decompress_to_the_image_and_zero_chunks_are_not_stored() {
        let dir = tempfile::tempdir().unwrap();
        let mut image = vec![0u8; 3 * 4096 + 100];
        image[10] = 1;
        image[2 * 4096..3 * 4096].fill(7);
        let lz4 = lz4_file(dir.path(), &image);
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

    #[test]
    fn many_chunks_come_out_in_image_order_and_a_broken_image_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        // 300 chunks, every fifth all zero, the others different.
        let mut image = vec![0u8; 300 * 4096];
        for (i, chunk) in image.chunks_mut(4096).enumerate() {
            if i % 5 != 0 {
                for (j, b) in chunk.iter_mut().enumerate() {
                    *b = (i * 31 + j * 7 % 13) as u8;
                }
            }
        }
        let lz4 = lz4_file(dir.path(), &image);
        let made = chunk_image(&lz4, "img.lz4", 4096, dir.path()).unwrap();
        let index = &made.index;
        assert_eq!(index.chunks().len(), 300);
        assert_eq!(
            index.image_sha256().as_bytes(),
            &<[u8; 32]>::from(Sha256::digest(&image))
        );
        let file = std::fs::read(&made.chunk_file).unwrap();
        let mut next = 0;
        for (i, chunk) in index.chunks().iter().enumerate() {
            let want = &image[i * 4096..(i + 1) * 4096];
            assert_eq!(
                chunk.sha256.as_bytes(),
                &<[u8; 32]>::from(Sha256::digest(want))
            );
            match chunk.data {
                ChunkData::Zero => assert_eq!(i % 5, 0, "chunk {i}"),
                ChunkData::Stored { offset, length, .. } => {
                    assert_eq!(offset, next, "chunk {i} is not next in the file");
                    next += length;
                    let mut out = vec![0u8; 4096];
                    let part = &file[offset as usize..(offset + length) as usize];
                    lz4_flex::block::decompress_into(part, &mut out).unwrap();
                    assert_eq!(out, want, "chunk {i}");
                }
            }
        }
        assert_eq!(next, file.len() as u64);
        assert_eq!(
            made.chunk_file_sha256,
            <[u8; 32]>::from(Sha256::digest(&file))
        );

        // Cut short: refused with the file named, nothing left waiting.
        let bytes = std::fs::read(&lz4).unwrap();
        std::fs::write(&lz4, &bytes[..bytes.len() / 2]).unwrap();
        let err = chunk_image(&lz4, "img.lz4", 4096, dir.path()).unwrap_err();
        assert!(err.to_string().contains("img.lz4"), "{err}");
    }
}
