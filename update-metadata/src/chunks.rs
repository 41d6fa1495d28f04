//! Chunk indexes: an image cut into fixed-size chunks, each compressed on its own (an lz4
//! block), so that a client can verify each chunk before writing it, resume an interrupted
//! install, reuse chunks it already has and fetch the rest with HTTP Range requests.
//!
//! A published image `<image>` gets two more TUF targets: `<image>.chunks` (the compressed
//! chunks, concatenated in image order; all-zero chunks are not stored) and
//! `<image>.chunks.json` (this index). The index is authenticated by TUF like every target, and
//! each chunk by its sha256 in the index.
//!
//! [`ChunkIndex`] has private fields and one validating constructor ([`ChunkIndex::new`]),
//! which JSON parsing goes through too: the chunk count is `ceil(image_length / chunk_size)`,
//! `chunk_size` is a power of two between [`MIN_CHUNK_SIZE`] and [`MAX_CHUNK_SIZE`], stored
//! chunks are contiguous from offset 0 and end exactly at the chunk file's length, and no
//! compressed chunk is longer than lz4's worst case for its size. Errors name the field
//! (`chunks[3].offset: ...`).

use crate::error::{Error, Result};
use crate::names::TargetName;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::ops::Range;
use std::str::FromStr;

/// The index format this crate reads and writes.
pub const CHUNK_INDEX_FORMAT: u32 = 1;
/// The smallest chunk size (one 4 KiB block).
pub const MIN_CHUNK_SIZE: u64 = 4096;
/// The largest chunk size (bounds a client's memory per chunk in flight).
pub const MAX_CHUNK_SIZE: u64 = 64 << 20;
/// The chunk size publishers use unless told otherwise (see docs/benchmarks.md).
pub const DEFAULT_CHUNK_SIZE: u64 = 1 << 20;

/// A sha256 digest, written as 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sha256Digest([u8; 32]);

impl Sha256Digest {
    /// Wraps 32 bytes.
    pub fn new(bytes: [u8; 32]) -> Sha256Digest {
        Sha256Digest(bytes)
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for Sha256Digest {
    type Err = Error;
    fn from_str(s: &str) -> Result<Sha256Digest> {
        let bad = || Error::ChunkIndex {
            reason: format!("'{}' is not 64 lowercase hex digits", s.escape_debug()),
        };
        if s.len() != 64 || s.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(bad());
        }
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).map_err(|_| bad())?;
        Ok(Sha256Digest(out))
    }
}

impl Serialize for Sha256Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Where a chunk's bytes are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkData {
    /// Every byte is zero; nothing is stored.
    Zero,
    /// An lz4 block at `offset` in the chunk file.
    Stored {
        /// Byte offset in the chunk file.
        offset: u64,
        /// Compressed length.
        length: u64,
        /// sha256 of the compressed bytes (checked before decompressing).
        sha256: Sha256Digest,
    },
}

/// One chunk of an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chunk {
    /// sha256 of the chunk's uncompressed bytes.
    pub sha256: Sha256Digest,
    /// Where its bytes are.
    pub data: ChunkData,
}

/// The chunk index of one image. See the module documentation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkIndex {
    chunk_size: u64,
    image_length: u64,
    image_sha256: Sha256Digest,
    chunk_file: TargetName,
    chunk_file_length: u64,
    chunks: Vec<Chunk>,
}

/// lz4's worst case for `len` input bytes (as lz4_flex computes it), which bounds what a
/// client accepts for one chunk.
pub fn max_compressed_len(len: u64) -> u64 {
    16 + 4 + len * 110 / 100
}

impl ChunkIndex {
    /// Checks everything and builds the index; the error names the bad field.
    pub fn new(
        chunk_size: u64,
        image_length: u64,
        image_sha256: Sha256Digest,
        chunk_file: TargetName,
        chunk_file_length: u64,
        chunks: Vec<Chunk>,
    ) -> Result<ChunkIndex> {
        let bad = |field: String, reason: String| Err(Error::ChunkIndex { reason }.at(field));
        if !chunk_size.is_power_of_two() || !(MIN_CHUNK_SIZE..=MAX_CHUNK_SIZE).contains(&chunk_size)
        {
            return bad(
                "chunk_size".into(),
                format!(
                    "{chunk_size} is not a power of two between {MIN_CHUNK_SIZE} and {MAX_CHUNK_SIZE}"
                ),
            );
        }
        if image_length == 0 {
            return bad("image_length".into(), "the image is empty".into());
        }
        let count = image_length.div_ceil(chunk_size);
        if chunks.len() as u64 != count {
            return bad(
                "chunks".into(),
                format!(
                    "{} chunks listed, but an image of {image_length} bytes in chunks of \
                     {chunk_size} has {count}",
                    chunks.len()
                ),
            );
        }
        let mut next = 0u64;
        for (i, chunk) in chunks.iter().enumerate() {
            if let ChunkData::Stored { offset, length, .. } = chunk.data {
                let len = (image_length - i as u64 * chunk_size).min(chunk_size);
                if offset != next {
                    return bad(
                        format!("chunks[{i}].offset"),
                        format!("{offset}, but the previous stored chunk ends at {next}"),
                    );
                }
                if length == 0 || length > max_compressed_len(len) {
                    return bad(
                        format!("chunks[{i}].length"),
                        format!(
                            "{length} is not a possible lz4 block length for {len} bytes (1..={})",
                            max_compressed_len(len)
                        ),
                    );
                }
                next = offset + length;
            }
        }
        if next != chunk_file_length {
            return bad(
                "chunk_file_length".into(),
                format!("{chunk_file_length}, but the stored chunks end at {next}"),
            );
        }
        Ok(ChunkIndex {
            chunk_size,
            image_length,
            image_sha256,
            chunk_file,
            chunk_file_length,
            chunks,
        })
    }

    /// Parses an index; errors name the field.
    pub fn from_json(bytes: &[u8]) -> Result<ChunkIndex> {
        let raw: RawIndex =
            serde_json::from_slice(bytes).map_err(|source| Error::ParseChunkIndex { source })?;
        ChunkIndex::try_from(raw)
    }

    /// Serialises as compact JSON, one chunk per line, with a trailing newline.
    pub fn to_json(&self) -> String {
        let mut out = format!(
            "{{\"format\":{CHUNK_INDEX_FORMAT},\"chunk_size\":{},\"image_length\":{},\
             \"image_sha256\":\"{}\",\"chunk_file\":{},\"chunk_file_length\":{},\"chunks\":[",
            self.chunk_size,
            self.image_length,
            self.image_sha256,
            json_string(self.chunk_file.as_str()),
            self.chunk_file_length
        );
        for (i, chunk) in self.chunks.iter().enumerate() {
            out.push_str(if i == 0 { "\n" } else { ",\n" });
            match chunk.data {
                ChunkData::Zero => {
                    out.push_str(&format!(
                        "{{\"sha256\":\"{}\",\"zero\":true}}",
                        chunk.sha256
                    ));
                }
                ChunkData::Stored {
                    offset,
                    length,
                    sha256,
                } => out.push_str(&format!(
                    "{{\"sha256\":\"{}\",\"offset\":{offset},\"length\":{length},\
                     \"compressed_sha256\":\"{sha256}\"}}",
                    chunk.sha256
                )),
            }
        }
        out.push_str("\n]}\n");
        out
    }

    /// The size of every chunk but (perhaps) the last.
    pub fn chunk_size(&self) -> u64 {
        self.chunk_size
    }

    /// The uncompressed image's length.
    pub fn image_length(&self) -> u64 {
        self.image_length
    }

    /// The uncompressed image's sha256.
    pub fn image_sha256(&self) -> Sha256Digest {
        self.image_sha256
    }

    /// The target holding the compressed chunks.
    pub fn chunk_file(&self) -> &TargetName {
        &self.chunk_file
    }

    /// The chunk file's length.
    pub fn chunk_file_length(&self) -> u64 {
        self.chunk_file_length
    }

    /// The chunks, in image order.
    pub fn chunks(&self) -> &[Chunk] {
        &self.chunks
    }

    /// The byte range chunk `i` covers in the uncompressed image.
    pub fn range(&self, i: usize) -> Range<u64> {
        let start = i as u64 * self.chunk_size;
        start..(start + self.chunk_size).min(self.image_length)
    }
}

fn json_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("\"{}\"", s.escape_default()))
}

#[derive(Debug, Deserialize)]
struct RawIndex {
    format: Option<u32>,
    chunk_size: Option<u64>,
    image_length: Option<u64>,
    image_sha256: Option<String>,
    chunk_file: Option<String>,
    chunk_file_length: Option<u64>,
    chunks: Option<Vec<RawChunk>>,
}

#[derive(Debug, Deserialize)]
struct RawChunk {
    sha256: Option<String>,
    zero: Option<bool>,
    offset: Option<u64>,
    length: Option<u64>,
    compressed_sha256: Option<String>,
}

fn required<T>(value: Option<T>, field: &str) -> Result<T> {
    value.ok_or_else(|| Error::MissingField.at(field))
}

fn digest(value: Option<String>, field: &str) -> Result<Sha256Digest> {
    required(value, field)?
        .parse()
        .map_err(|e: Error| e.at(field))
}

impl TryFrom<RawIndex> for ChunkIndex {
    type Error = Error;
    fn try_from(raw: RawIndex) -> Result<ChunkIndex> {
        let format = required(raw.format, "format")?;
        if format != CHUNK_INDEX_FORMAT {
            return Err(Error::ChunkIndex {
                reason: format!("format {format} is not the supported {CHUNK_INDEX_FORMAT}"),
            }
            .at("format"));
        }
        let chunks = required(raw.chunks, "chunks")?
            .into_iter()
            .enumerate()
            .map(|(i, c)| {
                let at = |f: &str| format!("chunks[{i}].{f}");
                let sha256 = digest(c.sha256, &at("sha256"))?;
                let data = match (c.zero, c.offset, c.length, c.compressed_sha256) {
                    (Some(true), None, None, None) => ChunkData::Zero,
                    (None | Some(false), Some(offset), Some(length), Some(sha)) => {
                        ChunkData::Stored {
                            offset,
                            length,
                            sha256: digest(Some(sha), &at("compressed_sha256"))?,
                        }
                    }
                    (Some(true), ..) => {
                        return Err(Error::ChunkIndex {
                            reason: "a zero chunk has no offset, length or compressed_sha256"
                                .into(),
                        }
                        .at(format!("chunks[{i}]")));
                    }
                    (_, offset, length, _) => {
                        let missing = if offset.is_none() {
                            "offset"
                        } else if length.is_none() {
                            "length"
                        } else {
                            "compressed_sha256"
                        };
                        return Err(Error::MissingField.at(at(missing)));
                    }
                };
                Ok(Chunk { sha256, data })
            })
            .collect::<Result<Vec<_>>>()?;
        let chunk_file = required(raw.chunk_file, "chunk_file")?;
        ChunkIndex::new(
            required(raw.chunk_size, "chunk_size")?,
            required(raw.image_length, "image_length")?,
            digest(raw.image_sha256, "image_sha256")?,
            TargetName::new(chunk_file).map_err(|e| e.at("chunk_file"))?,
            required(raw.chunk_file_length, "chunk_file_length")?,
            chunks,
        )
    }
}

/// The chunk indexes of a release's images, as TUF target names: an optional field of an
/// update in manifest.json (`chunk_indexes`), which Bottlerocket's parser ignores. An image
/// without one is installed from its lz4 stream.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ChunkIndexes {
    /// BOOT's index.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot: Option<TargetName>,
    /// ROOT's index.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root: Option<TargetName>,
    /// HASH's index.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<TargetName>,
}

impl ChunkIndexes {
    /// Indexes for the three images.
    pub fn new(boot: TargetName, root: TargetName, hash: TargetName) -> ChunkIndexes {
        ChunkIndexes {
            boot: Some(boot),
            root: Some(root),
            hash: Some(hash),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn d(b: u8) -> Sha256Digest {
        Sha256Digest([b; 32])
    }

    fn stored(offset: u64, length: u64) -> Chunk {
        Chunk {
            sha256: d(1),
            data: ChunkData::Stored {
                offset,
                length,
                sha256: d(2),
            },
        }
    }

    fn zero() -> Chunk {
        Chunk {
            sha256: d(0),
            data: ChunkData::Zero,
        }
    }

    fn index(size: u64, len: u64, file_len: u64, chunks: Vec<Chunk>) -> Result<ChunkIndex> {
        ChunkIndex::new(
            size,
            len,
            d(9),
            TargetName::new("x.chunks").unwrap(),
            file_len,
            chunks,
        )
    }

    #[test]
    fn a_valid_index_round_trips_through_json() {
        let idx = index(
            4096,
            10000,
            300,
            vec![stored(0, 100), zero(), stored(100, 200)],
        )
        .unwrap();
        assert_eq!(idx.range(2), 8192..10000);
        let json = idx.to_json();
        assert_eq!(ChunkIndex::from_json(json.as_bytes()).unwrap(), idx);
    }

    #[test]
    fn each_inconsistency_names_its_field() {
        let cases = [
            (index(5000, 100, 10, vec![stored(0, 10)]), "chunk_size"),
            (index(2048, 100, 10, vec![stored(0, 10)]), "chunk_size"),
            (index(4096, 0, 0, vec![]), "image_length"),
            (
                index(4096, 5000, 10, vec![stored(0, 10)]),
                "chunks: 1 chunks listed",
            ),
            (
                index(4096, 5000, 20, vec![stored(0, 10), stored(11, 9)]),
                "chunks[1].offset",
            ),
            (
                index(4096, 5000, 9000, vec![stored(0, 9000), zero()]),
                "chunks[0].length",
            ),
            (
                index(4096, 100, 11, vec![stored(0, 10)]),
                "chunk_file_length",
            ),
        ];
        for (result, field) in cases {
            let err = result.unwrap_err().to_string();
            assert!(err.starts_with(field), "{err}");
        }
        for (json, field) in [
            (r#"{"format":2}"#, "format"),
            (
                r#"{"format":1,"chunks":[{"sha256":"zz"}]}"#,
                "chunks[0].sha256",
            ),
            (
                r#"{"format":1,"chunks":[{"sha256":"0000000000000000000000000000000000000000000000000000000000000000","offset":0}]}"#,
                "chunks[0].length",
            ),
        ] {
            let err = ChunkIndex::from_json(json.as_bytes())
                .unwrap_err()
                .to_string();
            assert!(err.starts_with(field), "{json}: {err}");
        }
    }
}
