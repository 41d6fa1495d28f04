//! The fetch: Range requests of adjacent chunks within the byte budget, a few at a time, each
//! body handed on chunk by chunk to the workers and asked for again from where it broke off.

use super::budget::{Held, Limits};
use super::pipeline::Pipe;
use super::{ChunkCounts, ChunkSource, ChunkedJob};
use crate::error::{self, Result};
use crate::transport::UpdogTransport;
use bytes::BytesMut;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use update_metadata::ChunkIndex;
use update_metadata::chunks::ChunkData;
use url::Url;

/// Compressed bytes per Range request, at most (one chunk may pass it alone).
pub(super) const RANGE_CAP: u64 = 8 << 20;
/// Least time between two download events.
const EVENT_EVERY: Duration = Duration::from_millis(250);
/// How long a stopped install waits for the requests in flight to finish.
const DRAIN_FOR: Duration = Duration::from_secs(2);

/// (offset, length, sha256) of a stored chunk; (0, 0, zeros) for a zero chunk.
pub(super) fn stored(index: &ChunkIndex, i: usize) -> (u64, u64, [u8; 32]) {
    match index.chunks()[i].data {
        ChunkData::Stored {
            offset,
            length,
            sha256,
        } => (offset, length, *sha256.as_bytes()),
        ChunkData::Zero => (0, 0, [0; 32]),
    }
}

/// Chunks in one Range request: adjacent in the chunk file, each with its share of the budget.
struct Request {
    /// (sequence number, chunk number, what it holds) of each chunk, in order.
    chunks: Vec<(usize, usize, Held)>,
    start: u64,
    end: u64,
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

/// Fetches every chunk of `todo`, several requests at a time; `Ok(false)` if the server
/// ignored Range on the first request.
pub(super) async fn fetch_all(
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
                    // Room for the whole chunk being received at once: growing the buffer
                    // piece by piece would copy what has arrived again at each step.
                    if let Some(&(_, chunk, _)) = chunks.peek() {
                        let rest = (stored(index, chunk).1 as usize).saturating_sub(buf.len());
                        buf.reserve(rest.max(piece.len()));
                    }
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

/// Hands every whole chunk at the front of `buf` on to the workers ([`Pipe::hand_on`]).
async fn hand_on(
    index: &ChunkIndex,
    buf: &mut BytesMut,
    chunks: &mut std::iter::Peekable<std::vec::IntoIter<(usize, usize, Held)>>,
    pipe: &Pipe<'_>,
    abort: &CancellationToken,
) -> Result<()> {
    while let Some(&(_, chunk, _)) = chunks.peek() {
        let length = stored(index, chunk).1 as usize;
        if buf.len() < length {
            break;
        }
        let bytes = buf.split_to(length).freeze();
        let Some(next) = chunks.next() else {
            break;
        };
        pipe.hand_on(next, bytes, abort).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::install::chunked::Learned;
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
        let limits = Limits::new(1 << 20, 64 << 20, 16, Learned::default());
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

    #[tokio::test]
    async fn a_request_stops_at_the_range_cap_and_a_large_chunk_goes_alone() {
        let cancel = CancellationToken::new();
        let index = index(1 << 20);
        let todo = [0, 1, 2, 4, 5, 6, 7, 8, 9, 10, 11];
        // Plenty of budget: the 8 MiB cap cuts the request.
        let limits = Limits::new(64 << 20, 64 << 20, 16, Learned::default());
        let request = next_request(&index, &todo, 0, &limits, true, &cancel)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(chunks_of(&request), [0, 1, 2, 4, 5, 6, 7, 8]);
        assert_eq!(request.end - request.start, RANGE_CAP);
        // A chunk larger than the whole budget takes all of it, alone.
        let limits = Limits::new(512 << 10, 64 << 20, 16, Learned::default());
        let request = next_request(&index, &todo, 0, &limits, true, &cancel)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(chunks_of(&request), [0]);
        assert_eq!(limits.budget.available_permits(), 0);
    }
}
