//! Installing one image from its chunk index (docs/formats.md, "Chunk index").
//!
//! For each chunk of the new image, in order of preference:
//!
//! 1. it is already in the inactive partition at its offset: skip it. This is how an interrupted
//!    install resumes; the partition itself is the journal, so there is no progress file to get
//!    out of step with it. The partition is synced before it is scanned, so what is read is what
//!    a power cut would leave.
//! 2. it is in the running set's same partition, at the same offset or (through the running
//!    release's index) at any offset: copy it locally. An all-zero chunk is written as zeros.
//! 3. otherwise fetch its compressed bytes with an HTTP Range request (adjacent chunks coalesced
//!    into one request of at most [`RANGE_CAP`] bytes), check their sha256 from the index
//!    **before** decompressing, decompress and write.
//!
//! Checks: a ROOT chunk against the verity tree (authenticated by BOOT's root hash) for the
//! blocks it covers, any other chunk against its sha256 in the index; a cheap first look at the
//! chunk's first 4 KiB (a leaf of the tree, or zeros) rules out most chunks that are not there
//! before the whole chunk is read. Chunks found in place are thereby verified on disk; every
//! chunk written is read back from the partition right after it is written (by a pool of
//! verifier threads, while the next ones are written) and checked the same way; one sync at the
//! end (and background syncs at checkpoints) make it durable before the set can be marked valid.
//!
//! Concurrency and memory: the scan runs on every core. Downloads run on the async side; the
//! compressed chunks go to one worker thread per core (hash, decompress) and from there to one
//! writer thread, which writes them in order with `pwrite`; a syncer thread syncs at
//! checkpoints. At most two chunks per core (4 to 16) are between the fetch and the write,
//! whatever the image size. Copies
//! and zeros are written by the scan threads (each chunk independently, before any download);
//! the set is not valid until every chunk has been read back, so their order does not matter.

use crate::error::{self, Result};
use crate::progress::{Phase, ProgressEvent, ProgressSink};
use crate::transport::UpdogTransport;
use bytes::{Bytes, BytesMut};
use sha2::{Digest, Sha256};
use signpost::PartitionInfo;
use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use update_metadata::ChunkIndex;
use update_metadata::chunks::ChunkData;
use url::Url;
use verity::HashTree;

/// Chunks between the fetch and the write, at most, per core (and at least 4, at most 16 in
/// all): enough to keep every worker busy; all of them are lost if the process is killed.
const IN_FLIGHT_PER_CORE: usize = 2;
/// Compressed bytes per Range request, at most (one chunk may pass it alone).
pub(crate) const RANGE_CAP: u64 = 8 << 20;
/// Uncompressed bytes written between two checkpoints, at most. A checkpoint syncs on its own
/// thread, so the writer does not wait for it.
const CHECKPOINT_MAX: u64 = 256 << 20;
/// The first look at a chunk.
const QUICK: usize = 4096;
/// Least time between two download events.
const EVENT_EVERY: Duration = Duration::from_millis(250);

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
    pub tree: Option<&'a HashTree>,
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
    /// Their compressed bytes.
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    InPlace,
    Copied,
    Zeroed,
    Download,
}

/// Checks chunk bytes against the tree or the index.
struct Checker<'a> {
    index: &'a ChunkIndex,
    tree: Option<&'a HashTree>,
}

impl Checker<'_> {
    /// Bytes of chunk `i` that the tree covers.
    fn covered(&self, i: usize) -> u64 {
        let range = self.index.range(i);
        match self.tree {
            Some(tree) => tree
                .params()
                .data_size()
                .clamp(range.start, range.end)
                .saturating_sub(range.start),
            None => 0,
        }
    }

    /// Whether the first bytes of a chunk may be chunk `i` (false: they cannot).
    fn maybe(&self, i: usize, first: &[u8]) -> bool {
        if self.index.chunks()[i].data == ChunkData::Zero {
            return first.iter().all(|&b| b == 0);
        }
        match self.tree {
            Some(tree) if self.covered(i) >= first.len() as u64 => {
                let block = self.index.range(i).start / u64::from(tree.params().data_block_size());
                tree.check_blocks(block, first).is_ok()
            }
            _ => true,
        }
    }

    /// Checks the whole of chunk `i`.
    fn check(&self, i: usize, bytes: &[u8]) -> std::result::Result<(), String> {
        let chunk = &self.index.chunks()[i];
        let covered = self.covered(i) as usize;
        if let Some(tree) = self.tree.filter(|_| covered > 0) {
            let block = self.index.range(i).start / u64::from(tree.params().data_block_size());
            tree.check_blocks(block, &bytes[..covered])
                .map_err(|e| format!("does not match HASH: {e}"))?;
            if covered == bytes.len() {
                return Ok(());
            }
        }
        if chunk.data == ChunkData::Zero {
            return match bytes.iter().position(|&b| b != 0) {
                None => Ok(()),
                Some(at) => Err(format!("byte {at} is not zero")),
            };
        }
        let actual: [u8; 32] = Sha256::digest(bytes).into();
        if &actual == chunk.sha256.as_bytes() {
            Ok(())
        } else {
            Err(format!(
                "sha256 {}, but the index says {}",
                hex::encode(actual),
                chunk.sha256
            ))
        }
    }
}

/// Installs `job`'s image into its partition from the chunk index.
pub(crate) async fn install_chunked(
    disk: &Path,
    job: &ChunkedJob<'_>,
    version: &str,
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
    let file = Arc::new(
        OpenOptions::new()
            .read(true)
            .write(true)
            .open(disk)
            .map_err(|source| disk_error(disk, "open for writing", source))?,
    );
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

    // One copy of ROOT's tree for the threads that check chunks.
    let tree: Arc<Option<HashTree>> = Arc::new(job.tree.cloned());
    // 1 and 2: what is in place, what can be copied or zeroed (written now), what to fetch.
    let actions = {
        let (file, index, label) = (file.clone(), index.clone(), job.partition.label.clone());
        let start = job.partition.byte_range().start;
        let active = job.active.map(|p| (p.byte_range().start, p.size_bytes()));
        let tree = tree.clone();
        let active_index = job.active_index.cloned();
        let disk = disk.to_path_buf();
        blocking("scan the partition", move || {
            scan(
                &disk,
                &file,
                start,
                &label,
                &index,
                (*tree).as_ref(),
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
            Action::InPlace => counts.reused += 1,
            Action::Copied => counts.copied += 1,
            Action::Zeroed => counts.zeroed += 1,
            Action::Download => {}
        }
    }
    let todo: Vec<usize> = (0..actions.len())
        .filter(|&i| actions[i] == Action::Download)
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
    tracing::info!(
        "{}: {} chunks, {} in place, {} copied, {} zeroed, {} to download ({total_bytes} bytes)",
        job.target,
        counts.total,
        counts.reused,
        counts.copied,
        counts.zeroed,
        todo.len()
    );
    if cancel.is_cancelled() {
        return error::CancelledSnafu.fail();
    }

    // 3: fetch, check, decompress, write.
    if !todo.is_empty() {
        let fetched = download(
            disk,
            &file,
            job,
            &todo,
            &tree,
            &mut counts,
            &|c: &ChunkCounts, done| progress.event(&event(c, done, total_bytes, started)),
            cancel,
        )
        .await?;
        if !fetched {
            return Ok(Outcome::NoRange);
        }
    }
    // Every chunk written was read back and checked as it was written; make them durable.
    file.sync_data()
        .map_err(|source| disk_error(disk, &format!("sync {}", job.partition.label), source))?;
    powercut::point("updog.partition-synced");
    progress.event(&event(
        &counts,
        counts.bytes_downloaded,
        total_bytes,
        started,
    ));

    Ok(Outcome::Installed(counts))
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

/// Runs `work` on each item on every core, each thread with its own buffer of `buf_len` bytes.
fn parallel(
    items: &[usize],
    work: impl Fn(usize, &mut [u8]) -> Result<()> + Sync,
    buf_len: usize,
) -> Result<()> {
    let threads = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .clamp(1, 8)
        .min(items.len().max(1));
    let next = AtomicUsize::new(0);
    let results: Vec<Result<()>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| -> Result<()> {
                    let mut buf = vec![0u8; buf_len];
                    loop {
                        let n = next.fetch_add(1, Ordering::Relaxed);
                        let Some(&i) = items.get(n) else {
                            return Ok(());
                        };
                        work(i, &mut buf)?;
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(error::Error::Worker {
                        action: "check chunks",
                        reason: "a thread panicked".to_string(),
                    })
                })
            })
            .collect()
    });
    results.into_iter().collect()
}

/// Decides each chunk's action; writes copies and zeros at once, each read back and checked.
#[allow(clippy::too_many_arguments)]
fn scan(
    disk: &Path,
    file: &File,
    start: u64,
    label: &str,
    index: &ChunkIndex,
    tree: Option<&HashTree>,
    active: Option<(u64, u64)>,
    active_index: Option<&ChunkIndex>,
) -> Result<Vec<Action>> {
    // What a previous run wrote may still be in the page cache only (a killed process): it is
    // read as it will be on disk, because the final sync flushes every dirty page of the disk,
    // whichever run wrote it. After a power cut, only what reached the disk is read.
    let checker = Checker { index, tree };
    // The running release's chunks by content, for copies from any offset.
    let by_hash: HashMap<[u8; 32], std::ops::Range<u64>> = active_index
        .map(|ai| {
            ai.chunks()
                .iter()
                .enumerate()
                .filter(|(_, c)| c.data != ChunkData::Zero)
                .map(|(j, c)| (*c.sha256.as_bytes(), ai.range(j)))
                .collect()
        })
        .unwrap_or_default();
    let actions: Vec<Mutex<Action>> = (0..index.chunks().len())
        .map(|_| Mutex::new(Action::Download))
        .collect();
    let all: Vec<usize> = (0..index.chunks().len()).collect();
    let io = |action: &str, e: std::io::Error| disk_error(disk, &format!("{action} {label}"), e);
    // Reads `len` bytes at `at` and checks them as chunk `i`, looking at the first 4 KiB first.
    let matches = |i: usize, at: u64, buf: &mut [u8]| -> Result<bool> {
        let quick = buf.len().min(QUICK);
        file.read_exact_at(&mut buf[..quick], at)
            .map_err(|e| io("read", e))?;
        if !checker.maybe(i, &buf[..quick]) {
            return Ok(false);
        }
        if buf.len() > quick {
            file.read_exact_at(&mut buf[quick..], at + quick as u64)
                .map_err(|e| io("read", e))?;
        }
        Ok(checker.check(i, buf).is_ok())
    };
    // Reads chunk `i` back from the partition after writing it, and checks it.
    let read_back = |i: usize, buf: &mut [u8]| -> Result<()> {
        file.read_exact_at(buf, start + index.range(i).start)
            .map_err(|e| io("read back", e))?;
        checker
            .check(i, buf)
            .map_err(|reason| verify_error(label, format!("chunk {i} read back {reason}")))
    };
    parallel(
        &all,
        |i, buf| {
            let range = index.range(i);
            let len = (range.end - range.start) as usize;
            let buf = &mut buf[..len];
            let action = if matches(i, start + range.start, buf)? {
                Action::InPlace
            } else if index.chunks()[i].data == ChunkData::Zero {
                buf.fill(0);
                file.write_all_at(buf, start + range.start)
                    .map_err(|e| io("write", e))?;
                read_back(i, buf)?;
                Action::Zeroed
            } else {
                let mut candidates = Vec::new();
                if let Some((active_start, active_size)) = active {
                    if range.end <= active_size {
                        candidates.push(active_start + range.start);
                    }
                    if let Some(r) = by_hash.get(index.chunks()[i].sha256.as_bytes()) {
                        if r.end - r.start == len as u64
                            && r.start != range.start
                            && r.end <= active_size
                        {
                            candidates.push(active_start + r.start);
                        }
                    }
                }
                let mut copied = false;
                for from in candidates {
                    if matches(i, from, buf)? {
                        file.write_all_at(buf, start + range.start)
                            .map_err(|e| io("write", e))?;
                        read_back(i, buf)?;
                        copied = true;
                        break;
                    }
                }
                if copied {
                    Action::Copied
                } else {
                    Action::Download
                }
            };
            *actions[i]
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = action;
            Ok(())
        },
        index.chunk_size() as usize,
    )?;
    Ok(actions
        .into_iter()
        .map(|m| {
            m.into_inner()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        })
        .collect())
}

/// Adjacent stored chunks fetched in one request.
#[derive(Debug)]
struct Span {
    /// (sequence number, chunk number) of each chunk, in order.
    chunks: Vec<(usize, usize)>,
    end: u64,
}

fn spans(index: &ChunkIndex, todo: &[usize]) -> Vec<Span> {
    let mut spans: Vec<Span> = Vec::new();
    for (seq, &i) in todo.iter().enumerate() {
        let ChunkData::Stored { offset, length, .. } = index.chunks()[i].data else {
            continue;
        };
        match spans.last_mut() {
            Some(span)
                if span.end == offset
                    && offset + length - stored(index, span.chunks[0].1).0 <= RANGE_CAP =>
            {
                span.chunks.push((seq, i));
                span.end = offset + length;
            }
            _ => spans.push(Span {
                chunks: vec![(seq, i)],
                end: offset + length,
            }),
        }
    }
    spans
}

/// (offset, length, sha256) of a stored chunk; (0, 0, zeros) for a zero chunk.
fn stored(index: &ChunkIndex, i: usize) -> (u64, u64, [u8; 32]) {
    match index.chunks()[i].data {
        ChunkData::Stored {
            offset,
            length,
            sha256,
        } => (offset, length, *sha256.as_bytes()),
        ChunkData::Zero => (0, 0, [0; 32]),
    }
}

/// A compressed chunk on its way to a worker.
struct Fetched {
    seq: usize,
    chunk: usize,
    bytes: Bytes,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

/// A decompressed chunk on its way to the writer.
struct Decoded {
    seq: usize,
    chunk: usize,
    data: Vec<u8>,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

/// Downloads the `todo` chunks and writes them. `Ok(false)`: the server ignored the Range
/// request before anything was fetched.
#[allow(clippy::too_many_arguments)]
async fn download(
    disk: &Path,
    file: &Arc<File>,
    job: &ChunkedJob<'_>,
    todo: &[usize],
    tree: &Arc<Option<HashTree>>,
    counts: &mut ChunkCounts,
    report: &(dyn Fn(&ChunkCounts, u64) + Sync),
    cancel: &CancellationToken,
) -> Result<bool> {
    let index = job.index.clone();
    let spans = spans(&index, todo);
    let downloaded = Arc::new(AtomicU64::new(0));
    let workers = std::thread::available_parallelism().map_or(1, usize::from);
    let in_flight = (IN_FLIGHT_PER_CORE * workers).clamp(4, 16);
    let permits = Arc::new(tokio::sync::Semaphore::new(in_flight));
    let (job_tx, job_rx) = tokio::sync::mpsc::channel::<Fetched>(in_flight);
    let job_rx = Arc::new(Mutex::new(job_rx));
    let (out_tx, out_rx) = std::sync::mpsc::channel::<Result<Decoded>>();
    let mut handles = Vec::new();
    for _ in 0..workers {
        let (rx, tx, index) = (job_rx.clone(), out_tx.clone(), index.clone());
        let (target, file_name) = (job.target.to_string(), index.chunk_file().clone());
        handles.push(tokio::task::spawn_blocking(move || {
            loop {
                let next = rx
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .blocking_recv();
                let Some(fetched) = next else { return };
                let decoded = decode(&index, &target, fetched);
                if decoded.is_err() {
                    tracing::debug!("refused a chunk of {}", file_name.as_str());
                }
                if tx.send(decoded).is_err() {
                    return;
                }
            }
        }));
    }
    drop(out_tx);
    // About four checkpoints per image.
    let checkpoint = (todo.len() as u64 * index.chunk_size() / 4).clamp(
        4 * index.chunk_size(),
        CHECKPOINT_MAX.max(4 * index.chunk_size()),
    );
    let writer = {
        let (file, index, disk) = (file.clone(), index.clone(), disk.to_path_buf());
        let (label, start) = (
            job.partition.label.clone(),
            job.partition.byte_range().start,
        );
        let expected = todo.len();
        let downloaded = downloaded.clone();
        let tree = tree.clone();
        tokio::task::spawn_blocking(move || {
            write_in_order(
                &file,
                &disk,
                &label,
                start,
                &index,
                (*tree).as_ref(),
                out_rx,
                expected,
                checkpoint,
                &downloaded,
            )
        })
    };

    let fetched = fetch_all(
        job,
        &spans,
        &permits,
        &job_tx,
        counts,
        &downloaded,
        report,
        cancel,
    )
    .await;
    drop(job_tx);
    for handle in handles {
        let _ = handle.await;
    }
    let written = writer.await.map_err(|e| error::Error::Worker {
        action: "write the chunks",
        reason: e.to_string(),
    })?;
    // The writer's error (a bad chunk) explains a fetch that stopped because of it.
    let written = written?;
    match fetched {
        Ok(true) => {
            counts.downloaded = written;
            Ok(true)
        }
        Ok(false) => Ok(false),
        Err(e) => Err(e),
    }
}

fn decode(index: &ChunkIndex, target: &str, fetched: Fetched) -> Result<Decoded> {
    let (offset, length, sha) = stored(index, fetched.chunk);
    let bad = |reason: String| error::Error::BadChunk {
        target: target.to_string(),
        chunk: fetched.chunk,
        start: offset,
        end: offset + length,
        reason,
    };
    let actual: [u8; 32] = Sha256::digest(&fetched.bytes).into();
    if actual != sha {
        return Err(bad(format!(
            "its sha256 is {}, but the index says {}",
            hex::encode(actual),
            hex::encode(sha)
        )));
    }
    let range = index.range(fetched.chunk);
    let mut data = vec![0u8; (range.end - range.start) as usize];
    let n = lz4_flex::block::decompress_into(&fetched.bytes, &mut data)
        .map_err(|e| bad(format!("it is not an lz4 block: {e}")))?;
    if n != data.len() {
        return Err(bad(format!(
            "it decompresses to {n} bytes, not {}",
            data.len()
        )));
    }
    Ok(Decoded {
        seq: fetched.seq,
        chunk: fetched.chunk,
        data,
        _permit: fetched._permit,
    })
}

/// Writes the decoded chunks in sequence order; returns how many. Each chunk written is read
/// back and checked by one of a pool of verifier threads while the next ones are written. Every
/// `checkpoint` bytes it asks a syncer thread for a sync (and its power-cut point) and carries
/// on writing.
#[allow(clippy::too_many_arguments)]
fn write_in_order(
    file: &Arc<File>,
    disk: &Path,
    label: &str,
    start: u64,
    index: &ChunkIndex,
    tree: Option<&HashTree>,
    rx: std::sync::mpsc::Receiver<Result<Decoded>>,
    expected: usize,
    checkpoint: u64,
    written_count: &AtomicU64,
) -> Result<u64> {
    let (sync_tx, sync_rx) = std::sync::mpsc::channel::<()>();
    let syncer = {
        let file = file.clone();
        std::thread::spawn(move || -> std::io::Result<()> {
            for () in sync_rx {
                file.sync_data()?;
                powercut::point("updog.chunks-checkpoint");
            }
            Ok(())
        })
    };
    let checker = Checker { index, tree };
    let verifiers = std::thread::available_parallelism().map_or(1, usize::from);
    let (verify_tx, verify_rx) = std::sync::mpsc::channel::<usize>();
    let verify_rx = Mutex::new(verify_rx);
    let mut pending: BTreeMap<usize, Decoded> = BTreeMap::new();
    let (mut next, mut since_sync) = (0usize, 0u64);
    let (written, verified) = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..verifiers)
            .map(|_| {
                scope.spawn(|| -> Result<()> {
                    let mut buf = vec![0u8; index.chunk_size() as usize];
                    let mut failed = None;
                    loop {
                        let i = match verify_rx
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .recv()
                        {
                            Ok(i) => i,
                            Err(_) => return failed.map_or(Ok(()), Err),
                        };
                        if failed.is_some() {
                            continue;
                        }
                        let range = index.range(i);
                        let bytes = &mut buf[..(range.end - range.start) as usize];
                        let checked = file
                            .read_exact_at(bytes, start + range.start)
                            .map_err(|e| format!("cannot be read back: {e}"))
                            .and_then(|()| {
                                checker
                                    .check(i, bytes)
                                    .map_err(|r| format!("read back {r}"))
                            });
                        if let Err(reason) = checked {
                            failed = Some(verify_error(label, format!("chunk {i} {reason}")));
                        }
                    }
                })
            })
            .collect();
        let written = (|| -> Result<()> {
            for decoded in rx {
                let decoded = decoded?;
                pending.insert(decoded.seq, decoded);
                while let Some(d) = pending.remove(&next) {
                    let at = start + index.range(d.chunk).start;
                    file.write_all_at(&d.data, at)
                        .map_err(|source| disk_error(disk, &format!("write {label}"), source))?;
                    let _ = verify_tx.send(d.chunk);
                    since_sync += d.data.len() as u64;
                    next += 1;
                    written_count.store(next as u64, Ordering::Relaxed);
                    if since_sync >= checkpoint {
                        let _ = sync_tx.send(());
                        since_sync = 0;
                    }
                }
            }
            Ok(())
        })();
        drop(verify_tx);
        let verified: Result<()> = handles.into_iter().try_for_each(|h| {
            h.join().unwrap_or_else(|_| {
                Err(error::Error::Worker {
                    action: "verify the chunks",
                    reason: "a verifier panicked".to_string(),
                })
            })
        });
        (written, verified)
    });
    drop(sync_tx);
    let synced = syncer.join().map_err(|_| error::Error::Worker {
        action: "sync the chunks",
        reason: "the syncer panicked".to_string(),
    })?;
    written?;
    verified?;
    synced.map_err(|source| disk_error(disk, &format!("sync {label}"), source))?;
    if next != expected && !pending.is_empty() {
        return Err(error::Error::Worker {
            action: "write the chunks",
            reason: format!("chunk sequence {next} never arrived"),
        });
    }
    Ok(next as u64)
}

/// Fetches every span; `Ok(false)` if the server ignored Range on the first request.
#[allow(clippy::too_many_arguments)]
async fn fetch_all(
    job: &ChunkedJob<'_>,
    spans: &[Span],
    permits: &Arc<tokio::sync::Semaphore>,
    tx: &tokio::sync::mpsc::Sender<Fetched>,
    counts: &mut ChunkCounts,
    written: &AtomicU64,
    report: &(dyn Fn(&ChunkCounts, u64) + Sync),
    cancel: &CancellationToken,
) -> Result<bool> {
    let index = &job.index;
    let mut last_event = Instant::now();
    let mut first = true;
    let stopped = || error::Error::Worker {
        action: "write the chunks",
        reason: "the writer stopped".to_string(),
    };
    for span in spans {
        let mut next = 0usize;
        let mut failures = 0u32;
        while next < span.chunks.len() {
            let from = stored(index, span.chunks[next].1).0;
            let end = span.end;
            let range_error = |reason: String| error::Error::FetchRange {
                url: job.source.describe(),
                start: from,
                end,
                reason,
            };
            match &job.source {
                ChunkSource::File(path) => {
                    let file = File::open(path).map_err(|e| range_error(e.to_string()))?;
                    while next < span.chunks.len() {
                        let (seq, chunk) = span.chunks[next];
                        let (offset, length, _) = stored(index, chunk);
                        let mut bytes = vec![0u8; length as usize];
                        file.read_exact_at(&mut bytes, offset)
                            .map_err(|e| range_error(e.to_string()))?;
                        let permit = acquire(permits, cancel).await?;
                        counts.bytes_downloaded += length;
                        let fetched = Fetched {
                            seq,
                            chunk,
                            bytes: Bytes::from(bytes),
                            _permit: permit,
                        };
                        tx.send(fetched).await.map_err(|_| stopped())?;
                        next += 1;
                        tick(counts, written, report, &mut last_event);
                    }
                }
                ChunkSource::Http(transport, url) => {
                    let response = tokio::select! {
                        biased;
                        () = cancel.cancelled() => return error::CancelledSnafu.fail(),
                        r = transport.get_range(url, from, end) => r,
                    };
                    let mut response = match response {
                        Ok(Some(response)) => response,
                        Ok(None) if first => {
                            tracing::info!("{url} ignores Range requests: streaming the image");
                            return Ok(false);
                        }
                        Ok(None) => {
                            return Err(range_error(
                                "the server stopped answering Range requests".to_string(),
                            ));
                        }
                        Err(reason) => return Err(range_error(reason)),
                    };
                    first = false;
                    let mut buf = BytesMut::new();
                    let failed = loop {
                        let body = tokio::select! {
                            biased;
                            () = cancel.cancelled() => return error::CancelledSnafu.fail(),
                            body = tokio::time::timeout(EVENT_EVERY, response.chunk()) => body,
                        };
                        let piece = match body {
                            Err(_) => {
                                tick(counts, written, report, &mut last_event);
                                continue;
                            }
                            Ok(Ok(Some(piece))) => piece,
                            Ok(Ok(None)) => break None,
                            Ok(Err(e)) => break Some(e.to_string()),
                        };
                        buf.extend_from_slice(&piece);
                        while next < span.chunks.len() {
                            let (seq, chunk) = span.chunks[next];
                            let length = stored(index, chunk).1 as usize;
                            if buf.len() < length {
                                break;
                            }
                            let bytes = buf.split_to(length).freeze();
                            let permit = acquire(permits, cancel).await?;
                            counts.bytes_downloaded += length as u64;
                            tx.send(Fetched {
                                seq,
                                chunk,
                                bytes,
                                _permit: permit,
                            })
                            .await
                            .map_err(|_| stopped())?;
                            next += 1;
                            tick(counts, written, report, &mut last_event);
                        }
                    };
                    if next < span.chunks.len() {
                        let reason = failed.unwrap_or_else(|| "the body ended early".to_string());
                        failures += 1;
                        if failures >= transport.tries() {
                            return Err(range_error(format!("{reason} (after {failures} tries)")));
                        }
                        tracing::info!("{url}: {reason}; fetching the rest of the range again");
                    }
                }
            }
        }
    }
    Ok(true)
}

async fn acquire(
    permits: &Arc<tokio::sync::Semaphore>,
    cancel: &CancellationToken,
) -> Result<tokio::sync::OwnedSemaphorePermit> {
    tokio::select! {
        biased;
        () = cancel.cancelled() => error::CancelledSnafu.fail(),
        permit = permits.clone().acquire_owned() => permit.map_err(|e| error::Error::Worker {
            action: "write the chunks",
            reason: e.to_string(),
        }),
    }
}

fn tick(
    counts: &mut ChunkCounts,
    written: &AtomicU64,
    report: &(dyn Fn(&ChunkCounts, u64) + Sync),
    last: &mut Instant,
) {
    if last.elapsed() >= EVENT_EVERY {
        *last = Instant::now();
        counts.downloaded = written.load(Ordering::Relaxed);
        report(counts, counts.bytes_downloaded);
    }
}

/// Runs blocking work off the async threads.
async fn blocking<T: Send + 'static>(
    action: &'static str,
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| error::Error::Worker {
            action,
            reason: e.to_string(),
        })?
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use update_metadata::TargetName;
    use update_metadata::chunks::{Chunk, Sha256Digest};

    #[test]
    fn adjacent_missing_chunks_share_a_request_up_to_the_cap() {
        let d = Sha256Digest::new([1; 32]);
        let mb = 1 << 20;
        let chunks: Vec<Chunk> = (0..12)
            .map(|i| Chunk {
                sha256: d,
                data: if i == 3 {
                    ChunkData::Zero
                } else {
                    let n = if i > 3 { i - 1 } else { i };
                    ChunkData::Stored {
                        offset: n * mb,
                        length: mb,
                        sha256: d,
                    }
                },
            })
            .collect();
        let index = ChunkIndex::new(
            mb,
            12 * mb,
            d,
            TargetName::new("x.chunks").unwrap(),
            11 * mb,
            chunks,
        )
        .unwrap();
        // 0, 1 | (2 in place) | 4..=11 across the zero chunk 3, cut at 8 MiB.
        let todo = [0, 1, 4, 5, 6, 7, 8, 9, 10, 11];
        let split = spans(&index, &todo);
        let chunks: Vec<Vec<usize>> = split
            .iter()
            .map(|s| s.chunks.iter().map(|c| c.1).collect())
            .collect();
        assert_eq!(chunks, [vec![0, 1], vec![4, 5, 6, 7, 8, 9, 10, 11]]);
        assert_eq!(split[1].end, 11 * mb);
        // 2 and 4 are adjacent in the chunk file (3 is not stored): one request.
        let joined = spans(&index, &[2, 4]);
        assert_eq!(joined.len(), 1);
        assert_eq!(joined[0].chunks, [(0, 2), (1, 4)]);
    }
}
