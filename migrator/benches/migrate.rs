//! Migrates a datastore of 10,000 keys through 5 declarative migrations (1.0.0 -> 1.5.0), the
//! whole boot-time step: loading the cached repository with tough, verifying the targets,
//! running the migrations, flipping and pruning. The keys are written once; each of
//! `MIGRATOR_BENCH_ROUNDS` rounds (default 5) migrates a synced copy of that node up and back
//! down, and the table gives the median. See docs/benchmarks.md. Run:
//! `cargo bench -p migrator --bench migrate`.
#![allow(clippy::unwrap_used, missing_docs)]

#[path = "../tests/common/mod.rs"]
mod common;

use common::*;
use migrator::Key;
use std::time::Instant;

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn main() {
    let work = tempfile::tempdir().unwrap();
    let publisher = Publisher::new(work.path());
    publisher.publish("1.0.0", &[]);
    for minor in 1..=5 {
        let doc = serde_json::json!({"operations": [
            {"op": "add", "key": format!("settings.added-{minor}"), "value": minor},
            {"op": "rename", "from": format!("settings.group-{minor}"), "to": format!("settings.renamed-{minor}")},
            {"op": "replace", "key": "settings.group-0.key-0", "old": minor - 1, "new": minor},
            {"op": "remove", "key": format!("settings.group-9.key-{minor}"), "default": 0}
        ]});
        let path =
            declarative_migration(&work.path().join("m"), &format!("step-{minor}.json"), doc);
        publisher.publish(&format!("1.{minor}.0"), &[path]);
    }
    let node = Node::new(work.path(), &publisher, "1.0.0");
    migrator::migrate(&node.options()).unwrap();
    let ds = node.current();
    let before_fill = Instant::now();
    ds.set(
        &Key::new("settings.group-0.key-0").unwrap(),
        &serde_json::json!(0),
    )
    .unwrap();
    for group in 0..10 {
        for key in 0..1000 {
            if group == 0 && key == 0 {
                continue;
            }
            let k = Key::new(&format!("settings.group-{group}.key-{key}")).unwrap();
            ds.set(&k, &serde_json::json!(format!("value {group}/{key}")))
                .unwrap();
        }
    }
    let fill = before_fill.elapsed();
    let keys = ds.list(None).unwrap().len();

    // Each round migrates its own copy of the filled node, synced first so that the migrator's
    // own sync pays only for what the migration wrote.
    let rounds: usize = std::env::var("MIGRATOR_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let (mut up, mut down) = (Vec::new(), Vec::new());
    let mut outcome = None;
    let mut after = 0;
    let rss_before = peak_rss_kib();
    for round in 0..rounds.max(1) {
        let copy = Node {
            sysroot: work.path().join(format!("round-{round}")),
        };
        copy_dir(&node.sysroot, &copy.sysroot);
        let synced = std::process::Command::new("sync").status();
        assert!(synced.is_ok_and(|s| s.success()), "sync");

        copy.boot("1.5.0");
        let start = Instant::now();
        outcome = Some(migrator::migrate(&copy.options()).unwrap());
        up.push(start.elapsed().as_secs_f64());
        after = copy.current().list(None).unwrap().len();

        let start_back = Instant::now();
        migrator::confirm(&copy.datastore()).unwrap();
        copy.boot("1.0.0");
        migrator::migrate(&copy.options()).unwrap();
        down.push(start_back.elapsed().as_secs_f64());
        std::fs::remove_dir_all(&copy.sysroot).unwrap();
    }
    let summary = |times: &mut Vec<f64>| {
        times.sort_by(f64::total_cmp);
        format!(
            "{:.3} s (min {:.3}, max {:.3}, {} runs)",
            times[times.len() / 2],
            times[0],
            times[times.len() - 1],
            times.len()
        )
    };

    println!("{}", outcome.unwrap());
    println!("| measure | value |");
    println!("|---|---|");
    println!("| keys before / after | {keys} / {after} |");
    println!(
        "| writing the keys (synced, one by one) | {:.2} s |",
        fill.as_secs_f64()
    );
    println!(
        "| migrate 1.0.0 -> 1.5.0 (5 declarative), median | {} |",
        summary(&mut up)
    );
    println!(
        "| confirm + migrate back 1.5.0 -> 1.0.0, median | {} |",
        summary(&mut down)
    );
    println!("| peak RSS before migrating | {} KiB |", rss_before);
    println!("| peak RSS of the process | {} KiB |", peak_rss_kib());
}
