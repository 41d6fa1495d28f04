//! The byte budget on the compressed bytes requested and not yet in the partition, and the lead
//! on those not yet written ([`Limits`]); the budget is what one round trip to the server brings
//! at the workers' or the link's pace ([`Pace`]), at least a chunk size, and is carried from one
//! image to the next ([`Learned`]).

use super::fetch::RANGE_CAP;
use crate::error::{self, Result};
use crate::transport::UpdogTransport;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use url::Url;

/// Compressed bytes requested and not yet in the partition, in chunk sizes (one chunk larger
/// than that passes alone), before the first answers: what a killed install may have to fetch
/// again. Chunks are spooled as they arrive (see `spool`), and the workers take them from the
/// lead, so one chunk's worth keeps them busy on loopback (docs/benchmarks.md, "Resume"). The
/// budget grows to what one round trip to the server brings when that is more (see [`Pace`]).
pub(super) const BUDGET_CHUNKS: u64 = 1;
/// The byte budget never grows past this (64 MiB).
pub(super) const BUDGET_MAX: u64 = 64 << 20;
/// How far the fetch may run ahead of the writer past the budget, in windows of chunks. The
/// chunks past the first window wait in their spool, not in memory, and a kill keeps them; four
/// windows absorb the answers that come late without the workers running dry
/// (docs/benchmarks.md, "Decode workers at the lowest priority").
const LEAD_WINDOWS: u64 = 4;
/// Range requests in flight at once, at least (each within the byte budget): while one waits
/// for its answer, another's body arrives.
const REQUESTS_IN_FLIGHT: usize = 3;
/// Range requests in flight at once, at most, however large the budget grows.
const REQUESTS_MAX: usize = 8;

/// What a chunk holds from the time it is requested: its compressed bytes' share of the byte
/// budget, given back once they are in the partition (spooled or written), and of the lead,
/// given back once the chunk is written.
#[derive(Debug)]
pub(super) struct Held {
    budget: Option<tokio::sync::OwnedSemaphorePermit>,
    _lead: tokio::sync::OwnedSemaphorePermit,
}

impl Held {
    /// The chunk's compressed bytes are in the partition: a kill no longer loses them.
    pub(super) fn spooled(&mut self) {
        self.budget = None;
    }
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
pub(super) struct Pace {
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
    /// request: the workers' pace times the shortest round trip, less `window` (the chunks the
    /// lead keeps waiting for the workers cover that much of it), or [`LINK_GAIN`] times the
    /// pace at which bytes arrived so far times the round trip if that is less (a slow link
    /// gains nothing from more requests sharing it). 0 until all are measured.
    fn round_trip_bytes(&self, elapsed: Duration, window: u64) -> u64 {
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
        let workers = ((workers_per_us * rtt as f64) as u64).saturating_sub(window);
        workers.min((link_per_us * rtt as f64) as u64)
    }
}

/// The limits on what is between the network and the disk.
pub(super) struct Limits {
    /// Compressed bytes requested and not yet in the partition, spooled or written (what a
    /// killed install fetches again).
    pub(super) budget: Arc<tokio::sync::Semaphore>,
    /// Compressed bytes requested and not yet written: the budget's size plus [`LEAD_WINDOWS`]
    /// windows. The fetch runs at most this far ahead of the writer: on a link faster than the
    /// workers it then asks for chunks as the writer takes them.
    lead: Arc<tokio::sync::Semaphore>,
    /// The compressed bytes of a window of chunks (the chunks in memory between the fetch and
    /// the read-back), about.
    window: u64,
    /// The budget's first size: also the most one chunk takes of it.
    base: u64,
    /// The budget's size now: what one round trip brings ([`Pace`]) less `window`, at least
    /// `base`, at most [`BUDGET_MAX`].
    size: AtomicU64,
    pace: Pace,
}

impl Limits {
    /// A budget of `budget_bytes`, or the one the images before reached if that is more, and a
    /// lead of [`LEAD_WINDOWS`] windows of `window` bytes more than the budget.
    pub(super) fn new(budget_bytes: u64, window: u64, workers: usize, learned: Learned) -> Limits {
        let size = learned.budget.min(BUDGET_MAX).max(budget_bytes);
        let permits = |n: u64| usize::try_from(n).unwrap_or(usize::MAX >> 4);
        Limits {
            budget: Arc::new(tokio::sync::Semaphore::new(permits(size))),
            lead: Arc::new(tokio::sync::Semaphore::new(permits(
                size + LEAD_WINDOWS * window,
            ))),
            window,
            base: budget_bytes,
            size: AtomicU64::new(size),
            pace: Pace::new(workers, learned),
        }
    }

    /// What this image and those before it measured, for the next image.
    pub(super) fn learned(&self) -> Learned {
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
    pub(super) fn requests(&self) -> usize {
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
    pub(super) fn decoded(&self, bytes: u64, took: Duration) {
        let ns = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX >> 2);
        self.pace.decoded_bytes.fetch_add(bytes, Ordering::Relaxed);
        self.pace.decode_ns.fetch_add(ns.max(1), Ordering::Relaxed);
        self.grow();
    }

    /// `bytes` compressed bytes arrived (counted as they arrive; the budget is grown with this
    /// at the next answer or chunk decoded, which is when it can be used).
    pub(super) fn received(&self, bytes: u64) {
        self.pace.received.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Compressed bytes arrived so far (what progress reports as downloaded).
    pub(super) fn received_bytes(&self) -> u64 {
        self.pace.received.load(Ordering::Relaxed)
    }

    /// Asks for `start..end` of `url`, unless `stop` comes first, and times the answer.
    pub(super) async fn ask(
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

    /// Grows the budget to what one round trip brings (at the workers' pace, less a window of
    /// chunks waiting for them, which covers that much of the round trip), at least `base`
    /// (never shrinks it).
    fn grow(&self) {
        self.grow_after(self.pace.began.elapsed());
    }

    fn grow_after(&self, elapsed: Duration) {
        let want = self
            .base
            .max(self.pace.round_trip_bytes(elapsed, self.window))
            .min(BUDGET_MAX.max(self.base));
        let now = self.size.fetch_max(want, Ordering::Relaxed);
        if want > now {
            let more = usize::try_from(want - now).unwrap_or(usize::MAX >> 4);
            self.budget.add_permits(more);
            self.lead.add_permits(more);
        }
    }

    /// A chunk of `length` compressed bytes takes this much of the lead.
    fn lead_share(&self, length: u64) -> u32 {
        u32::try_from(length.clamp(1, self.window.max(1))).unwrap_or(u32::MAX)
    }

    /// Waits for room in the lead, then in the budget, for a chunk of `length` bytes.
    pub(super) async fn wait(&self, length: u64, cancel: &CancellationToken) -> Result<Held> {
        let closed = |e: tokio::sync::AcquireError| error::Error::Worker {
            action: "write the chunks",
            reason: e.to_string(),
        };
        let take = async {
            let lead = self
                .lead
                .clone()
                .acquire_many_owned(self.lead_share(length))
                .await
                .map_err(closed)?;
            let budget = self
                .budget
                .clone()
                .acquire_many_owned(self.share(length))
                .await
                .map_err(closed)?;
            Ok(Held {
                budget: Some(budget),
                _lead: lead,
            })
        };
        tokio::select! {
            biased;
            () = cancel.cancelled() => error::CancelledSnafu.fail(),
            held = take => held,
        }
    }

    /// Room for a chunk of `length` bytes, if there is some now.
    pub(super) fn try_take(&self, length: u64) -> Option<Held> {
        let lead = self
            .lead
            .clone()
            .try_acquire_many_owned(self.lead_share(length))
            .ok()?;
        let budget = self
            .budget
            .clone()
            .try_acquire_many_owned(self.share(length))
            .ok()?;
        Some(Held {
            budget: Some(budget),
            _lead: lead,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Limits whose pace has these measures (the budget not grown yet).
    fn paced(rtt_ms: u64, decoded_mib_per_10ms: u64, received_mib: u64) -> Limits {
        let limits = Limits::new(1 << 20, 0, 2, Learned::default());
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
        let limits = Limits::new(1 << 20, 0, 2, Learned::default());
        limits.grow_after(Duration::from_secs(1));
        assert_eq!(limits.budget.available_permits(), 1 << 20);
        // Two workers, each taking 1 MiB in 10 ms, a 10 ms round trip and a fast link (100
        // MiB in 100 ms): the workers' 2 MiB per round trip.
        let limits = paced(10, 1, 100);
        limits.grow_after(Duration::from_millis(100));
        assert_eq!(limits.budget.available_permits(), 2 << 20);
        assert_eq!(limits.requests(), REQUESTS_IN_FLIGHT);
        // A chunk still takes at most the first budget.
        assert_eq!(limits.share(5 << 20), 1 << 20);
        // A slower answer later does not shrink it (the shortest round trip counts), nor does a
        // slower link.
        limits.answered(Duration::from_millis(500));
        limits.grow_after(Duration::from_secs(100));
        assert_eq!(limits.budget.available_permits(), 2 << 20);
        // A slow link 100 ms away: 10 MiB in the first second gives four times 100 ms of it
        // (4 MiB), not the workers' 20 MiB.
        let slow = paced(100, 1, 10);
        slow.grow_after(Duration::from_secs(1));
        assert_eq!(slow.budget.available_permits(), 4 << 20);
        // Less than a chunk size per round trip (loopback, or a very slow link): a chunk size.
        let near = paced(1, 1, 1);
        near.grow_after(Duration::from_secs(1));
        assert_eq!(near.budget.available_permits(), 1 << 20);
        // The window of chunks the lead keeps ahead of the workers covers part of the round
        // trip: 10 ms of two workers is 2 MiB, less a window of 1.5 MiB leaves less than a
        // chunk size; a round trip of 40 ms leaves 6.5 MiB.
        let windowed = |rtt_ms: u64| {
            let limits = Limits::new(1 << 20, 3 << 19, 2, Learned::default());
            let pace = &limits.pace;
            pace.round_trip_us.store(rtt_ms * 1000, Ordering::Relaxed);
            pace.decoded_bytes.store(1 << 20, Ordering::Relaxed);
            pace.decode_ns.store(10_000_000, Ordering::Relaxed);
            pace.received.store(100 << 20, Ordering::Relaxed);
            limits.grow_after(Duration::from_millis(100));
            limits.budget.available_permits()
        };
        assert_eq!(windowed(10), 1 << 20);
        assert_eq!(windowed(40), (8 << 20) - (3 << 19));
        // A far server, fast workers and link: at most BUDGET_MAX, in at most REQUESTS_MAX
        // requests.
        let far = paced(80, 64, 1000);
        far.grow_after(Duration::from_secs(1));
        assert_eq!(far.budget.available_permits() as u64, BUDGET_MAX);
        assert_eq!(far.requests(), REQUESTS_MAX);
    }

    #[test]
    fn the_next_image_starts_from_what_the_images_before_measured() {
        // An image whose budget grew to 2 MiB (a 10 ms round trip, two workers taking 1 MiB in
        // 10 ms each, a fast link).
        let first = paced(10, 1, 100);
        first.grow_after(Duration::from_millis(100));
        let learned = first.learned();
        // The next image's budget is that one from its start, before any answer.
        let next = Limits::new(1 << 20, 0, 2, learned);
        assert_eq!(next.budget.available_permits(), 2 << 20);
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
        // its own chunk.
        assert_eq!(
            Limits::new(256 << 10, 0, 2, learned)
                .budget
                .available_permits(),
            2 << 20
        );
        assert_eq!(
            Limits::new(4 << 20, 0, 2, learned)
                .budget
                .available_permits(),
            4 << 20
        );
        // Nothing measured: nothing carried, the first budget.
        let fresh = Limits::new(1 << 20, 0, 2, Learned::default());
        let none = Limits::new(1 << 20, 0, 2, fresh.learned());
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
            Limits::new(1 << 20, 0, 2, merged)
                .budget
                .available_permits(),
            6 << 20
        );
    }
}
