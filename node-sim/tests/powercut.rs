//! Power cut at every durable point of an update and of a boot, then power on again: there is
//! always a bootable set, and the datastore is at a whole version that matches what runs.
//!
//! The real binaries run with `TWINSET_POWERCUT_AT=n` (see the `powercut` crate): the process
//! stops dead at its n-th durable point. A first run with `TWINSET_POWERCUT_LOG` lists the points.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use node_sim::{BootRecord, Outcome};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Runs `<name> --sysroot <sysroot> <args>` of workspace package `package` with `env` added to
/// its environment.
fn run_with_env(
    package: &str,
    name: &str,
    sysroot: &Path,
    args: &[&str],
    env: &[(&str, String)],
) -> Output {
    command(package, name, sysroot, args)
        .envs(env.iter().cloned())
        .output()
        .unwrap()
}

fn updog(sysroot: &Path, env: &[(&str, String)]) -> Output {
    run_with_env(
        "updog",
        "updog",
        sysroot,
        &["update", "--reboot", "--progress", "none"],
        env,
    )
}

fn boot(sysroot: &Path, env: &[(&str, String)]) -> Output {
    run_with_env("node-sim", "node-sim", sysroot, &["boot", "--json"], env)
}

/// Boots until settled and returns the last record.
fn settle(sysroot: &Path) -> BootRecord {
    let out = node_sim(sysroot, &["settle", "--json"]);
    let mut records: Vec<BootRecord> = serde_json::from_str(&ok(&out)).unwrap();
    records.pop().unwrap()
}

fn copy_node(from: &Path, to: &Path) {
    let _ = std::fs::remove_dir_all(to);
    let status = Command::new("cp")
        .args(["-a", "--sparse=always"])
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(status.success());
}

fn points(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// An update or a boot, run on the node in a directory with variables added to its environment.
type Step = fn(&Path, &[(&str, String)]) -> Output;

/// Runs `step` on a copy (`work/count-<name>`) of the node in `from`, logging its durable
/// points; asserts that it succeeds and returns the points in order.
fn count_points(step: Step, from: &Path, work: &Path, name: &str) -> Vec<String> {
    let counting = work.join(format!("count-{name}"));
    copy_node(from, &counting);
    let log = work.join(format!("{name}.log"));
    ok(&step(
        &counting,
        &[(powercut::LOG_ENV, log.display().to_string())],
    ));
    points(&log)
}

/// Runs `step` on a copy (`work/<name>-<n>`) of the node in `from` with the power cut at its
/// `n`-th durable point; asserts that it stopped. The copy, and the last point it logged.
fn cut_at(step: Step, from: &Path, work: &Path, name: &str, n: usize) -> (PathBuf, String) {
    let node_dir = work.join(format!("{name}-{n}"));
    copy_node(from, &node_dir);
    let cut_log = work.join(format!("{name}-{n}.log"));
    let out = step(
        &node_dir,
        &[
            (powercut::AT_ENV, n.to_string()),
            (powercut::LOG_ENV, cut_log.display().to_string()),
        ],
    );
    assert!(!out.status.success(), "the power went at point {n}");
    (node_dir, points(&cut_log).last().cloned().unwrap())
}

/// After power comes back: a healthy boot, the datastore at the running version and confirmed,
/// and the setting as that version has it.
fn check_whole(sysroot: &Path, context: &str) -> String {
    let rec = settle(sysroot);
    assert!(
        matches!(rec.outcome, Outcome::Healthy | Outcome::Marked),
        "{context}: {rec:?}"
    );
    let version = rec.version.clone().unwrap();
    let status = migrator::status(&sysroot.join("var/lib/datastore"))
        .unwrap()
        .unwrap();
    assert_eq!(
        status.version.to_string(),
        version,
        "{context}: datastore at the running version"
    );
    assert!(status.confirmed, "{context}: datastore confirmed");
    let expected = if version == "1.0.0" {
        "\"hello\""
    } else {
        "\"hello from 1.1.0\""
    };
    assert_eq!(
        setting(sysroot, "settings.motd").as_deref(),
        Some(expected),
        "{context}"
    );
    version
}

#[test]
fn a_power_cut_at_every_durable_point_of_an_update_and_a_boot_leaves_a_whole_node() {
    if !tools_present() {
        return;
    }
    let world = World::new();
    let (_server, node) = world.online_node(7);
    let base = node.sysroot;
    let migration = world.dir.path().join("motd.json");
    std::fs::write(
        &migration,
        br#"{"operations": [{"op": "replace", "key": "settings.motd", "old": "hello", "new": "hello from 1.1.0"}]}"#,
    )
    .unwrap();
    world.release("1.1.0", HEALTHY, &[migration]);

    let work = world.dir.path().join("cuts");
    std::fs::create_dir_all(&work).unwrap();
    let mut all_points = BTreeSet::new();
    let mut cut_points = BTreeSet::new();
    let mut tried = 0;

    // The update: count its points, then cut at each.
    let update_points = count_points(updog, &base, &work, "update");
    assert!(update_points.len() >= 8, "{update_points:?}");
    assert_eq!(
        update_points
            .iter()
            .filter(|p| *p == "updog.partition-synced")
            .count(),
        3,
        "each of BOOT, HASH and ROOT is synced at a point of its own"
    );
    all_points.extend(update_points.iter().cloned());
    for n in 1..=update_points.len() {
        let (node_dir, cut) = cut_at(updog, &base, &work, "update", n);
        cut_points.insert(cut);
        let context = format!("update cut at point {n} ({})", update_points[n - 1]);
        check_whole(&node_dir, &context);
        // Power is back: the update completes when run again (or was applied already).
        let again = updog(&node_dir, &[]);
        assert!(
            matches!(again.status.code(), Some(0 | 3)),
            "{context}: {}",
            String::from_utf8_lossy(&again.stderr)
        );
        assert_eq!(check_whole(&node_dir, &context), "1.1.0", "{context}");
        tried += 1;
        std::fs::remove_dir_all(&node_dir).unwrap();
    }

    // The first boot of the new set: count its points, then cut at each.
    let staged = work.join("staged");
    copy_node(&base, &staged);
    assert!(updog(&staged, &[]).status.success());
    let boot_points = count_points(boot, &staged, &work, "boot");
    assert!(boot_points.len() >= 6, "{boot_points:?}");
    all_points.extend(boot_points.iter().cloned());
    let mut versions = BTreeSet::new();
    for n in 1..=boot_points.len() {
        let (node_dir, cut) = cut_at(boot, &staged, &work, "boot", n);
        cut_points.insert(cut);
        let context = format!("boot cut at point {n} ({})", boot_points[n - 1]);
        versions.insert(check_whole(&node_dir, &context));
        tried += 1;
        std::fs::remove_dir_all(&node_dir).unwrap();
    }
    // A cut before the mark spends the try (fallback to 1.0.0); after it, 1.1.0 stays.
    assert_eq!(
        versions,
        BTreeSet::from(["1.0.0".to_string(), "1.1.0".to_string()])
    );
    assert_eq!(
        cut_points, all_points,
        "every durable point was cut at least once"
    );
    eprintln!(
        "power cut at {tried} points ({} update, {} boot; {} distinct): every one left a whole node",
        update_points.len(),
        boot_points.len(),
        all_points.len()
    );
}
