//! Crash points: each run is stopped right after every durable step in turn (as a crash
//! would: no clean-up), then the migrator runs again. The datastore must be at the old or the
//! new version with every key intact, never a mixture, and end at the new one.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use migrator::{Error, Steps};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Files = BTreeMap<PathBuf, Vec<u8>>;

/// A node at 1.0.0 with settings, and the repository of the scenario.
fn base(work: &Path) -> Node {
    let log = work.join("runs.log");
    let publisher = Publisher::new(work);
    publish_scenario(&publisher, work, &log);
    let node = Node::new(work, &publisher, "1.0.0");
    migrator::migrate(&node.options()).unwrap();
    seed_settings(&node.current());
    node
}

fn clone_node(from: &Node, to: &Path) -> Node {
    copy_dir(&from.sysroot, to);
    Node {
        sysroot: to.to_path_buf(),
    }
}

/// Crashes `action` after each of its durable steps on a fresh copy of `node`, checks the
/// datastore after the crash and after `recover` runs. Returns the steps' kinds and the count.
fn crash_everywhere(
    name: &str,
    work: &Path,
    node: &Node,
    action: &dyn Fn(&Node, Steps) -> migrator::Result<()>,
    recover: &dyn Fn(&Node) -> migrator::Result<()>,
    old: &Files,
    new: &Files,
) -> (BTreeSet<&'static str>, usize) {
    // A clean run counts the steps.
    let clean = clone_node(node, &work.join(format!("{name}-clean")));
    let steps = Steps::new();
    action(&clean, steps.clone()).unwrap();
    assert_eq!(&live_files(&clean.current_dir()), new, "{name}: clean run");
    let taken = steps.taken();
    assert!(!taken.is_empty());
    let kinds = taken.iter().map(|s| s.kind()).collect();

    for n in 1..=taken.len() {
        let copy = clone_node(node, &work.join(format!("{name}-crash-{n}")));
        let err = action(&copy, Steps::crash_after(n)).unwrap_err();
        assert!(
            matches!(err, Error::Crashed { .. }),
            "{name} step {n}: {err}"
        );
        let after_crash = live_files(&copy.current_dir());
        assert!(
            after_crash == *old || after_crash == *new,
            "{name}: after a crash at step {n} ({}) the datastore is neither old nor new",
            taken[n - 1]
        );
        recover(&copy).unwrap();
        assert_eq!(
            &live_files(&copy.current_dir()),
            new,
            "{name}: re-run after step {n}"
        );
        // Nothing left over: the links, the state file and at most two version directories.
        let dirs = root_entries(&copy.datastore())
            .into_iter()
            .filter(|e| e.contains('_') && !e.starts_with("migration-state"))
            .count();
        assert!(
            dirs <= 2,
            "{name}: {dirs} version directories after step {n}"
        );
        std::fs::remove_dir_all(&copy.sysroot).unwrap();
    }
    (kinds, taken.len())
}

#[test]
fn every_durable_step_is_crash_safe() {
    let work = tempfile::tempdir().unwrap();
    let node = base(work.path());
    let at_100 = live_files(&node.current_dir());

    // Expected contents at each version, from a clean run.
    let reference = clone_node(&node, &work.path().join("reference"));
    reference.boot("1.2.0");
    migrator::migrate(&reference.options()).unwrap();
    let at_120 = live_files(&reference.current_dir());
    let fresh = clone_node(&node, &work.path().join("reference-110"));
    fresh.boot("1.1.0");
    migrator::migrate(&fresh.options()).unwrap();
    let at_110 = live_files(&fresh.current_dir());

    let migrate = |n: &Node, steps: Steps| migrator::migrate(&n.options_with(steps)).map(|_| ());
    let rerun = |n: &Node| migrator::migrate(&n.options()).map(|_| ());
    let mut kinds = BTreeSet::new();
    let mut points = 0;

    // 1. Forward through three migrations (executable and declarative): 1.0.0 -> 1.2.0.
    let up = clone_node(&node, &work.path().join("up"));
    up.boot("1.2.0");
    let (k, n) = crash_everywhere(
        "forward",
        work.path(),
        &up,
        &migrate,
        &rerun,
        &at_100,
        &at_120,
    );
    kinds.extend(k);
    points += n;

    // 1.0.0 -> 1.1.0 (confirmed) -> 1.2.0 (unconfirmed, 1.1.0 kept).
    let at_120_via_110 = clone_node(&fresh, &work.path().join("via-110"));
    migrator::confirm(&at_120_via_110.datastore()).unwrap();
    at_120_via_110.boot("1.2.0");
    migrator::migrate(&at_120_via_110.options()).unwrap();

    // 2. Confirm, which prunes the 1.0.0 directory.
    let confirm = |n: &Node, steps: Steps| migrator::confirm_with(&n.datastore(), &steps);
    let reconfirm = |n: &Node| migrator::confirm(&n.datastore());
    let (k, n) = crash_everywhere(
        "confirm",
        work.path(),
        &at_120_via_110,
        &confirm,
        &reconfirm,
        &at_120,
        &at_120,
    );
    kinds.extend(k);
    points += n;

    // 3. Backward from the confirmed 1.2.0 to 1.0.0; the dropped values come back from the
    //    kept 1.1.0 directory.
    let down = clone_node(&at_120_via_110, &work.path().join("down"));
    migrator::confirm(&down.datastore()).unwrap();
    down.boot("1.0.0");
    let (k, n) = crash_everywhere(
        "backward",
        work.path(),
        &down,
        &migrate,
        &rerun,
        &at_120,
        &at_100,
    );
    kinds.extend(k);
    points += n;

    // 4. Fallback from an unconfirmed 1.1.0 to the kept 1.0.0 directory.
    let fallback = clone_node(&fresh, &work.path().join("fallback"));
    fallback.boot("1.0.0");
    let (k, n) = crash_everywhere(
        "fallback",
        work.path(),
        &fallback,
        &migrate,
        &rerun,
        &at_110,
        &at_100,
    );
    kinds.extend(k);
    points += n;

    eprintln!("crash points tried: {points}; step kinds hit: {kinds:?}");
    assert_eq!(
        kinds,
        ["link", "output", "prune", "state"].into_iter().collect(),
        "every kind of durable step must be crashed at least once"
    );
    assert!(points >= 20, "only {points} crash points");
}
