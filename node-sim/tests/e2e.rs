//! End to end on nodes in directories, with the real binaries a node runs (`updog`, `signpost`,
//! `node-sim`) and releases served over HTTP on loopback.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use node_sim::{BootRecord, Outcome};
use repo_tools::publish::WaveSpec;
use std::path::PathBuf;
use std::process::{Command, Output};
use testsys::{HttpServer, NodeSpec, TestNode, binary};

struct E2e {
    world: World,
    _server: HttpServer,
    node: TestNode,
}

impl E2e {
    /// A node booted on 1.0.0 (healthy), updog pointed at the served repository.
    fn new() -> E2e {
        let world = World::new();
        let first = world.release("1.0.0", HEALTHY, &[]);
        let server = HttpServer::serve(&world.repo.base()).unwrap();
        let spec = NodeSpec {
            urls: Some(world.repo.urls(&server.url())),
            seed: Some(1500),
            ..NodeSpec::default()
        };
        let node = TestNode::create(&world.dir.path().join("node"), &first, &spec).unwrap();
        let toml = node.sysroot.join("etc/updog.toml");
        let mut config = std::fs::read_to_string(&toml).unwrap();
        config.push_str("reboot_command = [\"true\"]\n");
        std::fs::write(&toml, config).unwrap();
        let e2e = E2e {
            world,
            _server: server,
            node,
        };
        assert_eq!(e2e.boot().outcome, Outcome::Healthy);
        migrator::Datastore::open_current(&e2e.node.sysroot.join("var/lib/datastore"))
            .unwrap()
            .set(
                &migrator::Key::new("settings.motd").unwrap(),
                &serde_json::json!("hello"),
            )
            .unwrap();
        e2e
    }

    fn run(&self, package: &str, name: &str, args: &[&str]) -> Output {
        Command::new(binary(package, name))
            .arg("--sysroot")
            .arg(&self.node.sysroot)
            .args(args)
            .output()
            .unwrap()
    }

    fn updog(&self, args: &[&str]) -> Output {
        self.run("updog", "updog", args)
    }

    fn update(&self) {
        let out = self.updog(&["update", "--reboot", "--progress", "none"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn boot(&self) -> BootRecord {
        let out = self.run("node-sim", "node-sim", &["boot", "--json"]);
        assert!(
            matches!(out.status.code(), Some(0 | 10)),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut records: Vec<BootRecord> = serde_json::from_slice(&out.stdout).unwrap();
        records.pop().unwrap()
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
    let out = e2e.run("signpost", "signpost", &["rollback-to-inactive"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
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
        corrupt_motd_block(&e2e.node, signpost::SetId::B, b"1.1.0");
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
    let out = e2e.updog(&["update-image", "--image", "1.1.0", "--progress", "none"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
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

/// Flips one byte of the data block that starts with `content` in a set's ROOT.
fn corrupt_motd_block(node: &TestNode, set: signpost::SetId, content: &[u8]) {
    use std::io::{Read, Seek, SeekFrom, Write};
    let root = node.signpost().unwrap().partitions(set).root.clone();
    let mut disk = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&node.disk)
        .unwrap();
    let mut block = vec![0u8; 4096];
    for n in 0..(root.size_bytes() / 4096) {
        let at = root.byte_range().start + n * 4096;
        disk.seek(SeekFrom::Start(at)).unwrap();
        disk.read_exact(&mut block).unwrap();
        if block.starts_with(content) {
            block[0] ^= 0x01;
            disk.seek(SeekFrom::Start(at)).unwrap();
            disk.write_all(&block).unwrap();
            return;
        }
    }
    panic!("no block of ROOT starts with the content");
}

#[test]
fn a_node_is_created_from_a_repository_and_boots_its_first_release() {
    if !tools_present() {
        return;
    }
    let world = World::new();
    world.release("1.0.0", HEALTHY, &[]);
    let server = HttpServer::serve(&world.repo.base()).unwrap();
    let (metadata, targets) = world.repo.urls(&server.url());
    let sysroot = world.dir.path().join("fresh");
    let out = Command::new(binary("node-sim", "node-sim"))
        .arg("--sysroot")
        .arg(&sysroot)
        .args([
            "create",
            "--metadata-url",
            &metadata,
            "--targets-url",
            &targets,
            "--variant",
            "demo",
        ])
        .args(["--arch", "x86_64", "--version", "1.0.0", "--root"])
        .arg(&world.repo.root_json)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The images came over HTTP through TUF.
    assert!(
        server
            .requests()
            .iter()
            .any(|r| r.path.ends_with("1.0.0-root.ext4.lz4"))
    );
    let out = Command::new(binary("node-sim", "node-sim"))
        .arg("--sysroot")
        .arg(&sysroot)
        .args(["boot", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let records: Vec<BootRecord> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(records[0].version.as_deref(), Some("1.0.0"));
    assert_eq!(records[0].set, "A");
    // A version the repository does not have is refused with one line, naming it.
    let out = Command::new(binary("node-sim", "node-sim"))
        .arg("--sysroot")
        .arg(world.dir.path().join("other"))
        .args([
            "create",
            "--metadata-url",
            &metadata,
            "--targets-url",
            &targets,
            "--variant",
            "demo",
        ])
        .args(["--arch", "x86_64", "--version", "9.9.9", "--root"])
        .arg(&world.repo.root_json)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("9.9.9") && stderr.trim().lines().count() == 1,
        "{stderr}"
    );
}
