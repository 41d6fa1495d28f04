//! Power cuts on demand: every durable write in the project (a GPT copy synced, a partition
//! synced, a datastore link renamed, a status file replaced) is followed by a call to [`point`]
//! with a stable name. In normal runs that call costs one relaxed atomic load.
//!
//! Tests drive real binaries with two environment variables:
//!
//! - `TWINSET_POWERCUT_LOG=<file>`: every point reached is appended to the file as a line
//!   `<name>`, so a test learns which points an operation has and in which order;
//! - `TWINSET_POWERCUT_AT=<n>`: the process stops dead at the n-th point it reaches (counting
//!   from 1), with `abort()`: no destructor, no cleanup, no further write, as if the power went.
//!   Everything written and synced before stays; the page cache of this machine keeps the rest,
//!   which is the optimistic half of a real power cut (signpost's own crash test covers torn and
//!   lost sectors of the partition table).
//!
//! A test first runs an operation with the log only to count its points, then runs it once per
//! point with `TWINSET_POWERCUT_AT`, and after each cut boots the node again and checks what a
//! user would see. It asserts every point of the log was cut at least once.
//!
//! ```
//! // After a durable write:
//! powercut::point("datastore.flip.current");
//! ```
//!
//! # Testing
//!
//! `cargo nextest run -p powercut` runs the unit tests; the power-cut suites live with the node
//! lifecycle.
#![deny(missing_docs)]

use std::io::Write;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// The environment variable naming the log of points reached.
pub const LOG_ENV: &str = "TWINSET_POWERCUT_LOG";
/// The environment variable naming the point (1-based count) at which to cut the power.
pub const AT_ENV: &str = "TWINSET_POWERCUT_AT";

struct Plan {
    log: Option<std::path::PathBuf>,
    at: Option<u64>,
}

static PLAN: OnceLock<Plan> = OnceLock::new();
static REACHED: AtomicU64 = AtomicU64::new(0);

fn plan() -> &'static Plan {
    PLAN.get_or_init(|| Plan {
        log: std::env::var_os(LOG_ENV).map(Into::into),
        at: std::env::var(AT_ENV)
            .ok()
            .and_then(|v| v.trim().parse().ok()),
    })
}

/// Marks a durable point. Logs it when asked to, and stops the process dead when it is the
/// point the test chose.
pub fn point(name: &str) {
    let plan = plan();
    if plan.log.is_none() && plan.at.is_none() {
        return;
    }
    let n = REACHED.fetch_add(1, Ordering::SeqCst) + 1;
    if let Some(log) = &plan.log {
        // Written before a possible cut, so the log names the point the power went at.
        if let Ok(mut file) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
        {
            let _ = writeln!(file, "{name}");
        }
    }
    if plan.at == Some(n) {
        std::process::abort();
    }
}

/// Replaces `path` with `bytes` durably: a temporary file in the same directory, synced,
/// renamed over `path`, the directory synced; then marks `point`. A reader sees the old file or
/// the new one, never a mix, and after the point the new one survives a power cut.
pub fn write_atomic(path: &std::path::Path, bytes: &[u8], point_name: &str) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => std::path::Path::new("."),
    };
    std::fs::create_dir_all(dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp.{}", std::process::id()));
    let written = std::fs::File::create(&tmp).and_then(|mut file| {
        file.write_all(bytes)?;
        file.sync_all()
    });
    if let Err(e) = written.and_then(|()| std::fs::rename(&tmp, path)) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    std::fs::File::open(dir)?.sync_all()?;
    point(point_name);
    Ok(())
}

/// How many points this process has reached (when a plan is active).
pub fn reached() -> u64 {
    REACHED.load(Ordering::SeqCst)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_writes_replace_the_whole_file_and_leave_no_temporary() {
        let dir = std::env::temp_dir().join(format!("powercut-test-{}", std::process::id()));
        let path = dir.join("sub/state.json");
        write_atomic(&path, b"one", "test.write").unwrap();
        write_atomic(&path, b"two", "test.write").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        assert_eq!(
            std::fs::read_dir(path.parent().unwrap()).unwrap().count(),
            1
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn without_a_plan_points_are_free_and_uncounted() {
        // The test process has neither variable set.
        point("nothing.happens");
        assert_eq!(reached(), 0);
    }
}
