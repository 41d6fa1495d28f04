//! Installing one image from its chunk index (docs/formats.md, "Chunk index").
//!
//! For each chunk of the new image, in order of preference:
//!
//! 1. it is already in the inactive partition at its offset: skip it. This is how an interrupted
//!    install resumes; the partition itself is the journal, so there is no progress file to get
//!    out of step with it. What a killed install received and had not yet written is there too:
//!    each chunk's compressed bytes are spooled into its own place as they arrive (`spool`), and
//!    the scan decompresses them there once they match the index.
//! 2. it is in the running set's same partition, at the same offset or (through the running
//!    release's index) at any offset: copy it locally. An all-zero chunk is written as zeros.
//! 3. otherwise fetch its compressed bytes with HTTP Range requests (adjacent chunks coalesced
//!    into one request of at most [`RANGE_CAP`] bytes, a few requests at a time), check their
//!    sha256 from the index **before** decompressing, decompress and write. A body that breaks
//!    off is asked for again from its first byte not received.
//!
//! Checks: a chunk found in place or in the running set is checked as it is read from disk: a
//! ROOT chunk against the verity tree (authenticated by BOOT's root hash) for the blocks it
//! covers, any other chunk against its sha256 in the index; a cheap first look at its first
//! 4 KiB (a leaf of the tree, or zeros) rules out most chunks that are not there before the
//! whole chunk is read. Every chunk written (downloaded, copied or zeroed) is read back from
//! the partition right after its write and compared byte for byte with what was written,
//! which had already been checked. One sync at the end (and background syncs at checkpoints)
//! make it durable before the set can be marked valid.
//!
//! Concurrency and memory: the scan runs on every core. Downloads run on the async side, which
//! spools each chunk as it arrives; the compressed chunks go to one worker thread per core
//! (hash, decompress; at the lowest priority, so that the fetch and the node's own work get the
//! CPU first) and from there to one writer thread, which writes them in order with
//! `pwrite` and reads each back; a syncer thread syncs at checkpoints. Three limits hold
//! whatever the image size:
//!
//! - at most two chunks per core (4 to 16) in memory between the fetch and the read-back (the
//!   window): a chunk past it waits in its spool, and a worker reads it from there when the
//!   window reaches it (one that could not be spooled waits in memory, and its body with it);
//! - a byte budget on the compressed bytes requested and not yet in the partition (what a
//!   killed install fetches again): what one round trip to the server (the shortest time to an
//!   answer measured so far) brings at the workers' pace beyond the window of chunks already
//!   waiting for them, or at a few times the pace at which bytes arrived so far if that is
//!   less, at least [`BUDGET_CHUNKS`] chunk size, at most [`BUDGET_MAX`] ([`Pace`]). On a far
//!   server a smaller budget would leave the workers idle for a round trip per request; on a
//!   slow link more requests would only share it;
//! - a lead on the compressed bytes requested and not yet written: the budget plus about four
//!   windows of chunks. On a link faster than the workers, the fetch asks for chunks as the
//!   writer takes them; the chunks past the first window wait in their spool.
//!
//! ROOT starts with the budget and the measures BOOT and HASH reached, side by side, before it
//! ([`Learned`]).
//! Copies are written by the scan threads (each chunk independently, before any download), and
//! zeros by one thread while the download runs: the set is not valid until every chunk has been
//! checked, so their order does not matter.
//!
//! [`RANGE_CAP`]: fetch::RANGE_CAP
//! [`BUDGET_MAX`]: budget::BUDGET_MAX
//! [`Pace`]: budget::Pace

mod budget;
mod fetch;
mod pipeline;
mod scan;
mod spool;

pub(crate) use budget::Learned;

use super::blocking;
use crate::error::{self, Result};
use crate::progress::{Phase, ProgressEvent, ProgressSink};
use crate::transport::UpdogTransport;
use budget::{BUDGET_CHUNKS, Limits};
use fetch::fetch_all;
use pipeline::{
    Buffers, Decoded, Fetched, PartitionFile, Pipe, SpoolReader, decode, write_in_order,
};
use scan::{Action, scan, zero};
use signpost::PartitionInfo;
use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio_util::sync::CancellationToken;
use update_metadata::ChunkIndex;
use update_metadata::chunks::ChunkData;
use url::Url;
use verity::HashTree;

/// Chunks between the fetch and the read-back, at most, per core (and at least 4, at most 16
/// in all): enough to keep every worker busy.
const SLOTS_PER_CORE: usize = 2;
/// How much nicer than the install the decode workers run (19 from a nice value of 0, the
/// lowest): hashing and decompressing give way to the fetch (and, on a node, to its workloads),
/// so that the next request goes out as soon as there is room for it (docs/benchmarks.md,
/// "Decode workers at the lowest priority").
const DECODE_NICER: i32 = 19;
/// Uncompressed bytes written between two checkpoints, at most. A checkpoint syncs on its own
/// thread, so the writer does not wait for it.
const CHECKPOINT_MAX: u64 = 64 << 20;

/// Where the chunk file is.
#[derive(Debug, Clone)]
pub(crate) enum ChunkSource {
    /// Over HTTP(S), with Range requests.
    Http(UpdogTransport, Url),
    /// A local file (a `file://` repository).
    File(PathBuf),
}

impl ChunkSource {
    fn describe(&self) -> String {
        match self {
            ChunkSource::Http(_, url) => url.to_string(),
            ChunkSource::File(path) => path.display().to_string(),
        }
    }
}

/// One image to install from its index.
#[derive(Debug)]
pub(crate) struct ChunkedJob<'a> {
    /// `boot`, `root` or `hash`.
    pub image: &'static str,
    /// The image's target name (for messages).
    pub target: &'a str,
    /// Its chunk index.
    pub index: Arc<ChunkIndex>,
    /// Where its chunk file is.
    pub source: ChunkSource,
    /// The inactive partition it goes to.
    pub partition: &'a PartitionInfo,
    /// The running set's partition of the same kind.
    pub active: Option<&'a PartitionInfo>,
    /// The running release's index of the same image, if it has one.
    pub active_index: Option<&'a ChunkIndex>,
    /// ROOT's verity tree.
    pub tree: Option<&'a Arc<HashTree>>,
}

/// What a chunked install did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChunkCounts {
    /// Chunks in the image.
    pub total: u64,
    /// Chunks already in place.
    pub reused: u64,
    /// Chunks copied from the running set.
    pub copied: u64,
    /// All-zero chunks written as zeros.
    pub zeroed: u64,
    /// Chunks downloaded.
    pub downloaded: u64,
    /// Compressed bytes received (as they arrive, so a chunk still arriving counts in part;
    /// once the install is done, the compressed bytes of the chunks downloaded).
    pub bytes_downloaded: u64,
}

/// How a chunked install ended.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Every chunk is on disk and verified.
    Installed(ChunkCounts),
    /// The server does not answer Range requests: nothing was downloaded; stream the image.
    NoRange,
}

/// Installs `job`'s image into its partition from the chunk index.
pub(crate) async fn install_chunked(
    disk: &Path,
    job: &ChunkedJob<'_>,
    version: &str,
    learned: &mut Learned,
    progress: &dyn ProgressSink,
    cancel: &CancellationToken,
) -> Result<Outcome> {
    let index = job.index.clone();
    if index.image_length() > job.partition.size_bytes() {
        return error::TooLargeSnafu {
            target: job.target,
            partition: &job.partition.label,
            capacity: job.partition.size_bytes(),
        }
        .fail();
    }
    if let Some(tree) = job.tree {
        if tree.params().data_size() > index.image_length() {
            return Err(error::Error::Verify {
                partition: job.partition.label.clone(),
                reason: format!(
                    "verity.params covers {} bytes but the ROOT image has {}",
                    tree.params().data_size(),
                    index.image_length()
                ),
            });
        }
    }
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(disk)
        .map_err(|source| disk_error(disk, "open for writing", source))?;
    let partition = PartitionFile {
        file: Arc::new(file),
        disk: disk.to_path_buf(),
        start: job.partition.byte_range().start,
        label: job.partition.label.clone(),
    };
    let event = |counts: &ChunkCounts, done: u64, total: u64, started: Instant| {
        let secs = started.elapsed().as_secs_f64();
        ProgressEvent {
            image: Some(job.image.to_string()),
            bytes_done: done,
            bytes_total: Some(total),
            rate: (secs > 0.0).then(|| done as f64 / secs),
            chunks_total: Some(counts.total),
            chunks_reused: Some(counts.reused),
            chunks_copied: Some(counts.copied + counts.zeroed),
            chunks_downloaded: Some(counts.downloaded),
            ..ProgressEvent::phase(Phase::Download, Some(version))
        }
    };

    let scan_started = Instant::now();
    // 1 and 2: what is in place, what can be copied (written now), what to zero or fetch.
    let actions = {
        let (partition, index) = (partition.clone(), index.clone());
        let active = job.active.map(|p| (p.byte_range().start, p.size_bytes()));
        let tree = job.tree.cloned();
        let active_index = job.active_index.cloned();
        blocking("scan the partition", move || {
            scan(
                &partition,
                &index,
                tree.as_deref(),
                active,
                active_index.as_ref(),
            )
        })
        .await?
    };
    let mut counts = ChunkCounts {
        total: index.chunks().len() as u64,
        ..ChunkCounts::default()
    };
    for a in &actions {
        match a {
            Action::InPlace | Action::Unspooled => counts.reused += 1,
            Action::Copied => counts.copied += 1,
            // Counted once their thread has written them.
            Action::Zeroed | Action::Download => {}
        }
    }
    let todo: Vec<usize> = (0..actions.len())
        .filter(|&i| actions[i] == Action::Download)
        .collect();
    let zeros: Vec<usize> = (0..actions.len())
        .filter(|&i| actions[i] == Action::Zeroed)
        .collect();
    let total_bytes: u64 = todo
        .iter()
        .map(|&i| match index.chunks()[i].data {
            ChunkData::Stored { length, .. } => length,
            ChunkData::Zero => 0,
        })
        .sum();
    let started = Instant::now();
    progress.event(&event(&counts, 0, total_bytes, started));
    let unspooled = actions.iter().filter(|&&a| a == Action::Unspooled).count();
    tracing::info!(
        "{}: {} chunks, {} in place ({unspooled} of them from the spool), {} copied, {} to zero, \
         {} to download ({total_bytes} bytes)",
        job.target,
        counts.total,
        counts.reused,
        counts.copied,
        zeros.len(),
        todo.len()
    );
    if cancel.is_cancelled() {
        return error::CancelledSnafu.fail();
    }

    tracing::debug!("{}: scanned in {:?}", job.target, scan_started.elapsed());
    // 3: fetch, check, decompress, write; the all-zero chunks are written meanwhile, on a
    // thread of their own.
    let zero_count = zeros.len() as u64;
    let zeroing = (!zeros.is_empty()).then(|| {
        let (partition, index) = (partition.clone(), index.clone());
        tokio::task::spawn_blocking(move || zero(&partition, &index, &zeros))
    });
    let fetched = if todo.is_empty() {
        Ok(true)
    } else {
        download(
            &partition,
            job,
            &todo,
            &mut counts,
            learned,
            &|c: &ChunkCounts, done| progress.event(&event(c, done, total_bytes, started)),
            cancel,
        )
        .await
    };
    // The zeros are written before anything else happens to the partition (a streamed image
    // after `NoRange`, or the sync), whatever the download's outcome.
    if let Some(zeroing) = zeroing {
        let zeroed = zeroing.await.map_err(|e| error::Error::Worker {
            action: "write the all-zero chunks",
            reason: e.to_string(),
        });
        // A download's error explains more than a zero chunk's.
        if fetched.is_ok() {
            zeroed??;
            counts.zeroed = zero_count;
        }
    }
    if !fetched? {
        return Ok(Outcome::NoRange);
    }
    tracing::debug!("{}: written in {:?}", job.target, started.elapsed());
    // Every chunk written was read back and checked as it was written; make them durable.
    let sync_started = Instant::now();
    partition
        .file
        .sync_data()
        .map_err(|e| partition.io_error("sync", e))?;
    tracing::debug!("{}: synced in {:?}", job.target, sync_started.elapsed());
    powercut::point("updog.partition-synced");
    progress.event(&event(
        &counts,
        counts.bytes_downloaded,
        total_bytes,
        started,
    ));

    Ok(Outcome::Installed(counts))
}

/// Makes the calling thread [`DECODE_NICER`] nicer than it is (at most 19). On Linux the nice
/// value belongs to a thread, and `PRIO_PROCESS` with no pid reads and sets the caller's.
/// Lowering a priority needs no privilege; if it fails, the worker keeps the install's.
fn lower_priority() {
    let lowered = rustix::process::getpriority_process(None)
        .and_then(|nice| rustix::process::setpriority_process(None, (nice + DECODE_NICER).min(19)));
    if let Err(e) = lowered {
        tracing::debug!("decode worker left at the install's priority: {e}");
    }
}

fn disk_error(disk: &Path, action: &str, source: std::io::Error) -> error::Error {
    error::Error::DiskIo {
        action: action.to_string(),
        disk: disk.to_path_buf(),
        source,
    }
}

fn verify_error(label: &str, reason: String) -> error::Error {
    error::Error::Verify {
        partition: label.to_string(),
        reason,
    }
}

/// Downloads the `todo` chunks (stored chunks only) and writes them. `Ok(false)`: the server
/// ignored the Range request before anything was fetched.
#[allow(clippy::too_many_arguments)]
async fn download(
    partition: &PartitionFile,
    job: &ChunkedJob<'_>,
    todo: &[usize],
    counts: &mut ChunkCounts,
    learned: &mut Learned,
    report: &(dyn Fn(&ChunkCounts, u64) + Sync),
    cancel: &CancellationToken,
) -> Result<bool> {
    let index = job.index.clone();
    // How many chunks are read back (the next to write, in sequence order).
    let (written_tx, written) = tokio::sync::watch::channel(0usize);
    let workers = std::thread::available_parallelism().map_or(1, usize::from);
    let slots = (SLOTS_PER_CORE * workers).clamp(4, 16);
    // The fetch may run ahead of the writer by the budget and a few windows of chunks more.
    let stored = index
        .chunks()
        .iter()
        .filter(|c| c.data != ChunkData::Zero)
        .count()
        .max(1) as u64;
    let window_bytes = slots as u64 * index.chunk_file_length().div_ceil(stored);
    let limits = Arc::new(Limits::new(
        BUDGET_CHUNKS * index.chunk_size(),
        window_bytes.max(1),
        workers,
        *learned,
    ));
    let buffers = Arc::new(Buffers::new(index.chunk_size() as usize));
    let (job_tx, job_rx) = tokio::sync::mpsc::channel::<Fetched>(slots);
    let job_rx = Arc::new(Mutex::new(job_rx));
    let (out_tx, out_rx) = std::sync::mpsc::channel::<Result<Decoded>>();
    let mut handles = Vec::new();
    for _ in 0..workers {
        let (rx, tx, index) = (job_rx.clone(), out_tx.clone(), index.clone());
        let (buffers, limits) = (buffers.clone(), limits.clone());
        let (target, file_name) = (job.target.to_string(), index.chunk_file().clone());
        let mut spooled = SpoolReader {
            partition: partition.clone(),
            buf: vec![0; index.chunk_size() as usize],
        };
        let worker = std::thread::Builder::new().name("updog-decode".to_string());
        let spawned = worker.spawn(move || {
            lower_priority();
            loop {
                let next = rx
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .blocking_recv();
                let Some(fetched) = next else { return };
                let began = Instant::now();
                let length = fetch::stored(&index, fetched.chunk).1;
                let decoded = decode(&index, &target, &buffers, &mut spooled, fetched);
                limits.decoded(length, began.elapsed());
                if decoded.is_err() {
                    tracing::debug!("refused a chunk of {}", file_name.as_str());
                }
                if tx.send(decoded).is_err() {
                    return;
                }
            }
        });
        handles.push(spawned.map_err(|e| error::Error::Worker {
            action: "start the decode workers",
            reason: e.to_string(),
        })?);
    }
    drop(out_tx);
    // About sixteen checkpoints per image, at most 64 MiB apart: the partition is written back
    // while the download goes on, and the final sync has little left to wait for (a power cut
    // loses less, too).
    let checkpoint = (todo.len() as u64 * index.chunk_size() / 16).clamp(
        4 * index.chunk_size(),
        CHECKPOINT_MAX.max(4 * index.chunk_size()),
    );
    let writer = {
        let (partition, index, buffers) = (partition.clone(), index.clone(), buffers.clone());
        tokio::task::spawn_blocking(move || {
            write_in_order(
                &partition,
                &index,
                &buffers,
                out_rx,
                checkpoint,
                &written_tx,
            )
        })
    };

    let pipe = Pipe {
        limits: &limits,
        index: &index,
        partition,
        tx: &job_tx,
        written: &written,
        window: slots,
        waiting: Mutex::new(Default::default()),
    };
    let done = CancellationToken::new();
    let (fetched, ()) = tokio::join!(
        async {
            let fetched = fetch_all(job, todo, &pipe, counts, report, cancel).await;
            if matches!(fetched, Err(ref e) if !matches!(e, error::Error::Cancelled)) {
                pipe.forget();
            }
            done.cancel();
            fetched
        },
        pipe.forward(&done)
    );
    drop(pipe);
    drop(job_tx);
    // They stop once the channel is closed and empty (or the writer is gone).
    let _ = tokio::task::spawn_blocking(move || {
        for handle in handles {
            let _ = handle.join();
        }
    })
    .await;
    let written = writer.await.map_err(|e| error::Error::Worker {
        action: "write the chunks",
        reason: e.to_string(),
    })?;
    // The writer's error (a bad chunk) explains a fetch that stopped because of it.
    let written = written?;
    *learned = limits.learned();
    match fetched {
        Ok(true) if written != todo.len() as u64 => Err(error::Error::Worker {
            action: "write the chunks",
            reason: format!("chunk sequence {written} never arrived"),
        }),
        Ok(true) => {
            counts.downloaded = written;
            Ok(true)
        }
        Ok(false) => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    #[test]
    fn a_decode_worker_runs_nicer_than_the_install() {
        let install = rustix::process::getpriority_process(None).unwrap();
        let worker = std::thread::spawn(|| {
            super::lower_priority();
            rustix::process::getpriority_process(None).unwrap()
        })
        .join()
        .unwrap();
        assert_eq!(worker, (install + super::DECODE_NICER).min(19));
        // The nice value is the thread's: the install's own threads keep theirs.
        assert_eq!(rustix::process::getpriority_process(None).unwrap(), install);
    }
}
