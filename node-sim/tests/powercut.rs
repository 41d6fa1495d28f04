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
use testsys::{HttpServer, NodeSpec, TestNode, binary};

fn run(sysroot: &Path, package: &str, name: &str, args: &[&str], env: &[(&str, String)]) -> Output {
    let mut command = Command::new(binary(package, name));
    command.arg("--sysroot").arg(sysroot).args(args);
    for (k, v) in env {
        command.env(k, v);
    }
    command.output().unwrap()
}

fn updog(sysroot: &Path, env: &[(&str, String)]) -> Output {
    run(
        sysroot,
        "updog",
        "updog",
        &["update", "--reboot", "--progress", "none"],
        env,
    )
}

fn boot(sysroot: &Path, env: &[(&str, String)]) -> Output {
    run(sysroot, "node-sim", "node-sim", &["boot", "--json"], env)
}

/// Boots until settled and returns the last record.
fn settle(sysroot: &Path) -> BootRecord {
    let out = run(sysroot, "node-sim", "node-sim", &["settle", "--json"], &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut records: Vec<BootRecord> = serde_json::from_slice(&out.stdout).unwrap();
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
    let first = world.release("1.0.0", HEALTHY, &[]);
    let server = HttpServer::serve(&world.repo.base()).unwrap();
    let spec = NodeSpec {
        urls: Some(world.repo.urls(&server.url())),
        seed: Some(7),
        ..NodeSpec::default()
    };
    let base = world.dir.path().join("base");
    let node = TestNode::create(&base, &first, &spec).unwrap();
    let toml = node.sysroot.join("etc/updog.toml");
    let config = std::fs::read_to_string(&toml).unwrap() + "reboot_command = [\"true\"]\n";
    std::fs::write(&toml, config).unwrap();
    assert!(boot(&base, &[]).status.success());
    migrator::Datastore::open_current(&base.join("var/lib/datastore"))
        .unwrap()
        .set(
            &migrator::Key::new("settings.motd").unwrap(),
            &serde_json::json!("hello"),
        )
        .unwrap();
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
    let counting = work.join("count-update");
    copy_node(&base, &counting);
    let log = work.join("update.log");
    let out = updog(&counting, &[(powercut::LOG_ENV, log.display().to_string())]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let update_points = points(&log);
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
        let node_dir = work.join(format!("update-{n}"));
        copy_node(&base, &node_dir);
        let cut_log = work.join(format!("update-{n}.log"));
        let out = updog(
            &node_dir,
            &[
                (powercut::AT_ENV, n.to_string()),
                (powercut::LOG_ENV, cut_log.display().to_string()),
            ],
        );
        assert!(!out.status.success(), "the power went at point {n}");
        cut_points.insert(points(&cut_log).last().cloned().unwrap());
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
    let counting = work.join("count-boot");
    copy_node(&staged, &counting);
    let log = work.join("boot.log");
    let out = boot(&counting, &[(powercut::LOG_ENV, log.display().to_string())]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let boot_points = points(&log);
    assert!(boot_points.len() >= 6, "{boot_points:?}");
    all_points.extend(boot_points.iter().cloned());
    let mut versions = BTreeSet::new();
    for n in 1..=boot_points.len() {
        let node_dir = work.join(format!("boot-{n}"));
        copy_node(&staged, &node_dir);
        let cut_log = work.join(format!("boot-{n}.log"));
        let out = boot(
            &node_dir,
            &[
                (powercut::AT_ENV, n.to_string()),
                (powercut::LOG_ENV, cut_log.display().to_string()),
            ],
        );
        assert!(!out.status.success(), "the power went at point {n}");
        cut_points.insert(points(&cut_log).last().cloned().unwrap());
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
    let _ = PathBuf::new();
}
