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
//! Concurrency and memory: the scan runs on every core. Downloads run on the async side; the
//! compressed chunks go to one worker thread per core (hash, decompress) and from there to one
//! writer thread, which writes them in order with `pwrite` and reads each back; a syncer thread
//! syncs at checkpoints. Two limits hold whatever the image size: at most two chunks per core
//! (4 to 16) between the fetch and the read-back (a chunk waits, and its body with it, until
//! the chunk that many places before it is read back), and a byte budget on the compressed
//! bytes requested and not yet written (what a killed install fetches again):
//! [`BUDGET_CHUNKS`] chunk sizes, grown by what one round trip to the server (the shortest
//! time to an answer measured so far) brings at the workers' pace, or at a few times the pace
//! at which bytes arrived so far if that is less, at most [`BUDGET_MAX`] ([`Pace`]). On a far
//! server a fixed budget would leave the workers idle for a round trip per request; on a slow
//! link more requests would only share it. ROOT starts with the budget and the measures BOOT
//! and HASH reached, side by side, before it ([`Learned`]).
//! Copies and zeros are written by the scan threads (each chunk independently, before any
//! download); the set is not valid until every chunk has been checked, so their order does
//! not matter.

use super::blocking;
use super::page::PageBuf;
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

/// Chunks between the fetch and the read-back, at most, per core (and at least 4, at most 16
/// in all): enough to keep every worker busy.
const SLOTS_PER_CORE: usize = 2;
/// Compressed bytes requested and not yet written, in chunk sizes (one chunk larger than that
/// passes alone), before the first answers: what a killed install may have to fetch again.
/// With one chunk's worth, about two chunks are between the network and the disk and the
/// workers wait for the next answer; two keep them busy on loopback (docs/benchmarks.md,
/// "Resume"). The budget then grows by what one round trip to the server brings (see
/// [`Pace`]).
const BUDGET_CHUNKS: u64 = 2;
/// The byte budget never grows past this (64 MiB).
const BUDGET_MAX: u64 = 64 << 20;
/// Compressed bytes per Range request, at most (one chunk may pass it alone).
pub(crate) const RANGE_CAP: u64 = 8 << 20;
/// Uncompressed bytes written between two checkpoints, at most. A checkpoint syncs on its own
/// thread, so the writer does not wait for it.
const CHECKPOINT_MAX: u64 = 64 << 20;
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

    let scan_started = Instant::now();
    // 1 and 2: what is in place, what can be copied or zeroed (written now), what to fetch.
    let actions = {
        let (file, index, label) = (file.clone(), index.clone(), job.partition.label.clone());
        let start = job.partition.byte_range().start;
        let active = job.active.map(|p| (p.byte_range().start, p.size_bytes()));
        let tree = job.tree.cloned();
        let active_index = job.active_index.cloned();
        let disk = disk.to_path_buf();
        blocking("scan the partition", move || {
            scan(
                &disk,
                &file,
                start,
                &label,
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

    tracing::debug!("{}: scanned in {:?}", job.target, scan_started.elapsed());
    // 3: fetch, check, decompress, write.
    if !todo.is_empty() {
        let fetched = download(
            disk,
            &file,
            job,
            &todo,
            &mut counts,
            learned,
            &|c: &ChunkCounts, done| progress.event(&event(c, done, total_bytes, started)),
            cancel,
        )
        .await?;
        if !fetched {
            return Ok(Outcome::NoRange);
        }
    }
    tracing::debug!("{}: written in {:?}", job.target, started.elapsed());
    // Every chunk written was read back and checked as it was written; make them durable.
    let sync_started = Instant::now();
    file.sync_data()
        .map_err(|source| disk_error(disk, &format!("sync {}", job.partition.label), source))?;
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
                    let mut buf = PageBuf::new(buf_len);
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
    // Writes chunk `i` (bytes already checked), reads it back and compares.
    let write = |i: usize, bytes: &[u8], back: &mut [u8]| -> Result<()> {
        let at = start + index.range(i).start;
        file.write_all_at(bytes, at).map_err(|e| io("write", e))?;
        let back = &mut back[..bytes.len()];
        file.read_exact_at(back, at)
            .map_err(|e| io("read back", e))?;
        same(back, bytes).map_err(|reason| verify_error(label, format!("chunk {i} {reason}")))
    };
    parallel(
        &all,
        |i, buf| {
            let range = index.range(i);
            let len = (range.end - range.start) as usize;
            let (buf, back) = buf.split_at_mut(buf.len() / 2);
            let buf = &mut buf[..len];
            let action = if matches(i, start + range.start, buf)? {
                Action::InPlace
            } else if index.chunks()[i].data == ChunkData::Zero {
                buf.fill(0);
                write(i, buf, back)?;
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
                        write(i, buf, back)?;
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
        2 * index.chunk_size() as usize,
    )?;
    Ok(actions
        .into_iter()
        .map(|m| {
            m.into_inner()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        })
        .collect())
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

/// What a chunk holds while it is between the network and the disk: its compressed bytes'
/// share of the byte budget, given back once it is written.
type Held = tokio::sync::OwnedSemaphorePermit;

/// A compressed chunk on its way to a worker.
struct Fetched {
    seq: usize,
    chunk: usize,
    bytes: Bytes,
    held: Held,
}

/// Where fetched chunks go, and what holds them back.
struct Pipe<'a> {
    limits: &'a Limits,
    /// To the workers.
    tx: &'a tokio::sync::mpsc::Sender<Fetched>,
    /// How many chunks are read back; gone once the writer stops.
    written: &'a tokio::sync::watch::Receiver<usize>,
    /// Chunk `seq` is handed on only once chunk `seq - window` is read back: this bounds the
    /// chunks between the fetch and the read-back, whatever the budget.
    window: usize,
}

/// A decompressed chunk on its way to the writer.
struct Decoded {
    seq: usize,
    chunk: usize,
    data: Vec<u8>,
    held: Held,
}

/// Chunk-sized buffers, reused: a fresh one costs its page faults and its zeroing.
struct Buffers {
    free: Mutex<Vec<Vec<u8>>>,
    len: usize,
}

impl Buffers {
    fn new(len: usize) -> Buffers {
        Buffers {
            free: Mutex::new(Vec::new()),
            len,
        }
    }

    fn take(&self) -> Vec<u8> {
        self.free
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop()
            .unwrap_or_else(|| vec![0u8; self.len])
    }

    fn give(&self, buf: Vec<u8>) {
        self.free
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(buf);
    }
}

/// Chunks in one Range request: adjacent in the chunk file, each with its share of the budget.
struct Request {
    /// (sequence number, chunk number, what it holds) of each chunk, in order.
    chunks: Vec<(usize, usize, Held)>,
    start: u64,
    end: u64,
}

/// What the images downloaded so far in one install measured of the server and the workers
/// ([`Pace`]), and the byte budget they reached: the next image's budget starts there rather
/// than at [`BUDGET_CHUNKS`] chunk sizes, so that ROOT does not ramp up again after BOOT and
/// HASH. The link's pace is measured again for each image (it starts with a round trip in
/// which nothing arrives, which would weigh on a short image's average).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Learned {
    /// The shortest round trip, in µs.
    round_trip_us: Option<u64>,
    decoded_bytes: u64,
    decode_ns: u64,
    /// The budget's size at the end.
    budget: u64,
}

impl Learned {
    /// What two images installed at the same time measured, together: the shorter round trip,
    /// both images' decoding, the larger budget.
    pub(crate) fn merged(a: Learned, b: Learned) -> Learned {
        Learned {
            round_trip_us: match (a.round_trip_us, b.round_trip_us) {
                (Some(x), Some(y)) => Some(x.min(y)),
                (x, y) => x.or(y),
            },
            decoded_bytes: a.decoded_bytes.saturating_add(b.decoded_bytes),
            decode_ns: a.decode_ns.saturating_add(b.decode_ns),
            budget: a.budget.max(b.budget),
        }
    }
}

/// How long the server takes to answer, how fast the workers take chunks and how fast the link
/// brings them: what the byte budget needs to keep the workers busy while a request waits for
/// its answer, and no more than the link can use.
#[derive(Debug)]
struct Pace {
    /// The shortest time from sending a Range request to its answer's headers, in µs.
    round_trip_us: AtomicU64,
    /// Compressed bytes the workers have checked and decompressed, and the time it took them.
    decoded_bytes: AtomicU64,
    decode_ns: AtomicU64,
    workers: u64,
    /// Compressed bytes received since `began`.
    received: AtomicU64,
    began: Instant,
}

/// The budget may take up to this many times the link's pace so far (which never exceeds what
/// the link can do), so that it grows while it is what holds the link back: a round trip
/// brings about the budget, and the next budget is four times the pace of those so far.
const LINK_GAIN: f64 = 4.0;

impl Pace {
    fn new(workers: usize, learned: Learned) -> Pace {
        Pace {
            round_trip_us: AtomicU64::new(learned.round_trip_us.unwrap_or(u64::MAX)),
            decoded_bytes: AtomicU64::new(learned.decoded_bytes),
            decode_ns: AtomicU64::new(learned.decode_ns),
            workers: workers.max(1) as u64,
            received: AtomicU64::new(0),
            began: Instant::now(),
        }
    }

    /// Compressed bytes to keep on their way for one round trip, `elapsed` after the first
    /// request: the workers' pace, or [`LINK_GAIN`] times the pace at which bytes arrived so far
    /// if that is less (a slow link gains nothing from more requests sharing it), times the
    /// shortest round trip. 0 until all are measured.
    fn round_trip_bytes(&self, elapsed: Duration) -> u64 {
        let rtt = self.round_trip_us.load(Ordering::Relaxed);
        let (bytes, ns) = (
            self.decoded_bytes.load(Ordering::Relaxed),
            self.decode_ns.load(Ordering::Relaxed),
        );
        let received = self.received.load(Ordering::Relaxed);
        let elapsed_us = elapsed.as_micros() as f64;
        if rtt == u64::MAX || bytes == 0 || ns == 0 || received == 0 || elapsed_us == 0.0 {
            return 0;
        }
        let workers_per_us = bytes as f64 * 1000.0 / ns as f64 * self.workers as f64;
        let link_per_us = LINK_GAIN * received as f64 / elapsed_us;
        (workers_per_us.min(link_per_us) * rtt as f64) as u64
    }
}

/// The limits on what is between the network and the disk.
struct Limits {
    /// Compressed bytes requested and not yet written (what a killed install fetches again).
    budget: Arc<tokio::sync::Semaphore>,
    /// The budget's first size: also the most one chunk takes of it.
    base: u64,
    /// The budget's size now: `base` plus what one round trip brings ([`Pace`]), at most
    /// [`BUDGET_MAX`].
    size: AtomicU64,
    pace: Pace,
}

impl Limits {
    /// A budget of `budget_bytes`, or the one the images before reached if that is more.
    fn new(budget_bytes: u64, workers: usize, learned: Learned) -> Limits {
        let size = learned.budget.min(BUDGET_MAX).max(budget_bytes);
        Limits {
            budget: Arc::new(tokio::sync::Semaphore::new(
                usize::try_from(size).unwrap_or(usize::MAX >> 4),
            )),
            base: budget_bytes,
            size: AtomicU64::new(size),
            pace: Pace::new(workers, learned),
        }
    }

    /// What this image and those before it measured, for the next image.
    fn learned(&self) -> Learned {
        let pace = &self.pace;
        let rtt = pace.round_trip_us.load(Ordering::Relaxed);
        Learned {
            round_trip_us: (rtt != u64::MAX).then_some(rtt),
            decoded_bytes: pace.decoded_bytes.load(Ordering::Relaxed),
            decode_ns: pace.decode_ns.load(Ordering::Relaxed),
            budget: self.size.load(Ordering::Relaxed),
        }
    }

    /// A chunk of `length` compressed bytes takes this much of the budget (one chunk larger
    /// than the first budget takes all of that).
    fn share(&self, length: u64) -> u32 {
        u32::try_from(length.clamp(1, self.base)).unwrap_or(u32::MAX)
    }

    /// Range requests in flight at once, at most: enough for the budget to be requested in
    /// pieces of at most [`RANGE_CAP`], while one waits for its answer and another's body
    /// arrives.
    fn requests(&self) -> usize {
        let size = self.size.load(Ordering::Relaxed);
        usize::try_from(size / RANGE_CAP + 2)
            .unwrap_or(usize::MAX)
            .clamp(REQUESTS_IN_FLIGHT, REQUESTS_MAX)
    }

    /// A request was answered after `took`.
    fn answered(&self, took: Duration) {
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX - 1);
        self.pace.round_trip_us.fetch_min(us, Ordering::Relaxed);
        self.grow();
    }

    /// A worker checked and decompressed `bytes` compressed bytes in `took`.
    fn decoded(&self, bytes: u64, took: Duration) {
        let ns = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX >> 2);
        self.pace.decoded_bytes.fetch_add(bytes, Ordering::Relaxed);
        self.pace.decode_ns.fetch_add(ns.max(1), Ordering::Relaxed);
        self.grow();
    }

    /// `bytes` compressed bytes arrived (counted as they arrive; the budget is grown with this
    /// at the next answer or chunk decoded, which is when it can be used).
    fn received(&self, bytes: u64) {
        self.pace.received.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Compressed bytes arrived so far (what progress reports as downloaded).
    fn received_bytes(&self) -> u64 {
        self.pace.received.load(Ordering::Relaxed)
    }

    /// Asks for `start..end` of `url`, unless `stop` comes first, and times the answer.
    async fn ask(
        &self,
        transport: &UpdogTransport,
        url: &Url,
        (start, end): (u64, u64),
        stop: &CancellationToken,
    ) -> Result<std::result::Result<Option<reqwest::Response>, String>> {
        let sent = Instant::now();
        let answer = tokio::select! {
            biased;
            () = stop.cancelled() => return error::CancelledSnafu.fail(),
            r = transport.get_range(url, start, end) => r,
        };
        self.answered(sent.elapsed());
        Ok(answer)
    }

    /// Grows the budget to `base` plus what one round trip brings (never shrinks it).
    fn grow(&self) {
        self.grow_after(self.pace.began.elapsed());
    }

    fn grow_after(&self, elapsed: Duration) {
        let want = self
            .base
            .saturating_add(self.pace.round_trip_bytes(elapsed))
            .min(BUDGET_MAX.max(self.base));
        let now = self.size.fetch_max(want, Ordering::Relaxed);
        if want > now {
            self.budget
                .add_permits(usize::try_from(want - now).unwrap_or(usize::MAX >> 4));
        }
    }

    async fn wait(&self, length: u64, cancel: &CancellationToken) -> Result<Held> {
        tokio::select! {
            biased;
            () = cancel.cancelled() => error::CancelledSnafu.fail(),
            held = self.budget.clone().acquire_many_owned(self.share(length)) => {
                held.map_err(|e| error::Error::Worker {
                    action: "write the chunks",
                    reason: e.to_string(),
                })
            }
        }
    }

    fn try_take(&self, length: u64) -> Option<Held> {
        self.budget
            .clone()
            .try_acquire_many_owned(self.share(length))
            .ok()
    }
}

/// The next request from `todo[from..]`: its first chunk waits for room (or, with `wait`
/// false, is not taken without room), then adjacent chunks join while there is room at once
/// and the request stays within [`RANGE_CAP`].
async fn next_request(
    index: &ChunkIndex,
    todo: &[usize],
    from: usize,
    limits: &Limits,
    wait: bool,
    cancel: &CancellationToken,
) -> Result<Option<Request>> {
    let first = todo[from];
    let (start, length, _) = stored(index, first);
    let held = if wait {
        limits.wait(length, cancel).await?
    } else {
        match limits.try_take(length) {
            Some(held) => held,
            None => return Ok(None),
        }
    };
    let mut request = Request {
        chunks: vec![(from, first, held)],
        start,
        end: start + length,
    };
    for (seq, &i) in todo.iter().enumerate().skip(from + 1) {
        let (offset, length, _) = stored(index, i);
        if offset != request.end || offset + length - start > RANGE_CAP {
            break;
        }
        let Some(held) = limits.try_take(length) else {
            break;
        };
        request.chunks.push((seq, i, held));
        request.end = offset + length;
    }
    Ok(Some(request))
}

/// Downloads the `todo` chunks (stored chunks only) and writes them. `Ok(false)`: the server
/// ignored the Range request before anything was fetched.
#[allow(clippy::too_many_arguments)]
async fn download(
    disk: &Path,
    file: &Arc<File>,
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
    let limits = Arc::new(Limits::new(
        BUDGET_CHUNKS * index.chunk_size(),
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
        handles.push(tokio::task::spawn_blocking(move || {
            loop {
                let next = rx
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .blocking_recv();
                let Some(fetched) = next else { return };
                let (began, length) = (Instant::now(), fetched.bytes.len() as u64);
                let decoded = decode(&index, &target, &buffers, fetched);
                limits.decoded(length, began.elapsed());
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
    // About sixteen checkpoints per image, at most 64 MiB apart: the partition is written back
    // while the download goes on, and the final sync has little left to wait for (a power cut
    // loses less, too).
    let checkpoint = (todo.len() as u64 * index.chunk_size() / 16).clamp(
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
        let buffers = buffers.clone();
        tokio::task::spawn_blocking(move || {
            write_in_order(
                &file,
                &disk,
                &label,
                start,
                &index,
                &buffers,
                out_rx,
                expected,
                checkpoint,
                &written_tx,
            )
        })
    };

    let pipe = Pipe {
        limits: &limits,
        tx: &job_tx,
        written: &written,
        window: slots,
    };
    let fetched = fetch_all(job, todo, &pipe, counts, report, cancel).await;
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
    *learned = limits.learned();
    match fetched {
        Ok(true) => {
            counts.downloaded = written;
            Ok(true)
        }
        Ok(false) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Checks a fetched chunk's compressed sha256 against the index, then decompresses it.
fn decode(
    index: &ChunkIndex,
    target: &str,
    buffers: &Buffers,
    fetched: Fetched,
) -> Result<Decoded> {
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
    let len = (range.end - range.start) as usize;
    let mut data = buffers.take();
    let n = match lz4_flex::block::decompress_into(&fetched.bytes, &mut data[..len]) {
        Ok(n) => n,
        Err(e) => {
            buffers.give(data);
            return Err(bad(format!("it is not an lz4 block: {e}")));
        }
    };
    if n != len {
        buffers.give(data);
        return Err(bad(format!("it decompresses to {n} bytes, not {len}")));
    }
    data.truncate(len);
    Ok(Decoded {
        seq: fetched.seq,
        chunk: fetched.chunk,
        data,
        held: fetched.held,
    })
}

/// Writes the decoded chunks in sequence order; returns how many. Each chunk is read back
/// right after its write and compared with the bytes written (which were checked against the
/// index before they were decompressed). Every `checkpoint` bytes it asks a syncer thread for
/// a sync (and its power-cut point) and carries on writing.
#[allow(clippy::too_many_arguments)]
fn write_in_order(
    file: &Arc<File>,
    disk: &Path,
    label: &str,
    start: u64,
    index: &ChunkIndex,
    buffers: &Buffers,
    rx: std::sync::mpsc::Receiver<Result<Decoded>>,
    expected: usize,
    checkpoint: u64,
    written: &tokio::sync::watch::Sender<usize>,
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
    let mut pending: BTreeMap<usize, Decoded> = BTreeMap::new();
    let (mut next, mut since_sync) = (0usize, 0u64);
    let mut back = PageBuf::new(index.chunk_size() as usize);
    let wrote = (|| -> Result<()> {
        for decoded in rx {
            let decoded = decoded?;
            pending.insert(decoded.seq, decoded);
            while let Some(d) = pending.remove(&next) {
                let at = start + index.range(d.chunk).start;
                file.write_all_at(&d.data, at)
                    .map_err(|source| disk_error(disk, &format!("write {label}"), source))?;
                // Written: a killed install finds it in the partition.
                drop(d.held);
                let back = &mut back[..d.data.len()];
                file.read_exact_at(back, at)
                    .map_err(|e| format!("cannot be read back: {e}"))
                    .and_then(|()| same(back, &d.data))
                    .map_err(|reason| verify_error(label, format!("chunk {} {reason}", d.chunk)))?;
                since_sync += d.data.len() as u64;
                buffers.give(d.data);
                next += 1;
                written.send_replace(next);
                if since_sync >= checkpoint {
                    let _ = sync_tx.send(());
                    since_sync = 0;
                }
            }
        }
        Ok(())
    })();
    drop(sync_tx);
    let synced = syncer.join().map_err(|_| error::Error::Worker {
        action: "sync the chunks",
        reason: "the syncer panicked".to_string(),
    })?;
    wrote?;
    synced.map_err(|source| disk_error(disk, &format!("sync {label}"), source))?;
    if next != expected && !pending.is_empty() {
        return Err(error::Error::Worker {
            action: "write the chunks",
            reason: format!("chunk sequence {next} never arrived"),
        });
    }
    Ok(next as u64)
}

/// Whether the bytes read back are the bytes written; names the first that differs.
fn same(back: &[u8], written: &[u8]) -> std::result::Result<(), String> {
    if back == written {
        return Ok(());
    }
    let at = back
        .iter()
        .zip(written)
        .position(|(a, b)| a != b)
        .unwrap_or(back.len().min(written.len()));
    Err(format!(
        "read back differs from what was written at byte {at}"
    ))
}

/// How long a stopped install waits for the requests in flight to finish.
const DRAIN_FOR: Duration = Duration::from_secs(2);

/// Range requests in flight at once, at least (each within the byte budget): while one waits
/// for its answer, another's body arrives.
const REQUESTS_IN_FLIGHT: usize = 3;
/// Range requests in flight at once, at most, however large the budget grows.
const REQUESTS_MAX: usize = 8;

/// Fetches every chunk of `todo`, several requests at a time; `Ok(false)` if the server
/// ignored Range on the first request.
#[allow(clippy::too_many_arguments)]
async fn fetch_all(
    job: &ChunkedJob<'_>,
    todo: &[usize],
    pipe: &Pipe<'_>,
    counts: &mut ChunkCounts,
    report: &(dyn Fn(&ChunkCounts, u64) + Sync),
    cancel: &CancellationToken,
) -> Result<bool> {
    use futures_util::StreamExt;
    use futures_util::stream::FuturesUnordered;
    let (index, limits) = (&job.index, pipe.limits);
    let mut from = 0usize;
    // A stop (`cancel`) starts no new request and lets those in flight finish for a moment, so
    // that what they carry is written and not fetched again; `abort` ends them.
    let abort = CancellationToken::new();
    let mut draining: Option<tokio::time::Instant> = None;
    let mut running = FuturesUnordered::new();
    let mut first = true;
    let mut ticker = tokio::time::interval(EVENT_EVERY);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let report_now = |counts: &mut ChunkCounts| {
        counts.bytes_downloaded = limits.received_bytes();
        counts.downloaded = *pipe.written.borrow() as u64;
        report(counts, counts.bytes_downloaded);
    };
    loop {
        // Start requests while there is room.
        while !cancel.is_cancelled() && from < todo.len() && running.len() < limits.requests() {
            let wait = running.is_empty();
            let Some(request) = next_request(index, todo, from, limits, wait, cancel).await? else {
                break;
            };
            from += request.chunks.len();
            let mut answer = None;
            if let (true, ChunkSource::Http(transport, url)) = (first, &job.source) {
                // The first answer tells whether the server does Range requests at all.
                match first_answer(transport, url, &request, limits, cancel).await? {
                    Some(response) => answer = Some(response),
                    None => return Ok(false),
                }
            }
            first = false;
            running.push(fetch_request(job, request, answer, pipe, &abort));
        }
        if running.is_empty() {
            break;
        }
        let more = !cancel.is_cancelled() && from < todo.len() && running.len() < limits.requests();
        let next_length = todo.get(from).map_or(0, |&i| stored(index, i).1);
        let deadline = draining.unwrap_or_else(tokio::time::Instant::now);
        tokio::select! {
            done = running.next() => {
                if let Some(done) = done {
                    done?;
                }
            }
            // Room for the next request: take it on the next turn of the loop.
            held = limits.wait(next_length, cancel), if more => {
                if let Err(e) = held {
                    if !cancel.is_cancelled() {
                        return Err(e);
                    }
                }
            }
            () = cancel.cancelled(), if draining.is_none() => {
                tracing::info!(
                    "{}: stopping; finishing the {} requests in flight",
                    job.target,
                    running.len()
                );
                draining = Some(tokio::time::Instant::now() + DRAIN_FOR);
            }
            () = tokio::time::sleep_until(deadline), if draining.is_some() => abort.cancel(),
            _ = ticker.tick() => report_now(counts),
        }
    }
    report_now(counts);
    if cancel.is_cancelled() {
        return error::CancelledSnafu.fail();
    }
    Ok(true)
}

/// The answer to a request, or `None` if the server ignores Range requests.
async fn first_answer(
    transport: &UpdogTransport,
    url: &Url,
    request: &Request,
    limits: &Limits,
    cancel: &CancellationToken,
) -> Result<Option<reqwest::Response>> {
    match limits
        .ask(transport, url, (request.start, request.end), cancel)
        .await?
    {
        Ok(Some(response)) => Ok(Some(response)),
        Ok(None) => {
            tracing::info!("{url} ignores Range requests: streaming the image");
            Ok(None)
        }
        Err(reason) => Err(error::Error::FetchRange {
            url: url.to_string(),
            start: request.start,
            end: request.end,
            reason,
        }),
    }
}

/// Fetches one request's chunks and hands each to the workers; `answer` is the response
/// already received for it, if any. A body that breaks off is asked for again from the first
/// byte not yet received, in the middle of a chunk if need be. `abort` ends it where it is.
async fn fetch_request(
    job: &ChunkedJob<'_>,
    request: Request,
    mut answer: Option<reqwest::Response>,
    pipe: &Pipe<'_>,
    abort: &CancellationToken,
) -> Result<()> {
    let index = &job.index;
    let end = request.end;
    let mut chunks = request.chunks.into_iter().peekable();
    // What has arrived of the chunk being received (and of the chunks after it, until they
    // are handed on).
    let mut buf = BytesMut::new();
    let mut failures = 0u32;
    while let Some(&(_, at_chunk, _)) = chunks.peek() {
        let start = stored(index, at_chunk).0 + buf.len() as u64;
        let range_error = |reason: String| error::Error::FetchRange {
            url: job.source.describe(),
            start,
            end,
            reason,
        };
        match &job.source {
            ChunkSource::File(path) => {
                let file = File::open(path).map_err(|e| range_error(e.to_string()))?;
                let have = buf.len();
                buf.resize(have + (end - start) as usize, 0);
                file.read_exact_at(&mut buf[have..], start)
                    .map_err(|e| range_error(e.to_string()))?;
                pipe.limits.received(end - start);
                hand_on(index, &mut buf, &mut chunks, pipe, abort).await?;
            }
            ChunkSource::Http(transport, url) => {
                let mut response = match answer.take() {
                    Some(response) => response,
                    None => match pipe.limits.ask(transport, url, (start, end), abort).await? {
                        Ok(Some(response)) => response,
                        Ok(None) => {
                            return Err(range_error(
                                "the server stopped answering Range requests".to_string(),
                            ));
                        }
                        Err(reason) => return Err(range_error(reason)),
                    },
                };
                let mut meter = transport.meter();
                let failed = loop {
                    let body = tokio::select! {
                        biased;
                        () = abort.cancelled() => return error::CancelledSnafu.fail(),
                        body = meter.next(&mut response) => body,
                    };
                    let piece = match body {
                        Ok(Some(piece)) => piece,
                        Ok(None) => break None,
                        Err(reason) => break Some(reason),
                    };
                    pipe.limits.received(piece.len() as u64);
                    buf.extend_from_slice(&piece);
                    hand_on(index, &mut buf, &mut chunks, pipe, abort).await?;
                };
                if chunks.peek().is_some() {
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
    Ok(())
}

/// Hands every whole chunk at the front of `buf` on to the workers, each once its sequence
/// number is within the window (until then the body is not read: the server waits).
async fn hand_on(
    index: &ChunkIndex,
    buf: &mut BytesMut,
    chunks: &mut std::iter::Peekable<std::vec::IntoIter<(usize, usize, Held)>>,
    pipe: &Pipe<'_>,
    abort: &CancellationToken,
) -> Result<()> {
    let stopped = || error::Error::Worker {
        action: "write the chunks",
        reason: "the writer stopped".to_string(),
    };
    while let Some(&(seq, chunk, _)) = chunks.peek() {
        let length = stored(index, chunk).1 as usize;
        if buf.len() < length {
            break;
        }
        let mut written = pipe.written.clone();
        tokio::select! {
            biased;
            () = abort.cancelled() => return error::CancelledSnafu.fail(),
            open = written.wait_for(|&w| seq < w + pipe.window) => {
                open.map_err(|_| stopped())?;
            }
        }
        let bytes = buf.split_to(length).freeze();
        let Some((seq, chunk, held)) = chunks.next() else {
            break;
        };
        let fetched = Fetched {
            seq,
            chunk,
            bytes,
            held,
        };
        pipe.tx.send(fetched).await.map_err(|_| stopped())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use update_metadata::TargetName;
    use update_metadata::chunks::{Chunk, Sha256Digest};

    /// Twelve chunks of 1 MiB; chunk 3 is all zeros (not stored), the others are stored one
    /// after another, each `stored` bytes long.
    fn index(stored: u64) -> ChunkIndex {
        let d = Sha256Digest::new([1; 32]);
        let mb = 1 << 20;
        let chunks: Vec<Chunk> = (0..12u64)
            .map(|i| Chunk {
                sha256: d,
                data: if i == 3 {
                    ChunkData::Zero
                } else {
                    let n = if i > 3 { i - 1 } else { i };
                    ChunkData::Stored {
                        offset: n * stored,
                        length: stored,
                        sha256: d,
                    }
                },
            })
            .collect();
        ChunkIndex::new(
            mb,
            12 * mb,
            d,
            TargetName::new("x.chunks").unwrap(),
            11 * stored,
            chunks,
        )
        .unwrap()
    }

    fn chunks_of(request: &Request) -> Vec<usize> {
        request.chunks.iter().map(|c| c.1).collect()
    }

    #[tokio::test]
    async fn a_request_takes_adjacent_chunks_while_the_budget_has_room() {
        let index = index(256 << 10);
        let cancel = CancellationToken::new();
        let limits = Limits::new(1 << 20, 16, Learned::default());
        // 0, 1 | (2 in place) | 4.. across the zero chunk 3.
        let todo = [0, 1, 4, 5, 6, 7, 8, 9, 10, 11];
        let first = next_request(&index, &todo, 0, &limits, true, &cancel)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(chunks_of(&first), [0, 1]);
        // Four chunks of 256 KiB fill the 1 MiB budget: 4 and 5 join, 6 waits.
        let second = next_request(&index, &todo, 2, &limits, false, &cancel)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(chunks_of(&second), [4, 5]);
        assert!(
            next_request(&index, &todo, 4, &limits, false, &cancel)
                .await
                .unwrap()
                .is_none()
        );
        // Written: the budget is free again.
        drop(first);
        let third = next_request(&index, &todo, 4, &limits, false, &cancel)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(chunks_of(&third), [6, 7]);
        assert_eq!(third.start, 5 * (256 << 10));
        assert_eq!(third.end, 7 * (256 << 10));
    }

    /// Limits whose pace has these measures (the budget not grown yet).
    fn paced(rtt_ms: u64, decoded_mib_per_10ms: u64, received_mib: u64) -> Limits {
        let limits = Limits::new(1 << 20, 2, Learned::default());
        let pace = &limits.pace;
        pace.round_trip_us.store(rtt_ms * 1000, Ordering::Relaxed);
        pace.decoded_bytes
            .store(decoded_mib_per_10ms << 20, Ordering::Relaxed);
        pace.decode_ns.store(10_000_000, Ordering::Relaxed);
        pace.received.store(received_mib << 20, Ordering::Relaxed);
        limits
    }

    #[test]
    fn the_budget_grows_by_what_one_round_trip_brings() {
        // Nothing measured yet: the first budget.
        let limits = Limits::new(1 << 20, 2, Learned::default());
        limits.grow_after(Duration::from_secs(1));
        assert_eq!(limits.budget.available_permits(), 1 << 20);
        // Two workers, each taking 1 MiB in 10 ms, a 10 ms round trip and a fast link (100
        // MiB in 100 ms): the workers' 2 MiB per round trip.
        let limits = paced(10, 1, 100);
        limits.grow_after(Duration::from_millis(100));
        assert_eq!(limits.budget.available_permits(), 3 << 20);
        assert_eq!(limits.requests(), REQUESTS_IN_FLIGHT);
        // A chunk still takes at most the first budget.
        assert_eq!(limits.share(5 << 20), 1 << 20);
        // A slower answer later does not shrink it (the shortest round trip counts), nor does a
        // slower link.
        limits.answered(Duration::from_millis(500));
        limits.grow_after(Duration::from_secs(100));
        assert_eq!(limits.budget.available_permits(), 3 << 20);
        // A slow link: 1 MiB in the first second gives four times 10 ms of it, not the
        // workers' pace.
        let slow = paced(10, 1, 1);
        slow.grow_after(Duration::from_secs(1));
        assert_eq!(slow.budget.available_permits(), (1 << 20) + (4 << 20) / 100);
        // A far server, fast workers and link: at most BUDGET_MAX, in at most REQUESTS_MAX
        // requests.
        let far = paced(80, 64, 1000);
        far.grow_after(Duration::from_secs(1));
        assert_eq!(far.budget.available_permits() as u64, BUDGET_MAX);
        assert_eq!(far.requests(), REQUESTS_MAX);
    }

    #[test]
    fn the_next_image_starts_from_what_the_images_before_measured() {
        // An image whose budget grew to 3 MiB (a 10 ms round trip, two workers taking 1 MiB in
        // 10 ms each, a fast link).
        let first = paced(10, 1, 100);
        first.grow_after(Duration::from_millis(100));
        let learned = first.learned();
        // The next image's budget is that one from its start, before any answer.
        let next = Limits::new(1 << 20, 2, learned);
        assert_eq!(next.budget.available_permits(), 3 << 20);
        // A slower round trip there does not lengthen the shortest, and the workers' pace goes
        // on from what they did before.
        next.answered(Duration::from_millis(20));
        next.decoded(1 << 20, Duration::from_millis(10));
        let after = next.learned();
        assert_eq!(after.round_trip_us, Some(10_000));
        assert_eq!(
            (after.decoded_bytes, after.decode_ns),
            (2 << 20, 20_000_000)
        );
        // A smaller chunk size's image still gets the budget reached; a larger one at least
        // its own two chunks.
        assert_eq!(
            Limits::new(256 << 10, 2, learned)
                .budget
                .available_permits(),
            3 << 20
        );
        assert_eq!(
            Limits::new(4 << 20, 2, learned).budget.available_permits(),
            4 << 20
        );
        // Nothing measured: nothing carried, the first budget.
        let fresh = Limits::new(1 << 20, 2, Learned::default());
        let none = Limits::new(1 << 20, 2, fresh.learned());
        assert_eq!(none.budget.available_permits(), 1 << 20);
    }

    #[test]
    fn two_images_at_once_hand_on_the_shorter_round_trip_both_paces_and_the_larger_budget() {
        let boot = Learned {
            round_trip_us: Some(40_000),
            decoded_bytes: 1 << 20,
            decode_ns: 2_000_000,
            budget: 2 << 20,
        };
        let hash = Learned {
            round_trip_us: Some(30_000),
            decoded_bytes: 4 << 20,
            decode_ns: 8_000_000,
            budget: 6 << 20,
        };
        let both = Learned::merged(boot, hash);
        assert_eq!(both.round_trip_us, Some(30_000));
        assert_eq!((both.decoded_bytes, both.decode_ns), (5 << 20, 10_000_000));
        assert_eq!(both.budget, 6 << 20);
        // An image that measured nothing (all in place) leaves the other's measure.
        let merged = Learned::merged(Learned::default(), hash);
        assert_eq!(merged.round_trip_us, Some(30_000));
        assert_eq!(
            Limits::new(1 << 20, 2, merged).budget.available_permits(),
            6 << 20
        );
    }

    #[tokio::test]
    async fn a_request_stops_at_the_range_cap_and_a_large_chunk_goes_alone() {
        let cancel = CancellationToken::new();
        let index = index(1 << 20);
        let todo = [0, 1, 2, 4, 5, 6, 7, 8, 9, 10, 11];
        // Plenty of budget: the 8 MiB cap cuts the request.
        let limits = Limits::new(64 << 20, 16, Learned::default());
        let request = next_request(&index, &todo, 0, &limits, true, &cancel)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(chunks_of(&request), [0, 1, 2, 4, 5, 6, 7, 8]);
        assert_eq!(request.end - request.start, RANGE_CAP);
        // A chunk larger than the whole budget takes all of it, alone.
        let limits = Limits::new(512 << 10, 16, Learned::default());
        let request = next_request(&index, &todo, 0, &limits, true, &cancel)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(chunks_of(&request), [0]);
        assert_eq!(limits.budget.available_permits(), 0);
    }
}
