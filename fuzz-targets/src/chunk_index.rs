//! A chunk index (`<image>.chunks.json`), as a repository serves it.

use update_metadata::ChunkIndex;
use update_metadata::chunks::{ChunkData, max_compressed_len};

/// Parses `data` as a chunk index. An error is one line; what parses serialises to a fixed
/// point that parses back equal, and describes a layout a client can follow without leaving
/// its bounds: one chunk per `chunk_size` of the image, each range inside the image, each
/// stored chunk inside the chunk file, stored chunks one after another without gaps or
/// overlaps, none larger than lz4's worst case for its range.
pub fn chunk_index(data: &[u8]) {
    let index = match ChunkIndex::from_json(data) {
        Ok(index) => index,
        Err(e) => {
            let message = e.to_string();
            assert!(
                !message.contains('\n'),
                "a chunk index error spans lines: {message:?}"
            );
            return;
        }
    };
    let json = index.to_json();
    let again = ChunkIndex::from_json(json.as_bytes()).expect("a serialised index parses");
    assert_eq!(again, index, "the index changed through to_json:\n{json}");
    assert_eq!(again.to_json(), json, "to_json is not a fixed point");

    let size = index.chunk_size();
    let len = index.image_length();
    let chunks = index.chunks();
    assert_eq!(
        chunks.len() as u64,
        len.div_ceil(size),
        "one chunk per chunk_size of the image"
    );
    let mut next_offset = 0u64;
    for (i, chunk) in chunks.iter().enumerate() {
        let range = index.range(i);
        assert!(
            range.start < range.end && range.end <= len,
            "chunk {i} covers {range:?} of a {len}-byte image"
        );
        if let ChunkData::Stored { offset, length, .. } = chunk.data {
            assert_eq!(
                offset, next_offset,
                "chunk {i} does not follow the one before"
            );
            assert!(length > 0, "chunk {i} is stored empty");
            assert!(
                length <= max_compressed_len(range.end - range.start),
                "chunk {i} is larger than lz4's worst case"
            );
            next_offset = offset + length;
            assert!(
                next_offset <= index.chunk_file_length(),
                "chunk {i} ends past the chunk file"
            );
        }
    }
}
