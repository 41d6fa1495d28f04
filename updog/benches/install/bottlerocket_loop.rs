//! The loop Bottlerocket's updog runs, which the full install and latency parts time against
//! updog: the bench binary runs it in a child process when called with `LOOP_ARG`.

use std::io::{Read, Write};
use std::path::Path;

pub(crate) const LOOP_ARG: &str = "--bottlerocket-loop";

/// Bottlerocket updog's write loop: tough's target stream (hash and length checked as it
/// goes), an lz4 frame decoder, the partition written at its offset, fsync. One thread: the
/// stream is polled from the decoder's reads.
pub(crate) fn bottlerocket_loop(args: &[String]) {
    let [metadata, targets, root_json, target, disk, offset] = args else {
        panic!("usage: {LOOP_ARG} METADATA_URL TARGETS_URL ROOT_JSON TARGET DISK OFFSET");
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let datastore = tempfile::tempdir().expect("datastore");
    let root = std::fs::read(root_json).expect("root.json");
    let config = updog::Config::parse(
        &format!("metadata_base_url = \"{metadata}\"\ntargets_base_url = \"{targets}\"\n"),
        Path::new("updog.toml"),
    )
    .expect("config");
    let transport =
        updog::transport::UpdogTransport::new(&config, updog::transport::HttpSettings::default())
            .expect("transport");
    let repo = runtime
        .block_on(
            tough::RepositoryLoader::new(
                &root,
                metadata.parse().expect("url"),
                targets.parse().expect("url"),
            )
            .transport(transport)
            .datastore(datastore.path())
            .load(),
        )
        .expect("load the repository");
    let name = tough::TargetName::new(target.as_str()).expect("target name");
    let stream = runtime
        .block_on(repo.read_target(&name))
        .expect("read target")
        .expect("target present");
    struct StreamRead<S> {
        runtime: tokio::runtime::Runtime,
        stream: std::pin::Pin<Box<S>>,
        chunk: bytes::Bytes,
    }
    impl<S> Read for StreamRead<S>
    where
        S: futures_util::Stream<Item = Result<bytes::Bytes, tough::error::Error>>,
    {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            use futures_util::StreamExt;
            while self.chunk.is_empty() {
                match self.runtime.block_on(self.stream.next()) {
                    Some(Ok(c)) => self.chunk = c,
                    Some(Err(e)) => return Err(std::io::Error::other(e.to_string())),
                    None => return Ok(0),
                }
            }
            let n = buf.len().min(self.chunk.len());
            buf[..n].copy_from_slice(&self.chunk.split_to(n));
            Ok(n)
        }
    }
    let reader = StreamRead {
        runtime,
        stream: Box::pin(stream),
        chunk: bytes::Bytes::new(),
    };
    let mut decoder = lz4_flex::frame::FrameDecoder::new(reader);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .open(disk)
        .expect("disk");
    std::io::Seek::seek(
        &mut file,
        std::io::SeekFrom::Start(offset.parse().expect("offset")),
    )
    .expect("seek");
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    std::io::copy(&mut decoder, &mut out).expect("copy");
    out.flush().expect("flush");
    out.into_inner()
        .map_err(|e| e.into_error())
        .and_then(|f| f.sync_all())
        .expect("sync");
}
