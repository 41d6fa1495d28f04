//! Streaming one image into its partition with bounded memory.
//!
//! tough's target stream (length- and hash-checked as it goes) runs on the async side; its
//! chunks cross a bounded channel to a blocking writer thread, which decompresses the lz4 frame
//! and writes the output at the partition's offset. Memory: the channel's few network chunks, the
//! decoder's block buffers and one 1 MiB write buffer, whatever the image size. A decompressed
//! byte that would pass the partition's end is refused before it is written.

use crate::error::{self, Result};
use crate::progress::{Phase, ProgressEvent, ProgressSink};
use bytes::{Buf, Bytes};
use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use signpost::PartitionInfo;
use snafu::{OptionExt, ResultExt};
use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use tough::{Repository, TargetName};

/// Network chunks in flight between the download and the writer.
const CHANNEL_CHUNKS: usize = 16;
/// Size of the decompressed writes.
const WRITE_BUF: usize = 1 << 20;
/// Least time between two download events of one image.
const EVENT_EVERY: Duration = Duration::from_millis(250);

/// What was written into a partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// Decompressed bytes written.
    pub len: u64,
    /// Their sha256, when asked for.
    pub sha256: Option<[u8; 32]>,
}

/// Where one image goes.
#[derive(Debug)]
pub(crate) struct ImageJob<'a> {
    /// `boot`, `root` or `hash`.
    pub image: &'static str,
    /// Its target name.
    pub target: &'a str,
    /// Its partition.
    pub partition: &'a PartitionInfo,
    /// Whether to hash the decompressed bytes (to compare when read back).
    pub keep_hash: bool,
}

/// Streams `job`'s target into its partition on `disk`.
pub(crate) async fn write_image(
    repo: &Repository,
    disk: &Path,
    job: &ImageJob<'_>,
    version: &str,
    progress: &dyn ProgressSink,
    cancel: &CancellationToken,
) -> Result<Written> {
    let target = job.target;
    let name = TargetName::new(target).context(error::TargetNameSnafu { target })?;
    let total = repo
        .targets()
        .signed
        .find_target(&name, false)
        .ok()
        .map(|t| t.length);
    let stream = repo
        .read_target(&name)
        .await
        .context(error::FetchTargetSnafu { target })?
        .context(error::MissingTargetSnafu { target })?;
    let file = OpenOptions::new()
        .write(true)
        .open(disk)
        .context(error::DiskIoSnafu {
            action: "open for writing",
            disk,
        })?;
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(CHANNEL_CHUNKS);
    let sink = PartitionSink {
        file,
        disk: disk.to_path_buf(),
        start: job.partition.byte_range().start,
        capacity: job.partition.size_bytes(),
        label: job.partition.label.clone(),
        target: target.to_string(),
        keep_hash: job.keep_hash,
    };
    let writer = tokio::task::spawn_blocking(move || sink.write(rx));

    let started = Instant::now();
    let mut last_event = started;
    let mut done = 0u64;
    let event = |done: u64| {
        let secs = started.elapsed().as_secs_f64();
        ProgressEvent {
            phase: Phase::Download,
            version: Some(version.to_string()),
            image: Some(job.image.to_string()),
            bytes_done: done,
            bytes_total: total,
            rate: (secs > 0.0).then(|| done as f64 / secs),
            ..ProgressEvent::phase(Phase::Download, None)
        }
    };
    progress.event(&event(0));
    let mut stream = std::pin::pin!(stream);
    loop {
        let next = tokio::select! {
            biased;
            () = cancel.cancelled() => {
                drop(tx);
                let _ = writer.await;
                return error::CancelledSnafu.fail();
            }
            next = stream.next() => next,
        };
        match next {
            Some(Ok(bytes)) => {
                done += bytes.len() as u64;
                if tx.send(bytes).await.is_err() {
                    // The writer stopped: its error says why.
                    return match join(writer).await {
                        Err(e) => Err(e),
                        Ok(_) => error::WorkerSnafu {
                            action: "write the image",
                            reason: "the writer finished before the download did".to_string(),
                        }
                        .fail(),
                    };
                }
                if last_event.elapsed() >= EVENT_EVERY {
                    last_event = Instant::now();
                    progress.event(&event(done));
                }
            }
            Some(Err(source)) => {
                drop(tx);
                let _ = writer.await;
                return Err(source).context(error::FetchTargetSnafu { target });
            }
            None => break,
        }
    }
    drop(tx);
    let written = join(writer).await?;
    progress.event(&event(done));
    tracing::info!(
        "wrote {target} ({done} bytes, {} decompressed) into {}",
        written.len,
        job.partition.label
    );
    Ok(written)
}

async fn join(writer: tokio::task::JoinHandle<Result<Written>>) -> Result<Written> {
    writer.await.map_err(|e| error::Error::Worker {
        action: "write the image",
        reason: e.to_string(),
    })?
}

/// The blocking end: decompress and write.
struct PartitionSink {
    file: File,
    disk: std::path::PathBuf,
    start: u64,
    capacity: u64,
    label: String,
    target: String,
    keep_hash: bool,
}

impl PartitionSink {
    fn write(self, rx: tokio::sync::mpsc::Receiver<Bytes>) -> Result<Written> {
        self.write_from(ChannelReader {
            rx,
            chunk: Bytes::new(),
        })
    }

    fn write_from(self, input: impl Read) -> Result<Written> {
        let mut decoder = lz4_flex::frame::FrameDecoder::new(input);
        let mut buf = vec![0u8; WRITE_BUF];
        let mut hasher = self.keep_hash.then(Sha256::new);
        let mut written = 0u64;
        loop {
            let n = verity::read_full(&mut decoder, &mut buf).context(error::DecompressSnafu {
                target: &self.target,
            })?;
            if n == 0 {
                break;
            }
            if written + n as u64 > self.capacity {
                return error::TooLargeSnafu {
                    target: &self.target,
                    partition: &self.label,
                    capacity: self.capacity,
                }
                .fail();
            }
            self.file
                .write_all_at(&buf[..n], self.start + written)
                .context(error::DiskIoSnafu {
                    action: format!("write {}", self.label),
                    disk: &self.disk,
                })?;
            if let Some(h) = hasher.as_mut() {
                h.update(&buf[..n]);
            }
            written += n as u64;
            if n < buf.len() {
                // The decoder reported the end of its input. lz4_flex's decoder can give more
                // after that (a second legacy frame); a reader of the image would stop at the
                // end, so such a stream is refused rather than written further.
                let trailing = verity::read_full(&mut decoder, &mut [0u8; 1]).context(
                    error::DecompressSnafu {
                        target: &self.target,
                    },
                )?;
                if trailing != 0 {
                    return Err(error::Error::Decompress {
                        target: self.target.clone(),
                        source: std::io::Error::new(
                            std::io::ErrorKind::InvalidData,
                            "more data follows the end of the lz4 stream",
                        ),
                    });
                }
                break;
            }
        }
        self.file.sync_data().context(error::DiskIoSnafu {
            action: format!("sync {}", self.label),
            disk: &self.disk,
        })?;
        powercut::point("updog.partition-synced");
        Ok(Written {
            len: written,
            sha256: hasher.map(|h| h.finalize().into()),
        })
    }
}

/// Decompresses the lz4 frame read from `input` into `file` at byte `start`, as the install
/// writes an image into its partition: a decompressed byte that would pass `start + capacity`
/// is refused before it is written, and the file is synced at the end. `disk`, `label` and
/// `target` only name things in errors. The install itself feeds the same writer from the
/// download; this entry point serves tools and tests that hold the compressed image already.
pub fn write_lz4_stream(
    input: impl Read,
    file: File,
    disk: &Path,
    start: u64,
    capacity: u64,
    label: &str,
    target: &str,
) -> Result<Written> {
    PartitionSink {
        file,
        disk: disk.to_path_buf(),
        start,
        capacity,
        label: label.to_string(),
        target: target.to_string(),
        keep_hash: true,
    }
    .write_from(input)
}

/// The channel's chunks as a `Read`; the end of the channel is the end of input.
struct ChannelReader {
    rx: tokio::sync::mpsc::Receiver<Bytes>,
    chunk: Bytes,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.chunk.is_empty() {
            match self.rx.blocking_recv() {
                Some(chunk) => self.chunk = chunk,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk[..n]);
        self.chunk.advance(n);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by fuzzing (`fuzz/regressions/partition_writer/`): two legacy lz4 frames, after
    /// the first of which the decoder reports the end of its input and then gives the second's
    /// bytes when asked again. The writer used to ask again and write them; a reader of the
    /// image stops at the end.
    #[test]
    fn data_after_the_end_of_the_lz4_stream_is_refused() {
        let work = tempfile::tempdir().unwrap();
        let disk = work.path().join("disk.img");
        std::fs::write(&disk, vec![0u8; 64 << 10]).unwrap();
        let input = include_bytes!(
            "../../../fuzz/regressions/partition_writer/data-after-the-end-of-a-legacy-frame"
        );
        let file = OpenOptions::new().write(true).open(&disk).unwrap();
        let err = write_lz4_stream(
            &input[..],
            file,
            &disk,
            4096,
            16 << 10,
            "ROOT-B",
            "root.lz4",
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "Failed to decompress image 'root.lz4': more data follows the end of the lz4 stream"
        );
    }

    #[test]
    fn the_reader_yields_the_chunks_in_order() {
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let handle = std::thread::spawn(move || {
            let mut reader = ChannelReader {
                rx,
                chunk: Bytes::new(),
            };
            let mut all = Vec::new();
            reader.read_to_end(&mut all).unwrap();
            all
        });
        for part in [&b"ab"[..], b"", b"cde"] {
            tx.blocking_send(Bytes::copy_from_slice(part)).unwrap();
        }
        drop(tx);
        assert_eq!(handle.join().unwrap(), b"abcde");
    }
}
