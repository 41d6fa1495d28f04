//! Progress of an install, as events: the CLI prints them as JSON lines or a bar on a TTY, and
//! the update API can keep the latest one for its status.
//!
//! One JSON object per line, for example:
//!
//! ```json
//! {"phase":"download","version":"1.1.0","image":"root","bytes_done":1048576,"bytes_total":4194304,"rate":52428800.0}
//! ```
//!
//! `phase` is one of `refresh`, `cache`, `clear`, `download`, `sync`, `verify`, `mark-valid`,
//! `done`. `image` (`boot`, `root`, `hash`) is set for `download`; `bytes_done`/`bytes_total`
//! count the compressed bytes of that image as listed in the signed targets metadata; `rate` is
//! bytes per second since the image started. Download events come at most every 250 ms per
//! image, plus one at its start and one at its end.
//!
//! An image installed from its chunk index adds `chunks_total`, `chunks_reused` (already in
//! place), `chunks_copied` (from the running set, or zeros) and `chunks_downloaded`; its
//! `bytes_done`/`bytes_total` then count the compressed bytes of the chunks it downloads.

use serde::{Deserialize, Serialize};
use std::io::Write;
use std::sync::Mutex;

/// A phase of the install.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// Refreshing TUF metadata and choosing.
    Refresh,
    /// Caching manifest, metadata and migrations.
    Cache,
    /// Clearing the inactive set's bits.
    Clear,
    /// Streaming an image into its partition.
    Download,
    /// Syncing the partitions.
    Sync,
    /// Reading back and verifying the written set.
    Verify,
    /// Marking the inactive set valid.
    MarkValid,
    /// Finished.
    Done,
}

/// One progress event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProgressEvent {
    /// The phase.
    pub phase: Phase,
    /// The version being installed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The image (`boot`, `root`, `hash`), for downloads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Bytes done.
    #[serde(default)]
    pub bytes_done: u64,
    /// Bytes in all, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_total: Option<u64>,
    /// Bytes per second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<f64>,
    /// Chunked install: the image's chunks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chunks_total: Option<u64>,
    /// Chunked install: chunks found already in place in the partition (not written again).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chunks_reused: Option<u64>,
    /// Chunked install: chunks copied from the running set (or written as zeros).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chunks_copied: Option<u64>,
    /// Chunked install: chunks downloaded, verified and written so far.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chunks_downloaded: Option<u64>,
}

impl ProgressEvent {
    /// An event for `phase` with nothing else.
    pub fn phase(phase: Phase, version: Option<&str>) -> ProgressEvent {
        ProgressEvent {
            phase,
            version: version.map(str::to_string),
            image: None,
            bytes_done: 0,
            bytes_total: None,
            rate: None,
            chunks_total: None,
            chunks_reused: None,
            chunks_copied: None,
            chunks_downloaded: None,
        }
    }
}

/// Where progress goes.
pub trait ProgressSink: Send + Sync {
    /// Records one event.
    fn event(&self, event: &ProgressEvent);
}

/// Drops every event.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl ProgressSink for NoProgress {
    fn event(&self, _: &ProgressEvent) {}
}

/// Writes each event as one JSON line.
#[derive(Debug)]
pub struct JsonLines<W>(Mutex<W>);

impl<W: Write + Send> JsonLines<W> {
    /// Lines to `out`.
    pub fn new(out: W) -> Self {
        JsonLines(Mutex::new(out))
    }
}

impl<W: Write + Send> ProgressSink for JsonLines<W> {
    fn event(&self, event: &ProgressEvent) {
        if let Ok(line) = serde_json::to_string(event) {
            let mut out = self
                .0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
        }
    }
}

/// A one-line bar on stderr, redrawn in place (for a terminal).
#[derive(Debug, Default)]
pub struct Bar;

impl ProgressSink for Bar {
    fn event(&self, event: &ProgressEvent) {
        let mut err = std::io::stderr().lock();
        let text = bar_line(event);
        let _ = write!(err, "\r\x1b[2K{text}");
        if event.phase == Phase::Done {
            let _ = writeln!(err);
        }
        let _ = err.flush();
    }
}

/// One line of the terminal bar: image, bar, percentage, bytes, rate and time left.
fn bar_line(event: &ProgressEvent) -> String {
    match (event.phase, &event.image, event.bytes_total) {
        (Phase::Download, Some(image), Some(total)) if total > 0 => {
            let pct = event.bytes_done.saturating_mul(100) / total;
            let filled = ((pct / 5) as usize).min(20);
            let rate = event.rate.unwrap_or(0.0);
            let eta = if rate > 0.0 {
                let secs = total.saturating_sub(event.bytes_done) as f64 / rate;
                format!("ETA {}:{:02}", (secs as u64) / 60, (secs as u64) % 60)
            } else {
                "ETA --:--".to_string()
            };
            format!(
                "{image:>4} [{}{}] {pct:>3}% {:.1}/{:.1} MiB {:.1} MiB/s {eta}",
                "#".repeat(filled),
                " ".repeat(20 - filled),
                event.bytes_done as f64 / 1048576.0,
                total as f64 / 1048576.0,
                rate / 1048576.0
            )
        }
        (phase, _, _) => format!("{phase:?}").to_lowercase(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bar_shows_bytes_rate_and_time_left() {
        let mut event = ProgressEvent::phase(Phase::Download, Some("1.1.0"));
        event.image = Some("root".into());
        event.bytes_done = 50 << 20;
        event.bytes_total = Some(200 << 20);
        event.rate = Some(f64::from(10u32 << 20));
        assert_eq!(
            bar_line(&event),
            "root [#####               ]  25% 50.0/200.0 MiB 10.0 MiB/s ETA 0:15"
        );
    }

    #[test]
    fn events_are_json_lines_and_the_documented_example_parses() {
        let sink = JsonLines::new(Vec::new());
        let mut event = ProgressEvent::phase(Phase::Download, Some("1.1.0"));
        event.image = Some("root".into());
        event.bytes_done = 10;
        event.bytes_total = Some(20);
        sink.event(&event);
        sink.event(&ProgressEvent::phase(Phase::MarkValid, None));
        let out = String::from_utf8(sink.0.into_inner().unwrap()).unwrap();
        let lines: Vec<ProgressEvent> = out
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines[0], event);
        assert!(
            out.lines()
                .nth(1)
                .unwrap()
                .contains("\"phase\":\"mark-valid\"")
        );
        let example =
            test_tools::marked_block(include_str!("../../docs/formats-updog.md"), "progress")
                .unwrap();
        for line in example.trim().lines() {
            let _: ProgressEvent = serde_json::from_str(line).unwrap();
        }
    }
}
