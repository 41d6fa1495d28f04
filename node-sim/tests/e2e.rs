//! End to end on nodes in directories, with the real binaries a node runs (`updog`, `signpost`,
//! `node-sim`) and releases served over HTTP on loopback.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use node_sim::{BootRecord, Outcome};
use repo_tools::publish::WaveSpec;
use std::path::{Path, PathBuf};
use std::process::Output;
use testsys::{HttpServer, TestNode};

struct E2e {
    world: World,
    _server: HttpServer,
    node: TestNode,
}

impl E2e {
    /// A node booted on 1.0.0 (healthy), updog pointed at the served repository.
    fn new() -> E2e {
        let world = World::new();
        let (server, node) = world.online_node(1500);
        E2e {
            world,
            _server: server,
            node,
        }
    }

    fn run(&self, package: &str, name: &str, args: &[&str]) -> Output {
        run(package, name, &self.node.sysroot, args)
    }

    fn updog(&self, args: &[&str]) -> Output {
        self.run("updog", "updog", args)
    }

    fn update(&self) {
        ok(&self.updog(&["update", "--reboot", "--progress", "none"]));
    }

    fn boot(&self) -> BootRecord {
        boot_record(&self.node.sysroot)
    }

    fn motd(&self) -> Option<String> {
        setting(&self.node.sysroot, "settings.motd")
    }

    fn declarative(&self, name: &str, doc: serde_json::Value) -> PathBuf {
        let path = self.world.dir.path().join(format!("{name}.json"));
        std::fs::write(&path, serde_json::to_vec(&doc).unwrap()).unwrap();
        path
    }
}

fn replace_motd(e2e: &E2e, old: &str, new: &str) -> PathBuf {
    e2e.declarative(
        "motd",
        serde_json::json!({"operations": [{"op": "replace", "key": "settings.motd", "old": old, "new": new}]}),
    )
}

#[test]
fn an_update_migrates_forward_and_a_manual_rollback_migrates_back() {
    if !tools_present() {
        return;
    }
    let e2e = E2e::new();
    let migration = replace_motd(&e2e, "hello", "hello from 1.1.0");
    e2e.world.release("1.1.0", HEALTHY, &[migration]);
    e2e.update();
    let boot = e2e.boot();
    assert_eq!(
        (boot.outcome, boot.version.as_deref()),
        (Outcome::Marked, Some("1.1.0"))
    );
    assert_eq!(e2e.motd().as_deref(), Some("\"hello from 1.1.0\""));
    assert_eq!(datastore_version(&e2e.node.sysroot), "1.1.0");

    // The operator rolls back by hand: the 1.1.0 version was confirmed, so its migrations run
    // backward on the way down.
    ok(&e2e.run("signpost", "signpost", &["rollback-to-inactive"]));
    let boot = e2e.boot();
    assert_eq!(boot.version.as_deref(), Some("1.0.0"));
    assert!(
        boot.migration.as_deref().unwrap().contains("backward"),
        "{boot:?}"
    );
    assert_eq!(e2e.motd().as_deref(), Some("\"hello\""));
    assert_eq!(datastore_version(&e2e.node.sysroot), "1.0.0");
}

#[test]
fn a_failing_migration_is_never_marked_and_the_datastore_stays() {
    if !tools_present() {
        return;
    }
    let e2e = E2e::new();
    // Forward refuses: it would add a setting that exists, which it could not undo exactly.
    let migration = e2e.declarative(
        "clash",
        serde_json::json!({"operations": [{"op": "add", "key": "settings.motd", "value": "x"}]}),
    );
    e2e.world.release("1.1.0", HEALTHY, &[migration]);
    e2e.update();
    let failed = e2e.boot();
    assert_eq!(failed.outcome, Outcome::MigrationFailed, "{failed:?}");
    assert!(failed.reason.contains("motd"), "{}", failed.reason);
    let back = e2e.boot();
    assert_eq!(
        (back.set.as_str(), back.version.as_deref()),
        ("A", Some("1.0.0"))
    );
    assert_eq!(datastore_version(&e2e.node.sysroot), "1.0.0");
    assert_eq!(e2e.motd().as_deref(), Some("\"hello\""));
}

fn fails_then_falls_back(checks: &str, corrupt: bool) -> E2e {
    let e2e = E2e::new();
    e2e.world.release("1.1.0", checks, &[]);
    e2e.update();
    if corrupt {
        corrupt_root_block(&e2e.node, signpost::SetId::B, b"1.1.0");
    }
    let failed = e2e.boot();
    assert!(failed.outcome.needs_reboot(), "{failed:?}");
    let back = e2e.boot();
    assert_eq!(
        (back.set.as_str(), back.version.as_deref()),
        ("A", Some("1.0.0"))
    );
    assert_eq!(back.fell_back_from.as_deref(), Some("1.1.0"));
    assert_eq!(datastore_version(&e2e.node.sysroot), "1.0.0");
    assert_eq!(e2e.motd().as_deref(), Some("\"hello\""));
    e2e
}

#[test]
fn a_failed_health_gate_falls_back_and_the_version_is_not_offered_again() {
    if !tools_present() {
        return;
    }
    let e2e = fails_then_falls_back(UNHEALTHY, false);
    let out = e2e.updog(&["check-update"]);
    assert_eq!(out.status.code(), Some(3), "1.1.0 is not offered again");
    // Named explicitly, it is installed again.
    ok(&e2e.updog(&["update-image", "--image", "1.1.0", "--progress", "none"]));
}

#[test]
fn a_hanging_health_check_times_out_and_falls_back() {
    if !tools_present() {
        return;
    }
    fails_then_falls_back(HANGS, false);
}

#[test]
fn a_corrupted_root_byte_fails_the_boot_and_falls_back() {
    if !tools_present() {
        return;
    }
    fails_then_falls_back(HEALTHY, true);
}

#[test]
fn an_update_in_a_later_wave_waits_for_its_time() {
    if !tools_present() {
        return;
    }
    let e2e = E2e::new();
    let built = e2e
        .world
        .repo
        .build(
            "1.1.0",
            &[("etc/twinset/health-checks.toml", HEALTHY.as_bytes())],
        )
        .unwrap();
    let policy = update_metadata::WavePolicy::from_toml(
        "[[waves]]\nstart_after = '1 hour'\nfleet_percentage = 50\n[[waves]]\nstart_after = '2 hours'\nfleet_percentage = 100\n",
    )
    .unwrap();
    // Waves start in an hour; seed 1500 sits in the last wave, two hours out.
    let now = repo_tools::time::now();
    let options = testsys::PublishOptions {
        waves: WaveSpec::Policy(policy.clone(), now),
        ..testsys::PublishOptions::default()
    };
    e2e.world.repo.publish(&built, &options).unwrap();
    assert_eq!(e2e.updog(&["check-update"]).status.code(), Some(3));
    let out = e2e.updog(&["update", "--progress", "none"]);
    assert_eq!(out.status.code(), Some(3), "not taken before its time");
    assert!(
        e2e.updog(&["check-update", "--ignore-waves"])
            .status
            .success()
    );
    // Three hours later (the same waves, started three hours ago), it is this node's turn.
    let earlier = now
        .checked_sub(jiff::SignedDuration::from_hours(3))
        .unwrap();
    e2e.world
        .repo
        .set_waves("1.1.0", WaveSpec::Policy(policy, earlier))
        .unwrap();
    assert!(e2e.updog(&["check-update"]).status.success());
    e2e.update();
    assert_eq!(e2e.boot().version.as_deref(), Some("1.1.0"));
}

#[test]
fn a_node_is_created_from_a_repository_and_boots_its_first_release() {
    if !tools_present() {
        return;
    }
    let world = World::new();
    let (server, urls) = serve_first_release(&world);
    let sysroot = world.dir.path().join("fresh");
    ok(&create(&world, &sysroot, &urls, "1.0.0"));
    // The images came over HTTP through TUF.
    assert!(
        server
            .requests()
            .iter()
            .any(|r| r.path.ends_with("1.0.0-root.ext4.lz4"))
    );
    let out = node_sim(&sysroot, &["boot", "--json"]);
    let records: Vec<BootRecord> = serde_json::from_str(&ok(&out)).unwrap();
    assert_eq!(records[0].version.as_deref(), Some("1.0.0"));
    assert_eq!(records[0].set, "A");
    // A version the repository does not have is refused with one line, naming it.
    let out = create(&world, &world.dir.path().join("other"), &urls, "9.9.9");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("9.9.9") && stderr.trim().lines().count() == 1,
        "{stderr}"
    );
}

/// Publishes 1.0.0 (healthy) and serves the repository: the server (alive while it is held)
/// and the URLs `node-sim create` takes (metadata, targets).
fn serve_first_release(world: &World) -> (HttpServer, (String, String)) {
    world.release("1.0.0", HEALTHY, &[]);
    let server = HttpServer::serve(&world.repo.base()).unwrap();
    let urls = world.repo.urls(&server.url());
    (server, urls)
}

/// `node-sim create`: a node in `sysroot` running `version` of `world`'s repository, fetched
/// from `urls` (metadata, targets).
fn create(world: &World, sysroot: &Path, urls: &(String, String), version: &str) -> Output {
    create_with(world, sysroot, urls, version, &[])
}

/// `node-sim boot --json` run from `cwd` with `--sysroot` given relative to it: the record.
fn boot_relative(cwd: &Path, sysroot: &str) -> BootRecord {
    let out = std::process::Command::new(testsys::binary("node-sim", "node-sim"))
        .current_dir(cwd)
        .args(["--sysroot", sysroot, "boot", "--json"])
        .output()
        .unwrap();
    assert!(
        matches!(out.status.code(), Some(0 | 10)),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut records: Vec<BootRecord> = serde_json::from_slice(&out.stdout).unwrap();
    records.pop().unwrap()
}

#[test]
fn a_relative_sysroot_gives_the_health_checks_a_sysroot_they_can_use() {
    if !tools_present() {
        return;
    }
    let world = World::new();
    // The check of docs/operations.md: it looks through TWINSET_SYSROOT from the sysroot.
    let checks = "[[check]]\nname = \"settings readable\"\ncommand = [\"sh\", \"-c\", \"test -e \\\"$TWINSET_SYSROOT/var/lib/datastore/current\\\"\"]\n";
    let (_, node, _) = world.first_node(checks);
    // `cd <dir>; node-sim --sysroot node boot`.
    let boot = boot_relative(world.dir.path(), "node");
    assert_eq!(boot.outcome, Outcome::Healthy, "{boot:?}");
    assert!(boot.checks.iter().all(|c| c.passed), "{boot:?}");
    // On a set not marked yet, a failing check would force a needless fallback.
    let second = world.release("1.1.0", checks, &[]);
    stage(&node, &world.repo, &second);
    let boot = boot_relative(world.dir.path(), "node");
    assert_eq!(
        (boot.outcome, boot.version.as_deref()),
        (Outcome::Marked, Some("1.1.0")),
        "{boot:?}"
    );
}

#[test]
fn a_created_node_reboots_by_booting_again_and_never_reboots_the_host() {
    if !tools_present() {
        return;
    }
    let world = World::new();
    let (_server, urls) = serve_first_release(&world);
    let sysroot = world.dir.path().join("fresh");
    ok(&create(&world, &sysroot, &urls, "1.0.0"));
    assert_eq!(boot_record(&sysroot).version.as_deref(), Some("1.0.0"));
    world.release("1.1.0", HEALTHY, &[]);
    // A `systemctl` that only records that it was called, found first on PATH.
    let bin = world.dir.path().join("fake-bin");
    std::fs::create_dir_all(&bin).unwrap();
    let called = world.dir.path().join("systemctl-called");
    let fake = bin.join("systemctl");
    std::fs::write(
        &fake,
        format!("#!/bin/sh\necho \"$@\" >> '{}'\n", called.display()),
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = command(
        "updog",
        "updog",
        &sysroot,
        &["update", "--reboot", "--progress", "none"],
    )
    .env("PATH", path)
    .output()
    .unwrap();
    ok(&out);
    assert!(
        !called.exists(),
        "updog ran systemctl {}",
        std::fs::read_to_string(&called).unwrap_or_default()
    );
    // The reboot is the next `node-sim boot`.
    let boot = boot_record(&sysroot);
    assert_eq!(
        (boot.outcome, boot.version.as_deref()),
        (Outcome::Marked, Some("1.1.0"))
    );
}

/// [`create`] with `extra` arguments added.
fn create_with(
    world: &World,
    sysroot: &Path,
    urls: &(String, String),
    version: &str,
    extra: &[&str],
) -> Output {
    let (metadata, targets) = urls;
    command("node-sim", "node-sim", sysroot, &["create"])
        .args(["--metadata-url", metadata, "--targets-url", targets])
        .args([
            "--variant",
            "demo",
            "--arch",
            "x86_64",
            "--version",
            version,
        ])
        .arg("--root")
        .arg(&world.repo.root_json)
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn create_refuses_bad_input_before_writing_anything() {
    if !tools_present() {
        return;
    }
    let world = World::new();
    let (_server, urls) = serve_first_release(&world);
    let sysroot = world.dir.path().join("node");

    // Each refusal: the exit code, and one line naming what was wrong; the sysroot never made.
    let refused = |out: &Output, code: i32, names: &[&str]| {
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{stderr}");
        let first = stderr.lines().next().unwrap_or_default();
        for name in names {
            assert!(first.contains(name), "{stderr}");
        }
        if code == 1 {
            assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        }
        assert!(!sysroot.exists(), "{stderr}: nothing written");
    };
    let out = create_with(&world, &sysroot, &urls, "1.0.0", &["--seed", "5000"]);
    refused(&out, 2, &["5000", "0..=2047"]);
    let out = create_with(&world, &sysroot, &urls, "1.0.0", &["--disk-mib", "10"]);
    refused(&out, 1, &["10 MiB", "needs"]);
    let bad_urls = ("not a url".to_string(), urls.1.clone());
    let out = create_with(&world, &sysroot, &bad_urls, "1.0.0", &[]);
    refused(&out, 1, &["--metadata-url", "not a url"]);
    let image = world.dir.path().join("elsewhere.img");
    let out = create_with(
        &world,
        &sysroot,
        &urls,
        "1.0.0",
        &["--disk", image.to_str().unwrap()],
    );
    refused(&out, 1, &["--disk", "dev/disk.img"]);
    assert!(!image.exists());

    // A create that fails half-way (the repository has no 9.9.9) leaves the node's disk behind;
    // the next create says what is there and how to start over.
    let out = create_with(&world, &sysroot, &urls, "9.9.9", &[]);
    assert_eq!(out.status.code(), Some(1));
    let disk = sysroot.join("dev/disk.img");
    assert!(disk.exists());
    let out = create_with(&world, &sysroot, &urls, "1.0.0", &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert_eq!(stderr.matches("Failed to").count(), 1, "{stderr}");
    assert!(!stderr.contains("--force"), "{stderr}");
    assert!(stderr.contains(&disk.display().to_string()), "{stderr}");
    assert!(
        stderr.contains(&format!("remove '{}'", sysroot.display())),
        "{stderr}"
    );
    std::fs::remove_dir_all(&sysroot).unwrap();
    ok(&create_with(&world, &sysroot, &urls, "1.0.0", &[]));
    assert_eq!(boot_record(&sysroot).version.as_deref(), Some("1.0.0"));
}
